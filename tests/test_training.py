"""End to end: the same scripts that build the shipped model train a tiny one that translates."""
import json

import torch

import psfuture.tasks  # noqa: F401  (allow-lists argparse.Namespace for torch.load)


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


def test_prepare_reuses_a_models_vocabulary(tiny_model_dir, tiny_corpus, tmp_path):
    """A corpus built later binarizes with the shipped model's pieces and dictionary (fine-tuning needs them)."""
    from conftest import run_script

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for f in tiny_corpus.iterdir():  # another corpus: a different SentencePiece model would come out of it
        (corpus / f.name).write_text("".join(f.read_text(encoding="utf-8").splitlines(keepends=True)[::3]))
    out = tmp_path / "bin"
    run_script("prepare.py", "--corpus", str(corpus), "--out", str(out), "--model", str(tiny_model_dir))
    for name in ("spm.model", "dict.de.txt", "dict.en.txt"):
        assert (out / name).read_bytes() == (tiny_model_dir / name).read_bytes(), name
    assert (out / "train.de-en.de.bin").stat().st_size > 0


def test_a_gpu_recipes_smoke_run_keeps_its_model_and_drops_what_needs_a_gpu():
    from conftest import load_script
    train = load_script("scripts/train.py")
    for name in ("gpu", "gpu-big"):
        preset = train.PRESETS[name]
        flags = train.smoke(preset)
        model = preset[:preset.index("--lr")]  # architecture and normalisation come first
        assert flags[:len(model)] == model, name
        assert "--fp16" not in flags and "--stop-time-hours" not in flags and "--cpu" in flags
        assert flags.count("--max-update") == 1 and flags[flags.index("--max-update") + 1] == "4"
