"""The installed environment itself: a user's own transformers and fairseq code works in it, with no help from psfuture.

`make setup` removes torchaudio (pulled in by ve-fairseq): no release of it loads against the CPU torch we pin, and
transformers imports torchaudio whenever it is installed, so a broken one breaks every transformers model.
Each check runs in a fresh interpreter, so nothing psfuture or another test imported or patched can hide a failure.
"""
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)


def _ok(code: str) -> str:
    r = _run(code)
    assert r.returncode == 0, f"exit {r.returncode}\n{r.stdout}\n{r.stderr[-3000:]}"
    return r.stdout


def test_transformers_marian_builds_and_runs():
    out = _ok(
        "import torch\n"
        "from transformers import MarianConfig, MarianMTModel\n"
        "m = MarianMTModel(MarianConfig(vocab_size=100, d_model=16, encoder_layers=1, decoder_layers=1,\n"
        "    encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32,\n"
        "    pad_token_id=99, decoder_start_token_id=99)).eval()\n"
        "with torch.no_grad():\n"
        "    o = m(input_ids=torch.tensor([[5, 6, 7, 0]]), decoder_input_ids=torch.tensor([[99, 5]]))\n"
        "print(tuple(o.logits.shape))\n"
    )
    assert out.strip().splitlines()[-1] == "(1, 2, 100)"


def test_torchaudio_absent_or_importable():
    if importlib.util.find_spec("torchaudio") is None:
        return
    _ok("import torchaudio")


def test_fairseq_translation_imports_without_torchaudio():
    # What psfuture uses of fairseq must not need torchaudio, which make setup removes.
    _ok(
        "import sys\n"
        "sys.modules['torchaudio'] = None  # any import of it now raises ImportError\n"
        "import fairseq\n"
        "from fairseq import checkpoint_utils, options, tasks\n"
        "from fairseq.sequence_generator import SequenceGenerator\n"
        "from fairseq.models.transformer import TransformerModel\n"
        "import fairseq_cli.train\n"
        "import psfuture.tasks  # registers the P2F task and loss\n"
    )


@pytest.mark.parametrize("tool", ["fairseq-train", "fairseq-preprocess"])
def test_fairseq_console_scripts_start(tool):
    script = Path(sys.executable).parent / tool
    assert script.exists(), f"{script} is not installed"
    r = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "usage" in r.stdout.lower()
