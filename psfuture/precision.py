"""Compute precision options shared by load_model and every front end (--dtype, --quantize)."""
from __future__ import annotations

import argparse

from psfuture.errors import ConfigError

DTYPES = ("float32", "bfloat16")  # compute precision of the whole network
QUANTIZE = ("none", "int8-ffn")  # int8-ffn: torch dynamic int8 on the feed-forward Linear layers only


def check_precision(dtype: str = "float32", quantize: str | None = None) -> tuple[str, str]:
    """Validate --dtype/--quantize; returns them normalised (quantize None -> "none")."""
    quantize = "none" if quantize is None else str(quantize).lower()
    if dtype not in DTYPES:
        raise ConfigError(f"unknown dtype {dtype!r}; use one of {', '.join(DTYPES)}")
    if quantize not in QUANTIZE:
        raise ConfigError(f"unknown quantization {quantize!r}; use one of {', '.join(QUANTIZE)}")
    if quantize != "none" and dtype != "float32":
        raise ConfigError(f"--quantize {quantize} works on float32 layers; drop it or use --dtype float32")
    return dtype, quantize


def add_precision_args(parser) -> None:
    """--dtype/--quantize on a parser or argument group. Not argparse choices: load_model checks them,
    so every front end reports a bad value the same way (a ConfigError naming the allowed ones)."""
    parser.add_argument("--dtype", default="float32",
                        help=f"compute precision: {', '.join(DTYPES)} (default: %(default)s)")
    parser.add_argument("--quantize", default=None,
                        help=f"quantization: {', '.join(QUANTIZE)} (default: none)")


def precision_kwargs(args: argparse.Namespace) -> dict:
    return {"dtype": args.dtype, "quantize": args.quantize}
