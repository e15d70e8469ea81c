"""`psfuture serve | translate | demo`: argparse at the edge, everything else in the library."""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import sys
import time

from psfuture.backends.base import ModelSpec
from psfuture.cli_common import CliError, _load, _say_model
from psfuture.segmenter import Segmenter
from psfuture.serve.messages import Limits, StreamSettings

DEMO_SENTENCES = [
    "Im Anfang schuf Gott die Himmel und die Erde.",
    "Klicken Sie auf die Schaltfläche, um die Datei zu speichern.",
    "Wählen Sie im Menü Format den Befehl Zeichen.",
    "Die Orks haben das Dorf im Norden angegriffen.",
    "Und er sprach zu ihnen: Fürchtet euch nicht!",
]


def _positive(kind):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {kind.__name__}, got {text!r}") from None
        if not value > 0 or not math.isfinite(value):  # NaN passes neither comparison
            raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
        return value
    return parse


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number 0-65535, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is out of range 0-65535 (0 picks a free port)")
    return value


def _add_model_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model and policy (defaults: the shipped model, PsFuture)")
    ModelSpec.add_args(g)
    g.add_argument("--policy", default=StreamSettings.policy,
                   help="read/write policy: psfuture, waitk, la, alignatt or offline (default: %(default)s)")
    g.add_argument("--threshold", type=float, default=None, help="PsFuture divergence threshold: lower waits longer")
    g.add_argument("--target-al", type=_positive(float), default=None, metavar="AL",
                   help="pick the threshold that aims at this average lagging (source words)")
    g.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", type=_option,
                   help="any other policy setting, e.g. --set k=3 for waitk, --set divergence=js (repeatable)")
    g.add_argument("--threads", type=_positive(int), default=1,
                   help="torch threads for the model (default: %(default)s, the fastest on a small shared machine)")
    d = Segmenter()
    g = p.add_argument_group("segments (a stream of any length is cut into segments as its words arrive)")
    g.add_argument("--cut", type=_cuts, default="punctuation",
                   help="cut rules, comma-separated: punctuation (after . ! ?), model (where the model ends the "
                        "translation even with more source to come: for unpunctuated input), none (length only); "
                        "default: %(default)s")
    g.add_argument("--max-segment-words", type=_positive(int), default=d.max_words,
                   help="the guard: no segment is longer (default: %(default)s)")
    g.add_argument("--model-eos", type=_probability, default=d.model_eos,
                   help="probability of the end of the translation, with more source to come, that cuts "
                        "(--cut model; default: %(default)s)")


def _add_limit_options(p: argparse.ArgumentParser) -> None:
    d = Limits()
    g = p.add_argument_group("limits")
    g.add_argument("--max-streams", type=_positive(int), default=d.max_streams,
                   help="concurrent streams on the server (default: %(default)s)")
    g.add_argument("--max-streams-per-connection", type=_positive(int), default=d.max_streams_per_connection,
                   help="(default: %(default)s)")
    g.add_argument("--max-connections", type=_positive(int), default=d.max_connections, help="(default: %(default)s)")
    g.add_argument("--max-listeners", type=_positive(int), default=d.max_listeners,
                   help="listeners of live-event rooms, all together; each is also a connection (default: %(default)s)")
    g.add_argument("--max-queued-words", type=_positive(int), default=d.max_queued_words,
                   help="source words a stream may send ahead of the translation (a stream itself has no length "
                        "limit; default: %(default)s)")
    g.add_argument("--max-message-bytes", type=_positive(int), default=d.max_message_bytes,
                   help="(default: %(default)s)")
    g.add_argument("--idle-timeout", type=_positive(float), default=d.idle_timeout_s, metavar="SECONDS",
                   help="close connections silent this long (default: %(default)s)")
    g.add_argument("--batch", action=argparse.BooleanOptionalAction, default=True,
                   help="run concurrent streams' model steps as one batch (default: on)")


def _option(text: str) -> tuple[str, object]:
    name, eq, value = text.partition("=")
    if not eq or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    try:
        return name, json.loads(value)  # numbers, true/false, null
    except json.JSONDecodeError:
        return name, value  # a bare string such as divergence=js


def _probability(text: str) -> float:
    value = _positive(float)(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"a probability is at most 1, got {text}")
    return value


def _cuts(text: str) -> str:
    rules = set(text.split(","))
    if not rules <= {"punctuation", "model", "none"}:
        raise argparse.ArgumentTypeError(f"expected punctuation, model or none (comma-separated), got {text!r}")
    return text


def _limits(args) -> Limits:
    return Limits(max_message_bytes=args.max_message_bytes, max_queued_words=args.max_queued_words,
                  max_streams_per_connection=args.max_streams_per_connection, max_streams=args.max_streams,
                  max_connections=args.max_connections, max_listeners=args.max_listeners,
                  idle_timeout_s=args.idle_timeout,
                  max_segment_words=max(Limits.max_segment_words, args.max_segment_words))


# --- translate ---------------------------------------------------------------------------------------------

def translate(args) -> int:
    from .cli_translate import translate as run
    return run(args)


