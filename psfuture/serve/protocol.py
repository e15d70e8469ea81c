"""Sans-I/O core of the streaming JSON protocol: text in -> replies and model work out.

No sockets, no asyncio, no model, no torch and no policies here (like `websockets`' own protocol classes):
the adapter in `psfuture.serve.server` feeds each received text frame to `ServerProtocol.receive`, sends the
`Reply`s, runs the `Work` items off the event loop in order, and feeds each `Outcome` of that work back
through `ServerProtocol.outcome`, which answers more `Reply`s. Settings stay data: the engine turns them
into a policy.

Client -> server: {"type": "start", ...settings}, {"type": "source", "text": ...}, {"type": "end"},
{"type": "cancel"}; each may carry "id" to run several streams at once on one connection; {"type": "listen",
"room": ...} follows another connection's stream (`psfuture.serve.rooms`).
Server -> client: {"type": "ready"}, {"type": "target"}, {"type": "segment"}, {"type": "done"}, {"type": "error"},
{"type": "listening"}.
A stream is a sentence or an hour: the engine cuts it into segments as the words arrive; each "target" says which
segment its words belong to and each "segment" closes one, with its source and translation.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

# The messages, settings and outcomes live in `messages` (below this module and `rooms`); imported from here too.
from psfuture.serve.messages import (Broadcast, Drop, Event, Failed, Finish, Finished, Limits, Open, Opened, Outcome,
                                     ProtocolError, Push, Relay, Reply, Scalar, SegmentClosed, StreamSettings, Work,
                                     Wrote, _is_number)
from psfuture.serve.rooms import Rooms

__all__ = ["PROTOCOL_VERSION", "Broadcast", "Capacity", "Drop", "Event", "Failed", "Finish", "Finished", "Limits",
           "Open", "Opened", "Outcome", "ProtocolError", "Push", "Relay", "Reply", "Scalar", "SegmentClosed",
           "ServerProtocol", "StreamSettings", "WordBuffer", "Work", "Wrote"]

PROTOCOL_VERSION = 1
_ID_RE = re.compile(r"^[A-Za-z0-9_.:\-]{1,64}$")


def _room(message: dict) -> tuple[str | None, str | None]:
    """A message's room name and token, checked."""
    room, token = message.get("room"), message.get("token")
    if room is not None and not (isinstance(room, str) and _ID_RE.match(room)):
        raise ProtocolError("bad_id", "'room' must be a string of 1-64 letters, digits or _.:-")
    if token is not None and not (isinstance(token, str) and 0 < len(token) <= 128):
        raise ProtocolError("bad_token", "'token' must be a string of 1-128 characters")
    if token is not None and room is None:
        raise ProtocolError("bad_message", "'token' goes with 'room'")
    return room, token


class Capacity:
    """Count of open streams shared by all connections of one server (used from one thread only)."""

    def __init__(self, limit: int):
        self.limit = limit
        self.used = 0
        self.closed = False  # shutting down: no new streams

    def acquire(self) -> bool:
        if self.closed or self.used >= self.limit:
            return False
        self.used += 1
        return True

    def release(self) -> None:
        self.used = max(0, self.used - 1)


class WordBuffer:
    """Splits streamed text into complete words; a word is complete once whitespace follows it."""

    def __init__(self):
        self.partial = ""

    def feed(self, text: str) -> list[str]:
        words = (self.partial + text).split()
        self.partial = ""
        if words and text and not text[-1].isspace():
            self.partial = words.pop()
        return words

    def flush(self) -> list[str]:
        words, self.partial = self.partial.split(), ""
        return words


@dataclass
class _Stream:
    number: int  # unique per connection; the adapter's handle for the model work
    id: str  # the client's name for it
    words: WordBuffer = field(default_factory=WordBuffer)
    source_words: int = 0  # received
    source_read: int = 0  # read by the engine
    target_words: int = 0
    ended: bool = False
    room: str | None = None  # listeners follow it under this name


_FIELDS = {
    "start": None,  # any field: the policy's settings, checked by the engine
    "source": {"type", "id", "text"},
    "end": {"type", "id"},
    "cancel": {"type", "id"},
    "listen": {"type", "room", "token"},
}


