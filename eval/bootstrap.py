#!/usr/bin/env python
"""Paired bootstrap at equal latency for a sweep already on disk (its results.json keeps every
prediction): each PsFuture curve against every other curve at AL 2/3/4 and LAAL 3/4.

    python eval/bootstrap.py eval/results/sweep_p2f --limit 100

Writes <dir>/bootstrap.md (psfuture.significance; sacrebleu's test, 1,000 resamples, seed 12345).
"""
import argparse
import dataclasses
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sweep", type=Path, help="a sweep output folder holding results.json")
    ap.add_argument("--src", default=ROOT / "data/corpus/test.de", type=Path)
    ap.add_argument("--ref", default=ROOT / "data/corpus/test.en", type=Path)
    ap.add_argument("--limit", type=int, help="the --limit the sweep ran with")
    args = ap.parse_args(argv)

    from psfuture import report, sweep

    rows = json.loads((args.sweep / "results.json").read_text())
    fields = {f.name for f in dataclasses.fields(sweep.Result)}
    results = [sweep.Result(**{k: v for k, v in r.items() if k in fields}) for r in rows]
    corpus = sweep.read_corpus(args.src, args.ref, args.limit)
    if any(len(r.predictions) != len(corpus) for r in results):
        sys.exit(f"error: {args.sweep} holds {len(results[0].predictions)} predictions per run but {corpus.name} has "
                 f"{len(corpus)} sentences; pass the sweep's --src/--ref/--limit")
    curves = report.curves_of(results)
    lines = [f"# Paired bootstrap: {args.sweep.name} on {corpus.name}", "",
             f"`python eval/bootstrap.py {' '.join(argv if argv is not None else sys.argv[1:])}`", "",
             *(f"- model `{m}` sha256 `{s}`" for m, s in sorted({(r.model, r.model_sha256) for r in results})),
             *report.bootstrap_lines(curves, corpus.references)]
    (args.sweep / "bootstrap.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
