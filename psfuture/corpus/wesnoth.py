"""Battle for Wesnoth game text (Debian wesnoth-1.16-* .mo catalogs)."""
from __future__ import annotations

import re
from pathlib import Path

from . import Pair
from .mo import read_mo

_CONTEXT = re.compile(r"^[\w -]+\^")  # "teamname^Enemies": the msgid's disambiguation prefix
_HELP_TAG = re.compile(r"<(\w+)>(.*?)</\1>", re.S)  # help markup: <ref>dst='x' text='Shown'</ref>
_TEXT_ATTR = re.compile(r"text='([^']*)'")
# What survives in a line once tags are gone but is no prose: $variables, {macros}, key=value, [tags].
_CODE = re.compile(r"[$={}]|\[/?\w+\]")


def _help_tag(m: re.Match) -> str:
    shown = _TEXT_ATTR.search(m.group(2))
    return shown.group(1) if shown else m.group(2)


def wml_lines(text: str) -> list[str]:
    text = _CONTEXT.sub("", text)
    text = _HELP_TAG.sub(_help_tag, text)
    return [ln.strip() for ln in text.split("\n") if ln.strip()]


def split_pair(de: str, en: str) -> list[Pair]:
    """Multi-paragraph help strings become one pair per paragraph where both sides have
    the same number; lines holding WML placeholders are dropped (removing a placeholder
    would leave a broken sentence)."""
    de_lines, en_lines = wml_lines(de), wml_lines(en)
    if len(de_lines) != len(en_lines):
        de_lines, en_lines = [" ".join(de_lines)], [" ".join(en_lines)]
    return [(d, e) for d, e in zip(de_lines, en_lines) if not (_CODE.search(d) or _CODE.search(e))]


def catalogs(tree: Path) -> list[Path]:
    return sorted(Path(tree).glob("usr/share/games/wesnoth/*/locale/de/LC_MESSAGES/*.mo"))


def read_wesnoth(trees: list[Path]) -> list[Pair]:
    files = [f for t in trees for f in catalogs(t)]
    if not files:
        raise FileNotFoundError(f"no German Wesnoth catalogs under {[str(t) for t in trees]}")
    return [p for f in files for en, de in read_mo(f.read_bytes()) for p in split_pair(de, en)]
