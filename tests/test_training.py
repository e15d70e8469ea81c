"""End to end: the same scripts that build the shipped model train a tiny one that translates."""
import json

import torch

import psfuture  # noqa: F401


def test_tiny_model_dir_layout(tiny_model_dir):
    for name in ("checkpoint.pt", "dict.de.txt", "dict.en.txt", "spm.model", "model.json"):
        assert (tiny_model_dir / name).is_file(), name
    meta = json.loads((tiny_model_dir / "model.json").read_text())
    assert meta["name"] == "tiny-test-model" and meta["encoder_layers"] == 1
    state = torch.load(tiny_model_dir / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert state["last_optimizer_state"] is None  # shipped without optimizer state
    unique = {id(v): v for k, v in state["model"].items() if not k.endswith("_float_tensor")}
    assert meta["parameters"] == sum(v.numel() for v in unique.values())  # tied weights counted once
    assert len(unique) < len(state["model"])  # and stored once: shared embeddings


def test_dictionary_is_joined(tiny_model_dir):
    assert (tiny_model_dir / "dict.de.txt").read_text() == (tiny_model_dir / "dict.en.txt").read_text()
