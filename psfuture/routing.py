"""Two models behind one `next_token`: PsFuture's pseudo-future pass asked of one, every other query of the other.

    model = TwoModels(load_model("checkpoints/p2f"), load_model("checkpoints/offline"), policy)
    Session(model, policy)  # p from the P2F model (and the tail after the source ends), q from the offline one

Session and the policies stay as they are: a query is recognised as a pseudo-future by its source ending in one
of the policy's pseudo-futures (placeholders, then EOS when future_eos). With the default prefix_eos=False no
prefix query ends in EOS, so the only query it can misroute is the final decode of a finished source whose last
piece is the placeholder itself (e.g. <unk>). A routing field on Query would make it exact; psfuture's choice
for now is not to change the model interface for an experiment.
"""
from __future__ import annotations

from collections import Counter

from psfuture.errors import ConfigError
from psfuture.policies import PsFuture, pseudo_future_ids


class TwoModels:
    def __init__(self, prefix_model, future_model, policy: PsFuture):
        if prefix_model.vocab != future_model.vocab:
            raise ConfigError("the two models must share one dictionary (token ids mean the same to both); "
                              "fine-tune one from the other")
        self.prefix_model, self.future_model = prefix_model, future_model
        self.vocab = prefix_model.vocab
        eos = (self.vocab.eos,) * policy.future_eos
        self.tails = tuple(pseudo_future_ids(self.vocab, policy.placeholder, k) + eos
                           for k in range(policy.k, policy.k + policy.futures))
        a, b = prefix_model.info, future_model.info
        self.info = {**a, "name": f"{a.get('name', '')}+future:{b.get('name', '')}",
                     "sha256": f"{a.get('sha256', '')}+{b.get('sha256', '')}"}

    def __getattr__(self, name):  # encode_word, decode, ...: the prefix model's (the dictionary is shared)
        return getattr(self.prefix_model, name)

    def routes(self, policy: PsFuture) -> bool:
        """Does `policy` ask exactly the pseudo-futures this router recognises?"""
        return TwoModels(self.prefix_model, self.future_model, policy).tails == self.tails

    def is_future(self, query) -> bool:
        return any(len(query.src) > len(t) and query.src[-len(t):] == t for t in self.tails)

    def next_token(self, queries):
        future = [self.is_future(q) for q in queries]
        answers = {}
        for flag, model in ((False, self.prefix_model), (True, self.future_model)):
            mine = [q for q, f in zip(queries, future) if f is flag]
            answers[flag] = iter(model.next_token(mine) if mine else ())
        return [next(answers[f]) for f in future]

    @property
    def calls(self) -> Counter:
        return self.prefix_model.calls + self.future_model.calls

    def clear_cache(self) -> None:
        self.prefix_model.clear_cache()
        self.future_model.clear_cache()
