"""The transformers adapter: a Hugging Face seq2seq model behind the contract of psfuture.backends.base.

Id conventions, mapped here so that policies see the same thing as with fairseq models:
  * Query.src is the source without language tags; the encoder sees `src_prefix + src`, where
    src_prefix is what the tokenizer puts before the text (NLLB/M2M100 `__de__`, BART `<s>`).
    Attention is returned over Query.src only.
  * Query.prefix is the target without the start token; the decoder sees
    `decoder_start_token_id, tgt_prefix..., prefix...` (tgt_prefix: the forced target language tag).
  * Vocab.eos/pad/unk come from the config and tokenizer; bos is the tokenizer's BOS, else the
    decoder start token (Marian has none). The pad token is never predicted (its logit is -1e9),
    as transformers' generate does for Marian.
Caches: encoder outputs and cross-attention keys/values per source, self-attention keys/values per
(source, prefix). A call is answered with at most one encoder and two decoder calls: one for queries
that extend a cached state by one token (past states left-padded and masked; each row's position is
set by a hook on the decoder's position embedding, since the decoders compute one position for the
whole batch), one for whole prefixes (right-padded; each row is read at its own last position).
"""
from __future__ import annotations

import json
import threading
import time
from collections import Counter, OrderedDict
from pathlib import Path
from typing import Iterable, Sequence

import torch

from psfuture.errors import ConfigError, ModelLoadError
from psfuture.backends.base import (Answer, ModelSpec, Query, Vocab, check_attn_layers, missing_sources, sha256,
                                    streams_cache_size)

# model_type values whose logits are lm_head(decoder output) (+ final_logits_bias) and whose decoder
# has an absolute position embedding module; others (T5's relative positions, ...) are not supported.
SUPPORTED = ("marian", "bart", "mbart", "m2m_100", "pegasus")
WORD_STARTS = ("\u2581", "\u0120")  # SentencePiece's and byte-level BPE's word-boundary markers


def _transformers():
    try:
        import transformers
    except ImportError as e:
        raise ModelLoadError("this model directory holds a Hugging Face transformers model, but transformers is "
                             "not installed: pip install -e '.[hf]'") from e
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    return transformers


def load_hf(d: Path, spec: ModelSpec) -> "HFModel":
    device, src_lang, tgt_lang = spec.device, spec.src_lang, spec.tgt_lang
    tf = _transformers()
    try:
        config = tf.AutoConfig.from_pretrained(d, local_files_only=True)
    except Exception as e:
        raise ModelLoadError(f"cannot read {d / 'config.json'} as a transformers config: {e}") from e
    kind = getattr(config, "model_type", "?")
    if not getattr(config, "is_encoder_decoder", False) or kind not in SUPPORTED:
        what = "an encoder-decoder" if config.is_encoder_decoder else "not an encoder-decoder (seq2seq) model"
        raise ModelLoadError(f"{d} holds a {kind!r} model, {what}; psfuture runs encoder-decoder translation "
                             f"models of type {', '.join(SUPPORTED)} (Marian/OPUS-MT, BART, mBART, M2M100/NLLB, "
                             "Pegasus).")
    langs = {k: v for k, v in (("src_lang", src_lang), ("tgt_lang", tgt_lang)) if v}
    try:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. Marian's "install sacremoses", which decoding never needs
            tok = tf.AutoTokenizer.from_pretrained(d, local_files_only=True, **langs)
    except Exception as e:
        first = (str(e).splitlines() or [""])[0][:200]
        raise ModelLoadError(f"cannot load the tokenizer of {d} ({type(e).__name__}: {first}); save it there with "
                             "tokenizer.save_pretrained(DIR) (Marian: source.spm, target.spm, vocab.json).") from e
    if isinstance(tok, bool) or not hasattr(tok, "convert_tokens_to_ids"):
        raise ModelLoadError(f"{d} has no tokenizer; save it there with tokenizer.save_pretrained(DIR).")
    try:
        net = tf.AutoModelForSeq2SeqLM.from_pretrained(d, local_files_only=True, attn_implementation="eager",
                                                       dtype=torch.float32)
    except Exception as e:
        raise ModelLoadError(f"cannot load the weights in {d}: {type(e).__name__}: {e}") from e
    weights = sorted(p for p in d.iterdir() if p.suffix in (".safetensors", ".bin") and p.is_file())
    info = json.loads((d / "model.json").read_text()) if (d / "model.json").is_file() else {}
    info.setdefault("sha256", sha256(weights[0]) if weights else "")
    info.setdefault("name", d.name)
    info.update(path=str(d), kind="transformers", model_type=kind, src_lang=src_lang, tgt_lang=tgt_lang)
    info["precision"] = "float32"
    return HFModel(net.to(device).eval(), tok, info, device=device, incremental=spec.incremental,
                   cache_size=spec.cache_size, tgt_lang=tgt_lang)


