"""How much of a serving round is psfuture's own Python rather than the model, at 16/64/256 streams.

On a GPU the network is nearly free, so the Python per stream-step decides how many streams a card carries (goal:
256 streams at 2.5 words/s with p95 <= 200 ms, i.e. a round of 256 stream-steps well under 400 ms). This runs the
tests' TINY model on the CPU (float32, 1 torch thread), each stream reading tests/fixtures/tiny.de one word per
round under default PsFuture, through the serving path (worker: Engine + ModelWorker(batch=True, threads=1),
submit(Open/Push/Finish), no sockets) and one level lower (sessions: push(run=False) + run_batched). Per round:
wall; model = inside model.next_token, of which forward = the network's encoder/decoder/output projection; engine
Python = round - model; adapter Python = model - forward; gc pauses. --profile: cProfile of the largest level.

    python eval/bench_engine.py --profile          # builds the tiny model into build/bench_engine_tiny/ once
    python eval/bench_engine.py --model DIR --levels 16 64 256 --rounds 20

Writes eval/results/bench_engine_tiny/result.{json,md} and COMMAND.md. A benchmark, not a test.
"""
from __future__ import annotations

import argparse
import cProfile
import gc
import json
import math
import os
import pstats
import shlex
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
LIBRARY = (f"{os.sep}torch{os.sep}", f"{os.sep}fairseq{os.sep}")  # the network's own code, left out of the profile


def tiny_model(build: Path) -> Path:
    """The tests' tiny model (tests/conftest.py: same corpus split, vocabulary, preset and name), built once."""
    model = build / "model"
    if (model / "checkpoint.pt").is_file():
        return model
    corpus = build / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    for lang in ("de", "en"):
        lines = (FIXTURES / f"tiny.{lang}").read_text(encoding="utf-8").splitlines(keepends=True)
        (corpus / f"train.{lang}").write_text("".join(lines), encoding="utf-8")
        for split in ("valid", "test"):
            (corpus / f"{split}.{lang}").write_text("".join(lines[:50]), encoding="utf-8")
    for name, *args in (("prepare.py", "--corpus", corpus, "--out", build / "bin", "--vocab-size", 1000),
                        ("train.py", "--data", build / "bin", "--work", build / "work", "--preset", "tiny",
                         "--out", model, "--name", "tiny-test-model")):
        subprocess.run([sys.executable, str(ROOT / "scripts" / name), *map(str, args)], check=True,
                       stdout=subprocess.DEVNULL)
    shutil.rmtree(build / "work", ignore_errors=True)
    return model


class Meter:
    """Running totals: time in model.next_token and its calls, the network's forward (fairseq), gc pauses."""

    def __init__(self, model):
        self.next_token = self.forward = self.gc = self.gc_max = 0.0
        self.calls, self._start, inner = 0, [], model.next_token

        def next_token(queries):
            start = time.perf_counter()
            try:
                return inner(queries)
            finally:
                self.next_token, self.calls = self.next_token + time.perf_counter() - start, self.calls + 1
        model.next_token = next_token  # Session and run_batched look it up on the instance
        net = getattr(model, "net", None)
        for module in () if net is None else (net.encoder, net.decoder, net.decoder.output_projection):
            module.register_forward_pre_hook(lambda *_: self._start.append(time.perf_counter()))
            module.register_forward_hook(lambda *_: setattr(self, "forward", self.forward + time.perf_counter()
                                                            - self._start.pop()))
        gc.callbacks.append(self._gc)

    def _gc(self, phase, info):
        if phase == "start":
            self._gc_start = time.perf_counter()
        else:
            pause = time.perf_counter() - self._gc_start
            self.gc, self.gc_max = self.gc + pause, max(self.gc_max, pause)

    def timed(self, fn, rows: list, n: int):
        """fn(arg), appending (wall, next_token, forward, next_token calls, gc, stream-steps) of each call to rows."""
        def wrapped(arg):
            before = (time.perf_counter(), self.next_token, self.forward, self.calls, self.gc)
            try:
                return fn(arg)
            finally:
                after = (time.perf_counter(), self.next_token, self.forward, self.calls, self.gc)
                rows.append(tuple(a - b for a, b in zip(after, before)) + (len(arg) if isinstance(arg, list) else n,))
        return wrapped


