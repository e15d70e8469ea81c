"""load(spec): the one way a model is loaded. It picks the adapter for a ModelSpec, importing only that one."""
from __future__ import annotations

import os

from psfuture.backends.base import ModelBackend, ModelSpec
from psfuture.backends.precision import check_device, resolve_precision
from psfuture.errors import ConfigError


def load(spec: ModelSpec | None = None, **options) -> ModelBackend:
    """Load the model a spec describes (default: the shipped model, float32 on the CPU); options override
    the spec's fields. The adapter module is imported only when it is picked."""
    spec = (spec or ModelSpec()).replace(**options) if options else (spec or ModelSpec())
    check_device(spec.device)
    dtype, quantize, why = resolve_precision(spec.dtype, spec.quantize, spec.device)
    d = spec.model_dir
    backend = spec.backend
    if backend == "auto":
        backend = "transformers" if (d / "config.json").is_file() else "fairseq"
    if backend == "transformers":
        if (spec.dtype, spec.quantize) not in (("float32", "none"), ("auto", "none")):
            raise ConfigError("--dtype/--quantize apply to fairseq models only; a transformers model runs in float32")
        from psfuture.backends.hf import load_hf
        model = load_hf(d, spec)
        why = "transformers models run in float32"
    elif backend == "ctranslate2":
        from psfuture.backends.ct2 import load_ct2
        model = load_ct2(d, spec)
    else:
        from psfuture.backends.fairseq import load_fairseq
        model = load_fairseq(d, spec.replace(dtype=dtype, quantize=quantize))
    model.info.update(device=spec.device, spec=spec.to_dict())
    if spec.dtype == "auto":
        model.info["precision_note"] = f"auto chose {model.info['precision']}: {why}"
    return model


def describe(model: ModelBackend) -> str:
    """One line for front ends: which model runs where, in which precision, and why that precision."""
    info = model.info
    note = info.get("precision_note")
    return (f"model {info.get('name', '?')} (sha256 {str(info.get('sha256', ''))[:12]}) on {info.get('device', 'cpu')}, "
            f"{info.get('precision', 'float32')}" + (f" ({note})" if note else ""))


def load_model(path: str | os.PathLike | None = None, **options) -> ModelBackend:
    """load(ModelSpec(path, **options)): the library's short form, e.g. load_model(dtype="auto")."""
    return load(ModelSpec(path=None if path is None else str(path), **options))
