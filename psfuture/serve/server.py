"""Websocket server: a thin asyncio adapter around `psfuture.serve.protocol` and one model worker thread.

The event loop only moves messages; every model call runs on a single worker thread that owns the model
(`psfuture.serve.engine.ModelWorker`: it serves the streams round-robin, runs each stream's work strictly in
order, and batches the model steps of concurrent streams into shared model calls). Several such processes
can share one port (`psfuture.serve.supervisor`).
The same port serves the browser demo page over plain HTTP at `/`, the captions view of a room at `/captions`
and its subtitles so far at `/subtitles/<room>.vtt|.srt`; the websocket lives at `/ws`. A room's listeners
(`psfuture.serve.rooms`) each have their own bounded outbox: the speaker's messages are put, never awaited.
"""
from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
import signal
import socket
import time
import urllib.parse
from dataclasses import dataclass
from importlib import resources
from typing import Callable

from websockets.asyncio.server import ServerConnection, serve as ws_serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from psfuture.serve.engine import Engine, EngineOptions, ModelWorker, available_policies
from psfuture.serve.protocol import (Broadcast, Capacity, Limits, Outcome, ProtocolError, Reply, ServerProtocol,
                                     StreamSettings)
from psfuture.serve.rooms import Rooms

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


def _page(name: str = "index.html") -> bytes:
    return resources.files("psfuture").joinpath("web", name).read_bytes()


_SUBTITLES = {"vtt": "text/vtt; charset=utf-8", "srt": "application/x-subrip; charset=utf-8"}


class _Outbox:
    """One connection's replies and room messages waiting to be sent. Putting never blocks (the model worker's
    outcomes, a speaker's fan-out): past `limit` unsent items the connection is cut off with 1008 and takes no more."""

    def __init__(self, ws: ServerConnection, limit: int, on_cut: Callable[["_Outbox"], None]):
        self.ws, self.limit, self.on_cut = ws, limit, on_cut
        self.queue: asyncio.Queue = asyncio.Queue()
        self.closing: asyncio.Future | None = None
        self.listener = False

    def put(self, item) -> None:
        if self.closing is not None:
            return
        self.queue.put_nowait(item)
        if self.queue.qsize() > self.limit:  # a client that never reads would grow this without bound
            self.closing = asyncio.ensure_future(self.ws.close(1008, "too many unread replies"))
            self.on_cut(self)


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
        self.rooms = Rooms(limits.max_listeners)
        self.worker: ModelWorker | None = None
        self._connections = 0
        self._ids = itertools.count(1)
        self._server = None
        self._page = _page() if http.page else b""
        self._captions = _page("captions.html") if http.page else b""
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
        if self.http.page and path in ("/", "/index.html", "/captions"):
            return _respond(connection, self._captions if path == "/captions" else self._page, "text/html; charset=utf-8")
        name, dot, kind = path.removeprefix("/subtitles/").rpartition(".")
        if path.startswith("/subtitles/") and dot and kind in _SUBTITLES:
            token = urllib.parse.parse_qs(urllib.parse.urlsplit(request.path).query).get("token", [None])[0]
            try:  # the page's link percent-encodes the name (":" is %3A)
                timeline = self.rooms.subtitles(urllib.parse.unquote(name), token)
            except ProtocolError as e:
                return connection.respond(404, e.message + "\n")
            return _respond(connection, timeline.render(kind).encode(), _SUBTITLES[kind])
        return connection.respond(404, f"not found; the demo page is at /, a room's captions at /captions?room=NAME, "
                                  f"its subtitles at /subtitles/NAME.vtt or .srt, the websocket at {self.http.ws_path}\n")

    async def _handle(self, ws: ServerConnection) -> None:
        self._connections += 1
        conn = next(self._ids)
        loop = asyncio.get_running_loop()
        out = _Outbox(ws, self.limits.max_pending_replies, self.rooms.leave)
        proto = ServerProtocol(self.limits, self.capacity, self.defaults, rooms=self.rooms, listener=out)
        writer = asyncio.create_task(self._write(ws, out.queue))
        out.put(proto.hello(**self._hello).text())

        def on_loop(outcomes: list[Outcome]) -> None:
            for outcome in outcomes:
                emit(proto.outcome(outcome))

        def deliver(outcomes: list[Outcome]) -> None:  # worker thread -> loop
            try:
                loop.call_soon_threadsafe(on_loop, outcomes)
            except RuntimeError:  # the loop is closed: so is this connection
                pass

        def emit(events) -> None:
            replies = [event.text() for event in events if isinstance(event, Reply)]
            if replies:  # the answer to one message (a listener's catch-up) counts once against the limit
                out.put(replies if len(replies) > 1 else replies[0])
            for event in events:
                if isinstance(event, Broadcast):  # one text for every listener: serialized once
                    text, listeners = self.rooms.publish(event.room, event.message, event.owner, time.monotonic())
                    for listener in listeners:
                        listener.put(text)
                elif not isinstance(event, Reply):
                    self.worker.submit((conn, event.stream), event, deliver)

        try:
            while not writer.done():
                try:
                    # A listener may stay silent for a whole event (websockets' pings still find dead ones).
                    idle = None if self.rooms.listens(out) else self.limits.idle_timeout_s
                    message = await asyncio.wait_for(ws.recv(), idle)
                except TimeoutError:
                    emit([Reply({"type": "error", "code": "idle_timeout", "message":
                                 f"no message for {self.limits.idle_timeout_s:g} s; reconnect to go on"})])
                    out.put((1000, "idle timeout"))
                    break
                if isinstance(message, bytes):
                    out.put((1003, "binary frames are not supported; send JSON text frames"))
                    break
                emit(proto.receive(message))
                if not out.listener and self.rooms.listens(out):
                    out.listener = True
                    _bound_send_buffer(ws)
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
                for text in [item] if isinstance(item, str) else item:
                    await ws.send(text)
        except ConnectionClosed:
            pass


# The kernel's send buffer of a listener's socket. Autotuned, it grows to tcp_wmem's maximum (4 MiB here) before a
# listener that never reads fills it and its outbox starts counting; fixed, a slow listener is noticed after ~100 KiB
# and costs at most that much kernel memory. 64 KiB still carries 640 KiB/s at 100 ms round trip: captions need ~1.
LISTENER_SNDBUF = 64 * 1024


def _bound_send_buffer(ws: ServerConnection) -> None:
    sock = ws.transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, LISTENER_SNDBUF)


def _respond(connection: ServerConnection, body: bytes, content_type: str) -> Response:
    response = connection.respond(200, "")
    # Headers is a multidict: assigning would add a second Content-Type and Content-Length.
    del response.headers["Content-Type"], response.headers["Content-Length"]
    response.headers.update({"Content-Type": content_type, "Cache-Control": "no-cache",
                             "Content-Length": str(len(body))})
    return dataclasses.replace(response, body=body)


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
