"""Real SimulEval 1.1.4 runs of every agent on a few sentences with the tiny model."""
import json
import math
import subprocess
import sys

import pytest

from psfuture import agents
from psfuture.model import load_model
from psfuture.policies import PsFuture
from psfuture.experiments.sweep import stream

FIXTURES = __import__("pathlib").Path(__file__).resolve().parent / "fixtures"
METRICS = ("BLEU", "LAAL", "AL", "AP", "DAL", "ATD")
CAP = {"max_len_a": 1.0, "max_len_b": 5}  # the tiny model repeats itself up to the length cap


@pytest.fixture(scope="module")
def testset(tmp_path_factory):
    d = tmp_path_factory.mktemp("simuleval")
    for lang in ("de", "en"):
        lines = (FIXTURES / f"tiny.{lang}").read_text(encoding="utf-8").splitlines()[200:204]
        (d / f"test.{lang}").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return d


@pytest.mark.parametrize("agent,settings", [
    (agents.PsFutureAgent, {"threshold": 0.3, "divergence": "js", "prefix_eos": "false"}),
    (agents.OfflineAgent, {}),
    (agents.WaitKAgent, {"k": 2}),
    (agents.LocalAgreementAgent, {}),
    (agents.AlignAttAgent, {"frames": 2, "layer": 0}),
])
def test_every_agent_is_scored(agent, settings, testset, tiny_model_dir):
    scores = agents.evaluate(agent, {"source": testset / "test.de", "target": testset / "test.en",
                                     "checkpoint": tiny_model_dir, "no_progress_bar": True, **CAP, **settings})
    assert set(METRICS) <= set(scores)
    assert all(math.isfinite(scores[m]) for m in METRICS)
    assert scores["BLEU"] > 0 and scores["AP"] > 0 and scores["ATD"] > 0


def test_simuleval_delays_equal_session_delays(testset, tiny_model_dir, tmp_path):
    out = tmp_path / "out"
    agents.evaluate(agents.PsFutureAgent, {"source": testset / "test.de", "target": testset / "test.en",
                                           "checkpoint": tiny_model_dir, "output": out, "threshold": 0.3, **CAP})
    model = load_model(tiny_model_dir)
    for line in (out / "instances.log").read_text().splitlines():
        logged = json.loads(line)
        s = stream(model, PsFuture(threshold=0.3), logged["source"], **CAP)
        assert logged["prediction"] == s.text and logged["delays"] == list(s.delays)


def test_simuleval_command_line(testset, tiny_model_dir, tmp_path):
    cmd = [sys.executable, "-m", "simuleval.cli", "--agent-class", "psfuture.agents.WaitKAgent",
           "--source", str(testset / "test.de"), "--target", str(testset / "test.en"),
           "--checkpoint", str(tiny_model_dir), "--k", "3", "--output", str(tmp_path / "out"), "--max-len-a", "1"]
    subprocess.run(cmd, check=True, capture_output=True, timeout=300)
    header, values = (tmp_path / "out" / "scores.tsv").read_text().splitlines()
    assert header.split("\t") == ["BLEU", "LAAL", "AL", "AP", "DAL", "ATD"]
    assert float(values.split("\t")[0]) > 0
