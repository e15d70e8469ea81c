"""Streaming benchmark: latency of the websocket server under concurrent live streams.

Starts `psfuture serve` in a subprocess (the server gets its own process, as in production) and drives
N simulated speakers against it, each sending German word by word at --wps words/s, sentence after
sentence, for --seconds. For each English word it measures the time from the arrival of the German
word that released it (the word whose reading let the policy write it; for words written once the
sentence ended, the "end" message) to its arrival at the client: p50/p95/max per concurrency level,
and the server's CPU time per source word (all its processes and threads).
A level "keeps up" when p95 stays below one word interval (1/wps): beyond that the server falls behind.

Each server setup is a --workers / --threads pair (the lists are zipped); by default one process with
2 torch threads against `--workers 2` with 1 thread each, side by side:

    python eval/bench_stream.py                       # shipped model, 1..32 streams, both setups
    python eval/bench_stream.py --model DIR --levels 1 4 16 --seconds 20 --workers 1 --threads 1

Writes eval/results/bench_stream_test500/result.{json,md}. A benchmark, not a test: numbers depend on the machine.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import random
import re
import shlex
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from websockets.asyncio.client import connect


ROOT = Path(__file__).resolve().parents[1]


def sentences(path: Path, limit: int = 500) -> list[str]:
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    lines = [line for line in lines if 3 <= len(line.split()) <= 40]
    if not lines:
        sys.exit(f"{path}: no sentences of 3-40 words; pass --source FILE with German, one sentence per line")
    return lines[:limit]


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]  # nearest rank


async def speaker(url: str, texts: list[str], wps: float, until: float, start_delay: float, out: dict) -> None:
    """One live stream: sentences word by word at `wps`, latencies of every English word into `out`."""
    await asyncio.sleep(start_delay)
    async with connect(url, max_size=2 ** 22) as ws:
        hello = json.loads(await ws.recv())
        out.setdefault("hello", hello)
        n = 0
        while time.perf_counter() < until:
            text = texts[n % len(texts)]
            n += 1
            sent: list[float] = []
            end_at = [float("inf")]
            done = asyncio.Event()

            async def receive():
                while True:
                    m = json.loads(await ws.recv())
                    now = time.perf_counter()
                    if m["type"] == "target":
                        for delay in m["delays"]:
                            trigger = sent[delay - 1]
                            if delay == len(text.split()) and now > end_at[0]:
                                trigger = max(trigger, end_at[0])  # written after the end: released by it
                            out["latency_ms"].append((now - trigger) * 1000)
                        out["words_out"] += len(m["words"])
                    elif m["type"] == "ready":
                        out.setdefault("policy", m["policy"])
                    elif m["type"] == "done":
                        out["sentences"] += 1
                        out["al"].append(m["al"])
                        done.set()
                        return
                    elif m["type"] == "error":
                        out["errors"].append(m["code"])
                        done.set()
                        return

            await ws.send(json.dumps({"type": "start"}))
            receiver = asyncio.create_task(receive())
            tick = time.perf_counter()
            for word in text.split():
                tick += 1 / wps
                sent.append(time.perf_counter())  # before sending: the reply may come before send() returns
                await ws.send(json.dumps({"type": "source", "text": word + " "}))
                out["words_in"] += 1
                await asyncio.sleep(max(0.0, tick - time.perf_counter()))
            end_at[0] = time.perf_counter()
            await ws.send(json.dumps({"type": "end"}))
            await receiver


def process_tree(pid: int) -> list[int]:
    """`pid` and all its live descendants (Linux): with --workers the model runs in child processes."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                todo += [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                pass
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU time so far of a process and its live descendants (Linux): what the server
    spent, whatever else runs. Workers must stay alive through a level (a restarted one would reset)."""
    total = 0.0
    for p in process_tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # exited meanwhile
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


async def level(url: str, texts: list[str], streams: int, wps: float, seconds: float, seed: int,
                server_pid: int) -> dict:
    rng = random.Random(seed)
    cpu0 = cpu_seconds(server_pid)
    out = {"latency_ms": [], "al": [], "errors": [], "words_in": 0, "words_out": 0, "sentences": 0}
    until = time.perf_counter() + seconds
    began = time.perf_counter()
    await asyncio.gather(*[
        speaker(url, rng.sample(texts, min(len(texts), 50)), wps, until, rng.uniform(0, 1 / wps), out)
        for _ in range(streams)])
    lat = out["latency_ms"]
    p95 = percentile(lat, 95)
    return {
        "streams": streams, "wps": wps, "seconds": round(time.perf_counter() - began, 1),
        "source_words": out["words_in"], "target_words": out["words_out"], "sentences": out["sentences"],
        "p50_ms": _r(percentile(lat, 50)), "p95_ms": _r(p95), "max_ms": _r(max(lat) if lat else None),
        "mean_al": _r(statistics.mean([a for a in out["al"] if a is not None]) if out["al"] else None),
        "errors": len(out["errors"]), "keeps_up": p95 is not None and p95 < 1000 / wps and not out["errors"],
        "server_cpu_ms_per_word": _r((cpu_seconds(server_pid) - cpu0) * 1000 / max(1, out["words_in"])),
        "_hello": out.get("hello"), "_policy": out.get("policy"),
    }


def _r(x):
    return None if x is None else round(x, 1)


def start_server(args, workers: int, threads: int, dtype: str) -> tuple[subprocess.Popen, int]:
    cmd = [sys.executable, "-m", "psfuture.cli", "serve", "--port", "0", "--max-streams", "1000",
           "--max-connections", "1000", "--policy", args.policy, "--batch" if args.batch else "--no-batch",
           "--workers", str(workers), "--threads", str(threads)]
    if args.model:
        cmd += ["--model", str(args.model)]
    if args.threshold is not None:
        cmd += ["--threshold", str(args.threshold)]
    cmd += ["--dtype", dtype, "--device", args.device] + (["--quantize", args.quantize] if args.quantize else [])
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    for line in proc.stderr:
        found = re.search(r"serving on http://[^:]+:(\d+)/", line)
        if found:  # keep draining its stderr, or a chatty server would block on a full pipe
            threading.Thread(target=lambda: [sys.stderr.write(x) for x in proc.stderr], daemon=True).start()
            return proc, int(found.group(1))
        sys.stderr.write(line)
    sys.exit(f"the server did not start (exit code {proc.wait()})")


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    import torch
    return {"cpus": os.cpu_count(), "cpu": cpu, "python": platform.python_version(), "torch": torch.__version__}


def _label(setup: dict) -> str:
    return (f"{setup['workers']} process{'es' if setup['workers'] > 1 else ''} x {setup['threads']} "
            f"thread{'s' if setup['threads'] > 1 else ''}, {setup.get('dtype', 'float32')}")


def _ratio(b, a):
    return "" if a in (None, 0) or b is None else f"{b / a:.2f}"


def markdown(result: dict) -> str:
    s, c = result["signature"], result["config"]
    out = ["# Streaming benchmark (eval/bench_stream.py)", ""]
    if c.get("note"):
        out += [f"**{c['note']}**", ""]
    out += [
        "Latency from the arrival of the German word that released an English word (or of the sentence's "
        "`end`, for words written after it) to that English word's arrival at the client, over a websocket on "
        f"loopback; each stream speaks {c['wps']} words/s, sentence after sentence, for {c['seconds']:g} s a level. "
        "\"keeps up\": p95 below one word interval. Server CPU: the CPU time of all the server's processes "
        "and threads per source word, which other load on the machine does not inflate the way it does latency.",
        "", f"Command: `{c['command']}`", ""]
    for setup in result["setups"]:
        out += [f"## {_label(setup)} (`psfuture serve --workers {setup['workers']} --threads {setup['threads']} "
                f"--dtype {setup.get('dtype', 'float32')}`)", "",
                "| streams | words/s each | p50 ms | p95 ms | max ms | source words | target words | mean AL | "
                "server CPU ms/word | keeps up |", "|---:|---:|---:|---:|---:|---:|---:|---:|---:|:---:|"]
        for r in setup["levels"]:
            out.append(f"| {r['streams']} | {r['wps']} | {r['p50_ms']} | {r['p95_ms']} | {r['max_ms']} | "
                       f"{r['source_words']} | {r['target_words']} | {r['mean_al']} | {r['server_cpu_ms_per_word']} | "
                       f"{'yes' if r['keeps_up'] else 'NO'} |")
        out += ["", f"Most concurrent streams that keep up: **{setup['max_streams_keeping_up']}**.", ""]
    a = result["setups"][0]
    for b in result["setups"][1:]:  # every setup against the first
        la, lb = _label(a), _label(b)
        out += [f"## Side by side: {lb} / {la}", "",
                f"| streams | p95 ms, {la} | p95 ms, {lb} | p95 ratio | CPU ms/word, {la} | CPU ms/word, {lb} | CPU ratio |",
                "|---:|---:|---:|---:|---:|---:|---:|"]
        for ra, rb in zip(a["levels"], b["levels"]):
            out.append(f"| {ra['streams']} | {ra['p95_ms']} | {rb['p95_ms']} | {_ratio(rb['p95_ms'], ra['p95_ms'])} | "
                       f"{ra['server_cpu_ms_per_word']} | {rb['server_cpu_ms_per_word']} | "
                       f"{_ratio(rb['server_cpu_ms_per_word'], ra['server_cpu_ms_per_word'])} |")
        out.append("")
    goal = [f"{_label(x)}: p95 {r['p95_ms']} ms" for x in result["setups"] for r in x["levels"] if r["streams"] == 16]
    if goal:
        out += [f"Goal (issue 9): 16 streams with p95 <= 100 ms (stretch: 50 ms). At 16 streams: {'; '.join(goal)}.", ""]
    out += [f"Serves the most streams: **{_label(result['best'])}**.", "",
            f"- model: `{json.dumps(s['model'])}`",
            f"- policy: `{s['policy']}`; batched model steps: {c['batch']}",
            f"- source: `{c['source']}` ({c['sentences']} sentences)",
            f"- machine: {json.dumps(s['machine'])}",
            f"- date: {s['date']}", ""]
    return "\n".join(out)


def run_setup(args, texts: list[str], workers: int, threads: int, dtype: str) -> tuple[dict, dict, str | None]:
    proc, port = start_server(args, workers, threads, dtype)
    url = f"ws://127.0.0.1:{port}/ws"
    levels = []
    try:
        if args.warmup > 0:  # first calls pay for allocations and caches; not what a running server sees
            asyncio.run(level(url, texts, max(1, workers), args.wps, args.warmup, args.seed, proc.pid))
        for n in args.levels:
            r = asyncio.run(level(url, texts, n, args.wps, args.seconds, args.seed + n, proc.pid))
            levels.append(r)
            print(f"{workers}x{threads} {dtype} {n:4d} streams  p50 {r['p50_ms']} ms  p95 {r['p95_ms']} ms  max {r['max_ms']} ms  "
                  f"{r['target_words']} words out  server CPU {r['server_cpu_ms_per_word']} ms/word  "
                  f"{'keeps up' if r['keeps_up'] else 'FALLS BEHIND'}", flush=True)
    finally:
        proc.terminate()
        proc.wait(60)
    hello = next((r["_hello"] for r in levels if r["_hello"]), {}) or {}
    policy = next((r["_policy"] for r in levels if r["_policy"]), None)
    for r in levels:
        del r["_hello"], r["_policy"]
    keeping = []  # levels up to the first that falls behind
    for r in sorted(levels, key=lambda r: r["streams"]):
        if not r["keeps_up"]:
            break
        keeping.append(r["streams"])
    setup = {"workers": workers, "threads": threads, "dtype": dtype, "levels": levels,
             "max_streams_keeping_up": max(keeping) if keeping else 0}
    return setup, hello, policy


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path, default=None, help="model directory (default: the shipped model)")
    p.add_argument("--policy", default="psfuture")
    p.add_argument("--threshold", type=float, default=None)
    p.add_argument("--source", type=Path, default=None,
                   help="German sentences, one a line (default: data/corpus/test.de, else the test fixture)")
    p.add_argument("--levels", type=int, nargs="+", default=[1, 4, 8, 16, 32])
    p.add_argument("--wps", type=float, default=2.5, help="words per second per stream (default: %(default)s)")
    p.add_argument("--seconds", type=float, default=20.0, help="per level (default: %(default)s)")
    p.add_argument("--warmup", type=float, default=5.0, help="seconds of untimed streams first (default: %(default)s)")
    p.add_argument("--batch", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2],
                   help="server processes of each setup, zipped with --threads (default: %(default)s)")
    p.add_argument("--threads", type=int, nargs="+", default=[2, 1],
                   help="torch threads per process of each setup (default: %(default)s)")
    p.add_argument("--note", default="", help="a label printed atop the table, e.g. 'under load: ...'")
    p.add_argument("--out", type=Path, default=ROOT / "eval" / "results" / "bench_stream_test500")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--dtype", nargs="+", default=["float32"],
                   help="compute precision of each setup, zipped with --workers/--threads (default: %(default)s)")
    p.add_argument("--quantize", default=None, help="quantization, every setup (default: none)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N, every setup (default: %(default)s)")
    args = p.parse_args()
    lists = (args.workers, args.threads, args.dtype)
    n = max(map(len, lists))
    if any(len(x) not in (1, n) for x in lists):
        p.error("give --workers, --threads and --dtype the same number of values (or one)")
    setups = list(zip(*(x * n if len(x) == 1 else x for x in lists)))
    source = args.source or next(f for f in (ROOT / "data/corpus/test.de", ROOT / "tests/fixtures/tiny.de")
                                 if f.exists())
    texts = sentences(source)
    load_before = os.getloadavg()[0]  # other jobs on the machine slow the server down: say how busy it was
    results, hello, policy = [], {}, None
    for workers, threads, dtype in setups:
        setup, h, pol = run_setup(args, texts, workers, threads, dtype)
        results.append(setup)
        hello, policy = hello or h, policy or pol
    best = max(results, key=lambda x: (x["max_streams_keeping_up"],
                                       -(x["levels"][-1]["p95_ms"] or float("inf")) if x["levels"] else 0))
    argv = [str(Path(a).relative_to(ROOT)) if a.startswith(str(ROOT)) else a for a in sys.argv]
    result = {
        "signature": {"model": hello.get("model"), "policy": policy,
                      "machine": {**machine(), "load_avg_1m_before": round(load_before, 2),
                                  "load_avg_1m_after": round(os.getloadavg()[0], 2)},
                      "date": time.strftime("%Y-%m-%d %H:%M:%S %z")},
        "config": {"wps": args.wps, "seconds": args.seconds, "batch": args.batch, "levels": args.levels,
                   "setups": [{"workers": w, "threads": t, "dtype": d} for w, t, d in setups], "note": args.note,
                   "quantize": args.quantize or "none",
                   "command": shlex.join(["python", *argv]),
                   "source": str(source.relative_to(ROOT) if source.is_relative_to(ROOT) else source),
                   "sentences": len(texts), "seed": args.seed},
        "setups": results,
        "best": {k: best[k] for k in ("workers", "threads", "dtype", "max_streams_keeping_up")},
    }
    args.out.mkdir(parents=True, exist_ok=True)  # a folder: result.{json,md}
    (args.out / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "result.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
