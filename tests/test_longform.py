"""One endless stream: segments cut as words arrive, nothing lost or doubled, cost bounded by the segment."""
import resource

import pytest
import torch

from psfuture.backends.base import Answer
from psfuture.errors import ConfigError
from psfuture.longform import LongSession, translate
from psfuture.model import load_model
from psfuture.policies import make_policy
from psfuture.segmenter import Segmenter
from psfuture.session import Session, run_batched

FIXTURES = __import__("pathlib").Path(__file__).resolve().parent / "fixtures"
CAP = {"max_len_a": 1.0, "max_len_b": 5}


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    return load_model(tiny_model_dir)


@pytest.fixture(scope="module")
def document():
    return " ".join((FIXTURES / "tiny.de").read_text(encoding="utf-8").splitlines()[200:240])


def test_every_word_is_in_one_segment_and_the_text_is_their_concatenation(model, document):
    s = LongSession(model, make_policy("psfuture"), **CAP)
    s.push(document)
    s.finish()
    words = document.split()
    assert [w for seg in s.segments for w in seg.source] == words
    assert [seg.start for seg in s.segments] == [sum(len(x.source) for x in s.segments[:i]) for i in range(len(s.segments))]
    assert " ".join(seg.text for seg in s.segments if seg.words) == s.text
    assert list(s.delays) == [d for seg in s.segments for d in seg.delays] == sorted(s.delays)
    for seg in s.segments:  # a segment's words are written while its own source is read
        assert all(seg.start < d <= seg.start + len(seg.source) for d in seg.delays)
    assert {seg.cut for seg in s.segments[:-1]} == {"punctuation"} and s.segments[-1].cut in ("punctuation", "end")
    assert all(seg.source[-1][-1] in ".!?" for seg in s.segments[:-1])


def test_word_by_word_pasted_and_batched_give_the_same_translation(model, document):
    policy = make_policy("waitk", k=2)
    one = LongSession(model, policy, **CAP)
    for word in document.split():
        one.push(word)
    one.finish()
    pasted = LongSession(model, policy, **CAP)
    pasted.push(document)
    pasted.finish()
    together = [LongSession(model, policy, **CAP) for _ in range(3)]
    for word in document.split():
        for s in together:
            s.push([word], run=False)
        run_batched(model, together)
    for s in together:
        s.finish(run=False)
    run_batched(model, together)
    assert one.text == pasted.text and one.delays == pasted.delays
    assert all(s.text == one.text and s.delays == one.delays for s in together)
    assert [x.text for x in translate(model, policy, document, **CAP)] == [x.text for x in one.segments]


