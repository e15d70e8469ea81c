"""The websocket server against real clients, with the tiny model."""
import asyncio
import json
import urllib.error
import urllib.request

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from psfuture.model import load_model
from psfuture.policies import make_policy
from psfuture.serve.protocol import Limits
from psfuture.serve.server import EngineOptions, StreamServer
from psfuture import longform

SENTENCES = [
    "Im Anfang schuf Gott die Himmel und die Erde.",
    "Und Gott sah das Licht, dass es gut war.",
    "Und Gott nannte das Licht Tag, und die Finsternis nannte er Nacht.",
    "Und es ward Abend und es ward Morgen: erster Tag.",
    "Und die Erde brachte Gras hervor.",
    "Da sprach Gott: Es werde Licht!",
]


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    return load_model(tiny_model_dir)


def offline(model, text, policy="psfuture", **settings):
    """What the engine writes for the text read a word at a time (psfuture.longform: cut into segments; a
    sentence's last word goes straight to its final decode): the reference for every stream."""
    segments = longform.translate(model, make_policy(policy, **settings), text)
    return [w for s in segments for w in s.words], [d for s in segments for d in s.delays]


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 120))


async def recv(ws):
    return json.loads(await ws.recv())


async def until_done(ws, stream_id=None):
    """Collect target words of one stream until its done; returns (done, streamed words, other messages).
    Checks that every "segment" closes the words its "target" messages carried, in order."""
    words, other, by_segment, closed = [], [], {}, []
    while True:
        m = await recv(ws)
        if stream_id is not None and m.get("id") != stream_id:
            other.append(m)
        elif m["type"] == "target":
            assert m["text"] == " ".join(m["words"]) and len(m["delays"]) == len(m["words"])
            assert m["segment"] == len(closed), "words of a closed segment"
            words += m["words"]
            by_segment.setdefault(m["segment"], []).extend(m["words"])
        elif m["type"] == "segment":
            assert m["segment"] == len(closed) and m["text"] == " ".join(by_segment.get(m["segment"], []))
            closed.append(m)
        elif m["type"] in ("done", "error"):
            if m["type"] == "done":
                assert m["segments"] == len(closed) and m["text"] == " ".join(words)
            return m, words, other
        else:
            other.append(m)


def chunks(sentence, how):
    if how == "words":
        return [w + " " for w in sentence.split()]
    if how == "whole":
        return [sentence]
    # Cut mid-word: the server must hold the partial word back until its end arrives.
    return [sentence[i:i + 5] for i in range(0, len(sentence), 5)]


async def translate(port, sentence, how="words", **start):
    async with connect(f"ws://127.0.0.1:{port}/ws") as ws:
        hello = await recv(ws)
        assert hello["type"] == "hello" and "psfuture" in hello["policies"]
        await ws.send(json.dumps({"type": "start", **start}))
        for text in chunks(sentence, how):
            await ws.send(json.dumps({"type": "source", "text": text}))
        await ws.send(json.dumps({"type": "end"}))
        ready = await recv(ws)
        assert ready["type"] == "ready", ready
        done, words, other = await until_done(ws)
        assert other == []
        return ready, done, words


def test_full_exchange_and_page(model):
    async def main():
        calibration = EngineOptions(calibrate=lambda policy, target_al, settings: target_al / 10)
        async with StreamServer(port=0, model=model, engine=calibration) as server:
            ready, done, words = await translate(server.port, SENTENCES[0], target_al=2)
            page = await asyncio.to_thread(lambda: urllib.request.urlopen(f"http://127.0.0.1:{server.port}/").read())
            with pytest.raises(urllib.error.HTTPError) as missing:
                await asyncio.to_thread(urllib.request.urlopen, f"http://127.0.0.1:{server.port}/etc/passwd")
            return ready, done, words, page, missing.value.code

    ready, done, words, page, missing = run(main())
    assert ready["policy"].startswith("psfuture(threshold=0.2,") and ready["model"]["name"] == "tiny-test-model"
    assert ready["settings"] == {"policy": "psfuture", "target_al": 2}
    expected_words, expected_delays = offline(model, SENTENCES[0], threshold=0.2)
    assert done["type"] == "done" and done["words"] == words == expected_words
    assert done["text"] == " ".join(expected_words) and done["delays"] == expected_delays
    assert done["source_words"] == len(SENTENCES[0].split())
    assert b"<title>psfuture" in page and missing == 404


@pytest.mark.parametrize("batch", [True, False])
def test_concurrent_clients_get_exactly_the_offline_translation(model, batch):
    cases = [(s, how, policy) for s, how, policy in zip(
        SENTENCES, ["words", "whole", "cut", "words", "cut", "whole"],
        [{}, {"policy": "waitk", "k": 2}, {}, {"threshold": 0.2}, {"policy": "la"}, {}])]

    async def main():
        async with StreamServer(port=0, model=model, engine=EngineOptions(batch=batch)) as server:
            return await asyncio.gather(*[translate(server.port, s, how, **p) for s, how, p in cases])

    for (sentence, how, settings), (_, done, words) in zip(cases, run(main())):
        expected_words, expected_delays = offline(model, sentence, **settings)
        assert words == done["words"] == expected_words, sentence
        assert done["delays"] == expected_delays, sentence


