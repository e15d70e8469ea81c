"""What the `psfuture` commands share below `psfuture.cli` (which parses the command line and picks one):
the error a user can fix, and the model with its checked settings."""
from __future__ import annotations

import logging
import sys

from psfuture.backends.base import ModelSpec
from psfuture.serve.messages import StreamSettings


class CliError(Exception):
    """A problem the user can fix; printed without a traceback."""


def _settings(args) -> StreamSettings:
    options = dict(args.set)
    if args.threshold is not None:
        options["threshold"] = args.threshold
    rules = set(args.cut.split(","))
    segment = {"cut_punctuation": "punctuation" in rules, "cut_model": "model" in rules,
               "max_segment_words": args.max_segment_words, "model_eos": args.model_eos}
    return StreamSettings(args.policy, tuple(sorted(options.items())), args.target_al, tuple(sorted(segment.items())))


def _load(args):
    """The model, and the settings checked against the engine before anything starts. Says on stderr which
    model runs where and in which precision (and why, when --dtype auto chose it)."""
    from .backends import load
    from .errors import PsFutureError
    from .serve.engine import build_policy, build_segmenter
    try:
        spec = ModelSpec.from_args(args)
        model = load(spec)
        settings = _settings(args)
        build_policy(settings, _calibration(model))
        build_segmenter(settings)
    except PsFutureError as e:
        raise CliError(str(e)) from None
    logging.getLogger().setLevel(args.log_level)  # importing fairseq resets the root logger
    return spec, model, settings


def _say_model(model) -> None:
    from .backends import describe
    print(f"psfuture: {describe(model)}", file=sys.stderr, flush=True)


def _calibration(model):
    """The model's threshold calibration (calibration.json beside it, from eval/sweep), for --target-al."""
    from .calibration import load_calibration
    return load_calibration(model)
