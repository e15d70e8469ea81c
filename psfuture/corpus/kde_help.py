"""KDE handbooks (usr/share/doc/HTML/{en,de}/<app>/*.docbook), aligned block by block in
sections (from one title to the next) whose two translations have the same block structure."""
from __future__ import annotations

import re
from pathlib import Path

from . import Pair
from .blocks import Block
from .gnome import page_blocks
from .html_docs import align_identical

HTML_DIR = "usr/share/doc/HTML"
MEMBERS = (HTML_DIR + "/de/*", HTML_DIR + "/en/*")
CUSTOMIZATION = "usr/share/kf5/kdoctools/customization"  # in kdoctools5
_ENTITY_DEF = re.compile(r"<!ENTITY\s+([\w.-]+)\s+([\"'])(.*?)\2\s*>", re.S)
_REF = re.compile(r"&([\w.-]+);")
_XML = {"lt", "gt", "amp", "quot", "apos"}
# DocBook's ISO entities that the handbooks use, which the KDE files do not define.
_ISO = {"nbsp": "\u00a0", "ndash": "–", "mdash": "—", "hellip": "…", "copy": "©", "reg": "®",
        "trade": "™", "times": "×", "deg": "°", "percnt": "%"}


def load_entities(customization: Path, lang: str) -> dict[str, str]:
    """&LMB; is "linke Maustaste" in German, "left mouse button" in English: the language's
    own files first, as kdoctools' DTD reads them (the first definition wins)."""
    files = [Path(customization) / lang / f for f in ("user.entities", "strings.entities", "lang.entities")]
    files += [Path(customization) / "entities" / f for f in ("general.entities", "contributor.entities")]
    ents = dict(_ISO)
    for f in files:
        if f.is_file():
            for name, _, value in _ENTITY_DEF.findall(f.read_text(encoding="utf-8", errors="replace")):
                ents.setdefault(name, value)
    return ents


def expand(text: str, ents: dict[str, str], depth: int = 4) -> str:
    """References replaced by their (markup) values, nested ones too; unknown ones are left
    for the parser, which drops them."""
    for _ in range(depth):
        new = _REF.sub(lambda m: m.group(0) if m.group(1) in _XML else ents.get(m.group(1), m.group(0)), text)
        if new == text:
            break
        text = new
    return text


def _sections(blocks: list[Block]) -> list[list[Block]]:
    out: list[list[Block]] = [[]]
    for b in blocks:
        if b[0].endswith("/title") and out[-1]:
            out.append([])
        out[-1].append(b)
    return out


def align_sections(de: list[Block], en: list[Block]) -> list[Pair]:
    """Most handbooks differ by a block or two in hundreds (a table row, a note), which
    would skip the whole file; a tag diff over the file misaligns runs of like blocks
    (table rows) after such a gap. Sections with the same structure are safe."""
    de_s, en_s = _sections(de), _sections(en)
    if len(de_s) != len(en_s):
        return []
    return [p for d, e in zip(de_s, en_s) for p in align_identical(d, e)]


def read_handbooks(trees: list[Path]) -> list[Pair]:
    """The last tree is kdoctools5 (the entity definitions); every other tree is a KDE
    package with handbooks, files in name order."""
    custom = Path(trees[-1]) / CUSTOMIZATION
    ents = {lang: load_entities(custom, lang) for lang in ("de", "en")}
    if len(ents["en"]) == len(_ISO):
        raise FileNotFoundError(f"{custom}: no entity files; is kdoctools5 extracted here?")
    pairs: list[Pair] = []
    for tree in trees[:-1]:
        en_root = Path(tree) / HTML_DIR / "en"
        for en_file in sorted(en_root.glob("*/**/*.docbook")):
            de_file = Path(tree) / HTML_DIR / "de" / en_file.relative_to(en_root)
            if de_file.is_file():
                de, en = (expand(f.read_text(encoding="utf-8", errors="replace"), ents[lang]).encode()
                          for f, lang in ((de_file, "de"), (en_file, "en")))
                pairs += align_sections(page_blocks(de), page_blocks(en))
    return pairs
