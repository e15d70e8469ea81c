"""Backends made of backends: two-model routing and an answer memo. Each follows the contract by delegation.

    model = TwoModels(load(ModelSpec("checkpoints/p2f")), load(ModelSpec("checkpoints/offline")),
                      policy.future_tails(vocab))
    Session(model, policy)  # p from the first model (and the tail after the source ends), q from the second

TwoModels recognises a pseudo-future query by its source ending in one of `tails` (the policy's
placeholders, then EOS when future_eos; `PsFuture.future_tails` gives them). With the default prefix_eos=False
no prefix query ends in EOS, so the only query it can misroute is the final decode of a finished source
whose last piece is the placeholder itself (e.g. <unk>). A routing field on Query would make it exact;
psfuture's choice for now is not to change the model contract for an experiment.
"""
from __future__ import annotations

from collections import Counter
from typing import Sequence

from psfuture.backends.base import Answer, Query
from psfuture.errors import ConfigError


class _Delegate:
    """What a wrapper does not define itself (encode_word, decode, vocab, ...) is its inner model's."""

    model = None

    def __getattr__(self, name):
        if name == "model":  # not set yet (e.g. while unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.model, name)

    def reserve(self, streams: int) -> None:
        self.model.reserve(streams)


class TwoModels(_Delegate):
    def __init__(self, prefix_model, future_model, tails: Sequence[tuple[int, ...]]):
        if prefix_model.vocab != future_model.vocab:
            raise ConfigError("the two models must share one dictionary (token ids mean the same to both); "
                              "fine-tune one from the other")
        self.model, self.future_model = prefix_model, future_model
        self.vocab = prefix_model.vocab
        self.tails = tuple(tuple(t) for t in tails)
        a, b = prefix_model.info, future_model.info
        self.info = {**a, "name": f"{a.get('name', '')}+future:{b.get('name', '')}",
                     "sha256": f"{a.get('sha256', '')}+{b.get('sha256', '')}"}

    @property
    def prefix_model(self):
        return self.model

    def is_future(self, query: Query) -> bool:
        return any(len(query.src) > len(t) and query.src[-len(t):] == t for t in self.tails)

    def next_token(self, queries: Sequence[Query]) -> list[Answer]:
        future = [self.is_future(q) for q in queries]
        answers = {}
        for flag, model in ((False, self.model), (True, self.future_model)):
            mine = [q for q, f in zip(queries, future) if f is flag]
            answers[flag] = iter(model.next_token(mine) if mine else ())
        return [next(answers[f]) for f in future]

    @property
    def calls(self) -> Counter:
        return self.model.calls + self.future_model.calls

    def reserve(self, streams: int) -> None:
        self.model.reserve(streams)
        self.future_model.reserve(streams)

    def clear_cache(self) -> None:
        self.model.clear_cache()
        self.future_model.clear_cache()


class Memo(_Delegate):
    """A backend whose answers are remembered until clear(): configurations streaming the same sentence ask
    many identical queries (the sweep runs every policy of a grid on one sentence together)."""

    def __init__(self, model):
        self.model = model
        self.memo: dict = {}

    def next_token(self, queries: Sequence[Query]) -> list[Answer]:
        new = [q for q in dict.fromkeys(queries) if q not in self.memo]
        if new:
            self.memo.update(zip(new, self.model.next_token(new)))
        return [self.memo[q] for q in queries]

    def clear(self) -> None:
        self.memo.clear()
        self.model.clear_cache()
