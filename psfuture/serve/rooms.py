"""Live events: one speaker's stream followed by any number of listeners (sans-I/O, like `protocol`).

A speaker's `start` may carry `"room": NAME` (and a `"token"` listeners must present); a connection that sends
`{"type": "listen", "room": NAME}` then gets the stream's `ready` / `target` / `segment` / `done` messages, with
`"id"` set to the room's name. A room outlives its stream: its listeners stay and hear the next stream started
under the same name (with the same token), and a late listener first gets a catch-up of the latest stream: one
merged `target` and a `segment` per closed segment, then the open segment's words so far.

No sockets and no clock: the adapter passes the time of each message and gets back the one text to send to every
listener (serialized once, whatever their number; a late listener's catch-up too); a listener is any hashable handle
of the adapter's.
"""
from __future__ import annotations

import hmac
import json
from dataclasses import dataclass, field
from typing import Any, Hashable

from psfuture.serve.messages import ProtocolError
from psfuture.subtitles import Timeline

FANNED = ("ready", "target", "segment", "done", "error")  # what listeners hear of the speaker's stream


@dataclass
class Room:
    """A room and its latest stream. What a late listener gets is kept serialized, each text once for all of them:
    listeners that read slowly hold the room's texts in their outboxes, not copies of their own."""

    name: str
    token: str | None
    owner: Any = None  # the speaker's stream while one is live
    listeners: dict = field(default_factory=dict)  # handle -> None: an ordered set
    ready: str | None = None
    closed: list[str] = field(default_factory=list)  # each closed segment as one target and its segment message
    open: dict | None = None  # the open segment's words so far, as one target message
    written: Timeline = field(default_factory=Timeline)  # each word with when it was written: for subtitles
    final: str | None = None  # done, or the error that ended the stream
    t0: float | None = None  # when the stream was ready: its subtitles' time 0

    @property
    def live(self) -> bool:
        return self.owner is not None

    def restart(self, owner: Any) -> None:
        self.owner, self.ready, self.closed, self.open, self.final = owner, None, [], None, None
        self.written, self.t0 = Timeline(), None

    def record(self, message: dict, text: str, now: float) -> None:
        """Keep what a late listener needs of one message (`text`: the message serialized)."""
        kind = message["type"]
        self.t0 = now if self.t0 is None else self.t0
        if kind == "ready":
            self.ready = text
        elif kind == "target":
            k = message["segment"]
            for word in message["words"]:
                self.written.add(k, word, now - self.t0)
            if self.open is None or self.open["segment"] != k:
                self.open = {**message, "words": [], "delays": []}
                self.open.pop("lag_ms", None)
            self.open["words"] += message["words"]
            self.open["delays"] += message["delays"]
            self.open.update(text=" ".join(self.open["words"]), source_read=message["source_read"])
        elif kind == "segment":
            words = message["text"].split()
            if words:
                self.closed.append(_text({
                    "type": "target", "id": self.name, "segment": message["segment"],
                    "segment_start": message["start"], "text": message["text"], "words": words,
                    "delays": message["delays"], "source_read": message["start"] + len(message["source"].split())}))
            self.closed.append(text)
            if self.open is not None and self.open["segment"] == message["segment"]:
                self.open = None
        else:
            self.final = text

    def catch_up(self) -> list[str]:
        """What a listener joining now needs to be where the others are, serialized."""
        out = [self.ready] if self.ready else []
        out += self.closed
        if self.open is not None:
            out.append(_text(self.open))
        return out + ([self.final] if self.final else [])


class Rooms:
    """Every room of one server process, shared by its connections (used from one thread only).

    Ended rooms stay for their listeners and for their subtitles; beyond `max_ended` of them, the oldest without
    listeners are forgotten."""

    def __init__(self, max_listeners: int = 1000, max_ended: int = 32, max_rooms_per_listener: int = 4):
        self.max_listeners, self.max_ended = max_listeners, max_ended
        # One connection may not take every listener place (a room with a listener is never forgotten).
        self.max_rooms_per_listener = max_rooms_per_listener
        self.rooms: dict[str, Room] = {}
        self._of: dict[Hashable, set[str]] = {}  # listener -> names of the rooms it listens to

    @property
    def listeners(self) -> int:
        return sum(len(r.listeners) for r in self.rooms.values())

    def open(self, name: str, token: str | None, owner: Any) -> None:
        """A speaker's stream takes the room: a new one, or an ended one with the same token."""
        room = self.rooms.get(name)
        if room is None:
            room = self.rooms[name] = Room(name, token)
        elif room.live:
            raise ProtocolError("room_taken", f"room {json.dumps(name)} has a live stream; pick another name")
        elif not _same(room.token, token):
            raise ProtocolError("room_taken", f"room {json.dumps(name)} was opened with another token; send "
                                "that one to speak in it again, or pick another name")
        room.restart(owner)
        self._evict()

    def publish(self, name: str, message: dict, owner: Any, now: float) -> tuple[str | None, list]:
        """The speaker's message as listeners get it: its text (None if the room is not `owner`'s) and to whom."""
        room = self.rooms.get(name)
        if room is None or room.owner is not owner or message["type"] not in FANNED:
            return None, []
        message = {**message, "id": name}
        text = _text(message)
        room.record(message, text, now)
        if message["type"] in ("done", "error"):
            room.owner = None
            self._evict()
        return text, list(room.listeners)

    def listen(self, name: str, token: str | None, listener: Hashable) -> list[str]:
        """Add a listener; the catch-up it gets first (the `listening` reply leads it), serialized."""
        room = self.rooms.get(name)
        if room is None:
            raise ProtocolError("no_room", f"no room {json.dumps(name)} on this server (yet): its speaker's start "
                                "message names it")
        if room.token is not None and not _same(room.token, token):
            raise ProtocolError("bad_token", f"room {json.dumps(name)} needs its token; ask the speaker for the "
                                "listener link")
        if listener in room.listeners:  # a catch-up is the biggest reply there is: one per listener and room
            raise ProtocolError("already_listening", f"this connection already listens to room {json.dumps(name)}")
        if len(self._of.get(listener, ())) >= self.max_rooms_per_listener:
            raise ProtocolError("too_many_rooms", f"one connection may listen to at most {self.max_rooms_per_listener} "
                                "rooms")
        if self.listeners >= self.max_listeners:
            raise ProtocolError("busy", f"the server has its limit of {self.max_listeners} listeners")
        room.listeners[listener] = None
        self._of.setdefault(listener, set()).add(name)
        return [_text({"type": "listening", "room": name, "live": room.live, "listeners": len(room.listeners)}),
                *room.catch_up()]

    def listens(self, listener: Hashable) -> bool:
        return bool(self._of.get(listener))

    def leave(self, listener: Hashable) -> None:
        for name in self._of.pop(listener, ()):
            if name in self.rooms:
                self.rooms[name].listeners.pop(listener, None)
        self._evict()

    def subtitles(self, name: str, token: str | None) -> Timeline:
        room = self.rooms.get(name)
        if room is None or (room.token is not None and not _same(room.token, token)):
            raise ProtocolError("no_room", f"no room {json.dumps(name)} here, or a wrong token")
        return room.written

    def _evict(self) -> None:
        ended = [n for n, r in self.rooms.items() if not r.live and not r.listeners]
        for name in ended[:max(0, len(ended) - self.max_ended)]:
            del self.rooms[name]


def _text(message: dict) -> str:
    return json.dumps(message, ensure_ascii=False)


def _same(expected: str | None, given: str | None) -> bool:
    if expected is None or given is None:
        return expected is given
    return hmac.compare_digest(expected.encode(), given.encode())
