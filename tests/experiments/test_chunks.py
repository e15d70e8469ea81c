"""Resumable sweeps: a run started again after a kill streams only what was not finished, with the same results."""
import json
from pathlib import Path

import pytest

from psfuture.experiments import chunks, sweep
from psfuture.model import load_model
from psfuture.policies import PsFuture, WaitK

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
CAP = {"max_len_a": 1.0, "max_len_b": 5}


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    return load_model(tiny_model_dir)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    d = tmp_path_factory.mktemp("chunks")
    for lang in ("de", "en"):
        lines = (FIXTURES / f"tiny.{lang}").read_text(encoding="utf-8").splitlines()[201:206]
        (d / f"test.{lang}").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return sweep.read_corpus(d / "test.de", d / "test.en")


class Counting:
    """The model, counting its next_token calls (0: every answer came from the store)."""

    def __init__(self, model):
        self.model, self.asked = model, 0

    def __getattr__(self, name):
        return getattr(self.model, name)

    def next_token(self, queries):
        self.asked += 1
        return self.model.next_token(queries)


def same(a, b):
    return [(r.signature, r.predictions, r.delays, r.BLEU, r.AL) for r in a] == \
        [(r.signature, r.predictions, r.delays, r.BLEU, r.AL) for r in b]


POLICIES = [PsFuture(threshold=0.3), WaitK(k=2)]


def test_a_resumed_sweep_streams_only_the_missing_chunks(model, corpus, tmp_path):
    plain = sweep.run(model, corpus, POLICIES, memo=True, batch=2, progress=False, **CAP)
    store = tmp_path / "chunks"
    first = sweep.run(model, corpus, POLICIES, memo=True, batch=2, progress=False, resume=store, **CAP)
    files = sorted(store.glob("*.json"))
    assert same(first, plain) and len(files) == 3  # 5 sentences in batches of 2

    counting = Counting(model)
    again = sweep.run(counting, corpus, POLICIES, memo=True, batch=2, progress=False, resume=store, **CAP)
    assert same(again, plain) and counting.asked == 0  # every chunk from disk

    files[0].unlink()  # killed before this chunk was finished
    files[1].write_text(files[1].read_text()[:10])  # or while it was being written (os.replace prevents it)
    resumed = sweep.run(counting, corpus, POLICIES, memo=True, batch=2, progress=False, resume=store, **CAP)
    assert same(resumed, plain) and counting.asked > 0 and len(list(store.glob("*.json"))) == 3

    chunks.clear(store)
    assert not store.exists()


def test_another_sweep_never_reuses_a_chunk(model, corpus, tmp_path):
    store = tmp_path / "chunks"
    sweep.run(model, corpus, POLICIES, memo=True, batch=5, progress=False, resume=store, **CAP)
    counting = Counting(model)
    other = [PsFuture(threshold=0.5), WaitK(k=2)]  # one policy differs: its chunk was streamed with other company
    fresh = sweep.run(counting, corpus, other, memo=True, batch=5, progress=False, resume=store, **CAP)
    assert counting.asked > 0 and len(list(store.glob("*.json"))) == 2
    assert same(fresh, sweep.run(model, corpus, other, memo=True, batch=5, progress=False, **CAP))
    counting.asked = 0
    sweep.run(counting, corpus, POLICIES, memo=True, batch=5, progress=False, resume=store, max_len_a=1.0,
              max_len_b=6)  # another length cap: other answers
    assert counting.asked > 0


def test_forked_jobs_write_the_chunks_they_stream(model, corpus, tmp_path):
    store = tmp_path / "chunks"
    forked = sweep.run(model, corpus, POLICIES, memo=True, batch=2, jobs=2, progress=False, resume=store, **CAP)
    assert len(list(store.glob("*.json"))) == 3
    saved = json.loads(next(store.glob("*.json")).read_text())
    assert {k for k, *_ in saved} == {0, 1}  # both policies of the chunk
    counting = Counting(model)
    assert same(sweep.run(counting, corpus, POLICIES, memo=True, batch=2, progress=False, resume=store, **CAP),
                forked) and counting.asked == 0
