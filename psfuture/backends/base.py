"""The model contract every backend implements, the one spec that carries every model option, and load(spec).

Policies, Session and calibration import this module only; they never know which adapter answers.
This module imports neither torch nor an adapter, so serving code can hold a ModelSpec cheaply; the loader
(psfuture.backends.loader) picks the adapter:

    spec = ModelSpec.from_args(args)       # or ModelSpec("path/to/model", device="cuda", dtype="bfloat16")
    model = load(spec)                     # fairseq, transformers or CTranslate2

A backend answers a batch of (source ids, target prefix ids) queries with next-token log-probs and the
cross-attention of that token; how it caches or batches is its own business, as long as the answers equal
one-at-a-time answers up to float rounding.
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import logging
import os
import re
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Protocol, Sequence, runtime_checkable

from psfuture.backends.precision import DTYPES, QUANTIZE, front_end_dtype
from psfuture.errors import ConfigError, ModelLoadError

if TYPE_CHECKING:
    import torch

log = logging.getLogger("psfuture")

DEFAULT_MODEL_DIR = Path(__file__).resolve().parents[2] / "checkpoints" / "offline"
REQUIRED_FILES = ("checkpoint.pt", "spm.model")
WORD_START = "\u2581"  # SentencePiece's word-boundary marker
BACKENDS = ("auto", "fairseq", "transformers", "ctranslate2")
_DEVICE_RE = re.compile(r"^(cpu|cuda(:\d+)?)$")


@dataclass(frozen=True)
class Query:
    """Ask for the next target token after `prefix` given `src` (both without BOS; add EOS to src yourself)."""

    src: tuple[int, ...]
    prefix: tuple[int, ...] = ()
    attn_layer: int | None = None  # decoder layer whose cross-attention is returned; None = last


@dataclass(frozen=True)
class Answer:
    logprobs: "torch.Tensor"  # [vocab] float32 log-probabilities of the next token, on the CPU
    attn: "torch.Tensor"  # [len(src)] cross-attention of the next token, averaged over heads


@dataclass(frozen=True)
class Vocab:
    """What policies may know about the target/source vocabulary (the dictionary is joined)."""

    eos: int
    pad: int
    unk: int
    bos: int
    nspecial: int
    size: int
    word_start: frozenset[int]  # ids whose piece begins a new word
    indices: Mapping[str, int]  # piece -> id

    def starts_word(self, token: int) -> bool:
        return token == self.eos or token in self.word_start


@runtime_checkable
class ModelBackend(Protocol):
    """The contract. `info` holds at least name, sha256, path, precision and device; `calls` counts forward
    calls ("encoder", "decoder") and their batch rows ("encoder_rows", "decoder_rows")."""

    vocab: Vocab
    info: dict
    calls: Any  # collections.Counter
    num_decoder_layers: int

    def encode_word(self, word: str) -> tuple[int, ...]: ...  # one source word -> piece ids

    def encode(self, text: str) -> tuple[int, ...]: ...  # whitespace-separated words -> ids, no EOS

    def pieces(self, ids: Iterable[int]) -> list[str]: ...

    def decode(self, ids: Iterable[int]) -> str: ...  # target ids (whole words) -> detokenized text

    def next_token(self, queries: Sequence[Query]) -> list[Answer]: ...

    def translate(self, sentences: Sequence[str], *, beam: int = 5, max_len_a: float = 2.0, max_len_b: int = 10,
                  batch_size: int = 16) -> list[str]: ...  # offline beam search, the reference point

    def reserve(self, streams: int) -> None: ...  # keep caches big enough for this many concurrent streams

    def clear_cache(self) -> None: ...


def check_attn_layers(queries: Sequence[Query], n: int) -> None:
    """ConfigError for a query asking for a decoder layer that a model of n layers does not have."""
    for q in queries:
        if q.attn_layer is not None and not -n <= q.attn_layer < n:
            raise ConfigError(f"attention layer {q.attn_layer} does not exist: the decoder has {n} layers "
                              f"(use 0..{n - 1}, negative from the top, or None for the last)")


def missing_sources(cache: OrderedDict, srcs: set) -> list:
    """The sources an encoder cache lacks, sorted; the cached ones become the most recently used."""
    new = sorted(s for s in srcs if s not in cache)
    for s in srcs - set(new):
        cache.move_to_end(s)
    return new


def streams_cache_size(streams: int) -> int:
    """Decoder states to keep for `streams` concurrent streams: each keeps its newest states between words
    (PsFuture: the prefix and the pseudo-future); a smaller cache would thrash and recompute every prefix."""
    return 4 * streams


def resolve_model_dir(path: str | os.PathLike | None = None) -> Path:
    """`path`, else $PSFUTURE_MODEL, else the shipped model next to the package."""
    if path is None:
        path = os.environ.get("PSFUTURE_MODEL") or DEFAULT_MODEL_DIR
    return Path(path).expanduser().resolve()


def check_dir(d: Path) -> None:
    """ModelLoadError naming what a psfuture (fairseq) model directory lacks."""
    fix = ("A model directory holds either psfuture's checkpoint.pt, dict.<src>.txt, dict.<tgt>.txt, spm.model and "
           "model.json (see scripts/export_model.py), or a Hugging Face transformers seq2seq model (config.json, "
           "weights, tokenizer files); pass another directory or set PSFUTURE_MODEL.")
    if not d.is_dir():
        raise ModelLoadError(f"model directory {d} does not exist. {fix}")
    missing = [f for f in REQUIRED_FILES if not (d / f).is_file()]
    if not list(d.glob("dict.*.txt")):
        missing.append("dict.<lang>.txt")
    if missing:
        raise ModelLoadError(f"model directory {d} lacks {', '.join(missing)}. {fix}")


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass(frozen=True)
class ModelSpec:
    """Every option of a model load, in one place: front ends build it from arguments, the supervisor sends it
    to its workers as JSON, and `load` turns it into a backend.

    dtype "auto" is bfloat16 where the device computes it natively and nothing is quantized, else float32;
    dtype/quantize apply to fairseq models (transformers models run float32). src_lang/tgt_lang are language
    codes of multilingual transformers models. cache_size: decoder states kept (at least; servers and sweeps
    `reserve` more). backend "auto": transformers when the folder has config.json, else fairseq."""

    path: str | None = None
    device: str = "cpu"
    dtype: str = "float32"
    quantize: str = "none"
    src_lang: str | None = None
    tgt_lang: str | None = None
    backend: str = "auto"
    incremental: bool = True
    cache_size: int = 256

    def __post_init__(self):
        if self.path is not None and not isinstance(self.path, str):
            object.__setattr__(self, "path", str(self.path))
        object.__setattr__(self, "quantize", "none" if self.quantize is None else str(self.quantize).lower())
        if not (isinstance(self.device, str) and _DEVICE_RE.match(self.device)):
            raise ConfigError(f"unknown device {self.device!r}; use cpu, cuda or cuda:N")
        if self.dtype not in DTYPES:
            raise ConfigError(f"unknown dtype {self.dtype!r}; use one of {', '.join(DTYPES)}")
        if self.quantize not in QUANTIZE:
            raise ConfigError(f"unknown quantization {self.quantize!r}; use one of {', '.join(QUANTIZE)}")
        if self.backend not in BACKENDS:
            raise ConfigError(f"unknown backend {self.backend!r}; use one of {', '.join(BACKENDS)}")
        if not (isinstance(self.cache_size, int) and self.cache_size >= 1):
            raise ConfigError(f"cache_size must be an integer >= 1, got {self.cache_size!r}")

    @property
    def model_dir(self) -> Path:
        return resolve_model_dir(self.path)

    def replace(self, **changes) -> "ModelSpec":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ModelSpec":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ConfigError(f"unknown model option(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}")
        return cls(**d)

    @staticmethod
    def add_args(parser, *, path_flag: str | None = "--model") -> None:
        """The model options on a parser or argument group (path_flag None: the caller adds its own path option).
        Values are checked by ModelSpec itself, so every front end reports a bad value the same way (a
        ConfigError naming the allowed ones)."""
        if path_flag:
            parser.add_argument(path_flag, metavar="DIR", default=None,
                                help="model directory: psfuture's (checkpoint.pt, spm.model, ...) or a transformers "
                                     "seq2seq model's (config.json, ...); default: $PSFUTURE_MODEL or "
                                     "checkpoints/offline")
        parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: %(default)s)")
        parser.add_argument("--dtype", default=front_end_dtype(),
                            help=f"compute precision: {', '.join(DTYPES)} (auto: bfloat16 where the device computes "
                                 "it natively, else float32; default: $PSFUTURE_DTYPE or auto, here %(default)s)")
        parser.add_argument("--quantize", default="none", help=f"{', '.join(QUANTIZE)} (default: %(default)s)")
        parser.add_argument("--src-lang", default=None, help="source language code of a multilingual transformers "
                                                             "model (NLLB deu_Latn, M2M100 de); default: the model's")
        parser.add_argument("--tgt-lang", default=None, help="target language code, likewise (eng_Latn, en)")
        parser.add_argument("--backend", default="auto",
                            help=f"{', '.join(BACKENDS)} (auto: transformers for a folder with config.json, "
                                 "else fairseq; ctranslate2 runs a fairseq model with CTranslate2)")

    @classmethod
    def from_args(cls, args: argparse.Namespace, **overrides) -> "ModelSpec":
        """The spec from options added by add_args (a SimulEval-style --checkpoint also counts as the path)."""
        path = getattr(args, "model", None) or getattr(args, "checkpoint", None)
        kw = {name: getattr(args, name) for name in ("device", "dtype", "quantize", "src_lang", "tgt_lang", "backend")
              if getattr(args, name, None) is not None}
        kw["path"] = None if path is None or isinstance(path, list) else str(path)
        return cls(**{**kw, **overrides})
