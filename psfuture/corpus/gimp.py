"""GIMP user manual (Debian gimp-help-en / gimp-help-de), aligned by HTML block order."""
from __future__ import annotations

import re
from pathlib import Path

from . import Pair
from .clean import parse_html
from .blocks import Block, align_blocks

HELP_DIR = "usr/share/gimp/2.0/help"
_BLOCK_TAGS = {"p", "h1", "h2", "h3", "h4", "h5", "h6", "dt", "li", "td", "th", "caption"}
_SKIP = {"navheader", "navfooter"}  # prev/next links repeat page titles out of order
# "4.6.3. ", "Abbildung 17.82. ": DocBook numbering, not sentence text.
_NUMBERING = re.compile(r"^\s*(?:(?:Abbildung|Figure|Tabelle|Table|Beispiel|Example)\s+)?\d+(?:\.\d+)*\.?\s+")


def html_blocks(html: bytes) -> list[Block]:
    """Innermost text blocks in document order, each signed by its own and its parent's tag
    and class (so a paragraph of a note never pairs with one of the body text)."""
    root = parse_html(html)
    blocks = []
    for el in root.iter(*_BLOCK_TAGS):
        if any(a.get("class") in _SKIP for a in el.iterancestors()):
            continue
        if any(d is not el and d.tag in _BLOCK_TAGS for d in el.iter()):
            continue
        parent = el.getparent()
        sig = f"{parent.tag}.{parent.get('class', '')}/{el.tag}.{el.get('class', '')}"
        blocks.append((sig, _NUMBERING.sub("", el.text_content())))
    return blocks


def read_gimp(de_tree: Path, en_tree: Path) -> list[Pair]:
    de_root, en_root = Path(de_tree) / HELP_DIR / "de", Path(en_tree) / HELP_DIR / "en"
    for root, pkg in ((de_root, "gimp-help-de"), (en_root, "gimp-help-en")):
        if not root.is_dir():
            raise FileNotFoundError(f"{root}: GIMP help not found; is {pkg} extracted here?")
    pairs: list[Pair] = []
    for en_file in sorted(en_root.rglob("*.html")):
        de_file = de_root / en_file.relative_to(en_root)
        if de_file.is_file():
            pairs += align_blocks(html_blocks(de_file.read_bytes()), html_blocks(en_file.read_bytes()))
    return pairs
