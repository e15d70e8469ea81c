"""Websocket server: a thin asyncio adapter around `psfuture.serve.protocol` and one model worker thread.

The event loop only moves messages; every model call runs on a single worker thread that owns the model
(`psfuture.serve.engine.ModelWorker`: it serves the streams round-robin, runs each stream's work strictly in
order, and batches the model steps of concurrent streams into shared model calls). Several such processes
can share one port (`psfuture.serve.supervisor`).
The same port serves the browser demo page over plain HTTP at `/`; the websocket lives at `/ws`.
"""
from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
import signal
import socket
import time
from dataclasses import dataclass
from importlib import resources
from typing import Callable

from websockets.asyncio.server import ServerConnection, serve as ws_serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from psfuture.serve.engine import Engine, EngineOptions, ModelWorker, available_policies
from psfuture.serve.protocol import Capacity, Limits, Outcome, Reply, ServerProtocol, StreamSettings

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


def _page() -> bytes:
    return resources.files("psfuture").joinpath("web/index.html").read_bytes()


class StreamServer:
    """The websocket + page server: `async with StreamServer(model=m, port=0) as s:` listens on `s.port`.

    `model` is a loaded backend (psfuture.backends.load); None loads the shipped one. `sock`: a listening socket to
    accept on instead of binding host:port (a worker process of `psfuture.serve.supervisor`); `info` is added
    to every client's hello."""

    def __init__(self, host: str = "127.0.0.1", port: int = 8765, *, model=None, limits: Limits = Limits(),
                 defaults: StreamSettings = StreamSettings(), http: HttpOptions = HttpOptions(),
                 engine: EngineOptions = EngineOptions(), shutdown: ShutdownOptions = ShutdownOptions(),
                 sock: socket.socket | None = None, info: dict | None = None):
        if model is None:
            from psfuture.backends import load
            model = load()
        self.host, self.port = host, port
        self.limits, self.defaults, self.http, self.shutdown_options = limits, defaults, http, shutdown
        self.engine_options = engine
        self.engine = Engine(model, engine.calibrate)  # None: the model's own calibration, when it ships one
        model.reserve(limits.max_streams)
        self.capacity = Capacity(limits.max_streams)
        self.worker: ModelWorker | None = None
        self._connections = 0
        self._ids = itertools.count(1)
        self._server = None
        self._page = _page() if http.page else b""
        self._sock = sock
        self._hello = {**self.engine.info(), "policies": available_policies(),
                       "defaults": defaults.as_dict(), "limits": dataclasses.asdict(limits), **(info or {})}

    async def __aenter__(self) -> "StreamServer":
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def start(self) -> None:
        where = {"sock": self._sock} if self._sock is not None else {"host": self.host, "port": self.port}
        self._server = await ws_serve(
            self._handle, **where, process_request=self._http,
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

        def on_loop(outcomes: list[Outcome]) -> None:
            for outcome in outcomes:
                emit(proto.outcome(outcome))

        def deliver(outcomes: list[Outcome]) -> None:  # worker thread -> loop
            try:
                loop.call_soon_threadsafe(on_loop, outcomes)
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
                on_ready: Callable[[StreamServer], None] | None = None, sock: socket.socket | None = None,
                info: dict | None = None) -> None:
    """Serve until SIGINT/SIGTERM, then shut down gracefully."""
    server = StreamServer(host, port, model=model, limits=limits, defaults=defaults, http=http, engine=engine,
                          shutdown=shutdown, sock=sock, info=info)
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
