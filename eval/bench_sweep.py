#!/usr/bin/env python
"""Sweep throughput: batch 1 vs batch N, per policy and for a whole grid, in one run; model FLOPs per
sentence against this CPU's matmul rate.

    python eval/bench_sweep.py                         # GNOME test[:200], batch 16, 1 torch thread
    python eval/bench_sweep.py --limit 0 --threads 2   # the whole test set

Each row streams the same sentences through psfuture.sweep.run(memo=True) at batch 1 and at batch N
(back to back, so machine load affects both alike) and checks that both give the same translations
and delays. FLOPs are counted by torch's FlopCounterMode on the first --flop-limit sentences.
Writes eval/results/bench_sweep.{md,json}. A benchmark, not a test: numbers depend on the machine.
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


def matmul_rate(threads: int) -> float:
    """GFLOP/s of an fp32 [256 x 512] @ [512 x 2048] matmul, the shape of a batched FFN layer."""
    import torch

    a, w = torch.randn(256, 512), torch.randn(2048, 512)
    for _ in range(10):
        torch.nn.functional.linear(a, w)
    n, start = 200, time.perf_counter()
    for _ in range(n):
        torch.nn.functional.linear(a, w)
    return n * 2 * 256 * 512 * 2048 / (time.perf_counter() - start) / 1e9


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="model directory (default: the shipped model)")
    ap.add_argument("--src", default=ROOT / "data/corpus/test.de", type=Path)
    ap.add_argument("--ref", default=ROOT / "data/corpus/test.en", type=Path)
    ap.add_argument("--limit", type=int, default=200, help="first N sentences (0: all)")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--flop-limit", type=int, default=20)
    ap.add_argument("--runs", default="offline,waitk,la,alignatt,psfuture,grid",
                    help="which rows to run (comma-separated; the relative-cost table needs psfuture and its peers)")
    ap.add_argument("--out", type=Path, default=ROOT / "eval/results/bench_sweep")
    args = ap.parse_args(argv)

    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from psfuture import sweep
    from psfuture.model import load_model
    from psfuture.policies import AlignAtt, LocalAgreement, Offline, PsFuture, WaitK

    torch.set_num_threads(args.threads)
    model = load_model(args.model)
    corpus = sweep.read_corpus(args.src, args.ref, args.limit or None)
    small = sweep.read_corpus(args.src, args.ref, args.flop_limit)
    grid = [p for p in sweep.main_grid(["waitk.k=1,3,5,7", "alignatt.frames=1,2,4",
                                        "psfuture.threshold=0.05,0.1,0.2,0.5"])]
    rows = []
    wanted = set(args.runs.split(","))
    for key, label, policies in [("offline", "offline (greedy)", [Offline()]), ("waitk", "wait-k k=3", [WaitK(k=3)]),
                                 ("la", "LA-2", [LocalAgreement()]), ("alignatt", "AlignAtt frames=2", [AlignAtt(frames=2)]),
                                 ("psfuture", "PsFuture (defaults)", [PsFuture()]),
                                 ("grid", f"main grid ({len(grid)} configurations)", grid)]:
        if key not in wanted:
            continue
        seconds, outs = {}, {}
        for batch in (1, args.batch):
            model.clear_cache()
            start = time.perf_counter()
            outs[batch] = sweep.run(model, corpus, policies, memo=True, batch=batch, progress=False)
            seconds[batch] = time.perf_counter() - start
        same = all((a.predictions, a.delays) == (b.predictions, b.delays) for a, b in zip(*outs.values()))
        differ = sum(pa != pb or da != db for a, b in zip(*outs.values())
                     for pa, pb, da, db in zip(a.predictions, b.predictions, a.delays, b.delays))
        model.clear_cache()
        with FlopCounterMode(display=False) as fc:
            sweep.run(model, small, policies, memo=True, batch=args.batch, progress=False)
        flops = fc.get_total_flops() / len(small)
        rows.append({"run": label, "configurations": len(policies), "sentences": len(corpus),
                     "s_batch1": seconds[1], "s_batchN": seconds[args.batch],
                     "sent_per_s_batch1": len(corpus) / seconds[1], "sent_per_s_batchN": len(corpus) / seconds[args.batch],
                     "speedup": seconds[1] / seconds[args.batch], "identical": same, "runs_differing": differ,
                     "gflop_per_sentence": flops / 1e9,
                     "achieved_gflops_batchN": flops * len(corpus) / seconds[args.batch] / 1e9,
                     "bleu": [r.BLEU for r in outs[args.batch]]})
        print(rows[-1], flush=True)
    peak = matmul_rate(args.threads)
    by = {r["run"]: r for r in rows}
    ps = by.get("PsFuture (defaults)")
    lines = ["# Sweep throughput: batch 1 vs batch N (eval/bench_sweep.py)", "",
             f"`{shlex.join([sys.executable.split('/')[-1], 'eval/bench_sweep.py', *(argv or sys.argv[1:])])}`", "",
             f"- model: `{model.info.get('name')}` sha256 `{model.info.get('sha256')}`; corpus {corpus.name}; "
             f"batch N = {args.batch}; torch threads {args.threads}; memo on (psfuture.sweep.run(memo=True))",
             f"- machine: {os.cpu_count()} CPUs, {platform.processor() or platform.machine()}, torch {torch.__version__}; "
             f"load average before/after: {LOAD[0]:.2f} / {os.getloadavg()[0]:.2f}",
             f"- fp32 matmul rate on this machine, [256x512]@[512x2048], {args.threads} thread(s): **{peak:.0f} GFLOP/s**",
             f"- FLOPs: torch FlopCounterMode over the first {len(small)} sentences at batch N "
             "(padding included: that is work done)", "",
             "| run | configs | sent/s batch 1 | sent/s batch N | speedup | same translations+delays | "
             "GFLOP/sentence | achieved GFLOP/s (batch N) | of matmul rate |",
             "|---|---:|---:|---:|---:|:---:|---:|---:|---:|"]
    for r in rows:
        same = "yes" if r["identical"] else f"no ({r['runs_differing']} runs)"
        lines.append(f"| {r['run']} | {r['configurations']} | {r['sent_per_s_batch1']:.2f} | {r['sent_per_s_batchN']:.2f} | "
                     f"{r['speedup']:.2f}x | {same} | "
                     f"{r['gflop_per_sentence']:.1f} | {r['achieved_gflops_batchN']:.0f} | "
                     f"{r['achieved_gflops_batchN'] / peak:.0%} |")
    peers = [o for o in ("offline (greedy)", "AlignAtt frames=2", "LA-2") if o in by and ps]
    if peers:
        lines += ["", "PsFuture (defaults) cost per sentence relative to the others, same sentences, batch N:", "",
                  "| vs | time ratio | FLOP ratio |", "|---|---:|---:|"]
    for other in peers:
        o = by[other]
        lines.append(f"| {other} | {o['sent_per_s_batchN'] / ps['sent_per_s_batchN']:.2f}x | "
                     f"{ps['gflop_per_sentence'] / o['gflop_per_sentence']:.2f}x |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    args.out.with_suffix(".json").write_text(json.dumps({"rows": rows, "matmul_gflops": peak}, indent=1) + "\n")
    print("\n".join(lines))


LOAD = os.getloadavg()

if __name__ == "__main__":
    main()
