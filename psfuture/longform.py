"""One endless stream (a talk, a meeting, an ASR transcript): cut into segments as the words arrive, each
segment translated by a sentence-level Session with the stream's policy. Text already written is never revised.

    s = LongSession(model, make_policy("psfuture"))
    s.push("Klicken Sie auf OK. Dann")     # "OK." ends a segment: its translation is completed at once
    s.pop()                                # -> [(0, "Click"), (0, "OK."), ...]: (segment, word)
    s.finish(); s.segments                 # closed segments: source, translation, delays, why each was cut

Cut rules (Segmenter; psfuture's own choices, measured in eval/longform.py):
  * punctuation: after a word ending in . ! ? (also before a closing quote or bracket), unless it is a German
    abbreviation ("z.B.", "Nr.") or an ordinal ("3.") — decided when the word arrives, no look-ahead;
  * model: for unpunctuated input. After the policy's step on a word, complete the translation as if the source
    ended there; cut when the model, asked again with the pseudo-future (more source to come), still ends the
    translation there with probability >= model_eos. PsFuture's question "would more source change my next
    token?", asked of the end of the sentence;
  * max_words: the guard, a segment never exceeds it.
Context (`context=`): "none" (default) starts each segment afresh; "previous" gives the model the previous
segment's source before the open one's and its translation as a forced target prefix (policies never see it: the
queries are rewritten on their way to the model). Either way the cost and memory of a word do not depend on how
long the stream has run: only on its segment (and the one before), at most max_words long each.
"""
from __future__ import annotations

from typing import Iterable

from psfuture.backends.base import Answer, ModelBackend, Query
from psfuture.errors import ConfigError, SessionError
from psfuture.policies import Policy, PsFuture, greedy
from psfuture.segmenter import Segment, Segmenter, ends_sentence
from psfuture.session import Session, State, Stats, Work, split_words

CONTEXTS = ("none", "previous")


