"""Policies as pure decisions: synthetic distributions in, exact READ/WRITE out."""
import dataclasses
import math

import pytest
import torch

from psfuture.errors import ConfigError
from psfuture.model import Answer, Vocab
from psfuture.policies import (AlignAtt, Context, LocalAgreement, Offline, PsFuture, WaitK, divergence, greedy,
                               make_policy, pseudo_future_ids)

BOS, PAD, EOS, UNK = 0, 1, 2, 3
A, B, C, CONT = 4, 5, 6, 7  # A, B, C begin words; CONT continues one
VOCAB = Vocab(eos=EOS, pad=PAD, unk=UNK, bos=BOS, nspecial=4, size=8, word_start=frozenset({A, B, C}),
              indices={"<s>": BOS, "<pad>": PAD, "</s>": EOS, "<unk>": UNK, "\u2581a": A, "\u2581b": B,
                       "\u2581c": C, "x": CONT})


def dist(*probs):
    """Log-probs over the 8-token vocabulary; the given probs go on tokens A, B, C, CONT."""
    p = torch.full((8,), 1e-9)
    p[A:A + len(probs)] = torch.tensor(probs)
    return (p / p.sum()).log()


def answer(logprobs, attn=(1.0,)):
    return Answer(logprobs, torch.as_tensor(attn))


def run(step, reply):
    """Drive a policy step; reply(query) -> Answer. Returns (decision, queries asked)."""
    asked = []
    try:
        queries = next(step)
        while True:
            asked += queries
            queries = step.send([reply(q) for q in queries])
    except StopIteration as stop:
        return stop.value, asked


def ctx(words=2, target=(), memory=None, max_len=20):
    return Context(tuple((10 + i,) for i in range(words)), tuple(target), VOCAB, max_len, memory)


P, Q = (0.5, 0.5), (0.9, 0.1)
KL_PQ = 0.5 * math.log(0.5 / 0.9) + 0.5 * math.log(0.5 / 0.1)
KL_QP = 0.9 * math.log(0.9 / 0.5) + 0.1 * math.log(0.1 / 0.5)
M = (0.7, 0.3)
JS = 0.5 * sum(p * math.log(p / m) for p, m in zip(P, M)) + 0.5 * sum(q * math.log(q / m) for q, m in zip(Q, M))


COS = 1 - (0.5 * 0.9 + 0.5 * 0.1) / (math.sqrt(0.5) * math.sqrt(0.9 ** 2 + 0.1 ** 2))


@pytest.mark.parametrize("name,expected", [("kl", KL_PQ), ("rkl", KL_QP), ("js", JS), ("tv", 0.4), ("top1", 0.0),
                                           ("cos", COS)])
def test_divergences(name, expected):
    assert divergence(name, dist(*P), dist(*Q)) == pytest.approx(expected, abs=1e-6)
    assert divergence(name, dist(*P), dist(*P)) == pytest.approx(0.0, abs=1e-6)


def test_top1_disagreement():
    assert divergence("top1", dist(0.6, 0.4), dist(0.4, 0.6)) == 1.0


@pytest.mark.parametrize("threshold", [-0.5, float("nan"), float("inf")])
def test_thresholds_out_of_range_are_refused(threshold):
    with pytest.raises(ConfigError, match="finite number >= 0"):
        PsFuture(threshold=threshold)


@pytest.mark.parametrize("div,threshold,write", [
    ("kl", KL_PQ + 1e-3, True), ("kl", KL_PQ - 1e-3, False),
    ("rkl", KL_QP + 1e-3, True), ("rkl", KL_QP - 1e-3, False),
    ("tv", 0.41, True), ("tv", 0.39, False),
    ("js", JS + 1e-3, True), ("js", JS - 1e-3, False),
    ("top1", 0.0, True),  # the two agree on the top token (top1 disagreement: test_top1_disagreement)
    ("cos", COS + 1e-3, True), ("cos", COS - 1e-3, False),
])
def test_psfuture_writes_top_prefix_token_iff_divergence_within_threshold(div, threshold, write):
    policy = PsFuture(threshold=threshold, divergence=div)
    decision, asked = run(policy.step(ctx()), lambda q: answer(dist(*Q) if UNK in q.src else dist(*P)))
    # p's top token is A (ties go to the first index)
    assert decision.write == ((A,) if write else ())


