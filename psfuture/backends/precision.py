"""Compute precision and device: what --dtype/--quantize/--device may be, and what "auto" picks here."""
from __future__ import annotations

import logging
import os

from psfuture.errors import ConfigError

log = logging.getLogger("psfuture")

DTYPES = ("auto", "float32", "bfloat16")  # compute precision of the whole network
QUANTIZE = ("none", "int8-ffn")  # int8-ffn: torch dynamic int8 on the feed-forward Linear layers only


# What --dtype defaults to on every front end: bfloat16 where native (measured on the whole GNOME test set:
# 1.47x offline, 2.47x PsFuture, BLEU +0.03 / +0.02, eval/results/bench_precision_test_full/).
# $PSFUTURE_DTYPE overrides it; the library's own default stays float32, the exact reference.
def front_end_dtype() -> str:
    return os.environ.get("PSFUTURE_DTYPE", "auto")


def native_bfloat16(device: str = "cpu") -> bool:
    """Does this device compute bfloat16 matmuls natively (CPU: AVX-512 BF16 or AMX via oneDNN)?
    Elsewhere bfloat16 is emulated and slower than float32."""
    import torch

    if device.startswith("cuda"):
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return device == "cpu" and torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()


def check_device(device: str) -> None:
    """ConfigError when a CUDA device is asked for and this torch or machine has none."""
    if not device.startswith("cuda"):
        return
    import torch

    if not torch.cuda.is_available():
        build = "a CPU-only build" if torch.version.cuda is None else f"built for CUDA {torch.version.cuda}"
        raise ConfigError(f"--device {device}: CUDA is not available here (torch {torch.__version__}, {build}, "
                          "sees no GPU); use --device cpu, or install a CUDA build of torch on a machine with a GPU")
    index = int(device.split(":")[1]) if ":" in device else 0
    if index >= torch.cuda.device_count():
        raise ConfigError(f"--device {device}: this machine has {torch.cuda.device_count()} GPU(s) "
                          f"(cuda:0 .. cuda:{torch.cuda.device_count() - 1})")


def resolve_precision(dtype: str = "float32", quantize: str | None = None,
                      device: str = "cpu") -> tuple[str, str, str]:
    """(dtype, quantize, why): "auto" resolved for this device, checked; `why` says why that dtype."""
    quantize = "none" if quantize is None else str(quantize).lower()
    if dtype not in DTYPES:
        raise ConfigError(f"unknown dtype {dtype!r}; use one of {', '.join(DTYPES)}")
    if quantize not in QUANTIZE:
        raise ConfigError(f"unknown quantization {quantize!r}; use one of {', '.join(QUANTIZE)}")
    if quantize != "none" and device != "cpu":
        raise ConfigError(f"--quantize {quantize} runs on the CPU only")
    native = native_bfloat16(device)
    where = "this CPU" if device == "cpu" else device
    if dtype == "auto":
        if quantize != "none":
            dtype, why = "float32", f"--quantize {quantize} works on float32 layers"
        elif native:
            dtype, why = "bfloat16", f"{where} computes bfloat16 natively"
        else:
            dtype, why = "float32", f"{where} has no native bfloat16"
    else:
        why = "asked for"
    if quantize != "none" and dtype != "float32":
        raise ConfigError(f"--quantize {quantize} works on float32 layers; drop it or use --dtype float32")
    if dtype == "bfloat16" and not native:
        log.warning("bfloat16 on %s is emulated (no native bfloat16): slower than float32 (1.65x measured on an "
                    "AVX2-only CPU); use --dtype auto or float32", where)
    return dtype, quantize, why


def check_precision(dtype: str = "float32", quantize: str | None = None, device: str = "cpu") -> tuple[str, str]:
    """Validate dtype/quantize; returns them normalised ("auto" resolved for the device)."""
    return resolve_precision(dtype, quantize, device)[:2]
