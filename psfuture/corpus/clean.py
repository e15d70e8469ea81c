"""Text normalization and pair filters shared by all sources."""
from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import dataclass
from typing import Iterable

import lxml.html

from . import Pair

_TAG = re.compile(r"</?[A-Za-z][\w:.-]*(?:\s[^<>]*)?/?>")
_CONTROL = re.compile(r"[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u00ad\u200b-\u200f\u2060\ufeff]")
_SPACE = re.compile(r"\s+")
_LETTER = re.compile(r"[^\W\d_]")
_KEY_DROP = re.compile(r"[\W_]+")
_NUMBER = re.compile(r"\d+")


def normalize(text: str) -> str:
    """NFC, entities decoded, leftover tags and invisible characters removed, whitespace collapsed."""
    text = html.unescape(text)
    text = _TAG.sub("", text)
    text = _CONTROL.sub("", text)
    text = unicodedata.normalize("NFC", text)
    return _SPACE.sub(" ", text).strip()


def parse_html(data: bytes):
    """An lxml tree of a UTF-8 page (lxml would guess Latin-1 where no <meta> names the
    charset); <br> becomes a space, which text_content() would drop, gluing words together."""
    root = lxml.html.fromstring(data, parser=lxml.html.HTMLParser(encoding="utf-8"))
    for br in root.iter("br"):
        br.tail = " " + (br.tail or "")
    return root


def key(text: str) -> str:
    """Loose identity of a sentence: case, punctuation and spacing ignored."""
    return _KEY_DROP.sub("", text.casefold())


@dataclass(frozen=True)
class CleanConfig:
    max_words: int = 100
    max_char_ratio: float = 3.0
    char_floor: int = 12  # short strings ("OK" / "Okay") differ wildly in ratio but are fine
    max_word_ratio: float = 2.5
    word_floor: int = 4
    # For documents aligned by position: the same numbers on both sides, a cheap check that
    # the blocks really are translations (it also drops "8" / "eight", an acceptable loss).
    match_numbers: bool = False


def reject_reason(de: str, en: str, cfg: CleanConfig = CleanConfig()) -> str | None:
    """Why a normalized pair is dropped, or None to keep it."""
    if not de or not en:
        return "empty"
    if not _LETTER.search(de) or not _LETTER.search(en):
        return "no letters"
    if key(de) == key(en):
        return "untranslated"
    wd, we = len(de.split()), len(en.split())
    if max(wd, we) > cfg.max_words:
        return "too long"
    if max(wd, we) / max(min(wd, we), cfg.word_floor) > cfg.max_word_ratio:
        return "word ratio"
    if max(len(de), len(en)) / max(min(len(de), len(en)), cfg.char_floor) > cfg.max_char_ratio:
        return "char ratio"
    if cfg.match_numbers and sorted(_NUMBER.findall(de)) != sorted(_NUMBER.findall(en)):
        return "numbers differ"
    return None


def clean_pairs(pairs: Iterable[Pair], cfg: CleanConfig = CleanConfig()) -> list[Pair]:
    """Normalized, filtered pairs in input order, each (de, en) pair kept once."""
    seen: set[Pair] = set()
    out = []
    for de, en in pairs:
        pair = (normalize(de), normalize(en))
        if pair in seen or reject_reason(*pair, cfg):
            continue
        seen.add(pair)
        out.append(pair)
    return out
