"""The server under load, with the tiny model: hostile clients beside live streams, and memory over many sessions."""
import asyncio
import json
import random
import re
import time
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from psfuture.model import load_model
from psfuture.serve.protocol import Limits
from psfuture.serve.server import StreamServer
from test_cli import start_serve
from serve.test_server import offline

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "tiny.de"
SENTENCES = [line for line in FIXTURE.read_text(encoding="utf-8").splitlines() if 4 <= len(line.split()) <= 14][:16]
POLICIES = [{}, {"policy": "waitk", "k": 2}, {"threshold": 0.3}, {"policy": "la"}]
HOSTILE_CLIENTS, HOSTILE_FRAMES = 20, 1000


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    return load_model(tiny_model_dir)


async def speak(port: int, sentence: str, settings: dict, pause: float) -> dict:
    """A well-behaved live stream: word by word, then end; its done message, with the words streamed."""
    async with connect(f"ws://127.0.0.1:{port}/ws") as ws:
        await ws.recv()
        await ws.send(json.dumps({"type": "start", **settings}))
        for word in sentence.split():
            await ws.send(json.dumps({"type": "source", "text": word + " "}))
            await asyncio.sleep(pause)
        await ws.send(json.dumps({"type": "end"}))
        streamed = []
        while True:
            m = json.loads(await ws.recv())
            if m["type"] == "target":
                streamed += m["words"]
            elif m["type"] in ("done", "error"):
                return {**m, "streamed": streamed}


