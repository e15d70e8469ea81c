"""One simultaneous-translation stream: source words in, target words out, a policy in between.

    s = Session(load_model(), PsFuture(threshold=0.3))
    s.push("Im Anfang")      # runs the policy until it wants the next source word
    s.pop()                  # -> new complete target words, e.g. ["In"]
    s.finish()               # source complete: the rest of the translation is written
    s.pop(), s.delays        # delays[i]: source words read when target word i was written

push/finish do the model work synchronously (run them off an event loop if needed). For several
streams at once, push(..., run=False) each and call run_batched(model, sessions): their model
queries then go through the model's next_token together.
"""
from __future__ import annotations

import enum
import time
from dataclasses import dataclass
from typing import Generator, Iterable, Sequence

from psfuture.errors import SessionError
from psfuture.backends.base import Answer, ModelBackend, Query
from psfuture.policies import Context, Policy, greedy


class State(enum.Enum):
    READING = "reading"  # source still arriving
    FINISHED = "finished"  # source complete, the rest of the translation not yet written
    DONE = "done"  # translation complete


@dataclass
class Stats:
    encoder_calls: int = 0  # model forward calls this session took part in
    decoder_calls: int = 0
    queries: int = 0  # next-token queries (batch rows) it asked for
    seconds: float = 0.0  # wall time of its model work


Work = Generator[list[Query], list[Answer], None]


class Session:
    """See the module docstring. Target pieces are emitted as whole detokenized words: a word is
    complete when the next committed piece starts a new word, or at the end."""

    def __init__(self, model: ModelBackend, policy: Policy, *, max_len_a: float = 2.0, max_len_b: int = 10):
        if not isinstance(policy, Policy):
            raise SessionError(f"policy must be a psfuture.policies.Policy, not {type(policy).__name__}")
        policy.validate(model.vocab)
        self.model, self.policy = model, policy
        self.max_len_a, self.max_len_b = max_len_a, max_len_b
        self._state = State.READING
        self._source_words: list[str] = []
        self._source_ids: list[tuple[int, ...]] = []
        self._target: list[int] = []  # committed target ids
        self._word_start = 0  # index in _target of the word not yet emitted
        self._words: list[str] = []
        self._delays: list[int] = []
        self._popped = 0
        self._memory = None  # the policy's per-stream memory
        self._blocked = False  # the policy said READ and no word has arrived since
        self._busy = False
        self.stats = Stats()

    # ---- read-only views ----------------------------------------------------------------------
    @property
    def state(self) -> State:
        return self._state

    @property
    def source_words(self) -> tuple[str, ...]:
        return tuple(self._source_words)

    @property
    def target_words(self) -> tuple[str, ...]:
        return tuple(self._words)

    @property
    def target_ids(self) -> tuple[int, ...]:
        return tuple(self._target)

    @property
    def delays(self) -> tuple[int, ...]:
        return tuple(self._delays)

    @property
    def text(self) -> str:
        return " ".join(self._words)

    # ---- input / output -----------------------------------------------------------------------
    def push(self, words: str | Iterable[str], *, run: bool = True) -> None:
        """Append source words (a whitespace-separated str or a list of words); then, unless run=False,
        let the policy write what it can."""
        if self._state is not State.READING:
            raise SessionError("push() after finish(): the source of this session is complete; "
                               "start a new Session for a new sentence")
        words = split_words(words)
        for w in words:
            self._source_words.append(w)
            self._source_ids.append(self.model.encode_word(w))
        if words:
            self._blocked = False
            if run:
                self.run()

    def finish(self, *, run: bool = True) -> None:
        """Mark the source complete; then, unless run=False, write the rest of the translation."""
        if self._state is not State.READING:
            raise SessionError("finish() called twice on the same session")
        self._state = State.FINISHED
        if run:
            self.run()

    def pop(self) -> list[str]:
        """Target words completed since the last pop()."""
        new = self._words[self._popped:]
        self._popped = len(self._words)
        return new

    # ---- model work ---------------------------------------------------------------------------
    def run(self) -> None:
        """Do the pending model work now (synchronously)."""
        work = self.work()
        before = dict(self.model.calls)
        start = time.perf_counter()
        try:
            queries = next(work)
            while True:
                self.stats.queries += len(queries)
                queries = work.send(self.model.next_token(queries))
        except StopIteration:
            pass
        finally:
            work.close()
            self.stats.seconds += time.perf_counter() - start
            self._count(before, self.model.calls)

    def _count(self, before: dict, after: dict) -> None:
        self.stats.encoder_calls += after.get("encoder", 0) - before.get("encoder", 0)
        self.stats.decoder_calls += after.get("decoder", 0) - before.get("decoder", 0)

    def _cap(self, n_pieces: int) -> int:
        # Like fairseq's max_len_a * src_len + max_len_b, where src_len counts the EOS.
        return int(self.max_len_a * (n_pieces + 1) + self.max_len_b)

    def work(self) -> Work:
        """The shared core as a generator: yields model queries, receives answers, returns when the
        policy waits for source (or the translation is done). Drive it with run()/run_batched()."""
        if self._busy:
            raise SessionError("this session's model work is already running; do not run it concurrently")
        self._busy = True
        try:
            while self._state is not State.DONE:
                if self._state is State.FINISHED:
                    yield from self._write_rest()
                    return
                if self._blocked or not self._source_ids:
                    return
                ctx = Context(tuple(self._source_ids), tuple(self._target), self.model.vocab,
                              self._cap(sum(map(len, self._source_ids))), self._memory)
                decision = (yield from self.policy.step(ctx)) if len(ctx.target) < ctx.max_len else None
                tokens = decision.write if decision else ()
                self._memory = decision.memory if decision else self._memory
                if self.model.vocab.eos in tokens:  # EOS on a prefix means: wait for more source
                    tokens = tokens[:tokens.index(self.model.vocab.eos)]
                tokens = tokens[:max(0, ctx.max_len - len(ctx.target))]
                if not tokens:
                    self._blocked = True
                    return
                self._commit(tokens)
        finally:
            self._busy = False

    def _write_rest(self) -> Work:
        if self._source_ids:
            src = tuple(i for w in self._source_ids for i in w) + (self.model.vocab.eos,)
            new = yield from greedy(src, tuple(self._target), self.model.vocab, self._cap(len(src) - 1))
            self._commit(tuple(t for t in new if t != self.model.vocab.eos))
        if self._word_start < len(self._target):
            self._emit(self._target[self._word_start:])
            self._word_start = len(self._target)
        self._state = State.DONE

    def _commit(self, tokens: Sequence[int]) -> None:
        for t in tokens:
            if self.model.vocab.starts_word(t) and self._word_start < len(self._target):
                self._emit(self._target[self._word_start:])
                self._word_start = len(self._target)
            self._target.append(t)

    def _emit(self, ids: Sequence[int]) -> None:
        for word in self.model.decode(ids).split():
            self._words.append(word)
            self._delays.append(len(self._source_ids))