def worker_rounds(model, meter, words, rounds, profiler=None) -> list:
    """len(words) streams through a ModelWorker: an Open round, `rounds` one-word Push rounds, a Finish round."""
    from psfuture.serve.engine import Engine, ModelWorker
    from psfuture.serve.protocol import Failed, Finish, Open, Push, StreamSettings

    worker, rows, done, failed = ModelWorker(Engine(model), batch=True, threads=1), [], threading.Semaphore(0), []
    inner = worker._round

    def round_(items):
        if profiler:
            profiler.enable()  # here, in the worker thread: cProfile follows the thread that enables it
        try:
            inner(items)
        finally:
            if profiler:
                profiler.disable()
    worker._round = meter.timed(round_, rows, len(words))

    def deliver(outcomes):
        failed.extend(o for o in outcomes if isinstance(o, Failed))
        done.release()
    for make in ([lambda i: Open(i, StreamSettings())] + [lambda i, r=r: Push(i, (words[i][r],)) for r in range(rounds)]
                 + [lambda i: Finish(i)]):
        with worker._cond:  # every stream's item queued before the worker wakes: one round of N stream-steps
            for i in range(len(words)):
                worker.submit(i, make(i), deliver)
        for _ in words:
            done.acquire()
    worker.stop()
    if failed or any(r[5] != len(words) for r in rows):
        sys.exit(f"bad run: {failed[:3]}; round sizes {[r[5] for r in rows]}")
    return rows[1:]  # the push rounds, then the finish round


def session_rounds(model, meter, words, rounds) -> list:
    from psfuture.policies import PsFuture
    from psfuture.session import Session, run_batched

    sessions, rows = [Session(model, PsFuture()) for _ in words], []

    def round_(r):
        for s, w in zip(sessions, words):
            s.push([w[r]], run=False) if r < rounds else s.finish(run=False)
        run_batched(model, sessions)
        for s in sessions:
            s.pop()
    step = meter.timed(round_, rows, len(words))
    for r in range(rounds + 1):
        step(r)
    return rows


