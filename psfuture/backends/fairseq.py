"""The fairseq adapter: a translation transformer checkpoint plus its SentencePiece model, behind the
contract of psfuture.backends.base.

Work is reused where the math allows:
  * encoder outputs are cached per exact source id tuple;
  * decoder states are cached per (source, target prefix), so a query that extends a cached
    prefix by one token runs one incremental decoder step (fairseq's incremental_state);
    a query without a cached parent runs the whole prefix once and keeps the state it built.
The encoder is bidirectional, so a new source word invalidates every decoder state for it:
states are keyed by the exact source, never reused across sources.
Any mix of queries (streams and sentences at different source and target lengths, different
attention layers) shares calls: one encoder call for the new sources, one decoder call stepping
every query with a cached parent, one for the whole prefixes of the rest, rows padded and masked.
The answers equal one-at-a-time answers up to float rounding (tests/backends/test_fairseq.py).
"""
from __future__ import annotations

import argparse
import importlib
import json
import logging
import threading
import time
from collections import Counter, OrderedDict
from pathlib import Path
from typing import Iterable, Sequence

import torch

from psfuture.backends.base import (WORD_START, Answer, ModelSpec, Query, Vocab, check_attn_layers, check_dir,
                                    missing_sources, sha256, streams_cache_size)
from psfuture.errors import ModelLoadError

log = logging.getLogger(__name__)

# fairseq checkpoints pickle an argparse.Namespace; torch>=2.6 refuses it unless allow-listed.
torch.serialization.add_safe_globals([argparse.Namespace])


def quiet_fairseq_logging() -> None:
    # `import fairseq` sets the root logger to DEBUG, flooding every user of the library.
    root = logging.getLogger()
    if root.level == logging.DEBUG:
        root.setLevel(logging.WARNING)


def _import_user_tasks(task_name: str) -> None:
    # P2F checkpoints name a task registered by psfuture.tasks (fairseq --user-dir); inference
    # only needs it registered, not used.
    from fairseq.tasks import TASK_REGISTRY

    if task_name not in TASK_REGISTRY:
        try:
            importlib.import_module("psfuture.tasks")
        except ImportError:
            pass


def _cast_encoder_out(decoder, args, kwargs):
    # Callers build encoder_out buffers in float32; a bfloat16 decoder needs its own dtype.
    enc = kwargs.get("encoder_out")
    dtype = decoder.embed_tokens.weight.dtype
    if enc and enc.get("encoder_out") and enc["encoder_out"][0].dtype != dtype:
        kwargs["encoder_out"] = dict(enc, encoder_out=[enc["encoder_out"][0].to(dtype)])
    return args, kwargs


def _set_precision(net, dtype: str, quantize: str):
    if dtype == "bfloat16":
        net = net.to(torch.bfloat16)
        net.decoder.register_forward_pre_hook(_cast_encoder_out, with_kwargs=True)
    if quantize == "int8-ffn":
        # Attention projections stay float: fairseq's fast attention path reads their biases.
        import warnings

        from torch.ao.quantization import quantize_dynamic

        ffn = {name for name, _ in net.named_modules() if name.rsplit(".", 1)[-1] in ("fc1", "fc2")}
        with warnings.catch_warnings():  # torch marks quantized tensors deprecated; they still run
            warnings.simplefilter("ignore")
            net = quantize_dynamic(net, ffn, dtype=torch.qint8)
    return net