def test_one_connection_runs_streams_side_by_side_and_one_after_another(model):
    a, b = SENTENCES[1], SENTENCES[2]

    async def main():
        async with StreamServer(port=0, model=model) as server:
            async with connect(f"ws://127.0.0.1:{server.port}/ws") as ws:
                await recv(ws)
                for stream_id in ("a", "b"):
                    await ws.send(json.dumps({"type": "start", "id": stream_id}))
                for wa, wb in zip(a.split(), b.split()):  # interleaved word by word
                    await ws.send(json.dumps({"type": "source", "id": "a", "text": wa + " "}))
                    await ws.send(json.dumps({"type": "source", "id": "b", "text": wb + " "}))
                rest = b.split()[len(a.split()):]
                await ws.send(json.dumps({"type": "source", "id": "b", "text": " ".join(rest)}))
                await ws.send(json.dumps({"type": "end", "id": "a"}))
                await ws.send(json.dumps({"type": "end", "id": "b"}))
                got = {"a": [], "b": []}
                done = {}
                while len(done) < 2:
                    m = await recv(ws)
                    if m["type"] == "target":
                        got[m["id"]] += m["words"]
                    elif m["type"] == "done":
                        done[m["id"]] = m
                    else:
                        assert m["type"] in ("ready", "segment"), m
                # The same connection, the same id again, after "done".
                await ws.send(json.dumps({"type": "start", "id": "a"}))
                await ws.send(json.dumps({"type": "source", "id": "a", "text": SENTENCES[4]}))
                await ws.send(json.dumps({"type": "end", "id": "a"}))
                again, words, _ = await until_done(ws, "a")
                return got, done, again, words

    got, done, again, words = run(main())
    assert got["a"] == done["a"]["words"] == offline(model, a)[0]
    assert got["b"] == done["b"]["words"] == offline(model, b)[0]
    assert words == again["words"] == offline(model, SENTENCES[4])[0]


def test_hostile_input_gets_errors_and_the_server_keeps_serving(model):
    limits = Limits(max_message_bytes=2000, max_queued_words=20)

    async def main():
        async with StreamServer(port=0, model=model, limits=limits) as server:
            url = f"ws://127.0.0.1:{server.port}/ws"
            errors = []
            async with connect(url) as ws:
                await recv(ws)
                for text in ["{oops", "[]", '{"type": "nope"}', '{"type": "source", "text": "x "}',
                             '{"type": "start", "policy": "nope"}', '{"type": "start", "threshold": "high"}']:
                    await ws.send(text)
                    m = await recv(ws)
                    assert m["type"] == "error" and "Traceback" not in m["message"], m
                    errors.append(m["code"])
                await ws.send(json.dumps({"type": "start"}))
                await ws.send(json.dumps({"type": "end"}))
                await ws.send(json.dumps({"type": "source", "text": "zu spät "}))
                # The refusal is immediate; "ready" and "done" come from the model worker.
                replies = {m["type"]: m for m in [await recv(ws) for _ in range(3)]}
                await ws.send(json.dumps({"type": "start"}))
                await ws.send(json.dumps({"type": "source", "text": "a " * 21}))
                too_long = [await recv(ws)]  # "ready" only if the worker opened it before the refusal
                while too_long[-1]["type"] != "error":
                    too_long.append(await recv(ws))
                # Still usable after all that.
                await ws.send(json.dumps({"type": "start"}))
                await ws.send(json.dumps({"type": "source", "text": SENTENCES[0]}))
                await ws.send(json.dumps({"type": "end"}))
                done, _, _ = await until_done(ws)

            closes = {}
            for name, frame in [("binary", b"\x00\x01"), ("too big", "x" * 5000)]:
                async with connect(url) as ws:
                    await recv(ws)
                    await ws.send(frame)
                    with pytest.raises(ConnectionClosed):
                        await recv(ws)
                    closes[name] = ws.close_code

            # A client that leaves mid-stream, while another one is translating.
            async with connect(url) as ws:
                await recv(ws)
                await ws.send(json.dumps({"type": "start"}))
                await ws.send(json.dumps({"type": "source", "text": "Im Anfang schuf "}))
            other = await translate(server.port, SENTENCES[3])
            for _ in range(100):  # the server notices the disconnect asynchronously
                if server.capacity.used == 0:
                    break
                await asyncio.sleep(0.05)
            return errors, replies, too_long, done, closes, other, server.capacity.used

    errors, replies, too_long, done, closes, other, used = run(main())
    assert errors == ["bad_json", "bad_message", "unknown_type", "no_stream", "bad_setting", "bad_setting"]
    assert sorted(replies) == ["done", "error", "ready"] and replies["error"]["code"] in ("stream_ended", "no_stream")
    assert [m["type"] for m in too_long] in (["ready", "error"], ["error"])
    assert too_long[-1]["code"] == "too_far_ahead"
    assert done["words"] == offline(model, SENTENCES[0])[0]
    assert closes == {"binary": 1003, "too big": 1009}
    assert other[1]["words"] == offline(model, SENTENCES[3])[0]
    assert used == 0


