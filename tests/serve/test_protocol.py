import json

import pytest

from psfuture.serve.protocol import (Capacity, Drop, Failed, Finish, Finished, Limits, Open, Opened, Push, Reply,
                                     SegmentClosed, ServerProtocol, StreamSettings, WordBuffer, Wrote)


def replies(events):
    return [e.message for e in events if isinstance(e, Reply)]


def work(events):
    return [e for e in events if not isinstance(e, Reply)]


def send(proto, **message):
    return proto.receive(json.dumps(message))


def test_word_buffer_holds_back_a_partial_word():
    b = WordBuffer()
    assert b.feed("Im Anf") == ["Im"]
    assert b.feed("ang schuf ") == ["Anfang", "schuf"]
    assert b.feed("") == []
    assert b.feed("  Gott\tdie\n") == ["Gott", "die"]
    assert b.feed("Erde.") == []
    assert b.flush() == ["Erde."]
    assert b.flush() == []


def test_full_exchange_produces_ordered_work_and_replies():
    p = ServerProtocol()
    [open_] = send(p, type="start", threshold=0.5)
    assert isinstance(open_, Open) and open_.settings == StreamSettings("psfuture", (("threshold", 0.5),))
    n = open_.stream
    assert replies(p.outcome(Opened(n, {"model": "m"}))) == [{"type": "ready", "id": "1", "protocol": 1, "model": "m"}]
    assert send(p, type="source", text="Im Anfang sch") == [Push(n, ("Im", "Anfang"))]
    assert send(p, type="source", text="uf") == []
    # The word that comes with the end goes straight to the final decode (as SimulEval's last word).
    assert send(p, type="end") == [Finish(n, ("schuf",))]
    [target] = replies(p.outcome(Wrote(n, ("In", "the"), 2, (1, 2), lag_ms=3.0)))
    assert target == {"type": "target", "id": "1", "segment": 0, "segment_start": 0, "text": "In the", "words": ["In", "the"], "source_read": 2,
                      "delays": [1, 2], "lag_ms": 3.0}
    [done] = replies(p.outcome(Finished(n, "In the beginning", {"delays": [1, 2, 3]})))
    assert done["type"] == "done" and done["text"] == "In the beginning"
    assert p.streams == {} and p.capacity.used == 0
    # The connection can run another stream afterwards.
    [open2] = send(p, type="start")
    assert open2.stream != n


def test_concurrent_streams_by_id_stay_apart():
    p = ServerProtocol()
    a = send(p, type="start", id="a")[0].stream
    b = send(p, type="start", id="b")[0].stream
    assert send(p, type="source", id="b", text="x y ") == [Push(b, ("x", "y"))]
    assert send(p, type="source", id="a", text="z ") == [Push(a, ("z",))]
    [err] = replies(send(p, type="source", text="w "))
    assert err["code"] == "ambiguous_stream"
    assert replies(p.outcome(Wrote(a, ("Z",), 1, (1,))))[0]["id"] == "a"
    [err] = replies(send(p, type="start", id="a"))
    assert err["code"] == "stream_open" and err["id"] == "a"


@pytest.mark.parametrize("text, code", [
    ("{not json", "bad_json"),
    ("[1, 2]", "bad_message"),
    ('"start"', "bad_message"),
    ("{}", "unknown_type"),
    ('{"type": "hello"}', "unknown_type"),
    ('{"type": "source", "text": "x", "beam": 5}', "unknown_field"),
    ('{"type": "start", "threshold": [1]}', "bad_setting"),
    ('{"type": "start", "k": {"a": 1}}', "bad_setting"),
    ('{"type": "start", "threshold": 1e999}', "bad_setting"),
    ('{"type": "start", "target_al": "3"}', "bad_setting"),
    ('{"type": "start", "policy": 3}', "bad_setting"),
    ('{"type": "start", "id": ""}', "bad_id"),
    ('{"type": "start", "id": "a b"}', "bad_id"),
    ('{"type": "start", "id": 7}', "bad_id"),
    ('{"type": "source", "text": "x"}', "no_stream"),
    ('{"type": "end"}', "no_stream"),
    ('{"type": "end", "id": "nope"}', "unknown_stream"),
    ("[" * 100000, "bad_json"),
    # Past Python's limit on an int's digits: a ValueError, not a JSONDecodeError.
    pytest.param('{"type": "start", "k": ' + "1" * 5000 + "}", "bad_json", id="huge-int"),
    pytest.param('{"type": "listen", "room": -' + "9" * 5000 + "}", "bad_json", id="huge-negative-int"),
])
def test_malformed_messages_get_an_error_and_change_nothing(text, code):
    p = ServerProtocol()
    events = p.receive(text)
    assert [e["type"] for e in replies(events)] == ["error"] and work(events) == []
    assert replies(events)[0]["code"] == code
    assert p.streams == {} and p.capacity.used == 0


def test_source_after_end_and_double_end_are_refused():
    p = ServerProtocol()
    n = send(p, type="start")[0].stream
    send(p, type="end")
    for message in ({"type": "source", "text": "more "}, {"type": "end"}):
        [err] = replies(p.receive(json.dumps(message)))
        assert err["code"] == "stream_ended"
    [err] = replies(send(p, type="source"))
    assert err["code"] == "bad_message"
    p.outcome(Finished(n, "", {}))
    assert send(p, type="source", text="x ")[0].message["code"] == "no_stream"


