"""Live-event fan-out: one speaker, 1 / 50 / 200 listeners on loopback. How much later than the speaker does a listener
get each message, and how much server CPU does a listener message cost?

The server is `psfuture serve` in its own process on the tests' tiny model (built once into build/bench_engine_tiny/,
as eval/bench_engine.py does; waitk k=2, float32, one torch thread): a model this small keeps the translation cheap, so
the figures are the fan-out's. The speaker (this process) opens a room and sends German at --wps words/s; the listeners
are minimal websocket clients in one child process (no websockets library and no JSON on their side, so little of
their own time enters the figures). Every arrival is stamped with CLOCK_MONOTONIC, the same clock in both processes:
a listener's extra delay for a message = its arrival there - its arrival at the speaker. Server CPU is the server
process's user+system time (/proc) over the speaking; per listener message = (CPU with N listeners - CPU with none)
/ (N x messages).

    python eval/bench_fanout.py                       # levels 0 1 50 200, 150 words at 10 words/s each
    python eval/bench_fanout.py --levels 0 1 50 200 --words 150 --wps 10

Writes eval/results/bench_fanout_loopback/result.{json,md} and COMMAND.md. A benchmark, not a test.
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import re
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOISE_S = 0.1
sys.path.insert(0, str(ROOT / "eval"))


# --- the listeners' side: a child process of raw websocket clients --------------------------------------------

def _frame(opcode: int, payload: bytes) -> bytes:
    """A masked client frame (payloads under 126 bytes are all this sends)."""
    mask = os.urandom(4)
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


class RawListener(asyncio.Protocol):
    def __init__(self, port: int, room: str, ready: asyncio.Future, done: asyncio.Future):
        self.port, self.room, self.ready, self.done = port, room, ready, done
        self.buf, self.upgraded, self.texts = b"", False, 0
        self.times: list[float] = []  # arrivals of the room's messages after the catch-up

    def connection_made(self, transport):
        self.transport = transport
        key = base64.b64encode(os.urandom(16)).decode()
        transport.write(f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nUpgrade: websocket\r\n"
                        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        self.buf += data
        if not self.upgraded:
            head, sep, rest = self.buf.partition(b"\r\n\r\n")
            if not sep:
                return
            assert b" 101 " in head.split(b"\r\n")[0], head
            self.upgraded, self.buf = True, rest
            self.transport.write(_frame(1, json.dumps({"type": "listen", "room": self.room}).encode()))
        while len(self.buf) >= 2:
            n, off = self.buf[1] & 0x7F, 2
            if n == 126:
                n, off = int.from_bytes(self.buf[2:4], "big"), 4
            elif n == 127:
                n, off = int.from_bytes(self.buf[2:10], "big"), 10
            if len(self.buf) < off + n:
                return
            opcode, payload, self.buf = self.buf[0] & 0x0F, self.buf[off:off + n], self.buf[off + n:]
            if opcode == 9:  # the server's keep-alive ping
                self.transport.write(_frame(10, payload))
            elif opcode == 1:
                self.texts += 1
                if self.texts > 3:  # hello, listening, the catch-up's ready
                    self.times.append(now)
                elif self.texts == 3 and not self.ready.done():
                    self.ready.set_result(None)
                if payload.startswith(b'{"type": "done"') and not self.done.done():
                    self.done.set_result(None)
            elif opcode == 8 and not self.done.done():
                self.done.set_exception(RuntimeError(f"closed by the server: {payload[:2].hex()} {payload[2:]!r}"))


async def _listeners(port: int, room: str, n: int, timeout: float) -> list[list[float]]:
    loop = asyncio.get_running_loop()
    clients = []
    for _ in range(n):
        ready, done = loop.create_future(), loop.create_future()
        _, proto = await loop.create_connection(lambda: RawListener(port, room, ready, done), "127.0.0.1", port)
        clients.append(proto)
    await asyncio.wait_for(asyncio.gather(*[c.ready for c in clients]), timeout)
    print("ready", flush=True)
    await asyncio.wait_for(asyncio.gather(*[c.done for c in clients]), timeout)
    return [c.times for c in clients]


# --- the speaker's side ----------------------------------------------------------------------------------------

def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


async def _level(port: int, server_pid: int, n: int, words: list[str], wps: float, room: str) -> dict:
    from websockets.asyncio.client import connect
    async with connect(f"ws://127.0.0.1:{port}/ws", max_size=None) as ws:
        await ws.recv()
        await ws.send(json.dumps({"type": "start", "room": room}))
        assert json.loads(await ws.recv())["type"] == "ready"
        child = None
        if n:
            child = subprocess.Popen([sys.executable, __file__, "--child", str(port), room, str(n)],
                                     stdout=subprocess.PIPE, text=True)
            assert child.stdout.readline().strip() == "ready", "the listeners did not connect"
        times: list[float] = []

        async def read():
            while True:
                message = json.loads(await ws.recv())
                times.append(time.monotonic())
                if message["type"] in ("done", "error"):
                    return message

        reader = asyncio.create_task(read())
        cpu0, t0 = _cpu_s(server_pid), time.monotonic()
        for word in words:
            await ws.send(json.dumps({"type": "source", "text": word + " "}))
            await asyncio.sleep(1 / wps)
        await ws.send(json.dumps({"type": "end"}))
        done = await reader
        assert done["type"] == "done", done
        heard = json.loads(child.communicate(timeout=300)[0]) if child else []
        cpu, wall = _cpu_s(server_pid) - cpu0, time.monotonic() - t0
    extra = sorted((t - s) * 1000 for got in heard for t, s in zip(got, times))
    assert all(len(got) == len(times) for got in heard), "a listener missed messages"
    q = lambda p: round(extra[min(len(extra) - 1, int(p * len(extra)))], 2) if extra else None  # noqa: E731
    return {"listeners": n, "messages": len(times), "listener_messages": n * len(times),
            "extra_ms_p50": q(0.50), "extra_ms_p95": q(0.95), "extra_ms_max": round(extra[-1], 2) if extra else None,
            "extra_ms_mean": round(statistics.fmean(extra), 2) if extra else None,
            "server_cpu_s": round(cpu, 3), "wall_s": round(wall, 2)}


def _start_server(model: Path) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen([sys.executable, "-m", "psfuture.cli", "serve", "--port", "0", "--model", str(model),
                             "--dtype", "float32", "--policy", "waitk", "--set", "k=2", "--threads", "1",
                             "--max-connections", "1000"], stderr=subprocess.PIPE, text=True, cwd=ROOT)
    line = ""
    while "serving on" not in line:
        line = proc.stderr.readline()
        if not line and proc.poll() is not None:
            raise SystemExit("the server exited before serving")
    return proc, int(re.search(r":(\d+)/ ", line).group(1))


def main(argv=None) -> None:
    if argv is None and sys.argv[1:2] == ["--child"]:
        port, room, n = sys.argv[2], sys.argv[3], sys.argv[4]
        print(json.dumps(asyncio.run(_listeners(int(port), room, int(n), 600))), flush=True)
        return
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--levels", type=int, nargs="+", default=[0, 1, 50, 200], help="listener counts (0: CPU baseline)")
    p.add_argument("--words", type=int, default=150, help="German words the speaker sends per level")
    p.add_argument("--wps", type=float, default=10.0, help="the speaker's words per second")
    p.add_argument("--out", type=Path, default=ROOT / "eval" / "results" / "bench_fanout_loopback")
    args = p.parse_args(argv)
    from bench_engine import tiny_model
    model = tiny_model(ROOT / "build" / "bench_engine_tiny")
    text = (ROOT / "tests" / "fixtures" / "tiny.de").read_text(encoding="utf-8").split()
    words = (text * (1 + args.words // len(text)))[:args.words]
    load_before = os.getloadavg()
    server, port = _start_server(model)
    try:
        rows = [asyncio.run(_level(port, server.pid, n, words, args.wps, f"bench{i}"))
                for i, n in enumerate(args.levels)]
    finally:
        server.terminate()
        server.wait(30)
    load_after = os.getloadavg()
    base = next((r["server_cpu_s"] for r in rows if r["listeners"] == 0), None)
    for r in rows:  # under NOISE_S more than the baseline, the difference is run-to-run noise of the model's own CPU
        extra_cpu = None if base is None or not r["listeners"] else r["server_cpu_s"] - base
        r["cpu_us_per_listener_message"] = (round(extra_cpu / r["listener_messages"] * 1e6, 1)
                                            if extra_cpu is not None and extra_cpu >= NOISE_S else None)
    from psfuture.experiments.report import cpu_facts

    env = {**cpu_facts(), "cores": os.cpu_count(),
           "loadavg_1_5_15_before": [round(x, 2) for x in load_before],
           "loadavg_1_5_15_after": [round(x, 2) for x in load_after],
           "python": sys.version.split()[0], "model": "tiny-test-model (tests' tiny model), waitk k=2, float32, 1 thread",
           "words": args.words, "wps": args.wps}
    header = ("| listeners | messages each | listener extra delay p50 / p95 / max (ms) | server CPU (s) "
              "| server CPU per listener message (µs) |\n|---|---|---|---|---|\n")
    table = header + "".join(
        f"| {r['listeners']} | {r['messages']} | "
        + (f"{r['extra_ms_p50']} / {r['extra_ms_p95']} / {r['extra_ms_max']}" if r["listeners"] else "– (speaker only)")
        + f" | {r['server_cpu_s']} | {r['cpu_us_per_listener_message'] or ('– (within the noise)' if r['listeners'] else '– (baseline)')} |\n"
        for r in rows)
    setup = (f"CPU {env['cpu']}, {env['cores']} cores, shared with other jobs: load average (1, 5, 15 min) "
             f"{env['loadavg_1_5_15_before']} before, {env['loadavg_1_5_15_after']} after. Server: `psfuture serve` on "
             f"the tests' tiny model (waitk k=2, float32, 1 torch thread), so the translation is cheap and the figures "
             f"are the fan-out's; speaker: {args.words} German words at {args.wps:g} words/s per level, one room per "
             "level, listeners joined before the first word. Extra delay: a listener's arrival time of each message "
             "minus the speaker's (CLOCK_MONOTONIC in both processes; the listeners are raw websocket clients in one "
             "child process; below 0 when the listeners' process read a message before the speaker's). CPU per "
             "listener message: (server CPU with N listeners - with none) / (N x messages); "
             f"/proc CPU times tick at 10 ms, and an extra under {NOISE_S} s is not told apart from the noise.")
    print(table + "\n" + setup)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "result.json").write_text(json.dumps({"env": env, "rows": rows}, indent=2) + "\n")
    (args.out / "result.md").write_text(f"# Live-event fan-out on loopback\n\n{table}\n{setup}\n")
    command = "python eval/bench_fanout.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    (args.out / "COMMAND.md").write_text(f"# How this folder was made\n\n```bash\n{command.strip()}\n```\n\n{setup}\n")


if __name__ == "__main__":
    main()
