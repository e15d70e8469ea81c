"""Session: exact delays with a deterministic fake model, then the same core on the tiny real model."""
from collections import Counter

import pytest
import torch

from psfuture.errors import SessionError
from psfuture.model import Answer, Vocab, load_model
from psfuture.policies import AlignAtt, LocalAgreement, Offline, PsFuture, WaitK
from psfuture.session import Session, State, run_batched
from psfuture.experiments.sweep import stream  # SimulEval's feeding order: the last word comes with the end

BOS, PAD, EOS, UNK = 0, 1, 2, 3
SYMBOLS = ["<s>", "<pad>", "</s>", "<unk>"] + [f"s{i}" for i in range(10)] + [f"\u2581t{i}" for i in range(10)] + ["x"]
CONT = SYMBOLS.index("x")


class FakeModel:
    """Translates source word s<i> to target word t<i> (s1 -> the two pieces t1 + x), monotonically.
    The next piece is certain once the source word after its own has been read; with a pseudo-future
    (an <unk> in the source) a piece of the last word read gets a different distribution. The next
    piece of an unread word is EOS. Cross-attention is one-hot on the piece's source word."""

    def __init__(self):
        self.vocab = Vocab(eos=EOS, pad=PAD, unk=UNK, bos=BOS, nspecial=4, size=len(SYMBOLS),
                           word_start=frozenset(i for i, s in enumerate(SYMBOLS) if s.startswith("\u2581")),
                           indices={s: i for i, s in enumerate(SYMBOLS)})
        self.calls = Counter()

    def encode_word(self, word):
        return (SYMBOLS.index(word),)

    def decode(self, ids):
        return "".join(SYMBOLS[i] for i in ids).replace("\u2581", " ").strip()

    def next_token(self, queries):
        self.calls["decoder"] += 1
        return [self._answer(q) for q in queries]

    def _answer(self, q):
        words = [SYMBOLS[i] for i in q.src if 4 <= i < 14]
        pieces = [(j, p) for j, w in enumerate(words) for p in ([f"\u2581t{w[1:]}"] + ["x"] * (w == "s1"))]
        if len(q.prefix) < len(pieces):
            source_word, piece = pieces[len(q.prefix)]
            token = SYMBOLS.index(piece)
        else:
            source_word, token = len(words), EOS
        logits = torch.zeros(len(SYMBOLS))
        logits[token] = 10.0
        if UNK in q.src and source_word == len(words) - 1:
            logits[UNK] = 10.0  # the pseudo-future makes the last word's translation uncertain
        attn = torch.zeros(len(q.src))
        attn[min(source_word, len(q.src) - 1)] = 1.0
        return Answer(torch.log_softmax(logits, 0), attn)


@pytest.mark.parametrize("policy,delays", [
    (Offline(), (5, 5, 5, 5, 5)),
    (WaitK(k=1), (2, 3, 4, 5, 5)),
    (WaitK(k=2), (3, 4, 5, 5, 5)),
    (WaitK(k=9), (5, 5, 5, 5, 5)),
    (PsFuture(threshold=0.1), (3, 4, 5, 5, 5)),
    (PsFuture(threshold=0.1, divergence="top1", k=2, prefix_eos=False), (3, 4, 5, 5, 5)),
    (PsFuture(threshold=1e9), (2, 3, 4, 5, 5)),  # always writes; EOS on a prefix still reads
    (LocalAgreement(), (3, 4, 5, 5, 5)),
    (AlignAtt(frames=1), (3, 4, 5, 5, 5)),
    (AlignAtt(frames=2), (4, 5, 5, 5, 5)),
])
def test_exact_delays_on_fake_model(policy, delays):
    s = stream(FakeModel(), policy, "s0 s1 s2 s3 s4")
    assert s.target_words == ("t0", "t1x", "t2", "t3", "t4")
    assert s.delays == delays
    assert s.state is State.DONE