@pytest.mark.parametrize("placeholder,k,prefix_eos,future_eos,prefix_src,future_src", [
    ("unk", 1, True, True, (10, 11, EOS), (10, 11, UNK, EOS)),
    ("unk", 3, False, True, (10, 11), (10, 11, UNK, UNK, UNK, EOS)),
    ("unk", 1, False, False, (10, 11), (10, 11, UNK)),
    ("bos", 2, True, True, (10, 11, EOS), (10, 11, BOS, BOS, EOS)),
    ("pad", 1, True, True, (10, 11, EOS), (10, 11, PAD, EOS)),
    ("frequent", 1, False, True, (10, 11), (10, 11, A, EOS)),
    ("\u2581c", 2, True, True, (10, 11, EOS), (10, 11, C, C, EOS)),
])
def test_psfuture_asks_prefix_and_pseudo_future_in_one_batch(placeholder, k, prefix_eos, future_eos, prefix_src,
                                                             future_src):
    policy = PsFuture(placeholder=placeholder, k=k, prefix_eos=prefix_eos, future_eos=future_eos)
    step = policy.step(ctx(target=(B,)))
    first = next(step)
    assert [(q.src, q.prefix) for q in first] == [(prefix_src, (B,)), (future_src, (B,))]


def by_future_length(*dists):
    """Reply with dists[0] to the prefix query and dists[n] to the pseudo-future with n <unk>s."""
    return lambda q: answer(dist(*dists[q.src.count(UNK)]))


def test_psfuture_several_futures_ask_each_length_and_take_the_largest_divergence():
    policy = PsFuture(threshold=0.05, divergence="tv", k=1, futures=3)
    step = policy.step(ctx(target=(B,)))
    assert [q.src for q in next(step)] == [(10, 11), (10, 11, UNK, EOS), (10, 11, UNK, UNK, EOS),
                                           (10, 11, UNK, UNK, UNK, EOS)]
    same, off = (0.6, 0.4), (0.4, 0.6)
    assert run(policy.step(ctx()), by_future_length(same, same, same, same))[0].write == (A,)
    assert run(policy.step(ctx()), by_future_length(same, same, same, off))[0].write == ()  # only k=3 differs
    assert run(PsFuture(threshold=0.05, divergence="tv").step(ctx()),
               by_future_length(same, same, off, off))[0].write == (A,)  # futures=1: k=1 only, as before


def test_psfuture_agreement_guard_needs_the_same_top_token():
    p, q = (0.51, 0.49), (0.49, 0.51)  # close distributions, different top tokens
    loose = PsFuture(threshold=0.1, divergence="tv")
    assert run(loose.step(ctx()), by_future_length(p, q))[0].write == (A,)
    assert run(dataclasses.replace(loose, agree=True).step(ctx()), by_future_length(p, q))[0].write == ()
    assert run(dataclasses.replace(loose, agree=True).step(ctx()), by_future_length(p, p))[0].write == (A,)
    assert run(dataclasses.replace(loose, agree=True, threshold=0.0).step(ctx()),
               by_future_length(p, (0.6, 0.4)))[0].write == ()  # agreeing is not enough: divergence too


def test_psfuture_min_read_waits_without_asking_before_the_first_write_only():
    policy = PsFuture(threshold=10.0, min_read=3)
    decision, asked = run(policy.step(ctx(words=2)), by_future_length(P, P))
    assert decision.write == () and asked == []
    assert run(policy.step(ctx(words=3)), by_future_length(P, P))[0].write == (A,)
    assert run(policy.step(ctx(words=1, target=(B,))), by_future_length(P, P))[0].write == (A,)  # already writing


def test_psfuture_write_from_q_writes_the_pseudo_future_top_token():
    p, q = (0.51, 0.49), (0.49, 0.51)
    policy = PsFuture(threshold=0.1, divergence="tv", write_from="q")
    assert run(policy.step(ctx()), by_future_length(p, q))[0].write == (B,)
    assert run(dataclasses.replace(policy, write_from="p").step(ctx()), by_future_length(p, q))[0].write == (A,)


def test_psfuture_config_errors():
    with pytest.raises(ConfigError, match="divergence='l2'.*kl"):
        PsFuture(divergence="l2")
    with pytest.raises(ConfigError, match="k=0"):
        PsFuture(k=0)
    with pytest.raises(ConfigError, match="futures=0"):
        PsFuture(futures=0)
    with pytest.raises(ConfigError, match="futures=2.*1..1 for k=8"):
        PsFuture(k=8, futures=2)
    with pytest.raises(ConfigError, match="min_read=-1"):
        PsFuture(min_read=-1)
    with pytest.raises(ConfigError, match="write_from='r'.*p, q"):
        PsFuture(write_from="r")
    with pytest.raises(ConfigError, match="placeholder='<mask>'"):
        pseudo_future_ids(VOCAB, "<mask>", 1)
    with pytest.raises(ConfigError, match="unknown policy 'waitq'"):
        make_policy("waitq")
    with pytest.raises(ConfigError, match="no setting threshold"):
        make_policy("waitk", threshold=1)
    # Settings arrive as JSON from clients: a wrong type is a ConfigError naming the setting, not a TypeError.
    for name, bad in (("psfuture", {"threshold": "high"}), ("psfuture", {"prefix_eos": 1}),
                      ("waitk", {"k": 2.5}), ("alignatt", {"layer": "last"}), ("psfuture", {"placeholder": 3}),
                      ("psfuture", {"agree": "yes"}), ("psfuture", {"futures": 1.5})):
        with pytest.raises(ConfigError, match=f"{name} setting {next(iter(bad))}="):
            make_policy(name, **bad)
    assert make_policy("psfuture", threshold=1).threshold == 1 and make_policy("alignatt", layer=None).layer is None
    assert make_policy("psfuture", threshold=0.1).signature() == (
        "psfuture(threshold=0.1,placeholder=unk,k=1,prefix_eos=False,divergence=kl,future_eos=True,futures=1,"
        "agree=False,min_read=0,write_from=p)")


