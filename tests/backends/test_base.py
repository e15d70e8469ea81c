"""The contract's one spec and one loader: every model option travels in a ModelSpec and reaches the adapter."""
import argparse
import logging

import pytest

import psfuture.backends.precision as precision
from psfuture.backends import ModelBackend, ModelSpec, describe, load
from psfuture.errors import ConfigError


def test_spec_round_trips_through_json_and_arguments():
    spec = ModelSpec("some/dir", device="cuda:1", dtype="bfloat16", src_lang="de", tgt_lang="en", cache_size=64)
    assert ModelSpec.from_dict(spec.to_dict()) == spec
    p = argparse.ArgumentParser()
    ModelSpec.add_args(p)
    args = p.parse_args(["--model", "some/dir", "--device", "cuda:1", "--dtype", "bfloat16", "--src-lang", "de",
                         "--tgt-lang", "en"])
    assert ModelSpec.from_args(args, cache_size=64) == spec
    agent = argparse.ArgumentParser()
    ModelSpec.add_args(agent, path_flag="--checkpoint")  # SimulEval's name for it
    assert ModelSpec.from_args(agent.parse_args(["--checkpoint", "x"])).path == "x"


@pytest.mark.parametrize("bad, match", [({"device": "gpu"}, "unknown device"), ({"dtype": "fp8"}, "bfloat16"),
                                        ({"quantize": "int4"}, "int8-ffn"), ({"backend": "onnx"}, "ctranslate2"),
                                        ({"cache_size": 0}, "cache_size")])
def test_bad_options_are_named(bad, match):
    with pytest.raises(ConfigError, match=match):
        ModelSpec(**bad)
    with pytest.raises(ConfigError, match="unknown model option"):
        ModelSpec.from_dict({"path": None, "beam": 5})


def test_cuda_without_a_gpu_is_a_clear_error(tiny_model_dir, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="CUDA is not available.*--device cpu"):
        load(ModelSpec(str(tiny_model_dir), device="cuda"))


def test_the_device_and_every_option_reach_the_adapter(tiny_model_dir, monkeypatch):
    import torch

    import psfuture.backends.fairseq as fairseq

    seen = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    monkeypatch.setattr(fairseq, "load_fairseq", lambda d, spec: seen.append((d, spec)) or _Stub())
    model = load(ModelSpec(str(tiny_model_dir), device="cuda:1", dtype="auto", src_lang="de"))
    [(d, spec)] = seen
    assert d == tiny_model_dir.resolve() and spec.device == "cuda:1" and spec.src_lang == "de"
    assert spec.dtype == "bfloat16"  # auto, resolved for that device before the adapter sees it
    assert model.info["device"] == "cuda:1" and "cuda:1 computes bfloat16 natively" in describe(model)
    with pytest.raises(ConfigError, match="has 2 GPU"):
        load(ModelSpec(str(tiny_model_dir), device="cuda:2"))


class _Stub:
    def __init__(self):
        self.info = {"name": "stub", "sha256": "0" * 64, "precision": "bfloat16"}


def test_loaded_models_follow_the_contract_and_say_what_auto_chose(tiny_model_dir, monkeypatch):
    monkeypatch.setattr(precision, "native_bfloat16", lambda device="cpu": False)
    model = load(ModelSpec(str(tiny_model_dir), dtype="auto"))
    assert isinstance(model, ModelBackend)
    assert model.info["precision"] == "float32" and model.info["spec"]["dtype"] == "auto"
    assert "auto chose float32: this CPU has no native bfloat16" in describe(model)
    assert "on cpu" in describe(model)


def test_emulated_bfloat16_is_warned_about(monkeypatch, caplog):
    monkeypatch.setattr(precision, "native_bfloat16", lambda device="cpu": False)
    with caplog.at_level(logging.WARNING, logger="psfuture"):
        assert precision.resolve_precision("bfloat16")[0] == "bfloat16"
    assert "emulated" in caplog.text and "slower than float32" in caplog.text
    caplog.clear()
    monkeypatch.setattr(precision, "native_bfloat16", lambda device="cpu": True)
    with caplog.at_level(logging.WARNING, logger="psfuture"):
        precision.resolve_precision("bfloat16")
    assert caplog.text == ""


def test_a_fairseq_model_refuses_other_languages(tiny_model_dir):
    from psfuture.errors import ModelLoadError

    assert load(ModelSpec(str(tiny_model_dir), src_lang="de", tgt_lang="en")).info["tgt_lang"] == "en"
    with pytest.raises(ModelLoadError, match="translates de->en only"):
        load(ModelSpec(str(tiny_model_dir), tgt_lang="fr"))