def split_words(words: str | Iterable[str]) -> list[str]:
    """push()'s argument as source words: a whitespace-separated str or a list of str (each split at whitespace)."""
    if isinstance(words, str):
        return words.split()
    words = list(words)
    if not all(isinstance(w, str) for w in words):
        raise SessionError("push() takes a str or a list of str words")
    return [part for w in words for part in w.split()]


def run_batched(model: ModelBackend, sessions: Sequence[Session]) -> None:
    """Do the pending model work of several sessions, batching their queries into shared model calls.
    Each session's stats count every call it took part in."""
    works = {}
    for s in sessions:
        if s.model is not model:
            raise SessionError("run_batched() needs sessions that share the given model")
        works[s] = s.work()
    pending: dict[Session, list[Query]] = {}
    for s, w in works.items():
        try:
            pending[s] = next(w)
        except StopIteration:
            pass
    try:
        while pending:
            flat = [q for qs in pending.values() for q in qs]
            before, start = dict(model.calls), time.perf_counter()
            answers = model.next_token(flat)
            spent = time.perf_counter() - start
            i, nxt = 0, {}
            for s, qs in pending.items():
                s.stats.queries += len(qs)
                s.stats.seconds += spent
                s._count(before, model.calls)
                try:
                    nxt[s] = works[s].send(answers[i:i + len(qs)])
                except StopIteration:
                    pass
                i += len(qs)
            pending = nxt
    finally:
        for w in works.values():
            w.close()