class LongSession:
    """See the module docstring. Drive it like a Session: push/finish with run=True, or run=False and let
    `run_batched` (psfuture.session) run the `work()` of many streams together."""

    def __init__(self, model: ModelBackend, policy: Policy, segmenter: Segmenter = Segmenter(), *,
                 context: str = "none", **session_kw):
        if context not in CONTEXTS:
            raise ConfigError(f"context={context!r}: choose one of {', '.join(CONTEXTS)}")
        self.model, self.policy, self.segmenter, self.session_kw = model, policy, segmenter, session_kw
        self.context = context
        self._prefix: tuple[tuple[int, ...], tuple[int, ...]] = ((), ())  # (source, target) ids before the segment
        self._tails = (policy if isinstance(policy, PsFuture) else PsFuture()).future_tails(model.vocab)
        self._session: Session | None = None
        self._start = 0  # stream position of the open segment's first word
        self._read = 0  # source words of the stream so far
        self._pending_cut: str | None = None  # the open segment ends once its work has run
        self._probe = False  # ask the model whether the open segment has ended
        self._finished = False
        self.segments: list[Segment] = []
        self._words: list[tuple[int, str]] = []  # (segment, word), every word written
        self._delays: list[int] = []
        self._popped = 0
        self._popped_segments = 0
        self._offset = 0  # target words of the closed segments
        self.stats = Stats()

    # ---- views ------------------------------------------------------------------------------------
    @property
    def state(self) -> State:
        if self._finished and self._session is None:
            return State.DONE
        return State.FINISHED if self._finished else State.READING

    @property
    def text(self) -> str:
        return " ".join(w for _, w in self._words)

    @property
    def target_words(self) -> tuple[str, ...]:
        return tuple(w for _, w in self._words)

    @property
    def delays(self) -> tuple[int, ...]:
        return tuple(self._delays)

    @property
    def source_read(self) -> int:
        return self._read

    @property
    def segment_start(self) -> int:
        """Stream position of the open segment's first word (of the next one's, when none is open)."""
        return self._start if self._session is not None else self._read

    @property
    def segment_index(self) -> int:
        """The index the open (or next) segment has."""
        return len(self.segments)

    # ---- input / output ---------------------------------------------------------------------------
    def push(self, words: str | Iterable[str], *, run: bool = True, boundary: bool = False, last: bool = False) -> None:
        """Append source words, one policy step each (as Session.push). boundary=True: the last of them ends a
        segment (a line end, a pause: a boundary the caller knows); last=True: they end the stream. Either way that
        word goes straight to the final decode, as SimulEval feeds a sentence's last word."""
        if self._finished:
            raise SessionError("push() after finish(): this stream has ended; start a new LongSession")
        words = split_words(words)
        if not words:
            return self.finish(run=run) if last else self.cut(run=run) if boundary else None
        for i, word in enumerate(words):
            if self._pending_cut is not None:  # a cut whose final decode has not run yet: run it first
                self.run()
            final = i == len(words) - 1 and (last or boundary)
            if self._session is None:
                self._session = Session(self.model, self.policy, **self.session_kw)
                self._start = self._read
            self._read += 1
            n = len(self._session.source_words) + 1
            cut = ("punctuation" if self.segmenter.punctuation and ends_sentence(word) else
                   "length" if n >= self.segmenter.max_words else None)
            if final:
                cut = "end" if last else "given"
            self._session.push([word], run=False)
            if cut:  # the word that ends a segment goes straight to its final decode
                self._session.finish(run=False)
                self._pending_cut = cut
            else:
                self._probe = self.segmenter.model and n >= self.segmenter.min_words
            if run or i < len(words) - 1:
                self.run()
        if last:
            self._finished = True

    def cut(self, *, run: bool = True) -> None:
        """End the open segment here (a boundary the caller knows, after words already pushed)."""
        if self._session is not None and self._session.state is State.READING:
            self._session.finish(run=False)
            self._pending_cut = "given"
            if run:
                self.run()

    def finish(self, *, run: bool = True) -> None:
        """The stream has ended: complete the open segment."""
        if self._finished:
            raise SessionError("finish() called twice on the same stream")
        self._finished = True
        if self._session is not None and self._session.state is State.READING:
            self._session.finish(run=False)
            self._pending_cut = "end"
        if run:
            self.run()

    def pop(self) -> list[tuple[int, str, int]]:
        """(segment, word, delay) of the target words written since the last pop(); delay: source words of the
        stream read when the word was written."""
        new = [(k, w, d) for (k, w), d in zip(self._words[self._popped:], self._delays[self._popped:])]
        self._popped = len(self._words)
        return new

    def pop_segments(self) -> list[Segment]:
        """Segments closed since the last pop_segments()."""
        new = self.segments[self._popped_segments:]
        self._popped_segments = len(self.segments)
        return new

    # ---- model work -------------------------------------------------------------------------------
    run = Session.run  # drive work() against the model, counting into self.stats
    _count = Session._count

    def work(self) -> Work:
        """The open segment's pending work as a generator of model queries (see Session.work)."""
        session = self._session
        if session is None:
            return
        yield from self._in_context(session.work())
        if self._probe and self._pending_cut is None and session.state is State.READING:
            self._probe = False
            completion = yield from self._in_context(self._ended(session))
            if completion is not None:
                session._commit(completion)  # the probe's greedy completion is the final decode's: not done twice
                session.finish(run=False)
                self._pending_cut = "model"
                yield from self._in_context(session.work())
        self._collect(session)
        if self._pending_cut is not None and session.state is State.DONE:
            self._close(session, self._pending_cut)

    def _in_context(self, work):
        """`work`'s queries with the previous segment put before them; attention cut back to the segment's source."""
        src, tgt = self._prefix
        if not src:
            return (yield from work)
        answers = None
        while True:
            try:
                queries = work.send(answers)
            except StopIteration as stop:
                return stop.value
            answers = yield [Query(src + q.src, tgt + q.prefix, q.attn_layer) for q in queries]
            answers = [Answer(a.logprobs, a.attn[len(src):]) for a in answers]

    def _ended(self, session: Session):
        """The model rule: does the translation end here, even with more source to come? Its completion if so."""
        vocab = self.model.vocab
        src = tuple(i for w in session._source_ids for i in w)
        target = session.target_ids
        cap = session._cap(len(src))
        done = yield from greedy(src + (vocab.eos,), target, vocab, cap)
        if not done or done[-1] != vocab.eos:
            return None
        full = target + done[:-1]
        answers = yield [Query(src + tail, full) for tail in self._tails]
        return done[:-1] if min(float(a.logprobs[vocab.eos].exp()) for a in answers) >= self.segmenter.model_eos else None

    def _collect(self, session: Session) -> None:
        index = len(self.segments)
        for word, delay in zip(session.pop(), session.delays[len(self._delays) - self._offset:]):
            self._words.append((index, word))
            self._delays.append(self._start + delay)

    def _close(self, session: Session, cut: str) -> None:
        self.segments.append(Segment(len(self.segments), self._start, session.source_words, session.target_words,
                                     tuple(self._delays[self._offset:]), cut))
        self._offset = len(self._delays)
        if self.context == "previous":
            self._prefix = (tuple(i for w in session._source_ids for i in w), session.target_ids)
        self._session, self._pending_cut, self._probe = None, None, False


def translate(model: ModelBackend, policy: Policy, text: str, segmenter: Segmenter = Segmenter(),
              **session_kw) -> list[Segment]:
    """A whole document (any number of sentences and lines) as one stream, word by word: its segments."""
    s = LongSession(model, policy, segmenter, **session_kw)
    words = text.split()
    s.push(words, last=True) if words else s.finish()
    return s.segments
