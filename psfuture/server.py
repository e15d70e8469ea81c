"""Websocket server: a thin asyncio adapter around `psfuture.protocol` and one model worker thread.

The event loop only moves messages; every model call runs on a single worker thread that owns the model
(torch on a couple of cores gains nothing from running sessions in parallel threads). The worker serves the
streams round-robin, runs each stream's work strictly in order, and batches the model steps of concurrent
streams into shared model calls (see `ModelWorker`).
The same port serves the browser demo page over plain HTTP at `/`; the websocket lives at `/ws`.
"""
from __future__ import annotations

import asyncio
import collections
import dataclasses
import enum
import itertools
import logging
import signal
import threading
import time
from dataclasses import dataclass
from importlib import resources
from typing import Any, Callable

from websockets.asyncio.server import ServerConnection, serve as ws_serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from .protocol import (Capacity, Drop, Finish, Limits, Open, Push, Reply, ServerProtocol, StreamSettings, Work)

log = logging.getLogger("psfuture.server")
ws_log = logging.getLogger("psfuture.server.websockets")  # the library's own messages


class _ClientFaults(logging.Filter):
    """websockets logs every bad handshake (a browser opening /ws, a port scan) as an ERROR with a
    traceback; that is the client's fault, so it becomes one INFO line (the traceback only at DEBUG)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.getMessage() == "opening handshake failed" and record.levelno > logging.INFO:
            record.levelno, record.levelname = logging.INFO, "INFO"
            if record.exc_info and not ws_log.isEnabledFor(logging.DEBUG):
                record.msg, record.exc_info = f"opening handshake failed: {record.exc_info[1]}", None
            return ws_log.isEnabledFor(logging.INFO)
        return True


ws_log.addFilter(_ClientFaults())

WS_PATH = "/ws"


@dataclass(frozen=True)
class HttpOptions:
    """What the plain-HTTP side of the port answers."""

    page: bool = True  # serve the browser demo at /
    ws_path: str = WS_PATH


@dataclass(frozen=True)
class ShutdownOptions:
    grace_s: float = 5.0  # on SIGINT/SIGTERM, wait this long for ended streams to get their "done"


@dataclass(frozen=True)
class EngineOptions:
    batch: bool = True  # run concurrent streams' model steps as one batch
    warmup: bool = True  # translate a word before serving, so the first client does not pay for cold caches
    # torch intra-op threads for the model. One: on 2 shared cores a second thread made each word ~8x
    # slower (threads spin-waiting for a core); it also leaves a core to the event loop. None: torch's.
    threads: int | None = 1
    calibrate: Callable[..., float] | None = None  # (policy, target_al, settings=) -> threshold; None: the model's


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
    """Opens translation sessions on one loaded model; used only from the worker thread."""

    def __init__(self, model, calibrate: Callable[..., float] | None = None):
        self.model = model
        self.calibrate = calibrate

    def info(self) -> dict:
        info = getattr(self.model, "info", {}) or {}
        return {"model": {k: info[k] for k in ("name", "sha256", "precision") if k in info}}

    def open(self, settings: StreamSettings):
        from .session import Session
        return Session(self.model, settings.to_policy(self.calibrate))


def available_policies() -> list[str]:
    from .policies import POLICIES
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


# What the worker hands back: calls to make on the connection's ServerProtocol, on the event loop.
Outcome = list[tuple[str, tuple, dict]]


@dataclass
class _Item:
    key: Any
    work: Work
    since: float  # perf_counter() when it was queued
    deliver: Callable[[Outcome], None]


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

    def submit(self, key: Any, work: Work, deliver: Callable[[Outcome], None]) -> None:
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
            from .session import run_batched
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
            item.deliver([("opened", (work.stream, {
                **self.engine.info(), "policy": session.policy.signature(),
                "settings": work.settings.as_dict()}), {})])
            return False
        session = self._sessions.get(item.key)
        if session is None:  # opening failed and the client has been told
            return False
        if isinstance(work, Push):
            session.push(list(work.words), run=False)
        else:
            session.finish(run=False)
        return True

    def _outcome(self, item: _Item) -> Outcome:
        session, n = self._sessions[item.key], item.work.stream
        words = session.pop()
        delays = list(session.delays[len(session.delays) - len(words):]) if words else []
        lag_ms = round((time.perf_counter() - item.since) * 1000, 2)
        outcome: Outcome = [("wrote", (n, words, delays[-1] if delays else 0, delays), {"lag_ms": lag_ms})]
        if isinstance(item.work, Finish):
            del self._sessions[item.key]
            delays = list(session.delays)
            outcome.append(("finished", (n, session.text), {
                "words": list(session.target_words), "source_words": len(session.source_words),
                "delays": delays, "al": average_lagging(delays, len(session.source_words)),
                "stats": _jsonable(session.stats)}))
        return outcome

    def _fail(self, item: _Item, e: Exception) -> None:
        self._sessions.pop(item.key, None)
        from .errors import PsFutureError
        if isinstance(e, PsFutureError):
            code = "bad_setting" if isinstance(item.work, Open) else "engine"
            message = str(e)
        else:
            log.error("model work %s failed for stream %s", type(item.work).__name__, item.key, exc_info=e)
            code, message = "internal", "internal error; the stream was closed"
        item.deliver([("failed", (item.work.stream, code, message), {})])


def _page() -> bytes:
    return resources.files("psfuture").joinpath("web/index.html").read_bytes()


class StreamServer:
    """The websocket + page server: `async with StreamServer(model=m, port=0) as s:` listens on `s.port`.

    `model` is a loaded psfuture.model.Model; None loads the shipped one."""

    def __init__(self, host: str = "127.0.0.1", port: int = 8765, *, model=None, limits: Limits = Limits(),
                 defaults: StreamSettings = StreamSettings(), http: HttpOptions = HttpOptions(),
                 engine: EngineOptions = EngineOptions(), shutdown: ShutdownOptions = ShutdownOptions()):
        if model is None:
            from .model import load_model
            model = load_model()
        self.host, self.port = host, port
        self.limits, self.defaults, self.http, self.shutdown_options = limits, defaults, http, shutdown
        self.engine_options = engine
        if engine.calibrate is None:  # the model's own calibration, when it ships one
            from .calibration import load_calibration
            engine = dataclasses.replace(engine, calibrate=load_calibration(model))
        self.engine = Engine(model, engine.calibrate)
        # Each open stream keeps its latest decoder states cached between words (two for PsFuture);
        # a cache sized for one stream would thrash and recompute every prefix from scratch.
        if hasattr(model, "cache_size"):
            model.cache_size = max(model.cache_size, 4 * limits.max_streams)
        self.capacity = Capacity(limits.max_streams)
        self.worker: ModelWorker | None = None
        self._connections = 0
        self._ids = itertools.count(1)
        self._server = None
        self._page = _page() if http.page else b""
        self._hello = {**self.engine.info(), "policies": available_policies(),
                       "defaults": defaults.as_dict(), "limits": dataclasses.asdict(limits)}

    async def __aenter__(self) -> "StreamServer":
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def start(self) -> None:
        self._server = await ws_serve(
            self._handle, self.host, self.port, process_request=self._http,
            max_size=self.limits.max_message_bytes, compression=None, server_header="psfuture",
            logger=ws_log)
        opts = self.engine_options
        self.worker = ModelWorker(self.engine, batch=opts.batch, warmup=opts.warmup, threads=opts.threads)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("serving on http://%s:%d/ (websocket at %s)", self.host, self.port, self.http.ws_path)

    async def close(self, grace_s: float = 0.0) -> None:
        """Stop accepting; give open streams `grace_s` to finish; close connections with 1001."""
        if self._server is None:
            return
        self.capacity.closed = True  # new streams are refused from now on
        self._server.server.close()  # stop listening; websockets' own close() below then ends the connections
        deadline = time.monotonic() + grace_s
        while self.capacity.used and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        self._server.close(close_connections=True)
        await self._server.wait_closed()
        self.worker.stop()
        self._server = None

    def _http(self, connection: ServerConnection, request: Request) -> Response | None:
        path = request.path.split("?", 1)[0]
        if path == self.http.ws_path:
            if self._connections >= self.limits.max_connections:
                return connection.respond(503, "the server is at its connection limit; try again later\n")
            return None
        if self.http.page and path in ("/", "/index.html"):
            response = connection.respond(200, "")
            # Headers is a multidict: assigning would add a second Content-Type and Content-Length.
            del response.headers["Content-Type"], response.headers["Content-Length"]
            response.headers.update({"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-cache",
                                     "Content-Length": str(len(self._page))})
            return dataclasses.replace(response, body=self._page)
        return connection.respond(404, f"not found; the demo page is at / and the websocket at {self.http.ws_path}\n")

    async def _handle(self, ws: ServerConnection) -> None:
        self._connections += 1
        conn = next(self._ids)
        loop = asyncio.get_running_loop()
        proto = ServerProtocol(self.limits, self.capacity, self.defaults)
        out: asyncio.Queue = asyncio.Queue()
        overflow: list = []
        writer = asyncio.create_task(self._write(ws, out))
        out.put_nowait(proto.hello(**self._hello).text())

        def on_loop(outcome: Outcome) -> None:
            for name, args, kwargs in outcome:
                emit(getattr(proto, name)(*args, **kwargs))

        def deliver(outcome: Outcome) -> None:  # worker thread -> loop
            try:
                loop.call_soon_threadsafe(on_loop, outcome)
            except RuntimeError:  # the loop is closed: so is this connection
                pass

        def emit(events) -> None:
            for event in events:
                if isinstance(event, Reply):
                    out.put_nowait(event.text())
                else:
                    self.worker.submit((conn, event.stream), event, deliver)
            if out.qsize() > self.limits.max_pending_replies and not overflow:
                # A client that sends but never reads would grow this queue without bound.
                overflow.append(asyncio.ensure_future(ws.close(1008, "too many unread replies")))

        try:
            while not writer.done():
                try:
                    message = await asyncio.wait_for(ws.recv(), self.limits.idle_timeout_s)
                except TimeoutError:
                    emit([Reply({"type": "error", "code": "idle_timeout", "message":
                                 f"no message for {self.limits.idle_timeout_s:g} s; reconnect to go on"})])
                    out.put_nowait((1000, "idle timeout"))
                    break
                if isinstance(message, bytes):
                    out.put_nowait((1003, "binary frames are not supported; send JSON text frames"))
                    break
                emit(proto.receive(message))
            await writer
        except ConnectionClosed:
            pass
        finally:
            emit(proto.close())
            writer.cancel()
            self._connections -= 1

    @staticmethod
    async def _write(ws: ServerConnection, out: asyncio.Queue) -> None:
        try:
            while True:
                item = await out.get()
                if isinstance(item, tuple):  # (close code, reason): flush what came before, then close
                    await ws.close(*item)
                    return
                await ws.send(item)
        except ConnectionClosed:
            pass


async def serve(host: str = "127.0.0.1", port: int = 8765, *, model=None, limits: Limits = Limits(),
                defaults: StreamSettings = StreamSettings(), http: HttpOptions = HttpOptions(),
                engine: EngineOptions = EngineOptions(), shutdown: ShutdownOptions = ShutdownOptions(),
                on_ready: Callable[[StreamServer], None] | None = None) -> None:
    """Serve until SIGINT/SIGTERM, then shut down gracefully."""
    server = StreamServer(host, port, model=model, limits=limits, defaults=defaults, http=http, engine=engine,
                          shutdown=shutdown)
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    await server.start()
    try:
        if on_ready:
            on_ready(server)
        await stop
        log.info("shutting down")
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await server.close(shutdown.grace_s)
