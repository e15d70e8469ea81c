"""Live events on the real server with the tiny model: one speaker, many listeners, a room's subtitles."""
import asyncio
import json
import socket
import urllib.error
import urllib.request

import pytest
import srt
import webvtt
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from psfuture.model import load_model
from psfuture.serve.protocol import Limits
from psfuture.serve.server import StreamServer
from serve.test_server import SENTENCES, offline, recv, run, until_done


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    return load_model(tiny_model_dir)


async def listener(port, room, **extra):
    ws = await connect(f"ws://127.0.0.1:{port}/ws")
    await recv(ws)  # hello
    await ws.send(json.dumps({"type": "listen", "room": room, **extra}))
    return ws


async def speak(ws, text, **start):
    if start:
        await ws.send(json.dumps({"type": "start", **start}))
    for word in text.split():
        await ws.send(json.dumps({"type": "source", "text": word + " "}))
    await ws.send(json.dumps({"type": "end"}))


async def messages_until_done(ws, stream_id, first=()):
    """Every message up to the stream's done, or the error that ended it."""
    out = list(first)
    while not out or not (out[-1]["type"] in ("done", "error") and out[-1].get("id") == stream_id):
        out.append(await recv(ws))
    return out


def get(url):
    try:
        with urllib.request.urlopen(url) as r:
            return r.status, r.headers["Content-Type"], r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, None, None


def test_listeners_hear_the_speaker_and_a_late_one_catches_up(model):
    first, second = " ".join(SENTENCES[:3]), SENTENCES[3]

    async def main():
        async with StreamServer(port=0, model=model) as server:
            port = server.port
            async with connect(f"ws://127.0.0.1:{port}/ws") as speaker:
                await recv(speaker)
                await speaker.send(json.dumps({"type": "start", "id": "talk", "room": "hall", "token": "s3cret"}))
                ready = await recv(speaker)
                early = await listener(port, "hall", token="s3cret")
                assert (await recv(early))["type"] == "listening"
                await speak(speaker, first)
                spoken = await messages_until_done(speaker, "talk", [ready])
                heard = await messages_until_done(early, "hall")
                # Joining after the stream: the text so far (here all of it), then done.
                late = await listener(port, "hall", token="s3cret")
                listening = await recv(late)
                late_done, late_words, _ = await until_done(late)
                refused = []
                for room, extra in (("hall", {}), ("hall", {"token": "guess"}), ("nowhere", {})):
                    ws = await listener(port, room, **extra)
                    refused.append((await recv(ws))["code"])
                    await ws.close()
                files = [await asyncio.to_thread(get, f"http://127.0.0.1:{port}/subtitles/hall.{kind}{query}")
                         for kind, query in (("vtt", "?token=s3cret"), ("srt", "?token=s3cret"), ("vtt", ""))]
                # The room outlives its stream: the next one under the same name and token reaches the same listeners;
                # another token may not take the name.
                thief = await connect(f"ws://127.0.0.1:{port}/ws")
                await recv(thief)
                await thief.send(json.dumps({"type": "start", "room": "hall", "token": "other"}))
                taken = await recv(thief)
                await speak(speaker, second, room="hall", token="s3cret")
                again = await messages_until_done(early, "hall")
            return spoken, heard, listening, late_done, late_words, refused, files, taken, again

    spoken, heard, listening, late_done, late_words, refused, files, taken, again = run(main())
    words = offline(model, first)[0]
    assert spoken[-1]["type"] == "done" and spoken[-1]["words"] == words
    assert heard == [{**m, "id": "hall"} for m in spoken]  # the same messages, under the room's name
    assert listening == {"type": "listening", "room": "hall", "live": False, "listeners": 2}
    assert late_words == words and late_done == heard[-1]
    assert refused == ["bad_token", "bad_token", "no_room"]
    (vtt_status, vtt_type, vtt), (srt_status, srt_type, srt_text), (no_token, _, _) = files
    assert vtt_status == srt_status == 200 and no_token == 404
    assert vtt_type.startswith("text/vtt") and srt_type.startswith("application/x-subrip")
    cues = webvtt.from_string(vtt)
    assert " ".join(c.text.replace("\n", " ") for c in cues) == " ".join(words)
    assert [c.start_in_seconds for c in cues] == sorted(c.start_in_seconds for c in cues)
    assert [s.content for s in srt.parse(srt_text)] == [c.text for c in cues]
    assert taken["code"] == "room_taken"
    assert again[0]["type"] == "ready" and again[-1]["words"] == offline(model, second)[0]