def load_fairseq(d: Path, spec: ModelSpec) -> "Model":
    """Load a psfuture model directory; spec.dtype/quantize are already resolved (no "auto")."""
    dtype, quantize, device = spec.dtype, spec.quantize, spec.device
    check_dir(d)
    import sentencepiece as spm
    from fairseq import checkpoint_utils

    quiet_fairseq_logging()
    ckpt = d / "checkpoint.pt"
    try:
        state = checkpoint_utils.load_checkpoint_to_cpu(str(ckpt), {"data": str(d)})
    except Exception as e:  # torch raises many types for truncated/foreign files
        first = (str(e).splitlines() or [""])[0][:200]
        raise ModelLoadError(f"cannot read {ckpt} ({type(e).__name__}: {first}): the file is corrupt or "
                             "not a fairseq checkpoint; re-export the model.") from e
    cfg = state.get("cfg")
    if cfg is None or "task" not in cfg or "model" not in cfg:
        raise ModelLoadError(f"{ckpt} has no fairseq config (cfg); re-export it with a current fairseq.")
    _import_user_tasks(cfg.task._name)
    if cfg.task.get("source_lang") is None or cfg.task.get("target_lang") is None:
        # Checkpoints trained without -s/-t: fairseq would look for train.* files to guess.
        langs = sorted(p.name.split(".")[1] for p in d.glob("dict.*.txt"))
        pair = ("de", "en") if langs == ["de", "en"] else None
        if pair is None:
            raise ModelLoadError(f"{ckpt} does not record its language pair and {d} holds dictionaries for "
                                 f"{langs}; retrain/export with explicit --source-lang/--target-lang.")
        from omegaconf import open_dict

        with open_dict(cfg):
            cfg.task.source_lang, cfg.task.target_lang = pair
    for asked, own, which in ((spec.src_lang, cfg.task.source_lang, "--src-lang"),
                              (spec.tgt_lang, cfg.task.target_lang, "--tgt-lang")):
        if asked is not None and asked != own:
            raise ModelLoadError(f"{which} {asked}: {d.name} translates {cfg.task.source_lang}->"
                                 f"{cfg.task.target_lang} only; drop {which} or give {own}")
    try:
        models, _, task = checkpoint_utils.load_model_ensemble_and_task(
            [str(ckpt)], arg_overrides={"data": str(d)}, state=state)
    except FileNotFoundError as e:
        raise ModelLoadError(f"{d}: {e}. The dictionaries must be named after the checkpoint's "
                             f"languages ({cfg.task.get('source_lang')}, {cfg.task.get('target_lang')}).") from e
    except Exception as e:
        raise ModelLoadError(f"cannot build the model in {ckpt}: {type(e).__name__}: {e}") from e
    try:
        sp = spm.SentencePieceProcessor(model_file=str(d / "spm.model"))
    except Exception as e:
        raise ModelLoadError(f"cannot read {d / 'spm.model'}: {e}. Copy the SentencePiece model "
                             "used to build the training data there.") from e
    info = json.loads((d / "model.json").read_text()) if (d / "model.json").is_file() else {}
    info.setdefault("sha256", sha256(ckpt))
    info.setdefault("name", d.name)
    info["path"] = str(d)
    info["precision"] = dtype if quantize == "none" else f"{dtype}+{quantize}"
    info["src_lang"], info["tgt_lang"] = cfg.task.source_lang, cfg.task.target_lang
    net = _set_precision(models[0].to(device).float().eval(), dtype, quantize)  # stored fp16: float unless asked
    if task.source_dictionary != task.target_dictionary and list(task.source_dictionary.symbols) != list(
            task.target_dictionary.symbols):
        raise ModelLoadError(f"{d}: source and target dictionaries differ; psfuture expects a joined dictionary.")
    return Model(net, task.target_dictionary, sp, info, device=device, incremental=spec.incremental,
                 cache_size=spec.cache_size)


def _bufs(net) -> list:
    """The decoder's attention modules, in a fixed order (fairseq keys their states by module)."""
    return [m for layer in net.decoder.layers for m in (layer.self_attn, layer.encoder_attn)]


class _RowPositions(torch.nn.Module):
    """The decoder's positional embedding, computed from each row's own tokens even in incremental mode.

    In incremental mode fairseq gives every row the position of the batch's length, which is right only
    when all rows are equally long. Fed left-padded tokens, the non-incremental computation (which skips
    pads) gives each row its own position in the last column, which is the one the decoder keeps."""

    def __init__(self, inner: torch.nn.Module):
        super().__init__()
        self.inner = inner
        self.max_positions = inner.max_positions

    def forward(self, tokens, incremental_state=None, positions=None):
        return self.inner(tokens)


