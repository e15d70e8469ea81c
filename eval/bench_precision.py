#!/usr/bin/env python
"""BLEU and speed of each compute precision, side by side: offline greedy and PsFuture (default settings).

    python eval/bench_precision.py --threads 1                      # whole GNOME test set, both parts
    python eval/bench_precision.py --threads 1 --psfuture-limit 200 # PsFuture on the first 200 (a sample)

Offline: the same sorted-by-length batches for every precision, in an order that rotates every
batch, so load from other jobs hits all alike. PsFuture: psfuture.experiments.sweep.run (batched when sweep.run
takes `batch`). A precision earns the default only if it is clearly faster and loses <= 0.2 BLEU on both.
Writes eval/results/bench_precision_test400/result.{json,md}.
"""
import argparse
import inspect
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PRECISIONS = ("float32", "bfloat16", "float32+int8-ffn")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    from psfuture.backends import ModelSpec
    ModelSpec.add_args(ap)  # --dtype/--quantize are ignored: --precisions lists the ones compared
    ap.add_argument("--src", type=Path, default=ROOT / "data/corpus/test.de")
    ap.add_argument("--ref", type=Path, default=ROOT / "data/corpus/test.en")
    ap.add_argument("--precisions", nargs="+", default=list(PRECISIONS), help="DTYPE or DTYPE+QUANTIZE")
    ap.add_argument("--limit", type=int, help="offline part: first N sentences only (a sample)")
    ap.add_argument("--psfuture-limit", type=int, help="PsFuture part: first N sentences only (a sample); 0 skips it")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--batch", type=int, default=16, help="sweep.run's batch, if it takes one (default: %(default)s)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=1, help="sweep.run's processes for the PsFuture part")
    ap.add_argument("--out", type=Path, default=ROOT / "eval/results/bench_precision_test400")
    args = ap.parse_args(argv)

    import torch
    from tqdm import tqdm

    from psfuture.experiments import significance, sweep
    from psfuture.errors import PsFutureError
    from psfuture.backends import load
    from psfuture.policies import PsFuture

    torch.set_num_threads(args.threads)
    try:
        spec = ModelSpec.from_args(args)
        models = {p: load(spec.replace(dtype=p.split("+")[0], quantize=(p.split("+") + ["none"])[1]))
                  for p in args.precisions}
    except PsFutureError as e:
        sys.exit(f"error: {e}")
    base = next(iter(models.values()))
    corpus = sweep.read_corpus(args.src, args.ref, args.limit)
    order = sorted(range(len(corpus)), key=lambda i: len(base.encode(corpus.sources[i])))
    batches = [order[i:i + args.batch_size] for i in range(0, len(order), args.batch_size)]
    names = list(models)
    hyps = {p: [""] * len(corpus) for p in names}
    seconds = dict.fromkeys(names, 0.0)
    load = [os.getloadavg()[0]]
    for m in models.values():
        m.translate(corpus.sources[:2], beam=1)  # first-call allocations
    for b, idx in enumerate(tqdm(batches, desc="offline greedy", unit="batch")):
        for p in names[b % len(names):] + names[:b % len(names)]:
            t0 = time.perf_counter()
            out = models[p].translate([corpus.sources[i] for i in idx], beam=1, batch_size=len(idx))
            seconds[p] += time.perf_counter() - t0
            for i, h in zip(idx, out):
                hyps[p][i] = h
    rows = {}
    for p in names:
        score, signature = sweep.bleu(hyps[p], corpus.references)
        rows[p] = {"precision": p, "offline_bleu": round(score, 2), "offline_s_per_sentence": seconds[p] / len(corpus),
                   "offline_identical": sum(a == b for a, b in zip(hyps[p], hyps[names[0]])), "sacrebleu": signature}
        print(json.dumps(rows[p]), flush=True)
    load.append(os.getloadavg()[0])
    ps_corpus, ps_hyps = None, {}
    if args.psfuture_limit != 0:
        ps_corpus = sweep.read_corpus(args.src, args.ref, args.psfuture_limit)
        extra = {"batch": args.batch} if "batch" in inspect.signature(sweep.run).parameters else {}
        extra.update({"jobs": args.jobs} if args.jobs > 1 else {})
        for p in names:
            models[p].clear_cache()
            t0 = time.perf_counter()
            (r,) = sweep.run(models[p], ps_corpus, [PsFuture()], desc=f"psfuture {p}", **extra)
            ps_hyps[p] = r.predictions
            rows[p].update(psfuture_bleu=round(r.BLEU, 2), psfuture_al=round(r.AL, 2),
                           psfuture_s_per_sentence=(time.perf_counter() - t0) / len(ps_corpus),
                           policy=r.signature, psfuture_batch=extra.get("batch"))
            print(json.dumps(rows[p]), flush=True)
        load.append(os.getloadavg()[0])
    command = "python eval/bench_precision.py " + " ".join(argv if argv is not None else sys.argv[1:])
    ref = rows[names[0]]
    for r in rows.values():
        r["offline_speedup"] = round(ref["offline_s_per_sentence"] / r["offline_s_per_sentence"], 2)
        if "psfuture_s_per_sentence" in r:
            r["psfuture_speedup"] = round(ref["psfuture_s_per_sentence"] / r["psfuture_s_per_sentence"], 2)
    result = {"model": base.info["name"], "model_sha256": base.info["sha256"], "test_set": str(args.src),
              "offline_sentences": len(corpus), "psfuture_sentences": len(ps_corpus) if ps_corpus else 0,
              "threads": args.threads, "torch": torch.__version__,
              "hardware": f"{platform.machine()}, {os.cpu_count()} CPU cores",
              "load_average_1min": [round(x, 2) for x in load], "command": command, "results": list(rows.values())}
    args.out.mkdir(parents=True, exist_ok=True)  # a folder: result.{json,md}

    def label(n, full):
        return f"all {n}" if n == full else f"first {n} (a sample)"
    full = len(Path(args.src).read_text(encoding="utf-8").splitlines())
    lines = [f"# Compute precision: BLEU and speed ({base.info['name']})", "",
             f"Model sha256 `{base.info['sha256']}`; `{args.src.name}`: offline greedy on "
             f"{label(len(corpus), full)} sentences, PsFuture (default settings) on "
             f"{label(result['psfuture_sentences'], full) if ps_corpus else 'none'}; {args.threads} thread(s); "
             f"torch {torch.__version__}; {result['hardware']}; 1-min load average {result['load_average_1min']} "
             "(above ~1 the machine was shared: trust the ratios more than the seconds).", "",
             f"Command: `{command}`", "",
             "| precision | greedy BLEU | greedy s/sent | speed | identical | PsFuture BLEU | AL | s/sent | speed |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows.values():
        ps = (f"{r['psfuture_bleu']:.2f} | {r['psfuture_al']:.2f} | {r['psfuture_s_per_sentence']:.3f} | "
              f"{r['psfuture_speedup']}x" if "psfuture_bleu" in r else "- | - | - | -")
        lines.append(f"| {r['precision']} | {r['offline_bleu']:.2f} | {r['offline_s_per_sentence']:.3f} | "
                     f"{r['offline_speedup']}x | {r['offline_identical']}/{len(corpus)} | {ps} |")
    lines += ["", f"sacrebleu `{ref['sacrebleu']}`" + (f"; policy `{ref['policy']}`" if "policy" in ref else "") + ".",
              "", "Offline batches rotate through the precisions; the PsFuture runs go one precision after the "
              "other, so on a shared machine their speed column also measures how the load changed "
              "(see the load averages: before, after offline, after PsFuture)."]
    lines += ["", "Paired bootstrap against " + names[0] + " (sacrebleu's test, 1,000 resamples; PsFuture at the "
              "same settings, so also read its AL column):", "",
              "| precision | part | delta BLEU | 95% interval | p |", "| --- | --- | ---: | --- | ---: |"]
    for part, hyp, refs in (("offline greedy", hyps, corpus.references),
                            ("PsFuture", ps_hyps, ps_corpus.references if ps_corpus else [])):
        for p in names[1:]:
            if p in hyp:
                (c,) = significance.compare_curves({p: [(0.0, hyp[p])], names[0]: [(0.0, hyp[names[0]])]},
                                                   [(p, names[0])], refs, "same settings", 0.0)
                result.setdefault("bootstrap", []).append({"precision": p, "part": part, "delta": round(c.delta, 2),
                                                           "ci": [round(x, 2) for x in c.ci], "p": round(c.p, 4)})
                lines.append(f"| {p} | {part} | {c.delta:+.2f} | [{c.ci[0]:+.2f}, {c.ci[1]:+.2f}] | {c.p:.3f} |")
    (args.out / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "result.md").write_text("\n".join(lines) + "\n")
    print((args.out / "result.md").read_text())


if __name__ == "__main__":
    main()