def test_offline_always_reads_without_asking():
    decision, asked = run(Offline().step(ctx(words=30)), lambda q: pytest.fail("asked the model"))
    assert decision.write == () and asked == []


# (k, words read, committed target, top token) -> write?
@pytest.mark.parametrize("k,words,target,top,write", [
    (2, 1, (), A, False),  # first word needs k source words
    (2, 2, (), A, True),
    (2, 2, (A,), B, False),  # second word needs k + 1
    (2, 2, (A,), CONT, True),  # continuing a word is free
    (2, 3, (A, CONT), B, True),
    (1, 3, (A, B, C), A, False),
    (1, 3, (A, B, C), EOS, False),  # EOS counts as a new word: waits like one
    (1, 4, (A, B, C), EOS, True),  # ... and the core drops it while the source is open
])
def test_waitk(k, words, target, top, write):
    decision, asked = run(WaitK(k=k).step(ctx(words, target)), lambda q: answer(torch.eye(8)[top].log()))
    assert decision.write == ((top,) if write else ())
    assert [q.src for q in asked] == [tuple(range(10, 10 + words)) + (EOS,)]


def scripted(hyps):
    """A fake model whose greedy continuation of prefix is hyps[source length] (then EOS)."""
    def reply(q):
        n = len(q.src) - 1  # minus EOS
        h = hyps[n]
        nxt = h[len(q.prefix)] if len(q.prefix) < len(h) else EOS
        return answer(torch.eye(8)[nxt].log())
    return reply


def test_local_agreement_commits_common_prefix_of_last_two_hypotheses():
    hyps = {1: (A, B), 2: (A, C, B), 3: (A, C, B, B), 4: (A, C, C)}
    policy, memory, target, log = LocalAgreement(), None, (), []
    for words in (1, 2, 2, 3, 4):  # the repeated 2: a call after a commit on the same source
        decision, asked = run(policy.step(ctx(words, target, memory)), scripted(hyps))
        target += decision.write
        memory = decision.memory
        log.append((decision.write, len(asked)))
    # 1 word: nothing to compare; 2: LCP(AB, ACB) = A; same source again: no new decode;
    # 3: LCP(ACB, ACBB) beyond A = CB; 4: decoding from ACB ends at once, nothing new agreed.
    assert log == [((), 3), ((A,), 4), ((), 0), ((C, B), 4), ((), 1)]
    assert target == (A, C, B)


def test_local_agreement_n3_waits_for_three_hypotheses():
    hyps = {1: (A,), 2: (A, B), 3: (A, B)}
    memory, writes = None, []
    for words in (1, 2, 3):
        decision, _ = run(LocalAgreement(n=3).step(ctx(words, (), memory)), scripted(hyps))
        memory = decision.memory
        writes.append(decision.write)
    assert writes == [(), (), (A,)]


@pytest.mark.parametrize("frames,aligned,expected", [
    # source: 4 pieces + EOS (positions 0..4); tokens A, B, C attend to `aligned` positions
    (1, (0, 1, 2), (A, B, C)),
    (1, (0, 3, 1), (A,)),  # B looks at the last piece: stop before it
    (2, (0, 2, 1), (A,)),
    (2, (1, 1, 4), (A, B)),  # C looks at EOS: the end of the source
    (1, (4, 0, 0), ()),
])
def test_alignatt_stops_at_first_token_attending_the_source_end(frames, aligned, expected):
    tokens = (A, B, C)

    def reply(q):
        t = len(q.prefix) - 1  # the committed prefix holds one token
        if t >= len(tokens):
            return answer(torch.eye(8)[EOS].log(), torch.eye(5)[0])
        return answer(torch.eye(8)[tokens[t]].log(), torch.eye(5)[aligned[t]])

    decision, asked = run(AlignAtt(frames=frames, layer=0).step(ctx(4, (C,))), reply)
    assert decision.write == expected + ((EOS,) if expected == tokens else ())
    assert {q.attn_layer for q in asked} == {0}


def test_greedy_respects_max_len_and_eos():
    reply = scripted({2: (A, B, C, A, B)})
    step = greedy((10, 11, EOS), (A,), VOCAB, max_len=3)
    assert run(step, reply)[0] == (B, C)
    assert run(greedy((10, 11, EOS), (), VOCAB, max_len=99), reply)[0] == (A, B, C, A, B, EOS)