def test_a_stream_has_no_length_limit_only_a_queue_limit():
    p = ServerProtocol(Limits(max_queued_words=3))
    n = send(p, type="start")[0].stream
    assert work(send(p, type="source", text="a b c")) == [Push(n, ("a", "b"))]
    p.outcome(Wrote(n, (), 2, ()))  # the engine has read two words: two more fit in the queue
    assert work(send(p, type="source", text=" d e ")) == [Push(n, ("c", "d", "e"))]
    events = send(p, type="source", text="f ")
    assert work(events) == [Drop(n)] and replies(events)[0]["code"] == "too_far_ahead"
    assert p.streams == {} and p.capacity.used == 0
    # Outcomes of work already queued for the dropped stream are ignored.
    assert p.outcome(Wrote(n, ("A",), 1, (1,))) == [] and p.outcome(Finished(n, "A", {})) == []


def test_stream_limits_per_connection_and_global():
    cap = Capacity(3)
    p1 = ServerProtocol(Limits(max_streams_per_connection=2), cap)
    p2 = ServerProtocol(Limits(max_streams_per_connection=2), cap)
    send(p1, type="start", id="a"), send(p1, type="start", id="b")
    assert replies(send(p1, type="start", id="c"))[0]["code"] == "too_many_streams"
    send(p2, type="start")
    assert replies(send(p2, type="start", id="x"))[0]["code"] == "busy"
    assert [type(e) for e in p1.close()] == [Drop, Drop] and cap.used == 1
    assert isinstance(send(p2, type="start", id="x")[0], Open)
    cap.closed = True
    assert replies(send(p2, type="start", id="y"))[0]["code"] == "too_many_streams"
    p2.close()
    assert replies(send(p2, type="start", id="y"))[0]["code"] == "shutting_down"


def test_cancel_and_failure_drop_the_stream():
    p = ServerProtocol()
    n = send(p, type="start", id="s")[0].stream
    events = send(p, type="cancel")
    assert work(events) == [Drop(n)] and replies(events) == [{"type": "cancelled", "id": "s"}]
    n = send(p, type="start", id="s")[0].stream
    events = p.outcome(Failed(n, "internal", "internal error"))
    assert work(events) == [Drop(n)] and replies(events)[0]["code"] == "internal"
    assert p.streams == {}


def test_settings_follow_the_defaults_unless_the_policy_changes():
    default = StreamSettings("psfuture", (("k", 2), ("threshold", 0.3)))
    assert StreamSettings.from_message({"type": "start"}, default) == default
    assert StreamSettings.from_message({"k": 3, "policy": "waitk"}, default) == StreamSettings("waitk", (("k", 3),))
    assert StreamSettings.from_message({"threshold": 0.1}, default).options == (("k", 2), ("threshold", 0.1))
    # target_al replaces the default threshold and vice versa.
    by_al = StreamSettings.from_message({"target_al": 4}, default)
    assert by_al == StreamSettings("psfuture", (("k", 2),), 4)
    assert StreamSettings.from_message({"threshold": 0.2}, by_al) == StreamSettings("psfuture", (("k", 2), ("threshold", 0.2)))
    assert default.as_dict() == {"policy": "psfuture", "k": 2, "threshold": 0.3}


def test_limits_must_be_positive():
    with pytest.raises(ValueError, match="max_streams"):
        Limits(max_streams=0)


def test_settings_build_the_engines_policy():
    from psfuture.errors import ConfigError
    from psfuture.policies import PsFuture, WaitK
    from psfuture.serve.engine import build_policy

    assert build_policy(StreamSettings("waitk", (("k", 2),))) == WaitK(k=2)
    assert build_policy(StreamSettings(target_al=3), lambda policy, al, settings: al / 10) == PsFuture(threshold=0.3)
    seen = []
    build_policy(StreamSettings(target_al=3, options=(("k", 2),)), lambda p, al, settings: seen.append(settings) or 0.1)
    assert seen == [{k: v for k, v in PsFuture(k=2).settings().items() if k != "threshold"}]
    assert seen[0]["k"] == 2 and seen[0]["divergence"] == "kl"
    for bad, match in [(StreamSettings("nope"), "unknown policy"), (StreamSettings(target_al=3), "calibration"),
                       (StreamSettings(options=(("threshold", "high"),)), "threshold"),
                       (StreamSettings(options=(("threshold", -1),)), "finite number >= 0"),
                       (StreamSettings(options=(("beam", 5),)), "beam")]:
        with pytest.raises(ConfigError, match=match):
            build_policy(bad)


def test_the_protocol_imports_without_torch_or_policies():
    import subprocess
    import sys

    code = ("import sys, time; t = time.perf_counter(); import psfuture.serve.protocol; t = time.perf_counter() - t; "
            "heavy = [m for m in ('torch', 'psfuture.policies', 'psfuture.session', 'fairseq', 'asyncio') "
            "if m in sys.modules]; "
            "print(heavy, t)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == "[]", f"importing the protocol loaded {out}"


def test_segments_are_announced_and_target_words_name_theirs():
    p = ServerProtocol()
    n = send(p, type="start", cut_punctuation=False, max_segment_words=5, k=2, policy="waitk")[0]
    assert n.settings.segment == (("cut_punctuation", False), ("max_segment_words", 5))
    assert n.settings.options == (("k", 2),)
    [target] = replies(p.outcome(Wrote(n.stream, ("In",), 3, (3,), segment=1)))
    assert target["segment"] == 1
    [segment] = replies(p.outcome(SegmentClosed(n.stream, 1, "Im Anfang", "In the beginning", "punctuation", 7,
                                                (8, 9, 9))))
    assert segment == {"type": "segment", "id": "1", "segment": 1, "source": "Im Anfang", "text": "In the beginning",
                       "cut": "punctuation", "start": 7, "delays": [8, 9, 9]}