def _gather(rows: Sequence[tuple[dict, int]], modules) -> dict:
    """One batch state for the rows (batch state, row index) of earlier calls. The rows of one earlier
    call, all of them and in order, reuse its tensors as they are (the common case: streams that step
    together keep stepping together); otherwise each earlier batch gives its rows in one index_select,
    unequal key lengths padded with masked zeros."""
    first = rows[0][0]
    if all(st is first for st, _ in rows) and [i for _, i in rows] == list(range(_size(first, modules))):
        return {k: dict(v) for k, v in first.items()}  # fairseq rewrites the inner dicts: copy them, not tensors
    groups: dict[int, tuple[dict, list[int]]] = {}
    for st, i in rows:
        groups.setdefault(id(st), (st, []))[1].append(i)
    order: list[tuple[int, int]] = [(id(st), i) for st, i in rows]
    position = {key: n for n, key in enumerate((g, i) for g, (_, idx) in groups.items() for i in idx)}
    perm = torch.tensor([position[key] for key in order])
    merged: dict = {}
    for m in modules:
        bufs = [(m._get_input_buffer(st), torch.tensor(idx)) for st, idx in groups.values()]
        width = max(b["prev_key"].size(2) for b, _ in bufs)
        keys, values, masks = [], [], []
        for b, idx in bufs:
            n = b["prev_key"].size(2)
            keys.append(torch.nn.functional.pad(b["prev_key"].index_select(0, idx), (0, 0, 0, width - n)))
            values.append(torch.nn.functional.pad(b["prev_value"].index_select(0, idx), (0, 0, 0, width - n)))
            mask = b.get("prev_key_padding_mask")
            mask = b["prev_key"].new_zeros(len(idx), n) if mask is None else mask.index_select(0, idx).float()
            masks.append(torch.nn.functional.pad(mask, (0, width - n), value=1.0))
        buf = {"prev_key": torch.cat(keys).index_select(0, perm), "prev_value": torch.cat(values).index_select(0, perm),
               "prev_key_padding_mask": torch.cat(masks).index_select(0, perm)}
        m._set_input_buffer(merged, buf)
    return merged


def _size(state: dict, modules) -> int:
    return modules[0]._get_input_buffer(state)["prev_key"].size(0)


