"""Rooms without sockets: a speaker's protocol, listeners' protocols and one shared registry."""
import json

import pytest

from psfuture.serve.protocol import (Broadcast, Drop, Finished, Limits, Opened, Reply, SegmentClosed, ServerProtocol,
                                     StreamSettings, Wrote)
from psfuture.serve.rooms import Rooms


def send(proto, **message):
    return proto.receive(json.dumps(message))


class Hub:
    """What the adapter does with Broadcast events: each listener's texts, in order."""

    def __init__(self, rooms):
        self.rooms, self.heard, self.now = rooms, {}, 0.0

    def run(self, events):
        mine = []
        for e in events:
            if isinstance(e, Broadcast):
                text, listeners = self.rooms.publish(e.room, e.message, e.owner, self.now)
                for listener in listeners:
                    self.heard.setdefault(listener, []).append(json.loads(text))
            elif isinstance(e, Reply):
                mine.append(e.message)
        return mine


def speaker_stream(rooms, **start):
    speaker = ServerProtocol(rooms=rooms)
    [open_] = send(speaker, type="start", id="talk", **start)
    return speaker, open_.stream


def test_listeners_hear_the_stream_under_the_room_name_and_a_late_one_catches_up():
    rooms = Rooms()
    hub = Hub(rooms)
    speaker, n = speaker_stream(rooms, room="hall", token="t", threshold=0.5)
    early = ServerProtocol(rooms=rooms)
    assert hub.run(send(early, type="listen", room="hall", token="t")) == [
        {"type": "listening", "room": "hall", "live": True, "listeners": 1}]
    spoken = []
    for outcome, now in [(Opened(n, {"model": "m"}), 1.0), (Wrote(n, ("In", "the"), 2, (1, 2), 5.0), 2.0),
                         (Wrote(n, ("beginning.",), 3, (3,), 5.0), 3.5),
                         (SegmentClosed(n, 0, "Im Anfang schuf.", "In the beginning.", "punctuation", 0, (1, 2, 3)), 3.5),
                         (Wrote(n, ("And",), 5, (5,), 4.0, segment=1, segment_start=3), 5.0)]:
        hub.now = now
        spoken += hub.run(speaker.outcome(outcome))
    assert hub.heard[early] == [{**m, "id": "hall"} for m in spoken]
    assert StreamSettings.from_message({"room": "hall", "token": "t"}, StreamSettings()) == StreamSettings()

    late = ServerProtocol(rooms=rooms)
    listening, ready, *catch_up = hub.run(send(late, type="listen", room="hall", token="t"))
    assert listening["listeners"] == 2 and ready == {**spoken[0], "id": "hall"}
    [again] = hub.run(send(late, type="listen", room="hall", token="t"))
    assert again["code"] == "already_listening" and rooms.listeners == 2
    assert catch_up == [  # each closed segment as one target + its segment, then the open segment's words so far
        {"type": "target", "id": "hall", "segment": 0, "segment_start": 0, "text": "In the beginning.",
         "words": ["In", "the", "beginning."], "delays": [1, 2, 3], "source_read": 3},
        {**spoken[3], "id": "hall"},
        {"type": "target", "id": "hall", "segment": 1, "segment_start": 3, "text": "And", "words": ["And"],
         "delays": [5], "source_read": 5}]
    # Subtitle times count from the stream's ready.
    assert rooms.subtitles("hall", "t").segments == [[("In", 1.0), ("the", 1.0), ("beginning.", 2.5)], [("And", 4.0)]]

    hub.run(speaker.outcome(Finished(n, "In the beginning. And", {"words": 4})))
    assert hub.heard[early][-1]["type"] == hub.heard[late][-1]["type"] == "done"
    # The speaker's connection goes: nothing more for listeners of a room whose stream is done.
    assert hub.run(speaker.close()) == [] and hub.heard[early][-1]["type"] == "done"


def test_the_speaker_leaving_mid_stream_tells_listeners_and_frees_the_name_for_its_token():
    rooms = Rooms()
    hub = Hub(rooms)
    speaker, n = speaker_stream(rooms, room="hall", token="t")
    listener = ServerProtocol(rooms=rooms)
    hub.run(send(listener, type="listen", room="hall", token="t"))
    events = speaker.close()
    assert Drop(n) in events
    hub.run(events)
    assert hub.heard[listener][-1]["code"] == "speaker_gone"
    assert send(ServerProtocol(rooms=rooms), type="start", room="hall")[0].message["code"] == "room_taken"
    again, _ = speaker_stream(rooms, room="hall", token="t")  # the listener stays and hears the next stream
    assert rooms.rooms["hall"].live and list(rooms.rooms["hall"].listeners) == [listener]