class ServerProtocol:
    """Protocol state of one connection: its open streams and what each may do next."""

    def __init__(self, limits: Limits = Limits(), capacity: Capacity | None = None,
                 defaults: StreamSettings = StreamSettings(), rooms=None, listener: Any = None):
        self.limits = limits
        self.capacity = capacity if capacity is not None else Capacity(limits.max_streams)
        self.defaults = defaults
        self.rooms = rooms if rooms is not None else Rooms(limits.max_listeners)
        self.listener = self if listener is None else listener  # this connection, as the rooms know it
        self.streams: dict[str, _Stream] = {}
        self._by_number: dict[int, _Stream] = {}
        self._numbers = 0

    def hello(self, **info: Any) -> Reply:
        """The first message on a connection: what the server offers."""
        return Reply({"type": "hello", "protocol": PROTOCOL_VERSION, **info})

    # --- client input ---

    def receive(self, text: str) -> list[Event]:
        """One text frame from the client -> replies to send and work to run, in order."""
        message = None
        try:
            message = self._parse(text)
            return getattr(self, "_on_" + message["type"])(message)
        except ProtocolError as e:
            reply = {"type": "error", "code": e.code, "message": e.message}
            if message is not None and "id" in message:
                reply["id"] = message["id"]
            return [Reply(reply)]

    def close(self) -> list[Event]:
        """The connection is gone: drop every stream it had open and stop listening."""
        self.rooms.leave(self.listener)
        return [event for s in list(self.streams.values()) for event in self._forget(s)]

    def _parse(self, text: str) -> dict:
        try:
            message = json.loads(text)
        except (ValueError, RecursionError):  # ValueError: also a number past Python's limit on an int's digits
            raise ProtocolError("bad_json", "message is not valid JSON; send one JSON object per text frame") from None
        if not isinstance(message, dict):
            raise ProtocolError("bad_message", 'message must be a JSON object like {"type": "source", "text": "..."}')
        kind = message.get("type")
        if kind not in _FIELDS:
            raise ProtocolError("unknown_type", f"unknown message type {json.dumps(kind)[:40]}; "
                                f"expected one of {', '.join(sorted(_FIELDS))}")
        unknown = sorted(set(message) - _FIELDS[kind]) if _FIELDS[kind] is not None else []
        if unknown:
            raise ProtocolError("unknown_field", f"'{kind}' message has unknown field(s) "
                                f"{', '.join(json.dumps(k)[:40] for k in unknown[:5])}; "
                                f"allowed: {', '.join(sorted(_FIELDS[kind]))}")
        if "id" in message and not (isinstance(message["id"], str) and _ID_RE.match(message["id"])):
            raise ProtocolError("bad_id", "'id' must be a string of 1-64 letters, digits or _.:-")
        return message

    def _stream_for(self, message: dict) -> _Stream:
        if "id" in message:
            stream = self.streams.get(message["id"])
            if stream is None:
                raise ProtocolError("unknown_stream", f"no open stream with id {json.dumps(message['id'])}; "
                                    'send {"type": "start"} first')
            return stream
        if len(self.streams) == 1:
            return next(iter(self.streams.values()))
        if not self.streams:
            raise ProtocolError("no_stream", 'no stream is open; send {"type": "start"} first')
        raise ProtocolError("ambiguous_stream", "several streams are open; say which with 'id'")

    def _on_start(self, message: dict) -> list[Event]:
        settings = StreamSettings.from_message(message, self.defaults)
        room, token = _room(message)
        longest = dict(settings.segment).get("max_segment_words")
        if _is_number(longest) and longest > self.limits.max_segment_words:
            raise ProtocolError("bad_setting", f"max_segment_words may be at most {self.limits.max_segment_words} "
                                "on this server (a segment is re-encoded at every word)")
        stream_id = message.get("id") or self._free_id()
        if stream_id in self.streams:
            raise ProtocolError("stream_open", f"stream {json.dumps(stream_id)} is still open; send "
                                '{"type": "end"} and wait for "done" (or "cancel") before starting it again')
        if len(self.streams) >= self.limits.max_streams_per_connection:
            raise ProtocolError("too_many_streams", f"at most {self.limits.max_streams_per_connection} streams "
                                "may be open on one connection; end one first")
        if not self.capacity.acquire():
            if self.capacity.closed:
                raise ProtocolError("shutting_down", "the server is shutting down; reconnect later")
            raise ProtocolError("busy", "the server is at its limit of concurrent streams; try again later")
        self._numbers += 1
        stream = _Stream(self._numbers, stream_id, room=room)
        if room is not None:
            try:
                self.rooms.open(room, token, stream)
            except ProtocolError:
                self.capacity.release()
                raise
        self.streams[stream_id] = self._by_number[stream.number] = stream
        return [Open(stream.number, settings)]

    def _free_id(self) -> str:
        n = len(self.streams) + 1
        while str(n) in self.streams:
            n += 1
        return str(n)

    def _on_source(self, message: dict) -> list[Event]:
        stream = self._stream_for(message)
        text = message.get("text")
        if not isinstance(text, str):
            raise ProtocolError("bad_message", "'source' needs 'text', a string of source words")
        if stream.ended:
            raise ProtocolError("stream_ended", f"stream {json.dumps(stream.id)} has ended; "
                                "start a new stream for more source text")
        return self._push(stream, stream.words.feed(text))

    def _push(self, stream: _Stream, words: list[str]) -> list[Event]:
        if not words:
            return []
        stream.source_words += len(words)
        if stream.source_words - stream.source_read > self.limits.max_queued_words:
            return self._fail(stream, "too_far_ahead", f"more than {self.limits.max_queued_words} source words are "
                              "waiting to be translated; send the text at most as fast as it is translated "
                              "(the stream itself may be as long as you like)")
        return [Push(stream.number, tuple(words))]

    def _on_end(self, message: dict) -> list[Event]:
        stream = self._stream_for(message)
        if stream.ended:
            raise ProtocolError("stream_ended", f"stream {json.dumps(stream.id)} has already ended")
        last = stream.words.flush()
        events = self._push(stream, last)  # counts them against the limits
        if stream.id not in self.streams:  # the last words broke a limit
            return events
        stream.ended = True
        return [Finish(stream.number, tuple(last))]

    def _on_listen(self, message: dict) -> list[Event]:
        room, token = _room(message)
        if room is None:
            raise ProtocolError("bad_message", "'listen' needs 'room', the name in the speaker's start message")
        return [Relay(text) for text in self.rooms.listen(room, token, self.listener)]

    def _on_cancel(self, message: dict) -> list[Event]:
        stream = self._stream_for(message)
        return self._forget(stream) + [Reply({"type": "cancelled", "id": stream.id})]

    # --- outcomes of the model work ---

    def outcome(self, outcome: Outcome) -> list[Event]:
        """What the client hears of one outcome; nothing once its stream is gone."""
        stream = self._by_number.get(outcome.stream)
        if stream is None:
            return []
        if isinstance(outcome, Opened):
            return self._say(stream, {"type": "ready", "id": stream.id, "protocol": PROTOCOL_VERSION, **outcome.info})
        if isinstance(outcome, Wrote):
            stream.source_read = max(stream.source_read, outcome.source_read)
            if not outcome.words:
                return []
            stream.target_words += len(outcome.words)
            extra = {} if outcome.lag_ms is None else {"lag_ms": outcome.lag_ms}
            return self._say(stream, {"type": "target", "id": stream.id, "segment": outcome.segment,
                           "segment_start": outcome.segment_start,
                           "text": " ".join(outcome.words), "words": list(outcome.words),
                           "source_read": outcome.source_read, "delays": list(outcome.delays), **extra})
        if isinstance(outcome, SegmentClosed):
            return self._say(stream, {"type": "segment", "id": stream.id, "segment": outcome.segment,
                                      "source": outcome.source, "text": outcome.text, "cut": outcome.cut,
                                      "start": outcome.start, "delays": list(outcome.delays)})
        if isinstance(outcome, Finished):
            return (self._say(stream, {"type": "done", "id": stream.id, "text": outcome.text, **outcome.summary})
                    + self._forget(stream))
        if isinstance(outcome, Failed):
            return self._fail(stream, outcome.code, outcome.message)
        raise TypeError(f"not an outcome: {outcome!r}")

    def _fail(self, stream: _Stream, code: str, message: str) -> list[Event]:
        return self._say(stream, {"type": "error", "id": stream.id, "code": code, "message": message}) + \
            self._forget(stream)

    def _say(self, stream: _Stream, message: dict) -> list[Event]:
        return [Reply(message)] + ([Broadcast(stream.room, message, stream)] if stream.room is not None else [])

    def _forget(self, stream: _Stream) -> list[Event]:
        if self.streams.pop(stream.id, None) is None:
            return []
        del self._by_number[stream.number]
        self.capacity.release()
        # Listeners hear why the words stopped (ignored by a room its stream has already left with done).
        gone = [Broadcast(stream.room, {"type": "error", "id": stream.id, "code": "speaker_gone", "message":
                                        "the speaker's stream ended before it was done"}, stream)] if stream.room else []
        return [Drop(stream.number)] + gone
