"""Subtitle cues from timed segments, and the SRT / WebVTT they are written as."""
import html

import srt
import webvtt

from psfuture.subtitles import Cue, Timeline, cues, to_srt, to_vtt


def timed(text, start=0.0, step=0.5):
    return [(w, start + i * step) for i, w in enumerate(text.split())]


def test_a_cue_is_at_most_two_lines_of_one_segment_shown_from_its_first_word():
    long = "In the beginning God created the heavens and the earth, and the earth was formless and empty."
    out = cues([timed(long), timed("Next.", start=20.0)])
    assert all(len(line) <= 42 for c in out for line in c.text.split("\n"))
    assert all(len(c.text.split("\n")) <= 2 for c in out)
    assert " ".join(c.text.replace("\n", " ") for c in out[:-1]) == long and out[-1].text == "Next."
    assert out[0] == Cue(0.0, 7.5, "In the beginning God created the heavens\nand the earth, and the earth was formless")
    # The next cue of the segment replaces it at once; the segment's last cue goes hold_s after its last word.
    assert out[1] == Cue(7.5, 8.0 + 3.0, "and empty.")
    assert out[2] == Cue(20.0, 23.0, "Next.")


def test_cues_written_in_a_burst_last_at_least_min_s_and_a_long_word_gets_its_own_line():
    out = cues([[("Hi.", 1.0)], [("There.", 1.2)], [("x" * 50, 1.3)]], min_s=1.0)
    assert [(c.start, c.end) for c in out] == [(1.0, 2.0), (1.2, 2.2), (1.3, 4.3)]
    assert out[2].text == "x" * 50


def test_srt_and_vtt_parse_back_to_the_same_cues():
    t = Timeline()
    for i, (segment, word) in enumerate([(0, "In"), (0, "the"), (0, "beginning."), (2, "Light.")]):
        t.add(segment, word, 3661.25 + i)
    assert t.segments[1] == []
    out = cues(t.segments)
    parsed_srt = list(srt.parse(to_srt(out)))
    parsed_vtt = webvtt.from_string(to_vtt(out))
    assert [s.content for s in parsed_srt] == [c.text for c in parsed_vtt] == [c.text for c in out]
    assert [s.start.total_seconds() for s in parsed_srt] == [c.start for c in out]
    assert [c.start for c in parsed_vtt] == ["01:01:01.250", "01:01:04.250"]
    assert to_srt([]) == "" and to_vtt([]).startswith("WEBVTT")


def test_vtt_escapes_what_webvtt_would_read_as_markup_or_a_timing_line():
    # A translation may hold "<", "&" or "->" (software documentation, an <unk>): WebVTT cue text must escape them,
    # and "-->" in a cue is not allowed at all (webvtt-py refused the whole file).
    text = "a <unk> & b --> c"
    out = to_vtt([Cue(0.0, 1.0, text), Cue(1.0, 2.0, "x")])
    parsed = webvtt.from_string(out)
    assert [html.unescape(c.raw_text) for c in parsed] == [text, "x"]
    assert "<" not in out and "-->" not in out.split("\n")[3]
    assert [s.content for s in srt.parse(to_srt([Cue(0.0, 1.0, text)]))] == [text]  # SRT has no escapes


def test_a_timeline_renders_once_per_new_word():
    t = Timeline()
    t.add(0, "Hello.", 1.0)
    first = t.render("vtt")
    assert first == to_vtt(cues(t.segments)) and t.render("vtt") is first  # unchanged: the same build
    assert t.render("srt") == to_srt(cues(t.segments))
    t.add(1, "World.", 2.0)
    assert "World." in t.render("vtt") and t.render("vtt") == to_vtt(cues(t.segments))
