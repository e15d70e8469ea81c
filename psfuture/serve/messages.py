"""The data that crosses the sans-I/O boundary of `psfuture.serve.protocol`: its settings and limits, the error a
client's mistake becomes, what the protocol asks of its adapter (replies, room broadcasts, model work) and what the
model work hands back (outcomes). Plain frozen dataclasses: no sockets, no asyncio, no model, no torch.

`psfuture.serve.protocol` re-exports every name here; the engine and the rooms take them from here, below both.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Union


@dataclass(frozen=True)
class Limits:
    """Per-server limits; each keeps one hostile or buggy client from starving the others."""

    max_message_bytes: int = 64 * 1024  # larger frames are refused with close code 1009
    # Source words received but not yet read by the engine: a client may paste a document at once, but not run
    # unboundedly ahead of the translation (the stream itself has no length limit).
    max_queued_words: int = 20000
    # The longest segment a start message may ask for: a segment is re-encoded at every word, so its length bounds
    # what one word costs.
    max_segment_words: int = 200
    max_streams_per_connection: int = 4  # open at the same time on one connection
    max_streams: int = 64  # open at the same time on the whole server
    max_connections: int = 256
    idle_timeout_s: float = 300.0  # a connection silent this long is closed
    max_pending_replies: int = 1000  # a client that never reads is cut off (a listener's catch-up counts as one)
    max_listeners: int = 1000  # listeners of every room together

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if not (isinstance(value, (int, float)) and value > 0):
                raise ValueError(f"Limits.{f.name} must be a positive number, got {value!r}")


Scalar = Union[str, int, float, bool, None]


@dataclass(frozen=True)
class StreamSettings:
    """Read/write policy of one stream: the CLI's --policy/--threshold/--set and a `start` message's fields.

    `options` are the policy's own settings (threshold, k, n, ...), checked by the engine (`build_policy`);
    `target_al` asks for the threshold that aims at that average lagging instead of a fixed one."""

    policy: str = "psfuture"
    options: tuple[tuple[str, Scalar], ...] = ()
    target_al: float | None = None
    segment: tuple[tuple[str, Scalar], ...] = ()  # the segmenter's settings (SEGMENT_FIELDS), checked by the engine

    RESERVED: ClassVar[frozenset] = frozenset({"type", "id", "policy", "target_al", "room", "token"})
    # Message field -> psfuture.segmenter.Segmenter setting.
    SEGMENT_FIELDS: ClassVar[dict] = {"cut_punctuation": "punctuation", "cut_model": "model", "model_eos": "model_eos",
                                      "max_segment_words": "max_words"}

    @classmethod
    def from_message(cls, message: dict, default: "StreamSettings") -> "StreamSettings":
        policy = message.get("policy", default.policy)
        if not isinstance(policy, str):
            raise ProtocolError("bad_setting", f"'policy' must be a string, got {json.dumps(policy)[:40]}")
        options = dict(default.options) if policy == default.policy else {}  # a switch drops the default's knobs
        target_al = default.target_al if policy == default.policy else None
        if "target_al" in message:  # one latency knob at a time: the message's wins over the default's
            target_al = message["target_al"]
            options.pop("threshold", None)
        elif "threshold" in message:
            target_al = None
        if target_al is not None and not _is_number(target_al):
            raise ProtocolError("bad_setting", f"'target_al' must be a number, got {json.dumps(target_al)[:40]}")
        segment = dict(default.segment)
        for name, value in message.items():
            if name in cls.RESERVED:
                continue
            if not (value is None or isinstance(value, (str, bool)) or _is_number(value)):
                raise ProtocolError("bad_setting", f"setting '{name[:40]}' must be a string, number, "
                                    f"boolean or null, got {json.dumps(value)[:40]}")
            (segment if name in cls.SEGMENT_FIELDS else options)[name] = value
        return cls(policy, tuple(sorted(options.items())), target_al, tuple(sorted(segment.items())))

    def as_dict(self) -> dict:
        d = {"policy": self.policy, **dict(self.options), **dict(self.segment)}
        if self.target_al is not None:
            d["target_al"] = self.target_al
        return d


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


class ProtocolError(Exception):
    """A client mistake, answered with {"type": "error", "code": code, "message": message}."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


# --- what the core asks of the adapter ---------------------------------------------------------------------

@dataclass(frozen=True)
class Reply:
    """A JSON message to send to the client."""

    message: dict

    def text(self) -> str:
        return json.dumps(self.message, ensure_ascii=False)


class Relay(Reply):
    """A message already serialized, the same text for many connections (a room's catch-up): each listener's outbox
    holds the room's text, not a copy of its own. `message` parses it back (for tests and logs)."""

    def __init__(self, text: str):
        object.__setattr__(self, "_text", text)

    @property
    def message(self) -> dict:
        return json.loads(self._text)

    def text(self) -> str:
        return self._text


@dataclass(frozen=True)
class Open:
    stream: int
    settings: StreamSettings


@dataclass(frozen=True)
class Push:
    stream: int
    words: tuple[str, ...]


@dataclass(frozen=True)
class Finish:
    """The source is complete; `words` came with the end (a last word without whitespace after it): they go
    straight to the final decode, as SimulEval feeds an agent its last word with the end of the source."""

    stream: int
    words: tuple[str, ...] = ()


@dataclass(frozen=True)
class Drop:
    """Forget the stream's session (cancelled, failed or its connection gone); no reply is expected."""

    stream: int


@dataclass(frozen=True)
class Broadcast:
    """A message of a stream with a room, for the room's listeners (`psfuture.serve.rooms.Rooms.publish`)."""

    room: str
    message: dict
    owner: Any  # the stream: a room takes messages only from the stream that holds it


Work = Union[Open, Push, Finish, Drop]
Event = Union[Reply, Broadcast, Work]


# --- what the model work hands back (the engine makes them, `ServerProtocol.outcome` answers them) -----------

@dataclass(frozen=True)
class Opened:
    stream: int
    info: dict  # model, policy signature, settings: added to the "ready" message


@dataclass(frozen=True)
class Wrote:
    """New target words of one segment; `delays` are the stream's source words read when each was written,
    `source_read` those read so far."""

    stream: int
    words: tuple[str, ...]
    source_read: int
    delays: tuple[int, ...]
    lag_ms: float | None = None
    segment: int = 0
    segment_start: int = 0  # stream position of the segment's first source word


@dataclass(frozen=True)
class SegmentClosed:
    """A segment is complete: nothing more will be written for it."""

    stream: int
    segment: int
    source: str
    text: str
    cut: str  # why it ended: punctuation, model, length, given, end
    start: int  # stream position of its first source word
    delays: tuple[int, ...]


@dataclass(frozen=True)
class Finished:
    stream: int
    text: str
    summary: dict  # words, source_words, delays, al, stats: added to the "done" message


@dataclass(frozen=True)
class Failed:
    """The model work for a stream failed; the stream is gone and the client is told why."""

    stream: int
    code: str
    message: str


Outcome = Union[Opened, Wrote, SegmentClosed, Finished, Failed]
