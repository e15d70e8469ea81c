"""Session fixtures: a tiny De->En model trained through the real scripts in seconds."""
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
# Front ends (CLI, server, agents, eval scripts) default to --dtype auto, bfloat16 on CPUs that have it;
# tests compare them with the library's float32, so pin theirs (tests of auto itself unset it).
os.environ["PSFUTURE_DTYPE"] = "float32"


def run_script(name: str, *args: str) -> None:
    subprocess.run([sys.executable, str(ROOT / "scripts" / name), *args], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def load_script(path: str, name: str | None = None):
    """A script of the repository (e.g. "eval/sweep.py") as a module, to call its functions in-process."""
    spec = importlib.util.spec_from_file_location(name or Path(path).stem, ROOT / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory) -> Path:
    """Genesis (Elberfelder 1932 / World English Bible); the first 50 verses double as valid and test."""
    d = tmp_path_factory.mktemp("tiny_corpus")
    for lang in ("de", "en"):
        lines = (FIXTURES / f"tiny.{lang}").read_text(encoding="utf-8").splitlines(keepends=True)
        (d / f"train.{lang}").write_text("".join(lines), encoding="utf-8")
        for split in ("valid", "test"):
            (d / f"{split}.{lang}").write_text("".join(lines[:50]), encoding="utf-8")
    return d


@pytest.fixture(scope="session")
def tiny_data_bin(tiny_corpus, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tiny_bin")
    run_script("prepare.py", "--corpus", str(tiny_corpus), "--out", str(out), "--vocab-size", "1000")
    return out


@pytest.fixture(scope="session")
def tiny_model_dir(tiny_data_bin, tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("tiny_work")
    out = tmp_path_factory.mktemp("tiny_model")
    run_script("train.py", "--data", str(tiny_data_bin), "--work", str(work), "--preset", "tiny",
               "--out", str(out), "--name", "tiny-test-model")
    shutil.rmtree(work, ignore_errors=True)
    return out