def listen(args) -> int:
    from .cli_listen import listen as run
    return run(args)


# --- serve -------------------------------------------------------------------------------------------------

def serve(args) -> int:
    from .serve.server import EngineOptions, serve as run_server
    from .serve.supervisor import SupervisorError, WorkerConfig, listen, reserve, supervise
    spec, model, settings = _load(args)
    try:  # one process: its listening socket; several: the port they will share (see psfuture.serve.supervisor)
        sock = listen(args.host, args.port) if args.workers == 1 else reserve(args.host, args.port)
    except OSError as e:
        raise CliError(_listen_error(args.host, args.port, e)) from None
    workers = f" with {args.workers} worker processes" if args.workers > 1 else ""

    def ready(server):
        _say_model(model)
        port = sock.getsockname()[1]
        print(f"psfuture: serving on http://{args.host}:{port}/ (websocket at ws://{args.host}:{port}/ws){workers};"
              " Ctrl-C to stop", file=sys.stderr, flush=True)

    if args.workers == 1:
        asyncio.run(run_server(model=model, limits=_limits(args), defaults=settings, sock=sock, on_ready=ready,
                               engine=EngineOptions(batch=args.batch, threads=args.threads)))
        return 0
    # Each worker loads its own; this one only checked that it loads (and says what it is, once serving).
    config = WorkerConfig(args.host, sock.getsockname()[1], spec, _limits(args), settings, batch=args.batch,
                          threads=args.threads, log_level=args.log_level)
    try:
        supervise(args.workers, config, on_ready=ready)
    except SupervisorError as e:
        raise CliError(str(e)) from None
    finally:
        sock.close()
    return 0


def _listen_error(host: str, port: int, e: OSError) -> str:
    import errno
    import socket
    where = f"cannot listen on {host}:{port}"
    if e.errno == errno.EADDRINUSE:
        return f"{where}: the port is in use; pick another --port (0 picks a free one)"
    if e.errno == errno.EACCES:
        return f"{where}: permission denied (ports below 1024 need root); pick a --port of 1024 or more"
    if isinstance(e, socket.gaierror) or e.errno == errno.EADDRNOTAVAIL:
        return (f"{where}: {e.strerror or e}; --host must be a name or address of this machine "
                "(127.0.0.1, or 0.0.0.0 for every interface)")
    return f"{where}: {e.strerror or e}; pick another --host or --port"


# --- demo --------------------------------------------------------------------------------------------------

async def _demo(args, model, settings) -> None:
    from websockets.asyncio.client import connect

    from .serve.server import EngineOptions, StreamServer
    options = EngineOptions(threads=args.threads)
    try:
        server = StreamServer(args.host, args.port, model=model, defaults=settings, engine=options)
        await server.start()
    except OSError:  # the usual port is taken: any free one
        server = StreamServer(args.host, 0, model=model, defaults=settings, engine=options)
        await server.start()
    url = f"http://{args.host}:{server.port}/"
    out = sys.stdout
    try:
        async with connect(f"ws://{args.host}:{server.port}/ws") as ws:
            hello = json.loads(await ws.recv())
            out.write(f"model {json.dumps(hello.get('model'), ensure_ascii=False)}\n"
                      f"streaming German at {args.wps:g} words/s; each English word shows how many German words "
                      "had been read when it was written, and how long after the last of them it came\n")
            if str((hello.get("model") or {}).get("name", "")).startswith("psfuture-"):
                out.write("the shipped model knows software and documentation German (help pages, menus, manuals), "
                          "not news or everyday talk; for general German see the README, \"Your own Hugging Face "
                          "model\"\n")
            out.write("\n")
            for n, sentence in enumerate(args.sentences or DEMO_SENTENCES, 1):
                await ws.send(json.dumps({"type": "start", "id": str(n)}))
                await _demo_sentence(ws, sentence, args.wps, out, show_policy=n == 1)
    finally:
        if not args.serve:
            await server.close()
    if args.serve:
        out.write(f"Open {url} in a browser to type or paste German and watch it being translated.\n")
    else:
        port = args.port or 8765
        out.write(f"To type or paste German yourself: run `psfuture serve --port {port}` and open "
                  f"http://{args.host}:{port}/ in a browser (or run `psfuture demo --serve`).\n")
    out.flush()
    if args.serve:
        out.write("serving; Ctrl-C to stop\n")
        out.flush()
        try:
            await asyncio.Event().wait()
        finally:
            await server.close()