@pytest.mark.parametrize("message, code", [
    ({"type": "listen"}, "bad_message"),
    ({"type": "listen", "room": "no such room!"}, "bad_id"),
    ({"type": "listen", "room": "nowhere"}, "no_room"),
    ({"type": "listen", "room": "hall"}, "bad_token"),
    ({"type": "listen", "room": "hall", "token": "wrong"}, "bad_token"),
    ({"type": "listen", "room": "hall", "token": "x" * 129}, "bad_token"),
    ({"type": "listen", "room": "hall", "token": "t", "id": "a"}, "unknown_field"),
    ({"type": "start", "room": "hall"}, "room_taken"),
    ({"type": "start", "token": "t"}, "bad_message"),
])
def test_bad_listen_and_start_messages_get_errors_and_change_nothing(message, code):
    rooms = Rooms()
    speaker_stream(rooms, room="hall", token="t")
    p = ServerProtocol(rooms=rooms)
    [error] = p.receive(json.dumps(message))
    assert error.message["code"] == code and p.capacity.used == 0
    assert list(rooms.rooms) == ["hall"] and rooms.listeners == 0


def test_listener_limit_and_ended_rooms_are_forgotten_oldest_first():
    rooms = Rooms(max_listeners=1, max_ended=2)
    speaker, n = speaker_stream(rooms, room="a")
    assert send(ServerProtocol(rooms=rooms), type="listen", room="a")[0].message["type"] == "listening"
    assert send(ServerProtocol(rooms=rooms, limits=Limits()), type="listen", room="a")[0].message["code"] == "busy"
    for name in "bcd":
        p, m = speaker_stream(rooms, room=name)
        Hub(rooms).run(p.outcome(Finished(m, "", {})))
    # "a" is live; of the ended b, c, d the oldest is gone.
    assert sorted(rooms.rooms) == ["a", "c", "d"]


def test_a_catch_up_is_serialized_once_per_room_not_once_per_listener():
    # Late listeners that read slowly (or not at all) hold their catch-up in their outbox until it is sent: an hour's
    # text each, unless they share the room's texts.
    rooms = Rooms()
    hub = Hub(rooms)
    speaker, n = speaker_stream(rooms, room="hall")
    hub.run(speaker.outcome(Opened(n, {})))
    for k in range(3):
        hub.run(speaker.outcome(Wrote(n, ("Word.",), k + 1, (k + 1,), segment=k, segment_start=k)))
        hub.run(speaker.outcome(SegmentClosed(n, k, "Wort.", "Word.", "punctuation", k, (k + 1,))))
    hub.run(speaker.outcome(Wrote(n, ("And",), 4, (4,), segment=3, segment_start=3)))
    a, b = (send(ServerProtocol(rooms=rooms), type="listen", room="hall") for _ in range(2))
    assert [r.message["type"] for r in a] == ["listening", "ready"] + ["target", "segment"] * 3 + ["target"]
    assert [r.message for r in a[1:]] == [r.message for r in b[1:]]
    assert all(x.text() is y.text() for x, y in zip(a[1:-1], b[1:-1]))  # all but the open segment's words
    hub.run(speaker.outcome(Finished(n, "Word. Word. Word. And", {"words": 4})))
    c, d = (send(ServerProtocol(rooms=rooms), type="listen", room="hall") for _ in range(2))
    assert c[-1].message["type"] == "done" and c[-1].text() is d[-1].text()


def test_one_connection_cannot_take_every_listener_place():
    # Without a cap per connection, one client could open rooms and listen to each (a room with a listener is never
    # forgotten) until every other listener got "busy".
    rooms = Rooms(max_listeners=10, max_rooms_per_listener=2)
    for name in "abc":
        speaker_stream(rooms, room=name)
    greedy = ServerProtocol(rooms=rooms)
    answers = [send(greedy, type="listen", room=name)[0].message for name in "abc"]
    assert [m.get("code", m["type"]) for m in answers] == ["listening", "listening", "too_many_rooms"]
    assert send(ServerProtocol(rooms=rooms), type="listen", room="c")[0].message["type"] == "listening"
    assert rooms.listeners == 3
