"""The model side of the server: one worker thread that owns the model and serves every stream in rounds.

Nothing here knows about sockets or asyncio: `ModelWorker.submit` takes a stream's protocol work and calls
`deliver(outcomes)` on the worker thread when it is done; the adapter (`psfuture.serve.server`) hops them
back onto its event loop. The engine is where a stream's settings become a policy (`build_policy`).
"""
from __future__ import annotations

import collections
import dataclasses
import gc
import enum
import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from psfuture.calibration import Calibration, load_calibration
from psfuture.errors import ConfigError, PsFutureError
from psfuture.policies import POLICIES, make_policy
from psfuture.serve.messages import (Drop, Failed, Finish, Finished, Open, Opened, Outcome, Push, SegmentClosed,
                                     StreamSettings, Work, Wrote)
from psfuture.longform import LongSession
from psfuture.segmenter import Segmenter
from psfuture.session import run_batched

log = logging.getLogger("psfuture.server")


def build_policy(settings: StreamSettings, calibrate: Callable[..., float] | None = None):
    """The policy a stream's settings name; ConfigError for a bad name or setting.

    `calibrate(policy, target_al, settings=...) -> threshold` resolves `target_al` (a dev-set sweep of
    the model); `settings` are the policy's other settings, defaults filled in, which the calibration
    must have been made for."""
    options = dict(settings.options)
    if settings.target_al is not None:
        if calibrate is None:
            raise ConfigError("target_al needs a threshold calibration for this model, and none is loaded; "
                              "give 'threshold' instead")
        if "threshold" in options:
            raise ConfigError("give either target_al or threshold, not both")
    try:
        policy = make_policy(settings.policy, **options)
    except (TypeError, ValueError) as e:
        if isinstance(e, ConfigError):
            raise
        raise ConfigError(f"policy {settings.policy!r}: a setting has the wrong type or value ({e}); "
                          f"got {json.dumps(options)}") from None
    if settings.target_al is None:
        return policy
    others = {k: v for k, v in policy.settings().items() if k != "threshold"}
    return dataclasses.replace(policy, threshold=calibrate(settings.policy, settings.target_al, settings=others))


@dataclass(frozen=True)
class EngineOptions:
    batch: bool = True  # run concurrent streams' model steps as one batch
    warmup: bool = True  # translate a word before serving, so the first client does not pay for cold caches
    # torch intra-op threads for the model. One: on 2 shared cores a second thread made each word ~8x
    # slower (threads spin-waiting for a core); it also leaves a core to the event loop. None: torch's.
    threads: int | None = 1
    calibrate: Callable[..., float] | None = None  # (policy, target_al, settings=) -> threshold; None: the model's


def build_segmenter(settings: StreamSettings, default: Segmenter = Segmenter()) -> Segmenter:
    """The stream's segmenter: `default` with the settings' segment fields (the server's defaults, then the start
    message's); ConfigError if bad."""
    try:
        return dataclasses.replace(default, **{StreamSettings.SEGMENT_FIELDS[k]: v for k, v in settings.segment})
    except ConfigError as e:  # name the setting as the client spelled it
        message = str(e)
        for field, name in StreamSettings.SEGMENT_FIELDS.items():
            message = message.replace(f"{name}=", f"{field}=", 1) if message.startswith(f"{name}=") else message
        raise ConfigError(message) from None


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _jsonable(dataclasses.asdict(value))
    if hasattr(value, "item") and callable(value.item):  # numpy / torch scalars
        return value.item()
    if isinstance(value, enum.Enum):
        return value.value
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


