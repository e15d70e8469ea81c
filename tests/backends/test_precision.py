"""--dtype/--quantize: every option loads and translates the tiny model; every front end takes the flags."""
import math
import subprocess
import sys

import pytest
import torch

from psfuture import agents
from psfuture.cli import build_parser
from psfuture.errors import ConfigError
from psfuture.model import Query, load_model
from psfuture.policies import PsFuture
from psfuture.backends.precision import DTYPES, QUANTIZE
from psfuture.experiments.sweep import stream

GERMAN = "Im Anfang schuf Gott die Himmel und die Erde."
OPTIONS = [("float32", None), ("bfloat16", None), ("float32", "int8-ffn")]
CAP = {"max_len_a": 1.0, "max_len_b": 5}


@pytest.fixture(scope="module")
def reference(tiny_model_dir):
    return load_model(tiny_model_dir)


@pytest.mark.parametrize("dtype,quantize", OPTIONS)
def test_each_precision_loads_and_translates(tiny_model_dir, reference, dtype, quantize):
    model = load_model(tiny_model_dir, dtype=dtype, quantize=quantize)
    assert model.info["precision"] == (dtype if quantize is None else f"{dtype}+{quantize}")
    src = model.encode(GERMAN) + (model.vocab.eos,)
    got, want = (m.next_token([Query(src, src[:2])])[0] for m in (model, reference))
    # Policies see float32 log-probs whatever the network computes in, and they stay close to float32's.
    assert got.logprobs.dtype == torch.float32 and got.attn.dtype == torch.float32
    assert torch.allclose(got.logprobs.exp().sum(), torch.tensor(1.0), atol=1e-3)
    assert (got.logprobs - want.logprobs).abs().max() < 1.0
    assert model.translate([GERMAN], beam=1, **CAP)[0].strip()
    assert stream(model, PsFuture(threshold=0.3), GERMAN, **CAP).text.strip()


def test_auto_is_bfloat16_only_where_the_cpu_computes_it_natively(tiny_model_dir, monkeypatch):
    import psfuture.backends.precision as precision

    assert load_model(tiny_model_dir, dtype="auto").info["precision"] == (
        "bfloat16" if precision.native_bfloat16() else "float32")
    monkeypatch.setattr(precision, "native_bfloat16", lambda device="cpu": False)
    assert precision.check_precision("auto") == ("float32", "none")
    monkeypatch.setattr(precision, "native_bfloat16", lambda device="cpu": True)
    assert precision.check_precision("auto") == ("bfloat16", "none")
    assert precision.check_precision("auto", "int8-ffn") == ("float32", "int8-ffn")  # int8 runs on float32 layers


def test_front_ends_default_to_auto_unless_psfuture_dtype_says(monkeypatch):
    import argparse

    from psfuture.backends.base import ModelSpec

    def default():
        p = argparse.ArgumentParser()
        ModelSpec.add_args(p)
        return p.parse_args([]).dtype
    monkeypatch.delenv("PSFUTURE_DTYPE")
    assert default() == "auto"
    monkeypatch.setenv("PSFUTURE_DTYPE", "float32")
    assert default() == "float32"


def test_int8_ffn_quantizes_only_the_feed_forward_layers(tiny_model_dir):
    from torch.ao.nn.quantized.dynamic import Linear as Int8Linear

    net = load_model(tiny_model_dir, quantize="int8-ffn").net
    int8 = {name.rsplit(".", 1)[-1] for name, m in net.named_modules() if isinstance(m, Int8Linear)}
    assert int8 == {"fc1", "fc2"}


@pytest.mark.parametrize("dtype,quantize,bad", [("float16", None, "float16"), ("float32", "int4", "int4"),
                                                ("bfloat16", "int8-ffn", "int8-ffn")])
def test_bad_values_name_the_allowed_ones(tiny_model_dir, dtype, quantize, bad):
    with pytest.raises(ConfigError, match=bad) as e:
        load_model(tiny_model_dir, dtype=dtype, quantize=quantize)
    assert any(word in str(e.value) for word in DTYPES + QUANTIZE)


@pytest.mark.parametrize("command", ["serve", "translate", "demo"])
def test_every_cli_command_takes_the_flags(command):
    args = build_parser().parse_args([command, "--dtype", "bfloat16", "--quantize", "int8-ffn"])
    assert (args.dtype, args.quantize) == ("bfloat16", "int8-ffn")


def test_cli_translate_in_bfloat16_and_a_bad_dtype(tiny_model_dir):
    def run(*flags):
        return subprocess.run([sys.executable, "-m", "psfuture.cli", "translate", "--model", str(tiny_model_dir),
                               *flags], input=GERMAN + "\n", capture_output=True, text=True, timeout=300)
    ok = run("--dtype", "bfloat16")
    assert ok.returncode == 0 and ok.stdout.strip()
    bad = run("--dtype", "fp8")
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert "fp8" in bad.stderr and "bfloat16" in bad.stderr


def test_agents_take_the_flags(tiny_model_dir, tmp_path):
    src, ref = tmp_path / "src.de", tmp_path / "ref.en"
    src.write_text(GERMAN + "\n", encoding="utf-8")
    ref.write_text("In the beginning God created the heavens and the earth.\n", encoding="utf-8")
    scores = agents.evaluate(agents.PsFutureAgent, {"source": src, "target": ref, "checkpoint": tiny_model_dir,
                                                    "no_progress_bar": True, "quantize": "int8-ffn", **CAP})
    assert math.isfinite(scores["AL"]) and scores["BLEU"] >= 0
    assert any(m.info.get("precision") == "float32+int8-ffn" for m in agents._MODELS.values())


@pytest.mark.parametrize("script", ["eval/sweep.py", "eval/offline_bleu.py", "eval/bench_stream.py",
                                    "eval/batch_equality.py", "eval/bench_sweep.py", "eval/bench_precision.py",
                                    "eval/bench_ct2.py", "eval/rule_examples.py"])
def test_eval_scripts_take_the_flags(script):
    out = subprocess.run([sys.executable, script, "--help"], capture_output=True, text=True, timeout=120,
                         cwd=__import__("pathlib").Path(__file__).resolve().parents[2])
    assert out.returncode == 0 and "--dtype" in out.stdout and "--quantize" in out.stdout
    assert "--device" in out.stdout
