"""A second model adapter: the same fairseq checkpoint run by CTranslate2, behind `next_token`.

    model = load(ModelSpec(DIR, backend="ctranslate2"))   # converts once to build/ct2/<name>, then reuses it
    # or by hand: CT2Model(load(ModelSpec(DIR)), convert(DIR))   (tokenizer, vocabulary, info from fairseq)

CTranslate2 (the `ct2` extra) has no API that keeps an encoder output or a decoder state between
calls, so every query re-encodes its source and runs its whole target prefix; what it does offer is
`translate_batch(target_prefix=..., return_logits_vocab=True)`, whose logits at position len(prefix)
are the next-token distribution after the forced prefix. Queries of one prefix length share one
call. Cross-attention is that of the layer chosen at conversion (the last, averaged over heads,
as the fairseq adapter's default); other layers are refused.
"""
from __future__ import annotations

import json
import shutil
import threading
import time
from collections import Counter, OrderedDict
from pathlib import Path
from typing import Sequence

import numpy
import torch

from psfuture.errors import ConfigError, ModelLoadError
from psfuture.backends.base import Answer, ModelSpec, Query, check_dir, resolve_model_dir, sha256

ROOT = Path(__file__).resolve().parents[2]
STAMP = "psfuture.json"  # beside the converted model: which checkpoint it came from


def _ctranslate2():
    try:
        import ctranslate2
    except ImportError:
        raise ConfigError("CTranslate2 is not installed; pip install -e '.[ct2]'") from None
    return ctranslate2


