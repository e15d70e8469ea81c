"""Subtitles (SRT, WebVTT) from a stream's segments, timed by when their words were written. No model, no I/O:
used by `psfuture translate --srt/--vtt` and by the server's `/subtitles/<room>.vtt|.srt`.

A cue holds at most `lines` lines of `line_chars` characters (the usual subtitle limits) of one segment; it appears
when its first word was written and stays until the next cue appears or `hold_s` after its last word was written,
and at least `min_s` (cues written in a burst may overlap rather than flash by). Times are seconds after the stream
started: when the words were written, or (`translate --rate R`, text read aloud at R source words/s) when the source
words each one waited for had been spoken: a word with delay d at d / R.
"""
from __future__ import annotations

import datetime
import io
from dataclasses import dataclass
from typing import Iterable, Sequence

import srt
import webvtt

Timed = Sequence[tuple[str, float]]  # (word, seconds after the stream started)


@dataclass(frozen=True)
class Cue:
    start: float
    end: float
    text: str  # its lines, joined with "\n"


class Timeline:
    """Each segment's words with when they were written, collected as a stream writes them."""

    def __init__(self):
        self.segments: list[list[tuple[str, float]]] = []
        self._words = 0
        self._rendered: dict[str, tuple[int, str]] = {}  # format -> (words then, text)

    def add(self, segment: int, word: str, t: float) -> None:
        while len(self.segments) <= segment:
            self.segments.append([])
        self.segments[segment].append((word, t))
        self._words += 1

    def render(self, kind: str) -> str:
        """The subtitles in `kind` (a key of FORMATS), rebuilt only when words were written since the last call:
        a server answers every viewer's request from one build, and an hour of talk takes tens of ms to build."""
        words, text = self._rendered.get(kind, (-1, ""))
        if words != self._words:
            text = FORMATS[kind](cues(self.segments))
            self._rendered[kind] = (self._words, text)
        return text


def cues(segments: Iterable[Timed], line_chars: int = 42, lines: int = 2, hold_s: float = 3.0,
         min_s: float = 1.0) -> list[Cue]:
    chunks = [c for words in segments for c in _chunks(words, line_chars, lines)]
    out = []
    for i, chunk in enumerate(chunks):
        start, last = chunk[0][0][1], chunk[-1][-1][1]
        end = last + hold_s if i + 1 == len(chunks) else min(chunks[i + 1][0][0][1], last + hold_s)
        text = "\n".join(" ".join(w for w, _ in line) for line in chunk)
        out.append(Cue(start, max(end, start + min_s), text))
    return out


def _chunks(words: Timed, line_chars: int, lines: int) -> list[list[list[tuple[str, float]]]]:
    """Greedy line filling: a cue is a list of lines, a line a list of (word, time)."""
    out, cue, width = [], [[]], 0
    for word, t in words:
        if cue[-1] and width + 1 + len(word) > line_chars:
            if len(cue) == lines:
                out.append(cue)
                cue = [[]]
            else:
                cue.append([])
        width = width + 1 + len(word) if cue[-1] else len(word)
        cue[-1].append((word, t))
    return out + ([cue] if cue[-1] else [])


def to_srt(cue_list: Sequence[Cue]) -> str:
    return srt.compose([srt.Subtitle(i, datetime.timedelta(seconds=c.start), datetime.timedelta(seconds=c.end),
                                     c.text) for i, c in enumerate(cue_list, 1)], reindex=False)


def to_vtt(cue_list: Sequence[Cue]) -> str:
    # WebVTT cue text is markup: "<" opens a tag, "&" an entity, and "-->" may not appear (the text is the words as
    # written, so escape them; SRT has no escapes and takes the words as they are).
    vtt = webvtt.WebVTT(captions=[webvtt.Caption(_clock(c.start), _clock(c.end), _vtt_text(c.text))
                                  for c in cue_list])
    out = io.StringIO()
    vtt.write(out)
    return out.getvalue()


FORMATS = {"srt": to_srt, "vtt": to_vtt}


def _vtt_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clock(seconds: float) -> str:
    ms = round(seconds * 1000)
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"