def _lang_id(tok, lang: str) -> int:
    # A language code is a special token: NLLB's are the codes themselves, M2M100 wraps them in __..__.
    # Plain pieces never count ("en" is also an ordinary piece in many vocabularies).
    get = getattr(tok, "get_lang_id", None)
    special = set(tok.all_special_ids)
    for token in (f"__{lang}__", lang):
        i = tok.convert_tokens_to_ids(token)
        if i is not None and i != tok.unk_token_id and (i in special or get is not None):
            return i
    raise ConfigError(f"tgt_lang={lang!r} is not a language code of this model's tokenizer")


def _special_around(tok) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The ids the tokenizer puts before a text (e.g. a language tag), and after it except EOS."""
    plain = tok("x", add_special_tokens=False)["input_ids"]
    full = tok("x")["input_ids"]
    for start in range(len(full) - len(plain) + 1):
        if full[start:start + len(plain)] == plain:
            return tuple(full[:start]), tuple(i for i in full[start + len(plain):] if i != tok.eos_token_id)
    return (), ()


class HFModel:
    """See the module docstring; the public members are the contract's (psfuture.backends.base.ModelBackend)."""

    def __init__(self, net, tokenizer, info: dict, *, device: str = "cpu", incremental: bool = True,
                 cache_size: int = 64, tgt_lang: str | None = None):
        self.net, self.tok, self.info, self.device = net, tokenizer, info, device
        self.incremental, self.cache_size = incremental, cache_size
        cfg = net.config
        self.decoder = net.get_decoder()
        self.num_decoder_layers = len(self.decoder.layers)
        self.src_prefix, suffix = _special_around(tokenizer)
        if suffix:
            info["note"] = f"the tokenizer's source suffix {suffix} after EOS is not added"
        forced = _lang_id(tokenizer, tgt_lang) if tgt_lang else getattr(cfg, "forced_bos_token_id", None)
        self.tgt_prefix = () if forced is None else (forced,)
        self.start = cfg.decoder_start_token_id
        size = net.get_output_embeddings().out_features
        pieces = tokenizer.convert_ids_to_tokens(list(range(min(size, len(tokenizer)))))
        special = set(tokenizer.all_special_ids)
        eos = cfg.eos_token_id if cfg.eos_token_id is not None else tokenizer.eos_token_id
        bos = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else self.start
        self.vocab = Vocab(eos=eos, pad=cfg.pad_token_id, unk=tokenizer.unk_token_id, bos=bos,
                           nspecial=next(i for i in range(size) if i not in special), size=size,
                           word_start=frozenset(i for i, p in enumerate(pieces) if p and p.startswith(WORD_STARTS)),
                           indices={p: i for i, p in enumerate(pieces) if p is not None})
        self.calls: Counter = Counter()
        self.seconds = 0.0
        self._enc: OrderedDict = OrderedDict()  # src -> [hidden [S, C], cross k/v per layer or None]
        self._dec: OrderedDict = OrderedDict()  # (src, prefix) -> self-attention (k, v) per layer, [1, H, T, D]
        self._words: dict[str, tuple[int, ...]] = {}
        self._lock = threading.Lock()
        self._rows: torch.Tensor | None = None  # per-row positions for the stepping call
        self._table = torch.zeros(0)
        self._embed = getattr(self.decoder, "embed_positions", None)
        if self._embed is None:
            raise ModelLoadError(f"{info['path']}: the decoder has no position embedding module; not supported")
        self._embed.register_forward_hook(self._row_positions)

    # ---- text <-> ids -------------------------------------------------------------------------
    def encode_word(self, word: str) -> tuple[int, ...]:
        ids = self._words.get(word)
        if ids is None:
            if len(self._words) > 100_000:
                self._words.clear()
            ids = self._words[word] = tuple(self.tok.convert_tokens_to_ids(self.tok.tokenize(word)))
        return ids

    def encode(self, text: str) -> tuple[int, ...]:
        return tuple(i for w in text.split() for i in self.encode_word(w))

    def pieces(self, ids: Iterable[int]) -> list[str]:
        return self.tok.convert_ids_to_tokens(list(ids))

    def decode(self, ids: Iterable[int]) -> str:
        tags = set(self.src_prefix + self.tgt_prefix)  # language tags are not always "special" to the tokenizer
        return self.tok.decode([i for i in ids if i not in tags], skip_special_tokens=True).strip()

    def clear_cache(self) -> None:
        self._enc.clear()
        self._dec.clear()

    def reserve(self, streams: int) -> None:
        self.cache_size = max(self.cache_size, streams_cache_size(streams))

    # ---- positions ----------------------------------------------------------------------------
    def _row_positions(self, module, args, out):
        if self._rows is None:
            return None
        return self._positions(int(self._rows.max()) + 1)[self._rows].to(out.dtype)  # [B, 1, C]

    def _positions(self, n: int) -> torch.Tensor:
        """The decoder's own position vectors for 0..n-1, read off its embedding module in one short run."""
        if self._table.size(0) < n:
            got = []

            def grab(module, args, out):
                got.append(out.reshape(-1, out.size(-1))[-want:].clone())
                raise _Grabbed

            want = max(n, 2 * self._table.size(0), 64)
            h = self._embed.register_forward_hook(grab, prepend=True)
            try:
                self.decoder(input_ids=torch.full((1, want), self.vocab.eos, device=self.device),
                             encoder_hidden_states=torch.zeros(1, 1, self.net.config.d_model, device=self.device))
            except _Grabbed:
                pass
            finally:
                h.remove()
            self._table = got[0]
        return self._table

    # ---- the network --------------------------------------------------------------------------
    def next_token(self, queries: Sequence[Query]) -> list[Answer]:
        check_attn_layers(queries, self.num_decoder_layers)
        with self._lock, torch.inference_mode():
            start = time.perf_counter()
            uniq = list(OrderedDict.fromkeys(queries))
            self._encode_missing({q.src for q in uniq})
            step = [q for q in uniq if self.incremental and q.prefix and (q.src, q.prefix[:-1]) in self._dec]
            stepping = set(step)
            whole = [q for q in uniq if q not in stepping]
            answers = {}
            for group, is_step in ((whole, False), (step, True)):
                if group:
                    answers.update(self._decode(group, is_step))
            for q in step:  # superseded by its child
                self._dec.pop((q.src, q.prefix[:-1]), None)
            while len(self._dec) > self.cache_size:
                self._dec.popitem(last=False)
            self.seconds += time.perf_counter() - start
            return [answers[q] for q in queries]

    def _encode_missing(self, srcs: set) -> None:
        new = missing_sources(self._enc, srcs)
        if not new:
            return
        seqs = [self.src_prefix + s for s in new]
        ids, mask = self._pad(seqs)
        out = self.net.get_encoder()(input_ids=ids, attention_mask=mask).last_hidden_state
        self.calls["encoder"] += 1
        self.calls["encoder_rows"] += len(new)
        for i, (s, seq) in enumerate(zip(new, seqs)):
            self._enc[s] = [out[i, :len(seq)].clone(), None]
        while len(self._enc) > max(8 * self.cache_size, 64, len(srcs)):
            self._enc.popitem(last=False)

    def _pad(self, seqs: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        ids = torch.full((len(seqs), max(map(len, seqs))), self.vocab.pad, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, s in enumerate(seqs):
            ids[i, :len(s)] = torch.tensor(s, dtype=torch.long)
            mask[i, :len(s)] = 1
        return ids.to(self.device), mask.to(self.device)

    def _decode(self, queries: list[Query], stepping: bool) -> dict:
        from transformers.cache_utils import DynamicCache, EncoderDecoderCache

        pad = torch.nn.functional.pad
        rows = len(queries)
        encs = [self._enc[q.src] for q in queries]
        width = max(e[0].size(0) for e in encs)
        hidden = torch.stack([pad(e[0], (0, 0, 0, width - e[0].size(0))) for e in encs])
        enc_mask = torch.stack([(torch.arange(width) < e[0].size(0)).long() for e in encs]).to(self.device)
        cross = DynamicCache()
        if all(e[1] is not None for e in encs):  # else every layer computes them from `hidden`
            cross = DynamicCache([tuple(torch.cat([pad(e[1][layer][j], (0, 0, 0, width - e[1][layer][j].size(2)))
                                                   for e in encs]) for j in (0, 1))
                                  for layer in range(self.num_decoder_layers)])
        if stepping:
            pasts = [self._dec[(q.src, q.prefix[:-1])] for q in queries]
            lens = [p[0][0].size(2) for p in pasts]
            past = max(lens)
            own = DynamicCache([tuple(torch.cat([pad(p[layer][j], (0, 0, past - n, 0)) for p, n in zip(pasts, lens)])
                                      for j in (0, 1)) for layer in range(self.num_decoder_layers)])
            ids = torch.tensor([[q.prefix[-1]] for q in queries], device=self.device)
            mask = torch.stack([(torch.arange(past + 1) >= past - n).long() for n in lens]).to(self.device)
            last = [0] * rows
            self._rows = torch.tensor(lens, device=self.device)[:, None]
        else:
            seqs = [(self.start,) + self.tgt_prefix + q.prefix for q in queries]
            ids, mask = self._pad(seqs)
            own, last = DynamicCache(), [len(s) - 1 for s in seqs]
        cache = EncoderDecoderCache(own, cross)
        try:
            out = self.decoder(input_ids=ids, attention_mask=mask, encoder_hidden_states=hidden,
                               encoder_attention_mask=enc_mask, past_key_values=cache, use_cache=True,
                               output_attentions=True, return_dict=True)
        finally:
            self._rows = None
        self.calls["decoder"] += 1
        self.calls["decoder_rows"] += rows
        at = torch.arange(rows)
        logits = self.net.get_output_embeddings()(out.last_hidden_state[at, last])
        bias = getattr(self.net, "final_logits_bias", None)
        logits = (logits if bias is None else logits + bias).float()
        if self.vocab.pad != self.vocab.eos:
            logits[:, self.vocab.pad] = -1e9  # finite: divergences multiply by its zero probability
        logprobs = torch.log_softmax(logits, dim=-1)
        answers, skip = {}, len(self.src_prefix)
        kv = [(layer.keys, layer.values) for layer in cache.self_attention_cache.layers]
        for i, q in enumerate(queries):
            layer = -1 if q.attn_layer is None else q.attn_layer
            attn = out.cross_attentions[layer][i, :, last[i], skip:skip + len(q.src)].mean(0)
            answers[q] = Answer(logprobs[i].cpu(), attn.float().cpu())
            keep = slice(past - lens[i], None) if stepping else slice(0, last[i] + 1)
            self._dec[(q.src, q.prefix)] = [(k[i:i + 1, :, keep].clone(), v[i:i + 1, :, keep].clone()) for k, v in kv]
            if encs[i][1] is None:
                n = encs[i][0].size(0)
                encs[i][1] = [(layer.keys[i:i + 1, :, :n].clone(), layer.values[i:i + 1, :, :n].clone())
                              for layer in cache.cross_attention_cache.layers]
        return answers

    # ---- offline translation ------------------------------------------------------------------
    def translate(self, sentences: Sequence[str], *, beam: int = 5, max_len_a: float = 2.0, max_len_b: int = 10,
                  batch_size: int = 16) -> list[str]:
        """Full-sentence translation with transformers' beam search (the offline reference point)."""
        out = []
        with self._lock, torch.inference_mode():
            for start in range(0, len(sentences), batch_size):
                srcs = [self.src_prefix + self.encode(s) + (self.vocab.eos,) for s in sentences[start:start + batch_size]]
                ids, mask = self._pad(srcs)
                extra = {"forced_bos_token_id": self.tgt_prefix[0]} if self.tgt_prefix else {}
                hyps = self.net.generate(input_ids=ids, attention_mask=mask, num_beams=beam,
                                         max_new_tokens=int(max_len_a * ids.size(1) + max_len_b), **extra)
                out.extend(self.decode(h.tolist()) for h in hyps)
        return out


class _Grabbed(Exception):
    """Stops the probing decoder run once the position vectors are read."""
