"""Compute precision options shared by load_model and every front end (--dtype, --quantize)."""
from __future__ import annotations

import argparse
import os

from psfuture.errors import ConfigError

DTYPES = ("auto", "float32", "bfloat16")  # compute precision of the whole network
QUANTIZE = ("none", "int8-ffn")  # int8-ffn: torch dynamic int8 on the feed-forward Linear layers only


# What --dtype defaults to on every front end: bfloat16 where native (measured on the whole GNOME test set:
# 1.47x offline, 2.47x PsFuture, BLEU +0.03 / +0.02, eval/results/bench_precision_test_full.md).
# $PSFUTURE_DTYPE overrides it; load_model's own default stays float32, the exact reference.
def front_end_dtype() -> str:
    return os.environ.get("PSFUTURE_DTYPE", "auto")


def native_bfloat16(device: str = "cpu") -> bool:
    """Does this device compute bfloat16 matmuls natively (CPU: AVX-512 BF16 or AMX via oneDNN)?
    Elsewhere bfloat16 is emulated and slower than float32."""
    import torch

    if device.startswith("cuda"):
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return device == "cpu" and torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()


def check_precision(dtype: str = "float32", quantize: str | None = None, device: str = "cpu") -> tuple[str, str]:
    """Validate --dtype/--quantize; returns them normalised (quantize None -> "none"; "auto" -> bfloat16
    where the device computes it natively and nothing is quantized, else float32)."""
    quantize = "none" if quantize is None else str(quantize).lower()
    if dtype not in DTYPES:
        raise ConfigError(f"unknown dtype {dtype!r}; use one of {', '.join(DTYPES)}")
    if quantize not in QUANTIZE:
        raise ConfigError(f"unknown quantization {quantize!r}; use one of {', '.join(QUANTIZE)}")
    if dtype == "auto":
        dtype = "bfloat16" if quantize == "none" and native_bfloat16(device) else "float32"
    if quantize != "none" and dtype != "float32":
        raise ConfigError(f"--quantize {quantize} works on float32 layers; drop it or use --dtype float32")
    return dtype, quantize


def add_precision_args(parser) -> None:
    """--dtype/--quantize on a parser or argument group. Not argparse choices: load_model checks them,
    so every front end reports a bad value the same way (a ConfigError naming the allowed ones)."""
    parser.add_argument("--dtype", default=front_end_dtype(),
                        help=f"compute precision: {', '.join(DTYPES)} (auto: bfloat16 where the CPU computes it "
                             "natively, else float32; default: $PSFUTURE_DTYPE or auto, here %(default)s)")
    parser.add_argument("--quantize", default=None,
                        help=f"quantization: {', '.join(QUANTIZE)} (default: none)")


def precision_kwargs(args: argparse.Namespace) -> dict:
    return {"dtype": args.dtype, "quantize": args.quantize}