def test_limits_busy_idle_and_connections(model):
    limits = Limits(max_streams=1, idle_timeout_s=0.5, max_connections=2)

    async def main():
        async with StreamServer(port=0, model=model, limits=limits) as server:
            url = f"ws://127.0.0.1:{server.port}/ws"
            async with connect(url) as first, connect(url) as second:
                await recv(first), await recv(second)
                await first.send(json.dumps({"type": "start"}))
                await second.send(json.dumps({"type": "start"}))
                ready, busy = await recv(first), await recv(second)
                with pytest.raises(Exception) as refused:  # a third connection: HTTP 503
                    async with connect(url):
                        pass
                idle = await recv(first)  # nothing sent for idle_timeout_s
                with pytest.raises(ConnectionClosed):
                    await recv(first)
                return ready, busy, getattr(refused.value, "response", None), idle, first.close_code

    ready, busy, refused, idle, code = run(main())
    assert ready["type"] == "ready" and busy["code"] == "busy"
    assert refused is not None and refused.status_code == 503
    assert idle["code"] == "idle_timeout" and code == 1000


def test_shutdown_lets_ended_streams_finish_then_closes_with_1001(model):
    async def main():
        server = StreamServer(port=0, model=model)
        await server.start()
        async with connect(f"ws://127.0.0.1:{server.port}/ws") as ws:
            await recv(ws)
            await ws.send(json.dumps({"type": "start", "id": "a"}))
            await ws.send(json.dumps({"type": "source", "id": "a", "text": SENTENCES[0]}))
            await ws.send(json.dumps({"type": "end", "id": "a"}))
            await recv(ws)  # ready: the stream is open before the shutdown begins
            closing = asyncio.create_task(server.close(grace_s=30))
            await asyncio.sleep(0)
            await ws.send(json.dumps({"type": "start", "id": "b"}))
            done, _, other = await until_done(ws, "a")
            with pytest.raises(ConnectionClosed):
                while True:
                    other.append(await recv(ws))
            await closing
            return done, other, ws.close_code

    done, other, code = run(main())
    assert done["type"] == "done" and done["words"] == offline(model, SENTENCES[0])[0]
    assert [m["code"] for m in other] == ["shutting_down"] and code == 1001


def test_one_stream_carries_a_whole_talk_past_the_old_word_cap(model):
    """Thousands of words, one stream, no end until the talk is over: nothing lost, nothing doubled, segments
    closed as sentences end, and pasting the talk at once gives what word-by-word sending gives."""
    talk = " ".join(SENTENCES * 60)  # 2,640 words: the old cap of 2,000 per stream is gone
    talk_words = talk.split()

    async def main():
        async with StreamServer(port=0, model=model) as server:
            word_by_word = asyncio.create_task(translate(server.port, talk, "words", policy="waitk", k=2))
            pasted = await translate(server.port, talk, "whole", policy="waitk", k=2)
            return await word_by_word, pasted

    (_, done, words), (_, pasted, pasted_words) = run(main())
    expected_words, expected_delays = offline(model, talk, "waitk", k=2)
    assert done["source_words"] == len(talk_words) and done["segments"] == len(SENTENCES) * 60
    assert words == done["words"] == expected_words and done["delays"] == expected_delays
    assert pasted_words == pasted["words"] == words and pasted["delays"] == done["delays"]


def test_a_start_message_sets_the_segmenter(model):
    async def refused(port, **start):
        async with connect(f"ws://127.0.0.1:{port}/ws") as ws:
            await recv(ws)
            await ws.send(json.dumps({"type": "start", **start}))
            return await recv(ws)

    async def main():
        async with StreamServer(port=0, model=model) as server:
            plain = await translate(server.port, " ".join(SENTENCES[:3]), cut_punctuation=False, max_segment_words=8)
            return plain, await refused(server.port, max_segment_words=0), await refused(server.port,
                                                                                          max_segment_words=10 ** 6)

    (ready, done, _), zero, huge = run(main())
    assert ready["segmenter"] == "segmenter(length,max_words=8)"
    words = len(" ".join(SENTENCES[:3]).split())
    assert done["segments"] == -(-words // 8)
    assert zero["code"] == "bad_setting" and zero["message"].startswith("max_segment_words=0")
    assert huge["code"] == "bad_setting" and "at most 200" in huge["message"]
