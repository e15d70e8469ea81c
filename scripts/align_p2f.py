#!/usr/bin/env python
"""Word-align a binarized split for P2F's aligned prefix targets (--prefix-target aligned).

    python scripts/align_p2f.py --data data/p2f-bin            # -> data/p2f-bin/train.align.npz

Runs eflomal (pip install -e '.[align]') on the split's own SentencePiece words; see psfuture/tasks/alignment.py.
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from psfuture.tasks.alignment import SYMMETRISE, align_split  # noqa: E402


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("data/p2f-bin"), help="binarized data (scripts/prepare.py)")
    ap.add_argument("--split", default="train")
    ap.add_argument("--symmetrise", choices=SYMMETRISE, default="intersect",
                    help="how the two alignment directions combine (intersect: only links both agree on)")
    args = ap.parse_args(argv)
    if not (args.data / "dict.de.txt").is_file():
        sys.exit(f"error: {args.data} holds no binarized data; make it with scripts/prepare.py")
    try:
        align_split(args.data, args.split, how=args.symmetrise)
    except (ImportError, FileNotFoundError) as e:
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    main()