def test_the_guard_cuts_unpunctuated_text_and_bounds_what_the_model_sees(model, document):
    plain = document.replace(".", "").replace("!", "").replace("?", "")
    seen = []
    inner = model.next_token
    model.next_token = lambda queries: seen.extend(len(q.src) for q in queries) or inner(queries)
    try:
        segments = translate(model, make_policy("psfuture"), plain, Segmenter(max_words=7), **CAP)
    finally:
        del model.next_token
    n = len(plain.split())
    assert [len(s.source) for s in segments] == [7] * (n // 7) + ([n % 7] if n % 7 else [])
    assert {s.cut for s in segments[:n // 7]} == {"length"}
    longest = max(len(model.encode(" ".join(s.source))) for s in segments)
    assert max(seen) <= longest + 3  # EOS and the pseudo-future: never the stream so far


class _EndsEverywhere:
    """A model that always ends the translation: the model rule must cut at min_words."""

    def __init__(self, vocab):
        self.vocab, self.info, self.calls = vocab, {}, {}

    def encode_word(self, word):
        return (self.vocab.nspecial,)

    def decode(self, ids):
        return " ".join("x" for _ in ids)

    def next_token(self, queries):
        logprobs = torch.full((self.vocab.size,), -30.0)
        logprobs[self.vocab.eos] = 0.0
        return [Answer(logprobs, torch.ones(len(q.src))) for q in queries]


def test_the_model_rule_cuts_where_the_model_ends_the_translation(model):
    fake = _EndsEverywhere(model.vocab)
    s = LongSession(fake, make_policy("psfuture"), Segmenter(punctuation=False, model=True, min_words=3))
    s.push("a b c d e f g")
    s.finish()
    assert [(len(x.source), x.cut) for x in s.segments] == [(3, "model"), (3, "model"), (1, "end")]


def test_a_model_cut_writes_what_a_finished_segment_would(model, document):
    """The probe's completion becomes the segment's final decode: the same words as a Session fed the segment's
    words one by one and then finished, without decoding it twice."""
    plain = document.lower().replace(".", "").replace("!", "").replace("?", "")
    policy = make_policy("psfuture")
    segments = translate(model, policy, plain, Segmenter(punctuation=False, model=True, model_eos=0.3), **CAP)
    cut = [seg for seg in segments if seg.cut == "model"]
    assert cut, "the model rule cut somewhere in 40 sentences"
    for seg in cut[:5]:
        alone = Session(model, policy, **CAP)
        for word in seg.source:
            alone.push(word)
        alone.finish()
        assert alone.target_words == seg.words


def test_an_hour_of_speech_keeps_cost_and_memory_flat(model, document):
    """9,000 words, a one-hour talk at 2.5 words/s, accelerated: the model's work per word and the process's
    memory do not grow with the stream."""
    words = document.split()
    s = LongSession(model, make_policy("waitk", k=3), **CAP)
    rss, calls = [], []
    for i in range(9000):
        before = sum(model.calls.values())
        s.push(words[i % len(words)])
        calls.append(sum(model.calls.values()) - before)
        if i in (999, 8999):
            rss.append(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    s.finish()
    assert s.source_read == 9000 and sum(len(x.source) for x in s.segments) == 9000
    early, late = sum(calls[500:1500]) / 1000, sum(calls[8000:9000]) / 1000
    assert late <= 1.2 * early + 0.5  # model calls per word: word 8,000 costs what word 500 does
    assert rss[1] - rss[0] < 64 * 1024  # KiB: peak memory after 9,000 words within 64 MB of that after 1,000


def test_edge_calls_keep_the_stream_usable(model):
    s = LongSession(model, make_policy("waitk", k=2), Segmenter(max_words=2), **CAP)
    s.push(["Im", "Anfang"], run=False)  # a length cut whose final decode has not run yet ...
    s.push(["schuf"], run=False)  # ... runs before the next word opens a new segment
    s.push([], boundary=True)  # nothing new: the open segment ends here
    s.push([], last=True)  # and the stream ends
    assert s.state.value == "done" and [x.source for x in s.segments] == [("Im", "Anfang"), ("schuf",)]
    with pytest.raises(Exception, match="after finish"):
        s.push("mehr")
    with pytest.raises(Exception, match="list of str"):
        LongSession(model, make_policy("waitk")).push([1])


def test_previous_context_reaches_the_model_and_not_the_policy(model, document):
    policy = make_policy("alignatt", frames=2)  # reads attention: it must get the segment's positions only
    seen = []
    inner = model.next_token
    model.next_token = lambda queries: seen.extend(queries) or inner(queries)
    try:
        s = LongSession(model, policy, context="previous", **CAP)
        s.push(document)
        s.finish()
    finally:
        del model.next_token
    plain = translate(model, policy, document, **CAP)
    assert [seg.source for seg in s.segments] == [seg.source for seg in plain]
    assert [w for seg in s.segments for w in seg.words] == list(s.target_words)
    for seg in s.segments:
        assert all(seg.start < d <= seg.start + len(seg.source) for d in seg.delays)
    first = model.encode(" ".join(s.segments[0].source))
    carried = [q for q in seen if q.src[:len(first)] == first and len(q.src) > len(first) + 2 and q.prefix]
    assert carried, "the second segment's queries start with the first segment's source and its translation"
    assert s.text != " ".join(w for seg in plain for w in seg.words)  # the context changed what the model wrote
    with pytest.raises(ConfigError, match="context"):
        LongSession(model, policy, context="all")