def hostile_frames(kind: str, rng: random.Random, limits: Limits):
    """Frames of one kind of misbehaviour: (payload, send as text?) or "disconnect" / "reconnect"."""
    words = "Im Anfang schuf Gott die Himmel und die Erde".split()
    if kind == "bad_json":
        return [(rng.choice(["{", "{oops", "[1,2", "nul", '{"type": "start"', "\x00", "{" * 5000, "'x'", ""]), True)]
    if kind == "binary":
        return [(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64))), False)]
    if kind == "oversize":
        return [(json.dumps({"type": "source", "text": "Wort " * (limits.max_message_bytes // 4)}), True)]
    if kind == "bad_utf8":
        return [(b'{"type": "source", "text": "\xff\xfe\xc3"}', True)]
    if kind == "wrong_order":
        return [(json.dumps(m), True) for m in rng.choice([
            [{"type": "source", "text": "vor dem Start "}, {"type": "end"}],
            [{"type": "start", "id": "a"}, {"type": "end", "id": "a"}, {"type": "end", "id": "a"},
             {"type": "source", "id": "a", "text": "danach "}],
            [{"type": "start", "id": "b"}, {"type": "start", "id": "b"}, {"type": "cancel", "id": "b"},
             {"type": "cancel", "id": "b"}],
            [{"type": "cancel"}, {"type": "end", "id": "nope"}, {"type": "source", "id": "x" * 100, "text": "a"}],
            [{"type": "start", "policy": "nope"}, {"type": "start", "threshold": "high"},
             {"type": "start", "k": [1]}, {"type": "source", "text": 5}, {"type": "end", "extra": 1}],
        ])]
    if kind == "flood":  # streams past the per-connection limit and words past the per-stream limit, unread
        return [(json.dumps({"type": "start", "id": str(rng.randrange(8)), "policy": "waitk", "k": 1}), True)] + [
            (json.dumps({"type": "source", "id": str(rng.randrange(8)), "text": " ".join(rng.choices(words, k=7)) + " "}), True)
            for _ in range(6)]
    if kind == "disconnect":  # mid-stream, without a close handshake
        return [(json.dumps({"type": "start"}), True),
                (json.dumps({"type": "source", "text": " ".join(rng.choices(words, k=4)) + " "}), True), "disconnect"]
    raise ValueError(kind)


KINDS = ["bad_json", "binary", "oversize", "bad_utf8", "wrong_order", "flood", "disconnect"]


async def hostile(port: int, index: int, frames: int, limits: Limits) -> dict:
    """Send `frames` bad frames, reconnecting whenever the server hangs up; tally how it ended each connection."""
    rng = random.Random(index)
    kind = KINDS[index % len(KINDS)]
    sent, closes, refused = 0, {}, 0
    while sent < frames:
        try:
            ws = await connect(f"ws://127.0.0.1:{port}/ws", max_size=None)
        except InvalidStatus:  # at the connection limit: a 503, also fine
            refused += 1
            await asyncio.sleep(0.05)
            continue
        try:
            while sent < frames:
                for frame in hostile_frames(kind if index < 14 else rng.choice(KINDS), rng, limits):
                    if frame == "disconnect":
                        ws.transport.abort()
                        raise ConnectionClosed(None, None)
                    if sent >= frames:
                        break
                    await ws.send(frame[0], text=frame[1])
                    sent += 1
                await asyncio.sleep(0.002)
        except ConnectionClosed:
            pass
        finally:
            code = ws.close_code if ws.close_code is not None else "abort"
            closes[code] = closes.get(code, 0) + 1
            ws.transport.abort()
        await asyncio.sleep(0.005)
    return {"sent": sent, "closes": closes, "refused": refused}


def test_live_streams_stay_exact_while_hostile_clients_send_a_thousand_bad_frames(model):
    limits = Limits(max_message_bytes=4096, max_queued_words=60, max_streams=256)
    cases = [(s, POLICIES[i % len(POLICIES)]) for i, s in enumerate(SENTENCES)]
    assert len(cases) == 16

    async def main():
        async with StreamServer(port=0, model=model, limits=limits) as server:
            good = [speak(server.port, s, p, pause=0.02) for s, p in cases]
            bad = [hostile(server.port, i, HOSTILE_FRAMES // HOSTILE_CLIENTS, limits) for i in range(HOSTILE_CLIENTS)]
            results = await asyncio.gather(*good, *bad)
            after = await speak(server.port, SENTENCES[0], {}, pause=0)
            for _ in range(200):  # the server notices the dropped connections asynchronously
                if not server.capacity.used and not server.worker._sessions and not server._connections:
                    break
                await asyncio.sleep(0.05)
            left = server.capacity.used, len(server.worker._sessions), server._connections
            return results[:16], results[16:], after, left

    done, bad, after, left = asyncio.run(asyncio.wait_for(main(), 300))
    for (sentence, settings), d in zip(cases, done):
        words, delays = offline(model, sentence, **settings)
        assert d["type"] == "done", (sentence, d)
        assert d["streamed"] == d["words"] == words and d["delays"] == delays, sentence
    assert sum(b["sent"] for b in bad) == HOSTILE_FRAMES
    closes = {code for b in bad for code in b["closes"]}
    assert {1003, 1007, 1009} <= closes, closes  # binary, invalid UTF-8, oversize: each closed the right way
    assert after["type"] == "done" and after["words"] == offline(model, SENTENCES[0])[0]
    assert left == (0, 0, 0)  # every hostile stream, session and connection was cleaned up


# --- memory over many sessions ------------------------------------------------------------------------------

WORDS = sorted({w for line in FIXTURE.read_text(encoding="utf-8").splitlines() for w in line.split()})


def rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1))


async def short_sessions(port: int, count: int, seed: int, connections: int = 8, per_connection: int = 4) -> int:
    """`count` short sessions (start, 1-3 random words, then end and wait for done, or for one in four of
    them cancel: the cheap way out, and a path that must clean up too), several at once on each connection."""
    rng = random.Random(seed)
    todo = iter(range(count))
    finished = 0

    async def client():
        nonlocal finished
        async with connect(f"ws://127.0.0.1:{port}/ws") as ws:
            await ws.recv()
            open_ids = set()

            async def begin() -> None:
                n = next(todo, None)
                if n is None:
                    return
                sid = f"s{n}"
                text = " ".join(rng.choices(WORDS, k=rng.randint(1, 3)))
                policy = rng.choice([{}, {"policy": "waitk", "k": 1}])
                await ws.send(json.dumps({"type": "start", "id": sid, **policy}))
                await ws.send(json.dumps({"type": "source", "id": sid, "text": text}))
                await ws.send(json.dumps({"type": "end" if n % 4 == 0 else "cancel", "id": sid}))
                open_ids.add(sid)

            for _ in range(per_connection):
                await begin()
            while open_ids:
                m = json.loads(await ws.recv())
                if m["type"] in ("done", "cancelled", "error"):
                    assert m["type"] != "error", m
                    open_ids.discard(m["id"])
                    finished += 1
                    await begin()

    await asyncio.gather(*[client() for _ in range(connections)])
    return finished


def test_memory_stays_flat_over_ten_thousand_short_sessions(tiny_model_dir):
    proc, port, _ = start_serve("--model", str(tiny_model_dir))
    try:
        # The warm-up fills the caches to their bounds (every session's sources are new to the encoder cache).
        # Measured with the tiny model, RSS still climbs by up to ~28 MiB over sessions 2,000-10,000 (caches and
        # allocator arenas filling) and is flat after: so 10,000 sessions first, as the issue asks, then 8,000 more.
        warm = asyncio.run(short_sessions(port, 10_000, seed=1))
        before = rss_kib(proc.pid)
        began = time.monotonic()
        rest = asyncio.run(short_sessions(port, 8000, seed=2))
        after = rss_kib(proc.pid)
        seconds = time.monotonic() - began
    finally:
        proc.terminate()
        proc.wait(60)
    assert warm + rest == 18_000
    growth_mib = (after - before) / 1024
    print(f"RSS {before / 1024:.0f} MiB after the warm-up, {after / 1024:.0f} MiB after 8,000 more sessions "
          f"({seconds:.0f} s)")
    # A leak of even 2 KiB a session would show as 16 MiB; the allocator's noise stays well under that.
    assert growth_mib < 16, f"RSS grew {growth_mib:.1f} MiB over 8,000 sessions"
