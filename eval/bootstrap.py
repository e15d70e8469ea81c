#!/usr/bin/env python
"""Paired bootstrap at equal latency for sweeps already on disk (results.json keeps every
prediction): each PsFuture curve against every other curve at AL 2/3/4 and LAAL 3/4.

    python eval/bootstrap.py eval/results/sweep_p2f_test100 --limit 100
    python eval/bootstrap.py DIR_A DIR_B --src data/corpus/valid.de --ref data/corpus/valid.en --limit 400 --out F

Several folders (sweeps of the same sentences, e.g. of different models) are compared as one sweep; a folder
swept on the whole set is re-scored on its first --limit sentences, to pair with sweeps of those.
Writes <first dir>/bootstrap.md or --out (psfuture.experiments.significance; sacrebleu's test, 1,000 resamples, seed 12345).
"""
import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sweep", type=Path, nargs="+", help="sweep output folders holding results.json")
    ap.add_argument("--out", type=Path, help="where to write the table (default: <first folder>/bootstrap.md)")
    ap.add_argument("--src", default=ROOT / "data/corpus/test.de", type=Path)
    ap.add_argument("--ref", default=ROOT / "data/corpus/test.en", type=Path)
    ap.add_argument("--limit", type=int, help="the --limit the sweeps ran with (a whole-set sweep is cut to it)")
    args = ap.parse_args(argv)

    from psfuture.experiments import report, sweep
    from psfuture.errors import PsFutureError

    results = [r for d in args.sweep for r in report.read_table(d / "results")]
    try:
        corpus = sweep.read_corpus(args.src, args.ref, args.limit)
        if any(len(r.predictions) > len(corpus) for r in results):
            # a sweep of the whole set, paired with sweeps of its first --limit sentences, in the order given
            whole = sweep.read_corpus(args.src, args.ref)
            results = [report.first([r], whole, corpus)[0] if len(r.predictions) > len(corpus) else r
                       for r in results]
        report.check_saved(results, corpus)
    except PsFutureError as e:
        sys.exit(f"error: {e}")
    curves = report.curves_of(results)
    lines = [f"# Paired bootstrap: {' + '.join(d.name for d in args.sweep)} on {corpus.name}", "",
             f"`python eval/bootstrap.py {' '.join(argv if argv is not None else sys.argv[1:])}`", "",
             *(f"- model `{m}` sha256 `{s}`" for m, s in sorted({(r.model, r.model_sha256) for r in results})),
             *report.bootstrap_lines(curves, corpus.references)]
    (args.out or args.sweep[0] / "bootstrap.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
