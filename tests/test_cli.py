"""`psfuture translate | serve | demo` as a user runs them: subprocesses on the tiny model."""
import asyncio
import json
import re
import signal
import socket
import subprocess
import sys

import pytest
import srt
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from psfuture.cli import main
from psfuture.experiments.sweep import stream
from psfuture.model import load_model
from psfuture.policies import make_policy
from psfuture.session import Session

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]
GERMAN = ["Im Anfang schuf Gott die Himmel und die Erde.", "Und Gott sah das Licht, dass es gut war."]


def psfuture(*args, stdin="", timeout=120):
    return subprocess.run([sys.executable, "-m", "psfuture.cli", *args], input=stdin, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def reference(tiny_model_dir):
    """Each sentence read a word at a time by a Session with the waitk policy, as SimulEval feeds an agent (a
    line's last word comes with its end): words and delays."""
    model = load_model(tiny_model_dir)
    out = []
    for sentence in GERMAN:
        session = stream(model, make_policy("waitk", k=2), sentence)
        out.append((list(session.target_words), list(session.delays)))
    return out


def test_translate_prints_a_line_per_sentence(tiny_model_dir, reference):
    r = psfuture("translate", "--model", str(tiny_model_dir), "--policy", "waitk", "--set", "k=2",
                 stdin="\n".join(GERMAN) + "\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [" ".join(words) for words, _ in reference]


def test_translate_timeline_shows_reads_and_writes_in_order(tiny_model_dir, reference):
    # No final newline: the end of input ends the sentence.
    r = psfuture("translate", "--timeline", "--model", str(tiny_model_dir), "--policy", "waitk", "--set", "k=2",
                 stdin=GERMAN[0])
    assert r.returncode == 0, r.stderr
    reads, writes = 0, []
    for line in r.stdout.splitlines():
        if line.startswith("READ "):
            reads += 1
        elif line.startswith("WRITE "):
            word, delay = re.fullmatch(r"WRITE (\S+)\t\(after (\d+) source words\)", line).groups()
            assert int(delay) == reads  # a word is written right after the reads it needed
            writes.append((word, int(delay)))
    words, delays = reference[0]
    assert reads == len(GERMAN[0].split()) and writes == list(zip(words, delays))
    assert r.stdout.splitlines()[-2].startswith("SEGMENT 0 (punctuation): 9 source words")
    assert r.stdout.splitlines()[-1].startswith("END   1 segments, 9 source words")


def test_translate_writes_subtitles_timed_at_the_speaking_rate(tiny_model_dir, reference, tmp_path):
    from psfuture import subtitles
    r = psfuture("translate", "--model", str(tiny_model_dir), "--policy", "waitk", "--set", "k=2", "--rate", "2",
                 "--srt", str(tmp_path / "talk.srt"), "--vtt", str(tmp_path / "talk.vtt"), stdin="\n".join(GERMAN) + "\n")
    assert r.returncode == 0, r.stderr
    # At 2 words/s, a word that waited for the stream's d-th German word appears at d / 2 s.
    starts = [0, len(GERMAN[0].split())]
    timed = [[(w, (start + d) / 2) for w, d in zip(words, delays)] for (words, delays), start in zip(reference, starts)]
    cues = subtitles.cues(timed)
    assert (tmp_path / "talk.srt").read_text() == subtitles.to_srt(cues)
    assert (tmp_path / "talk.vtt").read_text() == subtitles.to_vtt(cues)
    first = next(srt.parse((tmp_path / "talk.srt").read_text()))
    assert first.start.total_seconds() == reference[0][1][0] / 2 and first.content.startswith(reference[0][0][0])


@pytest.mark.parametrize("args, code, message", [
    (["translate", "--model", "/nonexistent/model"], 1, "model directory /nonexistent/model does not exist"),
    (["translate", "--policy", "nope"], 1, "unknown policy 'nope'"),
    (["serve", "--threshold", "0.1", "--target-al", "3"], 1, "target_al"),
    (["translate", "--set", "k"], 2, "expected NAME=VALUE"),
    (["serve", "--port", "x"], 2, "expected a port number 0-65535, got 'x'"),
    (["demo", "--wps", "0"], 2, "must be a finite number > 0"),
    (["serve", "--port", "99999"], 2, "--port: 99999 is out of range 0-65535"),
    (["demo", "--port", "-1"], 2, "--port: -1 is out of range 0-65535"),
    (["serve", "--workers", "0"], 2, "--workers: must be a finite number > 0"),
    (["serve", "--idle-timeout", "nan"], 2, "--idle-timeout: must be a finite number > 0"),
    (["translate", "--target-al", "inf"], 2, "--target-al: must be a finite number > 0"),
    (["serve", "--threshold", "nan"], 1, "threshold=nan: a divergence threshold must be a finite number >= 0"),
    (["translate", "--threshold", "-1"], 1, "threshold=-1.0: a divergence threshold must be a finite number >= 0"),
    (["translate", "--model", str(ROOT / "checkpoints/offline"), "--target-al", "100"], 1,
     "target_al=100 is outside this model's calibrated range"),
    (["serve", "--device", "cuda"], 1, "CUDA is not available here"),
    (["translate", "--device", "gpu"], 1, "unknown device 'gpu'; use cpu, cuda or cuda:N"),
    (["serve", "--set", "k=-1", "--policy", "waitk"], 1, "k"),
    (["serve", "--host", "no-such-host.invalid"], 1, "--host must be a name or address of this machine"),
    (["translate", "--vtt", "/nonexistent/dir/talk.vtt"], 1, "--vtt /nonexistent/dir/talk.vtt: No such file"),
    (["translate", "--rate", "0"], 2, "--rate: must be a finite number > 0"),
    ([], 2, "required"),
])
def test_bad_options_say_what_is_wrong(tiny_model_dir, capsys, monkeypatch, args, code, message):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # the same answer on a machine with a GPU
    if args and "--model" not in args:
        args = args + ["--model", str(tiny_model_dir)]
    try:
        rc = main(args)
    except SystemExit as e:  # argparse's own errors
        rc = e.code
    err = capsys.readouterr().err
    assert rc == code and message in err, err
    assert "Traceback" not in err


@pytest.mark.parametrize("workers", ["1", "2"])
def test_serve_on_a_port_in_use_says_so(tiny_model_dir, capsys, workers):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        rc = main(["serve", "--model", str(tiny_model_dir), "--port", str(taken.getsockname()[1]), "--workers", workers])
    err = capsys.readouterr().err
    assert rc == 1 and "the port is in use; pick another --port (0 picks a free one)" in err, err
    assert len(err.strip().splitlines()) == 1


def start_serve(*args: str) -> tuple[subprocess.Popen, int, str]:
    """`psfuture serve --port 0 ARGS` in a subprocess, once it serves: the process, its port, its ready line."""
    proc = subprocess.Popen([sys.executable, "-m", "psfuture.cli", "serve", "--port", "0", *args],
                            stderr=subprocess.PIPE, text=True)
    line = ""
    while "serving on" not in line:
        line = proc.stderr.readline()
        assert line or proc.poll() is None, "server exited before serving"
    return proc, int(re.search(r"http://127\.0\.0\.1:(\d+)/", line).group(1)), line


def test_serve_translates_and_shuts_down_on_sigterm(tiny_model_dir):
    proc, port, _ = start_serve("--model", str(tiny_model_dir), "--policy", "waitk", "--set", "k=2")
    try:

        async def client():
            async with connect(f"ws://127.0.0.1:{port}/ws") as ws:
                await ws.recv()
                await ws.send(json.dumps({"type": "start"}))
                await ws.send(json.dumps({"type": "source", "text": GERMAN[0]}))
                await ws.send(json.dumps({"type": "end"}))
                while (m := json.loads(await ws.recv()))["type"] != "done":
                    assert m["type"] in ("ready", "target", "segment"), m
                proc.send_signal(signal.SIGTERM)
                with pytest.raises(ConnectionClosed):
                    await ws.recv()
                return m, ws.close_code

        done, close_code = asyncio.run(asyncio.wait_for(client(), 120))
        assert proc.wait(timeout=60) == 0
    finally:
        proc.kill()
        proc.wait()
    assert done["text"] and close_code == 1001


def test_listen_follows_a_room_of_a_running_server(tiny_model_dir, reference):
    proc, port, _ = start_serve("--model", str(tiny_model_dir), "--policy", "waitk", "--set", "k=2")
    url = f"ws://127.0.0.1:{port}/ws"
    try:
        async def main():
            async with connect(url) as ws:
                await ws.recv()
                await ws.send(json.dumps({"type": "start", "room": "hall", "token": "t"}))
                assert json.loads(await ws.recv())["type"] == "ready"  # the room is open
                args = [sys.executable, "-m", "psfuture.cli", "listen", "--url", url, "--room", "hall"]
                listener = await asyncio.create_subprocess_exec(*args, "--token", "t", "--once",
                                                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                wrong = await asyncio.create_subprocess_exec(*args, "--token", "x", stdout=subprocess.PIPE,
                                                             stderr=subprocess.PIPE)
                await ws.send(json.dumps({"type": "source", "text": " ".join(GERMAN)}))
                await ws.send(json.dumps({"type": "end"}))
                while json.loads(await ws.recv())["type"] != "done":
                    pass
                return await listener.communicate(), listener.returncode, await wrong.communicate(), wrong.returncode

        (out, err), rc, (_, wrong_err), wrong_rc = asyncio.run(asyncio.wait_for(main(), 120))
    finally:
        proc.kill()
        proc.wait()
    assert rc == 0, err
    assert out.decode().splitlines() == [" ".join(words) for words, _ in reference]
    assert wrong_rc == 1 and "bad_token" in wrong_err.decode() and b"Traceback" not in wrong_err


def test_demo_streams_the_samples_and_points_to_the_page(tiny_model_dir, reference):
    r = psfuture("demo", "--model", str(tiny_model_dir), "--port", "0", "--wps", "50", "--policy", "waitk",
                 "--set", "k=2", *GERMAN)
    assert r.returncode == 0, r.stderr
    assert [line[len("  => "):] for line in r.stdout.splitlines() if line.startswith("  => ")] == [
        " ".join(words) for words, _ in reference]
    assert "de  Im Anfang" in r.stdout and "read," in r.stdout
    assert "http://127.0.0.1:0/" not in r.stdout and "psfuture serve" in r.stdout


def test_translate_says_which_model_device_and_precision_auto_chose(tiny_model_dir):
    r = psfuture("translate", "--model", str(tiny_model_dir), "--dtype", "auto", stdin=GERMAN[0] + "\n")
    assert r.returncode == 0, r.stderr
    assert re.search(r"psfuture: model tiny-test-model \(sha256 [0-9a-f]{12}\) on cpu, (bfloat16|float32) "
                     r"\(auto chose (bfloat16|float32): this CPU (computes bfloat16 natively|has no native bfloat16)\)",
                     r.stderr), r.stderr


def test_the_cli_and_the_simuleval_agent_write_the_same_english(tiny_model_dir, tmp_path):
    """The same model, policy and settings: the same words with the same delays, sentence for sentence."""
    from psfuture import agents

    lines = (ROOT / "tests/fixtures/tiny.de").read_text(encoding="utf-8").splitlines()[200:210]
    refs = (ROOT / "tests/fixtures/tiny.en").read_text(encoding="utf-8").splitlines()[200:210]
    (tmp_path / "src.de").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (tmp_path / "ref.en").write_text("\n".join(refs) + "\n", encoding="utf-8")
    for settings in ({}, {"threshold": 0.3}):
        flags = [x for k, v in settings.items() for x in ("--" + k, str(v))]
        # A line is a sentence, as the agents have it: cut at line ends only (--cut none), never by length.
        r = psfuture("translate", "--timeline", "--cut", "none", "--max-segment-words", "1000", "--model",
                     str(tiny_model_dir), *flags, stdin="\n".join(lines) + "\n")
        assert r.returncode == 0, r.stderr
        blocks = re.split(r"^SEGMENT .*$", r.stdout, flags=re.M)[:-1]  # one segment a line: each line's words
        offsets = [0]
        for line in lines:
            offsets.append(offsets[-1] + len(line.split()))
        cli = [[(m.group(1), int(m.group(2)) - start)
                for m in re.finditer(r"WRITE (\S+)\t\(after (\d+) source words\)", block)]
               for block, start in zip(blocks, offsets)]
        out = tmp_path / f"agent{len(settings)}"
        agents.evaluate(agents.PsFutureAgent, {"source": tmp_path / "src.de", "target": tmp_path / "ref.en",
                                               "checkpoint": tiny_model_dir, "output": out, "no_progress_bar": True,
                                               **settings})
        logged = [json.loads(line) for line in (out / "instances.log").read_text().splitlines()]
        agent = [list(zip(x["prediction"].split(), x["delays"])) for x in logged]
        assert cli == agent


def test_a_3000_word_line_is_translated_whole_in_bounded_memory(tiny_model_dir):
    """A paragraph pasted as one line: every word read, segment by segment, and the process's peak memory that
    of a line a tenth as long."""
    words = " ".join((ROOT / "tests/fixtures/tiny.de").read_text(encoding="utf-8").splitlines()[200:400]).split()

    def run(n):
        line = " ".join((words * (n // len(words) + 1))[:n]) + "\n"
        code = ("import resource, sys; from psfuture.cli import main; rc = main(sys.argv[1:]); "
                "print('maxrss', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr); sys.exit(rc)")
        r = subprocess.run([sys.executable, "-c", code, "translate", "--timeline", "--model", str(tiny_model_dir),
                            "--policy", "waitk", "--set", "k=3"], input=line, capture_output=True, text=True,
                           timeout=900)
        assert r.returncode == 0, r.stderr
        return r.stdout.splitlines(), int(re.search(r"maxrss (\d+)", r.stderr).group(1))

    short, short_rss = run(300)
    out, rss = run(3000)
    assert sum(line.startswith("READ ") for line in out) == 3000  # nothing dropped
    assert out[-1].startswith("END ") and " 3000 source words" in out[-1]
    segments = [line for line in out if line.startswith("SEGMENT ")]
    assert len(segments) >= 3000 // 60 and all(int(s.split(": ")[1].split()[0]) <= 60 for s in segments)
    assert rss < 1.15 * short_rss + 32 * 1024, (rss, short_rss)  # KiB


@pytest.mark.parametrize("url, message", [
    ("ws://127.0.0.1:99999/ws", "Port out of range 0-65535"),
    ("ws://[::1/ws", "Invalid IPv6 URL"),
    ("http://127.0.0.1:1/ws", "scheme isn't ws or wss"),
])
def test_listen_at_a_bad_url_says_so_in_one_line(capsys, url, message):
    assert main(["listen", "--room", "hall", "--url", url]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"psfuture listen: error: cannot listen at {url}: ") and message in err
    assert err.count("\n") == 1, err