class Engine:
    """Opens translation sessions on one loaded model; used only from the worker thread.
    calibrate: (policy, target_al, settings=) -> threshold; None: the model's own calibration.json, if any."""

    def __init__(self, model, calibrate: Callable[..., float] | None = None, segmenter: Segmenter = Segmenter()):
        self.model, self.segmenter = model, segmenter
        self.calibrate: Calibration | Callable[..., float] | None = (
            calibrate if calibrate is not None else load_calibration(model))

    def info(self) -> dict:
        info = getattr(self.model, "info", {}) or {}
        keys = ("name", "sha256", "precision", "device", "src_lang", "tgt_lang")
        return {"model": {k: (info.get(k) if k in info else (info.get("spec") or {}).get(k)) for k in keys
                          if k in info or k in (info.get("spec") or {})}}

    def policy(self, settings: StreamSettings):
        return build_policy(settings, self.calibrate)

    def open(self, settings: StreamSettings) -> LongSession:
        return LongSession(self.model, self.policy(settings), build_segmenter(settings, self.segmenter))


def available_policies() -> list[str]:
    return list(POLICIES)


def average_lagging(delays: list[int], source_len: int) -> float | None:
    """AL (Ma et al. 2019) in source words, over the target words up to the first written after the whole source."""
    if not delays or not source_len:
        return None
    rate = len(delays) / source_len
    total, tau = 0.0, 0
    for i, d in enumerate(delays):
        total += d - i / rate
        tau += 1
        if d >= source_len:
            break
    return round(total / tau, 3)


@dataclass
class _Item:
    key: Any
    work: Work
    since: float  # perf_counter() when it was queued
    deliver: Callable[[list[Outcome]], None]


