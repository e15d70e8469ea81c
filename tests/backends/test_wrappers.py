"""Wrappers: TwoModels routes PsFuture's pseudo-future queries to one model and all others to the other, answers in
order; Memo remembers answers."""
import dataclasses
from collections import Counter

import pytest
import torch

from psfuture.errors import ConfigError
from psfuture.model import Answer, Query, Vocab, load_model
from psfuture.policies import PsFuture
from psfuture.backends.wrappers import Memo, TwoModels
from psfuture.experiments.sweep import stream

PAD, EOS, UNK = 1, 2, 3
VOCAB = Vocab(eos=EOS, pad=PAD, unk=UNK, bos=0, nspecial=4, size=8, word_start=frozenset({4, 5}),
              indices={"<s>": 0, "<pad>": PAD, "</s>": EOS, "<unk>": UNK, "\u2581a": 4, "\u2581b": 5})

SENTENCES = ["Im Anfang schuf Gott die Himmel und die Erde.", "Und Gott sprach: Es werde Licht!"]
CAP = {"max_len_a": 1.0, "max_len_b": 5}


class Fake:
    """Answers every query with the same distribution, recording what it was asked."""

    def __init__(self, top: int, vocab=VOCAB, name="fake"):
        self.vocab, self.top, self.asked, self.calls = vocab, top, [], Counter()
        self.info = {"name": name, "sha256": name}

    def next_token(self, queries):
        self.asked += queries
        self.calls["decoder"] += 1
        logprobs = torch.full((VOCAB.size,), -20.0)
        logprobs[self.top] = 0.0
        return [Answer(logprobs, torch.ones(len(q.src))) for q in queries]

    def clear_cache(self):
        self.asked.clear()


def test_pseudo_futures_go_to_the_future_model_in_order():
    prefix, future = Fake(4, name="p2f"), Fake(5, name="offline")
    both = TwoModels(prefix, future, PsFuture(k=1, futures=2).future_tails(VOCAB))
    queries = [Query((10, 11)), Query((10, 11, UNK, EOS)), Query((10, 11, UNK, UNK, EOS)), Query((10, 11, 12, EOS))]
    answers = both.next_token(queries)
    assert [int(a.logprobs.argmax()) for a in answers] == [4, 5, 5, 4]
    assert prefix.asked == [queries[0], queries[3]] and future.asked == queries[1:3]
    assert both.calls["decoder"] == 2 and both.info["name"] == "p2f+future:offline"
    assert both.next_token([queries[0]]) and len(future.asked) == 2  # nothing to ask: no call
    assert PsFuture(k=1, futures=2, threshold=3.0).future_tails(VOCAB) == both.tails
    assert PsFuture(k=2).future_tails(VOCAB) != both.tails


def test_different_dictionaries_are_refused():
    other = Fake(4, vocab=dataclasses.replace(VOCAB, size=9))
    with pytest.raises(ConfigError, match="share one dictionary"):
        TwoModels(Fake(4), other, PsFuture().future_tails(VOCAB))


def test_one_model_twice_streams_exactly_as_that_model(tiny_model_dir):
    model = load_model(tiny_model_dir)
    for policy in (PsFuture(threshold=0.5), PsFuture(threshold=0.2, futures=2, agree=True)):
        both = TwoModels(model, load_model(tiny_model_dir), policy.future_tails(model.vocab))
        for sentence in SENTENCES:
            a, b = stream(model, policy, sentence, **CAP), stream(both, policy, sentence, **CAP)
            assert (a.target_ids, a.delays) == (b.target_ids, b.delays)
        assert both.future_model.calls["decoder"] > 0


def test_memo_asks_each_query_once_and_clears():
    inner = Fake(4)
    memo = Memo(inner)
    q = [Query((10,)), Query((10,), (4,)), Query((10,))]
    assert [int(a.logprobs.argmax()) for a in memo.next_token(q)] == [4, 4, 4]
    memo.next_token(q[:2])
    assert inner.asked == q[:2] and memo.vocab is VOCAB  # the rest is the inner model's
    memo.clear()
    assert memo.memo == {} and inner.asked == []
