#!/usr/bin/env python
"""Sweep every read/write policy over a test set: BLEU vs latency tables, PsFuture ablation, plot.

    python eval/sweep.py --limit 200                      # shipped model, GNOME test set
    python eval/sweep.py --model DIR --ablation ofat --grid waitk.k=1,3,5
    python eval/sweep.py --target-al 3 --limit 200        # calibrate PsFuture's threshold on dev
    python eval/sweep.py --model checkpoints/offline --model checkpoints/p2f   # PsFuture on P2F vs offline

Writes <out>/results.{csv,json}, ablation.{csv,json}, sweep.md and bleu_latency.png
(see psfuture/experiments/sweep.py for how each number is computed). Model options (--device, --dtype, ...)
are a ModelSpec's, the same on every front end.
"""
import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def routed(models, future, grid):
    from psfuture.errors import ConfigError
    from psfuture.backends.wrappers import TwoModels

    psfuture = [p for p in grid if p.name == "psfuture"]
    tails = psfuture[0].future_tails(future.vocab)
    wrapped = [TwoModels(m, future, tails) for m in models]
    if any(p.future_tails(future.vocab) != tails for p in psfuture):
        raise ConfigError("--future-model: every PsFuture configuration must ask the same pseudo-futures "
                          "(placeholder, k, futures, future_eos); sweep those one at a time")
    return wrapped


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    from psfuture.backends.base import ModelSpec
    ModelSpec.add_args(ap, path_flag=None)
    ap.add_argument("--model", action="append", default=[],
                    help="model directory (default: $PSFUTURE_MODEL or checkpoints/offline); repeat it to compare "
                         "models in one table and plot: the first runs --policies, the others --other-policies")
    ap.add_argument("--future-model", help="answer PsFuture's pseudo-future pass with this model and every other "
                                           "query with --model (psfuture.backends.wrappers.TwoModels); the PsFuture "
                                           "configurations must ask the same pseudo-futures")
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
    ap.add_argument("--other-grid", action="append", metavar="POLICY.SETTING=V1,V2",
                    help="the grid overrides of the second and later --model (default: the --grid ones)")
    ap.add_argument("--ablation", choices=("none", "ofat", "full", "rule"), default="ofat",
                    help="PsFuture ablation on the first model: one factor at a time, the full cross product, "
                         "the decision-rule options one at a time (rule), or none")
    ap.add_argument("--ablation-points", type=int, default=4, help="thresholds per ablation variant")
    ap.add_argument("--thresholds", "--ablation-thresholds", dest="thresholds", action="append", default=[],
                    metavar="DIVERGENCE=T1,T2",
                    help="PsFuture's thresholds for one divergence, in the main grid (unless --grid "
                         "psfuture.threshold= sets them) and the ablation (instead of --ablation-points spread "
                         "over its range), e.g. cos=0.01,0.03,0.08,0.2")
    ap.add_argument("--target-al", type=float, help="only calibrate: PsFuture threshold for this dev-set AL")
    ap.add_argument("--cost-limit", type=int, default=30,
                    help="sentences re-run without shared model answers to measure seconds and model calls")
    ap.add_argument("--batch", type=int, default=16,
                    help="sentences streamed together, all policies at once, in shared model calls (1: one at a time; "
                         "same results up to float rounding in near-ties)")
    ap.add_argument("--jobs", type=int, default=1,
                    help="processes (one torch thread each) that share the batches out; up to one per core "
                         "(same results; the cost columns still run alone, first)")
    ap.add_argument("--rate", type=float, default=2.5,
                    help="source words/s for the computation-aware AL in ms of the cost columns")
    ap.add_argument("--max-len-a", type=float, default=2.0, help="target cap: a * source pieces + b")
    ap.add_argument("--max-len-b", type=int, default=10)
    ap.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)

    import torch

    from psfuture.errors import ConfigError, PsFutureError
    from psfuture.backends import load
    from psfuture.policies import PsFuture
    from psfuture.experiments import chunks, report, sweep

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        spec = ModelSpec.from_args(args, path=None)
        models = [load(spec.replace(path=m)) for m in args.model or [None]]
        if args.future_model:
            models = routed(models, load(spec.replace(path=args.future_model, src_lang=None, tgt_lang=None)),
                            sweep.main_grid(args.grid))
        names = [m.info["name"] for m in models]
        if len(set(names)) < len(names):
            raise ConfigError(f"two models share a name ({', '.join(names)}); the tables tell models apart by "
                              "the name in model.json")
        model = models[0]
        out = args.out or ROOT / "eval" / "sweep_results" / "_vs_".join(names)
        out.mkdir(parents=True, exist_ok=True)
        progress = not args.no_progress
        # Each finished batch is kept under <out>/chunks until the tables are written: the same command
        # started again after a kill resumes there (psfuture.experiments.chunks).
        cap = {"max_len_a": args.max_len_a, "max_len_b": args.max_len_b, "resume": out / "chunks"}
        if args.target_al is not None:
            variants = [p for p in sweep.parse_grid(args.grid, [PsFuture()]) if p.name == "psfuture"]
            base = variants[0] if variants else PsFuture()
            given = sorted({p.threshold for p in variants}) if any(
                s.startswith("psfuture.threshold=") for s in args.grid) else None  # --grid psfuture.threshold= wins
            dev = sweep.read_corpus(args.dev_src, args.dev_ref, args.limit)
            cal = sweep.calibrate(model, dev, base, progress=progress, batch=args.batch, jobs=args.jobs,
                                  thresholds=given or sweep.parse_thresholds(args.thresholds).get(base.divergence),
                                  **cap)
            cal.save(out / "calibration.json")
            chunks.clear(out / "chunks")
            points = ", ".join(f"{t:g}->AL {a:.2f}" for a, t in sorted(cal.points))
            try:
                found = f"threshold {cal.threshold('psfuture', args.target_al):.4g} for AL {args.target_al}"
            except ConfigError as e:  # the calibration is still worth saving: other target ALs fit it
                found = f"warning: {e}"
            print(f"{found} on {dev.name} ({points}); saved {out / 'calibration.json'} (copy it into the model "
                  "directory to serve target_al)")
            return
        corpus = sweep.read_corpus(args.src, args.ref, args.limit)
        thresholds = sweep.parse_thresholds(args.thresholds)
        results = []
        for i, m in enumerate(models):
            wanted = set((args.other_policies if i else args.policies).split(","))
            specs = args.grid if not i or args.other_grid is None else args.other_grid
            policies = [p for p in sweep.main_grid(specs, thresholds) if p.name in wanted]
            results += sweep.run(m, corpus, policies, memo=True, cost_limit=args.cost_limit, batch=args.batch,
                                 jobs=args.jobs, rate=args.rate, progress=progress, desc=m.info["name"], **cap)
        report.write_table(out / "results", results)
        ablation = []
        if args.ablation != "none":
            grid = sweep.ablation_grid(args.ablation, args.ablation_points,
                                       thresholds)
            ablation = sweep.run(model, corpus, grid, memo=True, batch=args.batch, jobs=args.jobs, progress=progress,
                                 desc="ablation", **cap)
            report.write_table(out / "ablation", ablation)
        (out / "sweep.md").write_text(report.markdown(results, ablation, models, corpus))
        report.plot(out / "bleu_latency.png", results, f"{' vs '.join(names)} on {corpus.name}")
        chunks.clear(out / "chunks")
    except PsFutureError as e:
        sys.exit(f"error: {e}")
    print((out / "sweep.md").read_text())
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