class ModelWorker:
    """The one thread that touches the model.

    Each stream's work waits in its own FIFO queue. A round takes the next item of every waiting stream,
    so streams are served fairly and each stream's steps stay in order; with `batch` the model steps of
    one round run together (`session.run_batched`: one model call serves every stream in the round).
    Each source word is one step (the policy decides after every word, as in a SimulEval run), whether
    the words came one per message or pasted all at once: the translation depends only on the words and
    the policy, never on how the client chunked them or how busy the server is.
    """

    def __init__(self, engine: Engine, batch: bool = True, warmup: bool = False, threads: int | None = None):
        self.engine, self.batch, self.warmup, self.threads = engine, batch, warmup, threads
        self._queues: dict[Any, collections.deque] = {}
        self._cond = threading.Condition()
        self._sessions: dict[Any, Any] = {}
        self._stopping = False
        self.rounds = 0
        self._thread = threading.Thread(target=self._run, name="psfuture-model", daemon=True)
        self._thread.start()

    def submit(self, key: Any, work: Work, deliver: Callable[[list[Outcome]], None]) -> None:
        """Queue work for stream `key`; `deliver(outcome)` is called on the worker thread when done."""
        with self._cond:
            if isinstance(work, Drop):
                self._queues.pop(key, None)  # queued work of a dropped stream is moot
            queue, now = self._queues.setdefault(key, collections.deque()), time.perf_counter()
            if isinstance(work, Push):  # one step per word: see the class docstring
                queue.extend(_Item(key, Push(work.stream, (word,)), now, deliver) for word in work.words)
            else:
                queue.append(_Item(key, work, now, deliver))
            self._cond.notify()

    def stop(self, timeout: float | None = 10.0) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify()
        self._thread.join(timeout)

    def _run(self) -> None:
        if self.threads:
            import torch
            torch.set_num_threads(self.threads)  # from this thread: OpenMP's thread count is per thread
        if self.warmup:  # a short PsFuture stream: its first steps allocate and pick kernels for every shape
            try:
                session = self.engine.open(StreamSettings())
                for word in "Guten Morgen , wie geht es Ihnen heute ?".split():
                    session.push([word])
                session.finish()
            except Exception:
                log.warning("warm-up translation failed", exc_info=True)
        # What loading torch, fairseq and the model left behind never dies: keep the collector from walking it.
        # A full collection of those ~360k objects stalled a 256-stream round for ~210 ms (eval/bench_engine.py).
        gc.freeze()
        while True:
            with self._cond:
                while not self._queues and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                items = [q.popleft() for q in self._queues.values()]
                self._queues = {k: q for k, q in self._queues.items() if q}
            try:
                self._round(items)
            except Exception:  # keep serving the other streams whatever happened
                log.exception("model worker round failed")

    def _round(self, items: list[_Item]) -> None:
        self.rounds += 1
        stepping = []  # items whose session has model work to run this round
        for item in items:
            try:
                if self._start(item):
                    stepping.append(item)
            except Exception as e:
                self._fail(item, e)
        # Reading steps first: a finishing stream decodes the whole rest of its sentence, and the streams
        # still listening should not wait for that before hearing their next words.
        for group in ([i for i in stepping if isinstance(i.work, Push)],
                      [i for i in stepping if isinstance(i.work, Finish)]):
            if group:
                self._step(group)

    def _step(self, items: list[_Item]) -> None:
        try:
            self._run_sessions([self._sessions[i.key] for i in items])
        except Exception:  # one stream's failure must not take the others down: retry them one by one
            log.warning("batched model step failed; rerunning its %d streams one at a time", len(items),
                        exc_info=True)
            for item in items:
                try:
                    self._run_sessions([self._sessions[item.key]])
                except Exception as e:
                    self._fail(item, e)
        for item in items:
            if item.key in self._sessions:
                item.deliver(self._outcome(item))

    def _run_sessions(self, sessions: list) -> None:
        if self.batch and len(sessions) > 1:
            run_batched(self.engine.model, sessions)
        else:
            for session in sessions:
                session.run()

    def _start(self, item: _Item) -> bool:
        """Apply the item to its session; True if it left model work to run."""
        work = item.work
        if isinstance(work, Drop):
            self._sessions.pop(item.key, None)
            return False
        if isinstance(work, Open):
            session = self._sessions[item.key] = self.engine.open(work.settings)
            item.deliver([Opened(work.stream, {**self.engine.info(), "policy": session.policy.signature(),
                                               "segmenter": session.segmenter.signature(),
                                               "settings": work.settings.as_dict()})])
            return False
        session = self._sessions.get(item.key)
        if session is None:  # opening failed and the client has been told
            return False
        if isinstance(work, Push):
            session.push(list(work.words), run=False)
        elif work.words:  # the (at most one) word that came with the end: no step of its own
            session.push(list(work.words), run=False, last=True)
        else:
            session.finish(run=False)
        return True

    def _outcome(self, item: _Item) -> list[Outcome]:
        session, n = self._sessions[item.key], item.work.stream
        written = session.pop()
        lag_ms = round((time.perf_counter() - item.since) * 1000, 2)
        out: list[Outcome] = []
        for segment in sorted({k for k, _, _ in written}) or [session.segment_index]:  # a round may close segments
            mine = [(w, d) for k, w, d in written if k == segment]
            start = session.segments[segment].start if segment < len(session.segments) else session.segment_start
            out.append(Wrote(n, tuple(w for w, _ in mine), session.source_read, tuple(d for _, d in mine), lag_ms,
                             segment, start))
        out += [SegmentClosed(n, s.index, " ".join(s.source), s.text, s.cut, s.start, s.delays)
                for s in session.pop_segments()]
        if isinstance(item.work, Finish):
            del self._sessions[item.key]
            delays = list(session.delays)
            segments = session.segments
            als = [a for s in segments if (a := average_lagging([d - s.start for d in s.delays], len(s.source)))
                   is not None]
            out.append(Finished(n, session.text, {
                "words": list(session.target_words), "source_words": session.source_read, "delays": delays,
                "segments": len(segments), "al": round(sum(als) / len(als), 3) if als else None,
                "stats": _jsonable(session.stats)}))
        return out

    def _fail(self, item: _Item, e: Exception) -> None:
        self._sessions.pop(item.key, None)
        if isinstance(e, PsFutureError):
            code = "bad_setting" if isinstance(item.work, Open) else "engine"
            message = str(e)
        else:
            log.error("model work %s failed for stream %s", type(item.work).__name__, item.key, exc_info=e)
            code, message = "internal", "internal error; the stream was closed"
        item.deliver([Failed(item.work.stream, code, message)])
