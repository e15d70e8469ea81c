#!/usr/bin/env python
"""Does a batched sweep give batch 1's translations and delays? Re-runs chosen configurations of a sweep
already on disk one sentence at a time and compares, sentence by sentence.

    python eval/batch_equality.py eval/results/sweep_test_full --jobs 2 \
        --pick offline --pick waitk.k=3 --pick la --pick alignatt.frames=2 --pick psfuture.threshold=0.1

The model, precision and sentences must be the sweep's (--model/--dtype/--src/--ref/--limit); the
precision is checked against the one results.json records. Writes <dir>/batch_equality.md.
"""
import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def picked(result, pick: str) -> bool:
    name, _, setting = pick.partition(".")
    key, _, value = setting.partition("=")
    return result.policy == name and (not setting or str(result.settings.get(key)) == value)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sweep", type=Path, help="a sweep output folder holding results.json")
    ap.add_argument("--pick", action="append", default=[], metavar="POLICY[.SETTING=V]",
                    help="configurations to re-run (first match each; default: the first of every policy)")
    ap.add_argument("--src", default=ROOT / "data/corpus/test.de", type=Path)
    ap.add_argument("--ref", default=ROOT / "data/corpus/test.en", type=Path)
    ap.add_argument("--limit", type=int, help="the --limit the sweep ran with")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--max-len-a", type=float, default=2.0)
    ap.add_argument("--max-len-b", type=int, default=10)
    from psfuture.backends.base import ModelSpec
    ModelSpec.add_args(ap)  # the sweep's model and precision
    args = ap.parse_args(argv)

    import torch

    from psfuture.experiments import report, sweep
    from psfuture.errors import PsFutureError
    from psfuture.backends import load
    from psfuture.policies import POLICIES

    torch.set_num_threads(1)
    model = load(ModelSpec.from_args(args))
    results = [r for r in report.read_table(args.sweep / "results") if r.model in ("", model.info["name"])]
    wanted = args.pick or list(dict.fromkeys(r.policy for r in results))
    chosen = [next((r for r in results if picked(r, p)), None) for p in wanted]
    if None in chosen:
        sys.exit(f"error: no configuration of {args.sweep} matches {wanted[chosen.index(None)]!r}")
    try:
        corpus = sweep.read_corpus(args.src, args.ref, args.limit)
        report.check_saved(chosen, corpus, model)
    except PsFutureError as e:
        sys.exit(f"error: {e}")
    policies = [POLICIES[r.policy](**r.settings) for r in chosen]
    one = sweep.run(model, corpus, policies, memo=True, batch=1, jobs=args.jobs, desc="batch 1",
                    max_len_a=args.max_len_a, max_len_b=args.max_len_b)
    command = "python eval/batch_equality.py " + " ".join(argv if argv is not None else sys.argv[1:])
    lines = [f"# Batch N against batch 1: {args.sweep.name} on {corpus.name}", "", f"`{command}`", "",
             f"- model `{model.info['name']}` sha256 `{model.info['sha256']}`, {model.info['precision']}; "
             f"{len(corpus)} sentences; batch 1 run here, batch N read from `{args.sweep}/results.json`", "",
             "| configuration | sentences differing | BLEU batch N | BLEU batch 1 | AL batch N | AL batch 1 | "
             "first differing sentences |", "|---|---:|---:|---:|---:|---:|---|"]
    for r, o in zip(chosen, one):
        diff = [i for i, (pa, pb, da, db) in enumerate(zip(r.predictions, o.predictions, r.delays, o.delays))
                if pa != pb or list(da) != list(db)]
        lines.append(f"| {o.signature} | {len(diff)} | {r.BLEU:.2f} | {o.BLEU:.2f} | {r.AL:.2f} | {o.AL:.2f} | "
                     f"{', '.join(map(str, diff[:8])) or '-'} |")
    (args.sweep / "batch_equality.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
