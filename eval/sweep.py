#!/usr/bin/env python
"""Sweep every read/write policy over a test set: BLEU vs latency tables, PsFuture ablation, plot.

    python eval/sweep.py --limit 200                      # shipped model, GNOME test set
    python eval/sweep.py --model DIR --ablation ofat --grid waitk.k=1,3,5
    python eval/sweep.py --target-al 3 --limit 200        # calibrate PsFuture's threshold on dev
    python eval/sweep.py --model checkpoints/offline --model checkpoints/p2f   # PsFuture on P2F vs offline

Writes <out>/results.{csv,json}, ablation.{csv,json}, sweep.md and bleu_latency.png
(see psfuture/sweep.py for how each number is computed).
"""
import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", action="append", default=[],
                    help="model directory (default: $PSFUTURE_MODEL or checkpoints/offline); repeat it to compare "
                         "models in one table and plot: the first runs --policies, the others --other-policies")
    ap.add_argument("--src", default=ROOT / "data/corpus/test.de", type=Path)
    ap.add_argument("--ref", default=ROOT / "data/corpus/test.en", type=Path)
    ap.add_argument("--dev-src", default=ROOT / "data/corpus/valid.de", type=Path)
    ap.add_argument("--dev-ref", default=ROOT / "data/corpus/valid.en", type=Path)
    ap.add_argument("--limit", type=int, help="first N sentences only (200 takes minutes on 2 cores)")
    ap.add_argument("--out", type=Path, help="output folder (default: eval/sweep_results/<model name>)")
    ap.add_argument("--policies", default="offline,waitk,la,alignatt,psfuture",
                    help="comma-separated policies of the main table")
    ap.add_argument("--other-policies", default="offline,psfuture",
                    help="policies run on the second and later --model (default: offline,psfuture)")
    ap.add_argument("--grid", action="append", default=[], metavar="POLICY.SETTING=V1,V2",
                    help="override a grid, e.g. psfuture.threshold=0.1,0.3 or psfuture.divergence=js")
    ap.add_argument("--ablation", choices=("none", "ofat", "full"), default="ofat",
                    help="PsFuture ablation on the first model: one factor at a time, the full cross product, or none")
    ap.add_argument("--ablation-points", type=int, default=4, help="thresholds per ablation variant")
    ap.add_argument("--target-al", type=float, help="only calibrate: PsFuture threshold for this dev-set AL")
    ap.add_argument("--cost-limit", type=int, default=30,
                    help="sentences re-run without shared model answers to measure seconds and model calls")
    ap.add_argument("--max-len-a", type=float, default=2.0, help="target cap: a * source pieces + b")
    ap.add_argument("--max-len-b", type=int, default=10)
    ap.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    ap.add_argument("--no-progress", action="store_true")
    from psfuture.precision import add_precision_args, precision_kwargs
    add_precision_args(ap)
    args = ap.parse_args(argv)

    import torch

    from psfuture.errors import ConfigError, PsFutureError
    from psfuture.model import load_model
    from psfuture.policies import PsFuture
    from psfuture import sweep

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        models = [load_model(m, **precision_kwargs(args)) for m in args.model or [None]]
        names = [m.info["name"] for m in models]
        if len(set(names)) < len(names):
            raise ConfigError(f"two models share a name ({', '.join(names)}); the tables tell models apart by "
                              "the name in model.json")
        model = models[0]
        out = args.out or ROOT / "eval" / "sweep_results" / "_vs_".join(names)
        out.mkdir(parents=True, exist_ok=True)
        progress = not args.no_progress
        cap = {"max_len_a": args.max_len_a, "max_len_b": args.max_len_b}
        if args.target_al is not None:
            base = next((p for p in sweep.parse_grid(args.grid, [PsFuture()]) if p.name == "psfuture"), PsFuture())
            dev = sweep.read_corpus(args.dev_src, args.dev_ref, args.limit)
            cal = sweep.calibrate(model, dev, base, progress=progress, **cap)
            cal.save(out / "calibration.json")
            threshold = cal.threshold("psfuture", args.target_al)
            print(f"threshold {threshold:.4g} for AL {args.target_al} on {dev.name} "
                  f"({', '.join(f'{t:g}->AL {a:.2f}' for a, t in sorted(cal.points))}); "
                  f"saved {out / 'calibration.json'} (copy it into the model directory to serve target_al)")
            return
        corpus = sweep.read_corpus(args.src, args.ref, args.limit)
        results = []
        for i, m in enumerate(models):
            wanted = set((args.other_policies if i else args.policies).split(","))
            policies = [p for p in sweep.main_grid(args.grid) if p.name in wanted]
            results += sweep.run(m, corpus, policies, memo=True, cost_limit=args.cost_limit, progress=progress,
                                 desc=m.info["name"], **cap)
        sweep.write_table(out / "results", results)
        ablation = []
        if args.ablation != "none":
            ablation = sweep.run(model, corpus, sweep.ablation_grid(args.ablation, args.ablation_points),
                                 memo=True, progress=progress, desc="ablation", **cap)
            sweep.write_table(out / "ablation", ablation)
        (out / "sweep.md").write_text(sweep.markdown(results, ablation, models, corpus))
        sweep.plot(out / "bleu_latency.png", results, f"{' vs '.join(names)} on {corpus.name}")
    except PsFutureError as e:
        sys.exit(f"error: {e}")
    print((out / "sweep.md").read_text())
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
