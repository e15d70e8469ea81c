"""`psfuture listen`: follow a live room of a psfuture server in the terminal, each segment's English on a line as it
is written (what `translate` prints, for someone else's stream). A late start first prints the text so far."""
from __future__ import annotations

import asyncio
import json
import sys

from psfuture.cli_common import CliError


async def _follow(args, out) -> None:
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
    from websockets.uri import parse_uri

    listen = {"type": "listen", "room": args.room, **({"token": args.token} if args.token else {})}
    try:
        parse_uri(args.url)  # urllib's ValueError (a port out of range, a broken IPv6 address) is no InvalidURI
    except (InvalidURI, ValueError) as e:
        raise CliError(f"cannot listen at {args.url}: {e}") from None
    try:
        async with connect(args.url, max_size=None) as ws:
            await ws.recv()  # hello
            await ws.send(json.dumps(listen))
            line_open = False
            async for text in ws:
                m = json.loads(text)
                if m["type"] == "error" and m.get("id") != args.room:  # about this listener, not the speaker
                    raise CliError(f"{m['code']}: {m['message']}")
                if m["type"] == "target" and m["text"]:
                    out.write((" " if line_open else "") + m["text"])
                    line_open = True
                elif m["type"] in ("segment", "done", "error") and line_open:
                    out.write("\n")
                    line_open = False
                out.flush()
                if m["type"] in ("done", "error") and args.once:
                    return
    except (OSError, InvalidHandshake, InvalidURI) as e:
        raise CliError(f"cannot listen at {args.url}: {e}") from None
    except ConnectionClosed as e:
        raise CliError(f"the server closed the connection ({e})") from None


def listen(args) -> int:
    try:
        asyncio.run(_follow(args, sys.stdout))
    except KeyboardInterrupt:
        pass
    return 0