def test_a_listener_that_never_reads_is_cut_off_and_one_that_sends_garbage_changes_nothing(model):
    talk = " ".join(SENTENCES * 30)
    limits = Limits(max_pending_replies=20)

    async def main():
        async with StreamServer(port=0, model=model, limits=limits) as server:
            port = server.port
            async with connect(f"ws://127.0.0.1:{port}/ws") as speaker:
                await recv(speaker)
                await speaker.send(json.dumps({"type": "start", "room": "hall"}))
                ready = await recv(speaker)
                # It reads nothing: a tiny receive buffer, and the client library stops reading after one frame.
                sock = socket.socket()
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                sock.connect(("127.0.0.1", port))
                slow = await connect(f"ws://127.0.0.1:{port}/ws", sock=sock, max_queue=1)
                await slow.send(json.dumps({"type": "listen", "room": "hall"}))
                fast, noisy = await listener(port, "hall"), await listener(port, "hall")
                await speak(speaker, talk)
                garbage = ["{oops", "[]", '{"type": "listen"}', '{"type": "listen", "room": 5}',
                           '{"type": "listen", "room": "hall", "token": ""}', '{"type": "source", "text": "x "}',
                           '{"type": "start", "room": "hall"}', '{"type": "end", "id": "talk"}']
                for text in garbage:
                    await noisy.send(text)
                spoken, heard, noise = await asyncio.gather(messages_until_done(speaker, "1", [ready]),
                                                            messages_until_done(fast, "hall"),
                                                            messages_until_done(noisy, "hall"))
                for _ in range(200):  # cut off long ago; its close handshake waits behind what it has not read
                    if len(server.rooms.rooms["hall"].listeners) == 2:
                        break
                    await asyncio.sleep(0.05)
                got = []
                with pytest.raises(ConnectionClosed):
                    while True:
                        got.append(await slow.recv())
                return spoken, heard, noise, got, slow.close_code

    spoken, heard, noise, got, code = run(main())
    words = offline(model, talk)[0]
    assert spoken[-1]["words"] == words
    assert heard[0]["type"] == "listening" and heard[1:] == [{**m, "id": "hall"} for m in spoken]
    errors = [m["code"] for m in noise if m["type"] == "error" and m.get("id") != "hall"]
    assert errors == ["bad_json", "bad_message", "bad_message", "bad_id", "bad_token", "no_stream", "room_taken",
                      "unknown_stream"]
    assert [m for m in noise if m.get("id") == "hall"] == heard[1:]
    assert code == 1008 and len(got) < len(heard)


def test_subtitles_of_a_room_whose_name_the_link_percent_encodes(model):
    # The page builds the link with encodeURIComponent: a room name may hold ":", which it sends as %3A.
    async def main():
        async with StreamServer(port=0, model=model) as server:
            async with connect(f"ws://127.0.0.1:{server.port}/ws") as speaker:
                await recv(speaker)
                await speaker.send(json.dumps({"type": "start", "room": "hall:2"}))
                await recv(speaker)  # ready
                return [await asyncio.to_thread(get, f"http://127.0.0.1:{server.port}/subtitles/{name}.vtt")
                        for name in ("hall%3A2", "hall:2")]

    (encoded, _, text), (plain, _, _) = run(main())
    assert encoded == plain == 200 and text.startswith("WEBVTT")