def summarize(path: str, n: int, rows: list, gc_max: float) -> dict:
    push, fin = rows[:-1], rows[-1]
    wall, model, fwd, calls, gcs = (statistics.fmean(r[k] for r in push) for k in range(5))
    walls = sorted(r[0] for r in push)
    ms = lambda x: round(x * 1000, 2)  # noqa: E731
    return {"path": path, "streams": n, "rounds": len(push), "round_ms": ms(wall),
            "round_p50_ms": ms(walls[len(walls) // 2]), "round_p95_ms": ms(walls[math.ceil(0.95 * len(walls)) - 1]),
            "model_ms": ms(model), "forward_ms": ms(fwd), "engine_python_ms": ms(wall - model),
            "engine_us_per_step": round((wall - model) * 1e6 / n, 1),
            "engine_fraction": round((wall - model) / wall, 3),
            "adapter_python_ms": ms(model - fwd), "python_us_per_step": round((wall - fwd) * 1e6 / n, 1),
            "model_calls_per_round": round(calls, 2), "gc_ms": ms(gcs), "gc_max_pause_ms": ms(gc_max),
            "finish_round_ms": ms(fin[0])}


def profile_top(profiler, k: int) -> tuple[list, float, float]:
    """Top k functions by own time outside torch/fairseq (a builtin's time counts with its caller's side)."""
    ours, lib = {}, 0.0
    for func, (_, nc, tt, _, callers) in pstats.Stats(profiler).stats.items():
        if func[0] != "~":
            mine_tt, mine_nc = (0.0, 0) if any(s in func[0] for s in LIBRARY) else (tt, nc)
        else:
            mine = [v for c, v in callers.items() if not any(s in c[0] for s in LIBRARY)]
            mine_tt, mine_nc = sum(v[2] for v in mine), sum(v[1] for v in mine)
        lib += tt - mine_tt
        if mine_tt:
            ours[func] = (mine_tt, mine_nc)
    name = lambda f: f[2] if f[0] == "~" else f"{Path(f[0]).name}:{f[1]}({f[2]})"  # noqa: E731
    top = sorted(ours.items(), key=lambda kv: -kv[1][0])[:k]
    return ([{"function": name(f), "tottime_ms": round(tt * 1000, 1), "calls": nc} for f, (tt, nc) in top],
            sum(tt for tt, _ in ours.values()), lib)


COLUMNS = [("path", "path"), ("streams", "streams"), ("round_ms", "ms/round"), ("round_p95_ms", "p95 ms/round"),
           ("model_ms", "model ms (next_token)"), ("forward_ms", "of which forward ms"),
           ("engine_python_ms", "engine Python ms"), ("engine_us_per_step", "engine µs/stream-step"),
           ("engine_fraction", "engine fraction"), ("adapter_python_ms", "adapter Python ms"),
           ("python_us_per_step", "all Python µs/step (round - forward)"),
           ("model_calls_per_round", "next_token calls/round"),
           ("gc_ms", "gc ms/round"), ("gc_max_pause_ms", "max gc pause ms"), ("finish_round_ms", "finish round ms")]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, help="a psfuture model dir (default: build the tests' tiny model)")
    ap.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: %(default)s)")
    ap.add_argument("--levels", type=int, nargs="+", default=[16, 64, 256], help="concurrent streams")
    ap.add_argument("--rounds", type=int, default=20, help="one-word rounds per level: sources grow 1..R words")
    ap.add_argument("--profile", action="store_true", help="cProfile the worker path at the largest level")
    ap.add_argument("--out", type=Path, default=ROOT / "eval" / "results" / "bench_engine_tiny")
    args = ap.parse_args(argv)
    import torch
    from psfuture.backends import ModelSpec, load

    torch.set_num_threads(1)
    model_dir = args.model or tiny_model(ROOT / "build" / "bench_engine_tiny")
    model = load(ModelSpec(str(model_dir), device=args.device, dtype="float32"))
    model.reserve(max(args.levels))  # as the server does for its max_streams
    meter = Meter(model)
    lines = [s.split() for s in (FIXTURES / "tiny.de").read_text(encoding="utf-8").splitlines() if s.strip()]
    streams = [[w for line in (lines * 2)[i * 7 % len(lines):] for w in line][:args.rounds]
               for i in range(max(args.levels))]  # stream i: the text from line 7i on, one word per round
    load_before = os.getloadavg()[0]
    worker_rounds(model, meter, streams[:8], min(4, args.rounds))  # warm-up: first calls allocate and pick kernels
    results = []
    for n in args.levels:
        for path, run in (("worker", worker_rounds), ("sessions", session_rounds)):
            model.clear_cache()
            meter.gc_max = 0.0
            results.append(summarize(path, n, run(model, meter, streams[:n], args.rounds), meter.gc_max))
            print(json.dumps(results[-1]), flush=True)
    top, ours_s, lib_s = None, 0.0, 0.0
    if args.profile:
        model.clear_cache()
        profiler = cProfile.Profile()
        gc.freeze()  # else a generation-2 pause lands on whichever function runs (the gc columns report them)
        worker_rounds(model, meter, streams[:max(args.levels)], args.rounds, profiler)
        gc.unfreeze()
        top, ours_s, lib_s = profile_top(profiler, 15)
    lscpu = dict(line.split(":", 1) for line in subprocess.run(["lscpu"], capture_output=True, text=True)
                 .stdout.splitlines() if ":" in line)
    env = {"cpu": lscpu.get("Model name", "?").strip(), "avx512_bf16": "avx512_bf16" in lscpu.get("Flags", ""),
           "cores": os.cpu_count(), "load_1min_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
           "torch": torch.__version__, "torch_threads": torch.get_num_threads(), "python": sys.version.split()[0]}
    info = {k: model.info.get(k) for k in ("name", "sha256", "precision", "device", "path")}
    command = "python eval/bench_engine.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    setup = (f"Model `{info['name']}` sha256 `{info['sha256']}`, {info['precision']} on {info['device']}; CPU "
             f"{env['cpu']} (avx512_bf16: {env['avx512_bf16']}), {env['cores']} cores, 1-min load average "
             f"{env['load_1min_before_after']} (before, after); torch {env['torch']}, {env['torch_threads']} thread; "
             f"Python {env['python']}. Means over {args.rounds} one-word rounds per level, PsFuture defaults.")
    md = ["# Engine overhead per serving round, tiny model", "", f"Command: `{command}`", "", setup, "",
          "| " + " | ".join(h for _, h in COLUMNS) + " |", "| --- |" + " ---: |" * (len(COLUMNS) - 1)]
    md += ["| " + " | ".join(str(r[k]) for k, _ in COLUMNS) + " |" for r in results]
    if top:
        md += ["", f"cProfile, worker path, {max(args.levels)} streams, gc frozen: own time outside torch/fairseq "
               f"{ours_s * 1000:.0f} ms, inside {lib_s * 1000:.0f} ms (profiler overhead included). Top 15:", "",
               "| function | tottime ms | calls |", "| --- | ---: | ---: |"]
        md += [f"| `{t['function']}` | {t['tottime_ms']} | {t['calls']} |" for t in top]
    text = "\n".join(md) + "\n"
    print("\n" + text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "result.md").write_text(text, encoding="utf-8")
    (args.out / "result.json").write_text(json.dumps({"command": command, "model": info, "env": env, "levels": results,
                                                      "profile": {"ours_s": ours_s, "library_s": lib_s, "top": top}},
                                                     indent=1) + "\n", encoding="utf-8")
    (args.out / "COMMAND.md").write_text(f"# How this folder was made\n\n```bash\n{command}\n```\n\n{setup}\n",
                                         encoding="utf-8")


if __name__ == "__main__":
    main()