def convert(model_dir=None, out: str | Path | None = None) -> Path:
    """Convert a model directory for CTranslate2 once (default out: build/ct2/<name>); reuse it after.

    Sources are passed with their EOS already in place (PsFuture's prefix queries have none), so the
    converted config must not add one.
    """
    d = resolve_model_dir(model_dir)
    check_dir(d)
    digest = sha256(d / "checkpoint.pt")
    out = Path(out) if out else ROOT / "build" / "ct2" / d.name
    stamp = out / STAMP
    if stamp.is_file() and json.loads(stamp.read_text()).get("sha256") == digest:
        return out
    ct2 = _ctranslate2()
    from ctranslate2.converters import FairseqConverter

    langs = sorted(p.name.split(".")[1] for p in d.glob("dict.*.txt"))
    if langs != ["de", "en"]:
        raise ModelLoadError(f"{d}: expected dict.de.txt and dict.en.txt, found {langs}")
    # P2F checkpoints name a task that psfuture registers (fairseq --user-dir).
    converter = FairseqConverter(str(d / "checkpoint.pt"), str(d), user_dir=str(ROOT / "psfuture"),
                                 source_lang="de", target_lang="en")
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        converter.convert(str(tmp), force=True)
    except Exception as e:
        raise ModelLoadError(f"CTranslate2 {ct2.__version__} cannot convert {d}: {type(e).__name__}: {e}") from e
    config = json.loads((tmp / "config.json").read_text())
    config["add_source_eos"] = False
    (tmp / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    (tmp / STAMP).write_text(json.dumps({"sha256": digest, "source": str(d),
                                         "ctranslate2": ct2.__version__}) + "\n")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out


def load_ct2(d: Path, spec: ModelSpec) -> "CT2Model":
    """The fairseq model in `d` (its tokenizer and vocabulary) with CTranslate2 doing the math, on the CPU."""
    from psfuture.backends.fairseq import load_fairseq

    if spec.device != "cpu" or spec.dtype == "bfloat16" or spec.quantize != "none":
        raise ConfigError("the CTranslate2 backend runs float32 on the CPU here; drop --device/--dtype/--quantize")
    return CT2Model(load_fairseq(d, spec.replace(dtype="float32")), convert(d))


def max_length(srcs: Sequence[Sequence[int]], max_len_a: float, max_len_b: int, positions: int = 1024) -> int:
    """fairseq SequenceGenerator's cap on generated tokens (EOS not counted) for one batch: it
    applies to the padded width, the longest source with its EOS."""
    return min(int(max_len_a * max(map(len, srcs)) + max_len_b), positions - 1)


class CT2Model:
    """`Model`'s interface (tokenizer and vocabulary from the fairseq `base`) with CTranslate2 doing the math."""

    def __init__(self, base, converted: str | Path, *, threads: int = 1, compute_type: str = "default"):
        ct2 = _ctranslate2()
        self.base = base
        self.translator = ct2.Translator(str(converted), device="cpu", inter_threads=1, intra_threads=threads,
                                         compute_type=compute_type)
        self.vocab, self.info = base.vocab, dict(base.info, engine=f"ctranslate2 {ct2.__version__} {compute_type}")
        self.encode_word, self.encode, self.pieces, self.decode = base.encode_word, base.encode, base.pieces, base.decode
        self.num_decoder_layers = base.num_decoder_layers
        self.cache_size = base.cache_size
        self.calls: Counter = Counter()
        self.seconds = 0.0
        self._lock = threading.Lock()

    def clear_cache(self) -> None:  # nothing is kept between calls
        pass

    def reserve(self, streams: int) -> None:
        pass

    def next_token(self, queries: Sequence[Query]) -> list[Answer]:
        n = self.num_decoder_layers
        for q in queries:
            if q.attn_layer is not None and not -n <= q.attn_layer < n:
                raise ConfigError(f"attention layer {q.attn_layer} does not exist: the decoder has {n} layers")
            if q.attn_layer is not None and q.attn_layer % n != n - 1:
                raise ConfigError(f"the CTranslate2 adapter returns the last decoder layer's attention only, "
                                  f"not layer {q.attn_layer}; use the fairseq adapter for other layers")
        with self._lock:
            start = time.perf_counter()
            groups: dict[int, list[Query]] = OrderedDict()
            for q in OrderedDict.fromkeys(queries):
                groups.setdefault(len(q.prefix), []).append(q)
            answers = {}
            for length, group in groups.items():
                answers.update(self._step(group, length))
            self.seconds += time.perf_counter() - start
            return [answers[q] for q in queries]

    def _step(self, queries: list[Query], length: int) -> dict:
        results = self.translator.translate_batch(
            [self.pieces(q.src) for q in queries], [self.pieces(q.prefix) or None for q in queries],
            beam_size=1, max_decoding_length=length + 1, min_decoding_length=0, max_input_length=0,
            return_logits_vocab=True, return_attention=True, return_end_token=True)
        for kind in ("encoder", "decoder"):
            self.calls[kind] += 1
            self.calls[kind + "_rows"] += len(queries)
        out = {}
        for q, r in zip(queries, results):
            logits = torch.from_numpy(numpy.array(r.logits[0][length])).float()
            attn = torch.tensor(r.attention[0][length], dtype=torch.float32)
            if attn.numel() == len(q.src) - 1:  # CTranslate2 leaves out the EOS column
                attn = torch.cat([attn, (1 - attn.sum()).clamp(min=0).reshape(1)])
            out[q] = Answer(torch.log_softmax(logits, -1), attn)
        return out

    def translate(self, sentences: Sequence[str], *, beam: int = 5, max_len_a: float = 2.0, max_len_b: int = 10,
                  batch_size: int = 16) -> list[str]:
        """Full-sentence translation in the batches and with the length cap of `Model.translate`."""
        out = []
        with self._lock:
            for start in range(0, len(sentences), batch_size):
                srcs = [self.encode(s) + (self.vocab.eos,) for s in sentences[start:start + batch_size]]
                cap = max_length(srcs, max_len_a, max_len_b, self.base.net.max_decoder_positions())
                # The +1 is the EOS CTranslate2 counts and fairseq does not; a longer run is cut below.
                results = self.translator.translate_batch([self.pieces(s) for s in srcs], beam_size=beam,
                                                          max_decoding_length=cap + 1, max_input_length=0)
                out += [self.base.sp.decode_pieces(r.hypotheses[0][:cap]) for r in results]
        return out