def test_pop_returns_each_word_once_and_state_moves_on():
    s = Session(FakeModel(), WaitK(k=1))
    assert s.state is State.READING and s.pop() == []
    s.push("s0 s2")  # a str of words
    assert s.source_words == ("s0", "s2") and s.pop() == ["t0"]
    s.push(["s3"], run=False)
    assert s.pop() == []
    s.finish(run=False)
    assert s.state is State.FINISHED and s.pop() == []
    s.run()
    assert s.state is State.DONE and s.pop() == ["t2", "t3"] and s.pop() == []
    assert s.text == "t0 t2 t3" and s.delays == (2, 3, 3)
    assert s.stats.decoder_calls > 0 and s.stats.queries >= s.stats.decoder_calls


def test_misuse_raises_session_error():
    s = Session(FakeModel(), Offline())
    s.finish()
    assert s.state is State.DONE and s.target_words == ()
    with pytest.raises(SessionError, match="push\\(\\) after finish"):
        s.push("s1")
    with pytest.raises(SessionError, match="finish\\(\\) called twice"):
        s.finish()
    with pytest.raises(SessionError, match="str or a list of str"):
        Session(FakeModel(), Offline()).push([1, 2])
    with pytest.raises(SessionError, match="must be a psfuture.policies.Policy"):
        Session(FakeModel(), "waitk")


def test_max_len_caps_output():
    s = stream(FakeModel(), Offline(), "s0 s2 s3 s4 s5 s6", max_len_a=0, max_len_b=3)
    assert s.target_words == ("t0", "t2", "t3")


# ---- the tiny real model ---------------------------------------------------------------------------
SENTENCES = ["Und Gott sprach: Es werde Licht! und es ward Licht.",
             "Und Gott sah das Licht, daß es gut war;",
             "Und Gott nannte das Licht Tag, und die Finsternis nannte er Nacht."]
CAP = {"max_len_a": 1.0, "max_len_b": 5}  # the tiny model repeats itself up to the length cap
POLICIES = [Offline(), WaitK(k=2), PsFuture(threshold=0.5), PsFuture(threshold=0.2, placeholder="bos", k=2,
            prefix_eos=False, divergence="js"), LocalAgreement(), AlignAtt(frames=2, layer=0)]


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    return load_model(tiny_model_dir)


@pytest.mark.parametrize("policy", [Offline(), WaitK(k=100), PsFuture(min_read=1000)], ids=str)
def test_most_lenient_setting_equals_offline_greedy(model, policy):
    for sentence in SENTENCES:
        s = stream(model, policy, sentence, **CAP)
        assert s.text == model.translate([sentence], beam=1, **CAP)[0]
        assert set(s.delays) == {len(sentence.split())}


def test_stateless_and_incremental_runs_agree(model, tiny_model_dir):
    stateless = load_model(tiny_model_dir, incremental=False)
    for policy in POLICIES:
        for sentence in SENTENCES[:2] if policy.name != "la" else SENTENCES[1:2]:  # LA re-decodes per word
            a, b = stream(model, policy, sentence, **CAP), stream(stateless, policy, sentence, **CAP)
            assert (a.target_ids, a.delays) == (b.target_ids, b.delays), policy
            n = len(sentence.split())
            assert list(a.delays) == sorted(a.delays) and all(1 <= d <= n for d in a.delays)
            assert len(a.delays) == len(a.target_words) and a.text == model.decode(a.target_ids)


def test_run_batched_matches_separate_sessions(model):
    separate = [stream(model, p, SENTENCES[0], **CAP) for p in POLICIES]
    model.clear_cache()
    sessions = [Session(model, p, **CAP) for p in POLICIES]
    before = model.calls["decoder"]
    for w in SENTENCES[0].split():
        for s in sessions:
            s.push(w, run=False)
        run_batched(model, sessions)
    for s in sessions:
        s.finish(run=False)
    run_batched(model, sessions)
    batched_calls = model.calls["decoder"] - before
    for a, b in zip(separate, sessions):
        assert (a.target_ids, a.delays) == (b.target_ids, b.delays)
    assert batched_calls < sum(s.stats.decoder_calls for s in separate)
