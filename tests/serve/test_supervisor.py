"""`psfuture serve --workers 2`: two model processes behind one port, as a user runs it (tiny model)."""
import asyncio
import json
import os
import signal
import time
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from psfuture.model import ModelSpec, load_model
from psfuture.policies import make_policy
from psfuture.session import Session
from psfuture.serve.supervisor import Supervisor, SupervisorError, WorkerConfig, reserve
from test_cli import start_serve

GERMAN = ["Im Anfang schuf Gott die Himmel und die Erde.", "Und Gott sah das Licht, dass es gut war.",
          "Und es ward Abend und es ward Morgen: erster Tag.", "Da sprach Gott: Es werde Licht!"]


@pytest.fixture(scope="module")
def reference(tiny_model_dir):
    model = load_model(tiny_model_dir)
    out = {}
    for sentence in GERMAN:
        session = Session(model, make_policy("waitk", k=2))
        for word in sentence.split():
            session.push([word])
        session.finish()
        out[sentence] = list(session.target_words)
    return out


def children(pid: int) -> list[int]:
    return sorted(int(c) for task in Path(f"/proc/{pid}/task").glob("*")
                  for c in (task / "children").read_text().split())


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_for(predicate, seconds=120.0):
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def start(tiny_model_dir):
    proc, port, line = start_serve("--workers", "2", "--model", str(tiny_model_dir), "--policy", "waitk", "--set", "k=2")
    assert "with 2 worker processes" in line
    return proc, port


async def translate(port: int, sentence: str) -> tuple[int, list[str]]:
    async with connect(f"ws://127.0.0.1:{port}/ws") as ws:
        hello = json.loads(await ws.recv())
        await ws.send(json.dumps({"type": "start"}))
        for word in sentence.split():
            await ws.send(json.dumps({"type": "source", "text": word + " "}))
        await ws.send(json.dumps({"type": "end"}))
        while (m := json.loads(await ws.recv()))["type"] != "done":
            assert m["type"] in ("ready", "target", "segment"), m
        return hello["worker"], m["words"]


def translate_all(port: int, n: int) -> list[tuple[int, str, list[str]]]:
    sentences = [GERMAN[i % len(GERMAN)] for i in range(n)]

    async def main():
        return await asyncio.gather(*[translate(port, s) for s in sentences])
    return [(w, s, words) for s, (w, words) in zip(sentences, asyncio.run(asyncio.wait_for(main(), 120)))]


def test_two_workers_share_the_port_survive_a_crash_and_stop_on_sigterm(tiny_model_dir, reference):
    proc, port = start(tiny_model_dir)
    try:
        workers = children(proc.pid)
        assert len(workers) == 2
        results = translate_all(port, 16)
        assert all(words == reference[s] for _, s, words in results)
        # The kernel spreads connections by a hash: all 16 on one worker has odds of 1 in 2^15.
        assert {w for w, _, _ in results} == {0, 1}

        os.kill(workers[0], signal.SIGKILL)  # a worker crash: the parent starts another in its place
        wait_for(lambda: len(children(proc.pid)) == 2 and workers[0] not in children(proc.pid))
        results = translate_all(port, 8)
        assert all(words == reference[s] for _, s, words in results)

        now = children(proc.pid)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        assert not any(alive(p) for p in now)
        assert f"(pid {workers[0]}) killed by signal 9; its connections were lost; restarting it" in proc.stderr.read()
    finally:
        proc.kill()
        proc.wait()


def test_every_worker_runs_the_model_options_it_was_given(tiny_model_dir):
    """--dtype, --src-lang and --tgt-lang reach every worker: each worker's hello says so."""
    proc, port, _ = start_serve("--workers", "2", "--model", str(tiny_model_dir), "--dtype", "bfloat16",
                                "--src-lang", "de", "--tgt-lang", "en")

    async def hellos() -> dict:
        seen = {}
        for _ in range(64):  # connections spread by a hash of the client port: 64 on one worker is 1 in 2^63
            async with connect(f"ws://127.0.0.1:{port}/ws") as ws:
                hello = json.loads(await ws.recv())
                seen[hello["worker"]] = hello["model"]
            if len(seen) == 2:
                break
        return seen
    try:
        seen = asyncio.run(asyncio.wait_for(hellos(), 120))
        assert sorted(seen) == [0, 1]
        for model in seen.values():
            assert model["precision"] == "bfloat16" and model["device"] == "cpu"
            assert (model["src_lang"], model["tgt_lang"]) == ("de", "en")
    finally:
        proc.kill()
        proc.wait()


def test_worker_config_carries_the_whole_model_spec():
    spec = ModelSpec("m", device="cuda:1", dtype="bfloat16", quantize="none", src_lang="deu_Latn",
                     tgt_lang="eng_Latn", cache_size=32)
    index, config = WorkerConfig.from_json(WorkerConfig(model=spec, threads=3).to_json(7))
    assert index == 7 and config == WorkerConfig(model=spec, threads=3)


def test_workers_stop_when_the_parent_is_killed(tiny_model_dir):
    proc, _ = start(tiny_model_dir)
    try:
        workers = children(proc.pid)
        proc.kill()  # SIGKILL: the parent cannot stop them; they notice it is gone
        proc.wait()
        wait_for(lambda: not any(alive(p) for p in workers), seconds=60)
    finally:
        proc.kill()
        proc.wait()


def test_a_worker_that_cannot_start_is_a_clear_error():
    sock = reserve("127.0.0.1", 0)
    try:
        sup = Supervisor(1, WorkerConfig(port=sock.getsockname()[1], model=ModelSpec("/nonexistent/model")))
        with pytest.raises(SupervisorError, match="worker 0 failed to start: model directory /nonexistent/model"):
            sup.start()
        assert all(w.proc.poll() is not None for w in sup.workers)
    finally:
        sock.close()
