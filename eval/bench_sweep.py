#!/usr/bin/env python
"""Sweep throughput: what each lever gives, per policy and for a whole grid, in one run; model FLOPs per
sentence against this CPU's matmul rate.

    python eval/bench_sweep.py                         # GNOME test[:200]: batch 1, batch 16, + bf16, + 2 processes
    python eval/bench_sweep.py --limit 0 --every 10    # every 10th sentence of the whole test set
    python eval/bench_sweep.py --dtype float32 --jobs 1   # batching alone

Each row streams the same sentences through psfuture.experiments.sweep.run(memo=True) in each setup, back to back
(machine load affects all alike): batch 1 in float32 (the old sweep), batch N, then + --dtype, then
+ --jobs processes; it checks that batch N gives batch 1's translations and delays, and N processes
one process's. FLOPs are counted by torch's FlopCounterMode on the first --flop-limit sentences.
Writes eval/results/bench_sweep_test_every20/result.{md,json}. A benchmark, not a test: numbers depend on the machine.
"""
import argparse
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def matmul_rate(threads: int, dtype: str = "float32") -> float:
    """GFLOP/s of a [256 x 512] @ [512 x 2048] matmul, the shape of a batched FFN layer."""
    import torch

    a, w = torch.randn(256, 512, dtype=getattr(torch, dtype)), torch.randn(2048, 512, dtype=getattr(torch, dtype))
    for _ in range(10):
        torch.nn.functional.linear(a, w)
    n, start = 200, time.perf_counter()
    for _ in range(n):
        torch.nn.functional.linear(a, w)
    return n * 2 * 256 * 512 * 2048 / (time.perf_counter() - start) / 1e9


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    from psfuture.backends import ModelSpec
    ModelSpec.add_args(ap)
    ap.set_defaults(dtype="bfloat16")  # --dtype is the precision lever below (float32: none)
    ap.add_argument("--src", default=ROOT / "data/corpus/test.de", type=Path)
    ap.add_argument("--ref", default=ROOT / "data/corpus/test.en", type=Path)
    ap.add_argument("--limit", type=int, default=200, help="first N sentences (0: all)")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1, help="torch threads per process")
    ap.add_argument("--jobs", type=int, default=2, help="the processes lever (1: none)")
    ap.add_argument("--every", type=int, default=1, help="every Kth sentence of the first --limit (a sample "
                                                         "with the set's lengths)")
    ap.add_argument("--flop-limit", type=int, default=20)
    ap.add_argument("--runs", default="offline,waitk,la,alignatt,psfuture,grid",
                    help="which rows to run (comma-separated; the relative-cost table needs psfuture and its peers)")
    ap.add_argument("--out", type=Path, default=ROOT / "eval/results/bench_sweep_test_every20")
    args = ap.parse_args(argv)

    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from psfuture.experiments import sweep
    from psfuture.backends import load
    from psfuture.policies import AlignAtt, LocalAgreement, Offline, PsFuture, WaitK

    torch.set_num_threads(args.threads)
    spec = ModelSpec.from_args(args)
    models = {d: load(spec.replace(dtype=d)) for d in dict.fromkeys(["float32", args.dtype])}
    model = models["float32"]
    corpus = sweep.read_corpus(args.src, args.ref, args.limit or None)
    if args.every > 1:
        corpus = sweep.Corpus(corpus.sources[::args.every], corpus.references[::args.every],
                              f"{corpus.name} every {args.every}th")
    small = sweep.read_corpus(args.src, args.ref, args.flop_limit)
    grid = [p for p in sweep.main_grid(["waitk.k=1,3,5,7", "alignatt.frames=1,2,4",
                                        "psfuture.threshold=0.05,0.1,0.2,0.5"])]
    # The levers, one after the other: each setup adds one to the one before (the first is the old sweep).
    setups = [("batch 1", "float32", 1, 1), (f"batch {args.batch}", "float32", args.batch, 1)]
    if args.dtype != "float32":
        setups.append((f"+ {args.dtype}", args.dtype, args.batch, 1))
    if args.jobs > 1:
        setups.append((f"+ {args.jobs} processes", args.dtype, args.batch, args.jobs))
    rows = []
    wanted = set(args.runs.split(","))
    for key, label, policies in [("offline", "offline (greedy)", [Offline()]), ("waitk", "wait-k k=3", [WaitK(k=3)]),
                                 ("la", "LA-2", [LocalAgreement()]), ("alignatt", "AlignAtt frames=2", [AlignAtt(frames=2)]),
                                 ("psfuture", "PsFuture (defaults)", [PsFuture()]),
                                 ("grid", f"main grid ({len(grid)} configurations)", grid)]:
        if key not in wanted:
            continue
        seconds, outs = {}, {}
        for name, dtype, batch, jobs in setups:
            m = models[dtype]
            m.clear_cache()
            start = time.perf_counter()
            outs[name] = sweep.run(m, corpus, policies, memo=True, batch=batch, jobs=jobs, progress=False)
            seconds[name] = time.perf_counter() - start

        def differing(x, y):  # runs (sentence x configuration) whose translation or delays differ
            return sum(pa != pb or da != db for a, b in zip(outs[x], outs[y])
                       for pa, pb, da, db in zip(a.predictions, b.predictions, a.delays, b.delays))
        names = [n for n, *_ in setups]
        model.clear_cache()
        with FlopCounterMode(display=False) as fc:
            sweep.run(model, small, policies, memo=True, batch=args.batch, progress=False)
        flops = fc.get_total_flops() / len(small)
        model.clear_cache()
        with FlopCounterMode(display=False) as fc:
            sweep.run(model, small, policies, memo=True, batch=1, progress=False)
        flops_1 = fc.get_total_flops() / len(small)  # batch N's excess over this is padding (and cache misses)
        fp32_batched = names[1]
        rows.append({"run": label, "configurations": len(policies), "sentences": len(corpus),
                     "seconds": seconds, "sent_per_s": {n: len(corpus) / seconds[n] for n in names},
                     "speedup_batch": seconds[names[0]] / seconds[fp32_batched],
                     "speedup_all": seconds[names[0]] / seconds[names[-1]],
                     "differ_batch": differing(names[0], fp32_batched),
                     "differ_jobs": differing(names[-2], names[-1]) if args.jobs > 1 else None,
                     "gflop_per_sentence": flops / 1e9, "gflop_per_sentence_batch1": flops_1 / 1e9,
                     "achieved_gflops_fp32": flops * len(corpus) / seconds[fp32_batched] / 1e9,
                     "bleu": {n: [r.BLEU for r in outs[n]] for n in names}})
        print(rows[-1], flush=True)
    peak = matmul_rate(args.threads)
    peak_bf16 = matmul_rate(args.threads, "bfloat16")
    by = {r["run"]: r for r in rows}
    ps = by.get("PsFuture (defaults)")
    names = [n for n, *_ in setups]
    lines = ["# Sweep throughput: what each lever gives (eval/bench_sweep.py)", "",
             f"`{shlex.join([sys.executable.split('/')[-1], 'eval/bench_sweep.py', *(argv or sys.argv[1:])])}`", "",
             f"- model: `{model.info.get('name')}` sha256 `{model.info.get('sha256')}`; corpus {corpus.name} "
             f"({len(corpus)} sentences); torch threads {args.threads} per process; memo on (psfuture.experiments.sweep.run(memo=True))",
             f"- setups, each adding one lever to the one before: " + "; ".join(
                 f"**{n}** ({d}, batch {b}, {j} process{'es' * (j > 1)})" for n, d, b, j in setups),
             f"- machine: {os.cpu_count()} CPUs, {platform.processor() or platform.machine()}, torch {torch.__version__}; "
             f"load average before/after: {LOAD[0]:.2f} / {os.getloadavg()[0]:.2f}",
             f"- matmul rate on this machine, [256x512]@[512x2048], {args.threads} thread(s): **{peak:.0f} GFLOP/s fp32, "
             f"{peak_bf16:.0f} GFLOP/s bfloat16**",
             f"- FLOPs: torch FlopCounterMode over the first {len(small)} sentences at batch {args.batch} "
             "(padding included: that is work done); \"of it padding\": the share above the same sentences' FLOPs "
             "at batch 1", "",
             "| run | configs | " + " | ".join(f"sent/s {n}" for n in names) + " | batching | all levers | "
             f"batch 1 = batch N (fp32) | 1 = N processes{f' ({names[-2]})' * (args.jobs > 1)} | GFLOP/sentence | of it padding | "
             "GFLOP/s fp32 batched | of fp32 matmul |",
             "|---|---:|" + "---:|" * len(names) + "---:|---:|:---:|:---:|---:|---:|---:|---:|"]

    def same(differ: int | None) -> str:
        return "-" if differ is None else "yes" if not differ else f"no ({differ} runs)"
    for r in rows:
        lines.append(f"| {r['run']} | {r['configurations']} | "
                     + " | ".join(f"{r['sent_per_s'][n]:.2f}" for n in names)
                     + f" | {r['speedup_batch']:.2f}x | **{r['speedup_all']:.2f}x** | "
                     f"{same(r['differ_batch'])} | {same(r['differ_jobs'])} | "
                     f"{r['gflop_per_sentence']:.1f} | {1 - r['gflop_per_sentence_batch1'] / r['gflop_per_sentence']:.0%} | "
                     f"{r['achieved_gflops_fp32']:.0f} | "
                     f"{r['achieved_gflops_fp32'] / peak:.0%} |")
    peers = [o for o in ("offline (greedy)", "AlignAtt frames=2", "LA-2") if o in by and ps]
    if peers:
        lines += ["", f"PsFuture (defaults) cost per sentence relative to the others, same sentences, {names[1]}:", "",
                  "| vs | time ratio | FLOP ratio |", "|---|---:|---:|"]
    for other in peers:
        o = by[other]
        lines.append(f"| {other} | {o['sent_per_s'][names[1]] / ps['sent_per_s'][names[1]]:.2f}x | "
                     f"{ps['gflop_per_sentence'] / o['gflop_per_sentence']:.2f}x |")
    args.out.mkdir(parents=True, exist_ok=True)  # a folder: result.{json,md}
    (args.out / "result.md").write_text("\n".join(lines) + "\n")
    (args.out / "result.json").write_text(json.dumps({"rows": rows, "matmul_gflops": peak,
                                                         "matmul_gflops_bf16": peak_bf16}, indent=1) + "\n")
    print("\n".join(lines))


LOAD = os.getloadavg()

if __name__ == "__main__":
    main()