async def _demo_sentence(ws, sentence: str, wps: float, out, show_policy: bool) -> None:
    """Stream one sentence a word at a time; a `de` line grows with the German, an `en` line shows
    each group of English words when it arrives: after how many German words, and how many ms after
    the last of those was sent (or after the end of the sentence, for words written once it ended)."""
    words_de = sentence.split()
    sent_at: list[float] = []  # when each German word went out; then when the end did
    english: list[str] = []
    lags: list[float] = []
    line = False  # a `de` line is open

    def show(message: dict) -> bool:
        nonlocal line
        kind = message["type"]
        if kind == "error":
            raise CliError(f"server error {message['code']}: {message['message']}")
        if kind == "target":
            now = time.perf_counter()
            groups: list[tuple[int, list[str]]] = []
            for word, delay in zip(message["words"], message["delays"]):
                if groups and groups[-1][0] == delay:
                    groups[-1][1].append(word)
                else:
                    groups.append((delay, [word]))
            for delay, words in groups:
                # Words that needed the whole sentence count from its end (sent right after the last word).
                lag = (now - sent_at[delay - 1 if delay < len(words_de) else -1]) * 1000
                lags.extend([lag] * len(words))
                english.extend(words)
                out.write(f"\n  en    {' '.join(words)}   [{delay} read, {lag:.0f} ms]")
                line = False
            out.flush()
        return kind == "done"

    async def drain(until: float) -> bool:
        while (timeout := until - time.perf_counter()) > 0:
            try:
                message = json.loads(await asyncio.wait_for(ws.recv(), timeout))
            except TimeoutError:
                return False
            if show(message):
                return True
        return False

    ready = json.loads(await ws.recv())  # the server has seen nothing else of this stream yet
    if ready["type"] != "ready":
        show(ready)
    if show_policy:
        out.write(f"policy {json.dumps(ready.get('policy'), ensure_ascii=False)}\n\n")
    for i, word in enumerate(words_de, 1):
        sent_at.append(time.perf_counter())  # before sending: the reply may beat send()'s return
        await ws.send(json.dumps({"type": "source", "text": word + " "}))
        out.write(" " + word if line else ("\n" if english else "") + "  de  " + word)
        line = True
        out.flush()
        if i == len(words_de):  # the speaker is done: say so at once
            sent_at.append(time.perf_counter())
            await ws.send(json.dumps({"type": "end"}))
        await drain(time.perf_counter() + 1 / wps if i < len(words_de) else float("inf"))
    mean = sum(lags) / len(lags) if lags else 0.0
    out.write(f"\n  => {' '.join(english)}\n     ({len(english)} words; {mean:.0f} ms mean after the German word "
              "each needed)\n\n")
    out.flush()


def demo(args) -> int:
    _, model, settings = _load(args)
    _say_model(model)
    try:
        asyncio.run(_demo(args, model, settings))
    except KeyboardInterrupt:
        pass
    return 0


# --- main --------------------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="psfuture", description="Simultaneous German->English translation.")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--log-level", default="WARNING", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    sub = parser.add_subparsers(dest="command", required=True, metavar="{serve,translate,demo,listen}")

    p = sub.add_parser("serve", parents=[common], help="websocket server and browser demo page")
    p.add_argument("--host", default="127.0.0.1", help="(default: %(default)s; 0.0.0.0 for every interface)")
    p.add_argument("--port", type=_port, default=8765, help="(default: %(default)s; 0 picks a free port)")
    p.add_argument("--workers", type=_positive(int), default=1,
                   help="model processes sharing the port, each with --threads torch threads and its own "
                        "--max-* limits; a stream stays in the process that accepted it. One per core serves "
                        "the most streams (default: %(default)s)")
    _add_model_options(p)
    _add_limit_options(p)
    p.set_defaults(run=serve)

    p = sub.add_parser("translate", parents=[common],
                       help="translate German from stdin as one stream, as it is typed: a line, a document, a talk")
    p.add_argument("--timeline", action="store_true", help="show each READ and WRITE with its delay")
    p.add_argument("--line-cuts", action=argparse.BooleanOptionalAction, default=True,
                   help="a line end also ends a segment (default: on; off for text wrapped at arbitrary places)")
    p.add_argument("--srt", metavar="FILE", help="also write the English as SRT subtitles, timed by when each word was "
                   "written (or by --rate)")
    p.add_argument("--vtt", metavar="FILE", help="the same as WebVTT")
    p.add_argument("--rate", type=_positive(float), metavar="WPS", help="time the subtitles as if the German were "
                   "spoken at WPS words/s: an English word appears once the German words it waited for were spoken")
    _add_model_options(p)
    p.set_defaults(run=translate)

    p = sub.add_parser("demo", parents=[common], help="stream sample sentences through a local server and show the English as it comes")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=_port, default=8765, help="(default: %(default)s; a free one if it is taken)")
    p.add_argument("--wps", type=_positive(float), default=3.0, help="German words per second (default: %(default)s)")
    p.add_argument("--serve", action="store_true", help="keep serving the page after the samples")
    p.add_argument("sentences", nargs="*", help="German sentences to stream instead of the samples")
    _add_model_options(p)
    p.set_defaults(run=demo)

    p = sub.add_parser("listen", parents=[common], help="follow a live event's room on a server: its English as it is written")
    p.add_argument("--room", required=True, help="the room the speaker's start message named")
    p.add_argument("--token", help="the room's token, if it has one")
    p.add_argument("--url", default="ws://127.0.0.1:8765/ws", help="the server's websocket (default: %(default)s)")
    p.add_argument("--once", action="store_true", help="stop when the stream is done (default: follow the room's "
                   "next streams too)")
    p.set_defaults(run=listen)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return args.run(args)
    except CliError as e:
        print(f"psfuture {args.command}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