class Model:
    """A loaded fairseq translation model with its tokenizer; see the module docstring.

    Thread-safe in the sense that next_token calls are serialised by a lock: run model work
    off an event loop, but one call at a time.
    """

    def __init__(self, net, dictionary, sp, info: dict, *, device: str = "cpu", incremental: bool = True,
                 cache_size: int = 256):
        self.net, self.dict, self.sp, self.info = net, dictionary, sp, info
        self.device = device
        self.incremental = incremental
        self.cache_size = cache_size
        d = dictionary
        self.vocab = Vocab(eos=d.eos(), pad=d.pad(), unk=d.unk(), bos=d.bos(), nspecial=d.nspecial, size=len(d),
                           word_start=frozenset(i for i, s in enumerate(d.symbols) if s.startswith(WORD_START)),
                           indices=dict(d.indices))
        self.calls: Counter = Counter()  # "encoder"/"decoder" forward calls, "*_rows" batch rows
        self.seconds = 0.0
        self._enc: OrderedDict = OrderedDict()  # src ids -> [S, 1, C] encoder output
        self._dec: OrderedDict = OrderedDict()  # (src, prefix) -> (batch incremental state, its row)
        self._modules = _bufs(net)
        self._words: dict[str, tuple[int, ...]] = {}
        self._lock = threading.Lock()
        if net.decoder.embed_positions is not None and not isinstance(net.decoder.embed_positions, _RowPositions):
            net.decoder.embed_positions = _RowPositions(net.decoder.embed_positions)

    @property
    def num_decoder_layers(self) -> int:
        return len(self.net.decoder.layers)

    # ---- text <-> ids -------------------------------------------------------------------------
    def encode_word(self, word: str) -> tuple[int, ...]:
        """One source word -> its piece ids (words are segmented independently, as SentencePiece does)."""
        ids = self._words.get(word)
        if ids is None:
            if len(self._words) > 100_000:  # a long-running server sees unboundedly many words
                self._words.clear()
            ids = self._words[word] = tuple(self.dict.index(p) for p in self.sp.encode(word, out_type=str))
        return ids

    def encode(self, text: str) -> tuple[int, ...]:
        """A sentence -> piece ids, without EOS."""
        return tuple(i for w in text.split() for i in self.encode_word(w))

    def pieces(self, ids: Iterable[int]) -> list[str]:
        return [self.dict[i] for i in ids]

    def decode(self, ids: Iterable[int]) -> str:
        """Target ids (one or more whole words) -> detokenized text."""
        pieces = [self.dict[i] for i in ids if i not in (self.vocab.eos, self.vocab.pad, self.vocab.bos)]
        return self.sp.decode_pieces(pieces)

    # ---- the network --------------------------------------------------------------------------
    def next_token(self, queries: Sequence[Query]) -> list[Answer]:
        """Next-token log-probs and cross-attention for each query, whatever the mix of sources, prefix
        lengths and attention layers: one encoder call for the sources not cached, then at most two
        decoder calls: one steps every query whose parent state is cached by one token, one runs the
        whole prefix of the others (rows padded and masked)."""
        check_attn_layers(queries, self.num_decoder_layers)
        with self._lock, torch.inference_mode():
            start = time.perf_counter()
            uniq = list(OrderedDict.fromkeys(queries))
            self._encode_missing({q.src for q in uniq})
            stepping, whole = [], []
            for q in uniq:
                cached = self.incremental and bool(q.prefix) and (q.src, q.prefix[:-1]) in self._dec
                (stepping if cached else whole).append(q)
            answers = {}
            if stepping:
                answers.update(self._decode(stepping, True))
            if whole:
                answers.update(self._decode(whole, False))
            for q in stepping:  # superseded by its child: keep the cache small
                self._dec.pop((q.src, q.prefix[:-1]), None)
            self._trim_cache()  # only now: the second call may have needed the oldest
            self.seconds += time.perf_counter() - start
            return [answers[q] for q in queries]

    def _trim_cache(self) -> None:
        """Keep the newest cache_size states, and no more than cache_size batch rows pinned by them
        (a cached row keeps its whole batch's tensors alive)."""
        keep, rows, seen = 0, 0, set()
        for st, _ in reversed(self._dec.values()):
            if id(st) not in seen:
                seen.add(id(st))
                rows += _size(st, self._modules)
            if keep >= self.cache_size or (keep and rows > self.cache_size):
                break
            keep += 1
        for _ in range(len(self._dec) - keep):
            self._dec.popitem(last=False)

    def _encode_missing(self, srcs: set) -> None:
        new = missing_sources(self._enc, srcs)
        if not new:
            return
        tokens = self._pad(new)
        lengths = torch.tensor([len(s) for s in new], device=self.device)
        out = self.net.encoder(tokens, src_lengths=lengths)["encoder_out"][0]  # [S, B, C]
        self.calls["encoder"] += 1
        self.calls["encoder_rows"] += len(new)
        for i, s in enumerate(new):
            self._enc[s] = out[:len(s), i:i + 1].clone()
        while len(self._enc) > max(8 * self.cache_size, 64, len(srcs)):  # this call's are the newest
            self._enc.popitem(last=False)

    def _pad(self, seqs: Sequence[Sequence[int]], left: bool = False) -> torch.Tensor:
        # fairseq's positions skip pads on either side and the masks hide them.
        t = torch.full((len(seqs), max(len(s) for s in seqs)), self.vocab.pad, dtype=torch.long)
        for i, s in enumerate(seqs):
            if s:
                t[i, slice(t.size(1) - len(s), None) if left else slice(0, len(s))] = torch.tensor(s, dtype=torch.long)
        return t.to(self.device)

    def _encoder_out(self, queries: Sequence[Query]) -> dict:
        width = max(len(q.src) for q in queries)
        enc = torch.zeros(width, len(queries), self._enc[queries[0].src].size(-1), device=self.device)
        pad_mask = torch.ones(len(queries), width, dtype=torch.bool, device=self.device)
        for i, q in enumerate(queries):
            enc[:len(q.src), i] = self._enc[q.src][:, 0]
            pad_mask[i, :len(q.src)] = torch.tensor(q.src, device=self.device) == self.vocab.pad  # as fairseq does
        return {"encoder_out": [enc], "encoder_padding_mask": [pad_mask], "encoder_embedding": [],
                "encoder_states": [], "src_tokens": [], "src_lengths": []}

    def _decode(self, queries: Sequence[Query], stepping: bool) -> dict:
        """One decoder call. stepping: every query extends its cached parent state by one token
        (tokens left-padded, so the decoder's last column is each row's newest token); otherwise
        whole prefixes, right-padded, read at each row's last position."""
        targets = [(self.vocab.eos,) + q.prefix for q in queries]  # fairseq starts targets with EOS
        tokens = self._pad(targets, left=stepping)
        last = self.num_decoder_layers - 1
        layers = {q.attn_layer % (last + 1) for q in queries if q.attn_layer is not None} - {last}
        attns: dict[int, torch.Tensor] = {}  # layer -> [B, T, S] cross-attention (heads averaged)
        hooks = [self.net.decoder.layers[i].register_forward_hook(
            lambda mod, args, out, i=i: attns.__setitem__(i, out[1])) for i in layers]
        state = None
        try:
            if stepping:
                state = _gather([self._dec[(q.src, q.prefix[:-1])] for q in queries], self._modules)
                # Cross-attention keys and values come from the cached states (static_kv), so the
                # encoder output is a placeholder the layers only test for presence.
                dummy = {"encoder_out": [torch.zeros(1, len(queries), 1, device=self.device)],
                         "encoder_padding_mask": [], "encoder_embedding": [], "encoder_states": [],
                         "src_tokens": [], "src_lengths": []}
                features, extra = self.net.decoder(tokens, encoder_out=dummy, incremental_state=state,
                                                   features_only=True)
            else:
                encoder_out = self._encoder_out(queries)
                if self.incremental:
                    # Run the whole prefix at once but hand every layer an incremental_state to fill, so
                    # the next query on this source can extend it by one step. The causal mask still
                    # applies because the decoder itself runs in non-incremental mode.
                    state = {}
                    hooks += [layer_.register_forward_pre_hook(lambda mod, args: args[:3] + (state,) + args[4:])
                              for layer_ in self.net.decoder.layers]
                features, extra = self.net.decoder(tokens, encoder_out=encoder_out, features_only=True)
                if state is not None and len(state) != len(self._modules):  # fairseq changed its layers
                    raise RuntimeError("priming the incremental state failed; use load_model(..., incremental=False)")
        finally:
            for h in hooks:
                h.remove()
        self.calls["decoder"] += 1
        self.calls["decoder_rows"] += len(queries)
        rows = torch.arange(len(queries), device=self.device)
        pos = (torch.full_like(rows, features.size(1) - 1) if stepping
               else torch.tensor([len(t) - 1 for t in targets], device=self.device))
        attns[last] = extra["attn"][0]
        picked = features[rows, pos].unsqueeze(1)  # project just each row's last position onto the vocabulary
        logits = self.net.decoder.output_layer(picked)
        # One copy to the host per call, not two per row (each row's would be a synchronous copy on a GPU).
        logprobs = self.net.get_normalized_probs((logits, extra), log_probs=True)[:, 0].float().cpu()
        attn = {i: a[rows, pos].float().cpu() for i, a in attns.items()}
        if state is not None:
            for i, q in enumerate(queries):  # rows keep the batch's padding; its masks hide it
                self._dec[(q.src, q.prefix)] = (state, i)
        return {q: Answer(logprobs[i], attn[last if q.attn_layer is None else q.attn_layer % (last + 1)][i, :len(q.src)])
                for i, q in enumerate(queries)}

    def clear_cache(self) -> None:
        self._enc.clear()
        self._dec.clear()

    def reserve(self, streams: int) -> None:
        self.cache_size = max(self.cache_size, streams_cache_size(streams))

    # ---- offline translation ------------------------------------------------------------------
    def translate(self, sentences: Sequence[str], *, beam: int = 5, max_len_a: float = 2.0, max_len_b: int = 10,
                  batch_size: int = 16) -> list[str]:
        """Full-sentence translation with fairseq's beam search (the offline reference point)."""
        from fairseq.sequence_generator import SequenceGenerator

        gen = SequenceGenerator([self.net], self.dict, beam_size=beam, max_len_a=max_len_a, max_len_b=max_len_b)
        out = []
        with self._lock, torch.inference_mode():
            for start in range(0, len(sentences), batch_size):
                srcs = [self.encode(s) + (self.vocab.eos,) for s in sentences[start:start + batch_size]]
                tokens = torch.full((len(srcs), max(map(len, srcs))), self.vocab.pad, dtype=torch.long)
                for i, s in enumerate(srcs):  # SequenceGenerator expects left-padded sources
                    tokens[i, tokens.size(1) - len(s):] = torch.tensor(s)
                sample = {"net_input": {"src_tokens": tokens.to(self.device),
                                        "src_lengths": torch.tensor([len(s) for s in srcs], device=self.device)}}
                for hyps in gen.generate([self.net], sample):
                    out.append(self.decode(hyps[0]["tokens"].tolist()))
        return out
