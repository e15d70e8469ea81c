"""GNOME desktop help (Debian gnome-user-docs), Mallard pages aligned by element order.
Held out from training: it gives the dev and test sets."""
from __future__ import annotations

from pathlib import Path

from lxml import etree

from . import Pair
from .blocks import Block, align_blocks

HELP_DIR = "usr/share/help"
_TEXT = {"title", "subtitle", "desc", "p"}
_SKIP = {"credit", "license", "code", "screen", "media", "comment"}


def _local(el) -> str:
    return etree.QName(el).localname if isinstance(el.tag, str) else ""


_SEPARATORS = {"keyseq": "+", "guiseq": " ▸ "}  # as the Yelp help viewer renders them


def _join_sequences(root) -> None:
    """<keyseq><key>Ctrl</key><key>C</key></keyseq> reads "Ctrl+C", not "CtrlC"."""
    for seq in root.iter():
        sep = _SEPARATORS.get(_local(seq))
        if sep is None:
            continue
        parts = [c for c in seq if isinstance(c.tag, str)]
        if seq.text and not seq.text.strip():
            seq.text = None
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            tail = "" if part.tail is None or not part.tail.strip() else part.tail
            part.tail = tail if last else tail + sep


def page_blocks(xml: bytes) -> list[Block]:
    """Titles and paragraphs in document order; page metadata (<info>) contributes only its
    <desc>, and code, credits and licenses none."""
    root = etree.fromstring(xml, etree.XMLParser(resolve_entities=False, no_network=True))
    _join_sequences(root)
    blocks = []
    for el in root.iter():
        name = _local(el)
        if name not in _TEXT:
            continue
        path = [_local(a) for a in el.iterancestors()]
        if _SKIP.intersection(path) or ("info" in path and name != "desc"):
            continue
        blocks.append((f"{path[0] if path else ''}/{name}", "".join(el.itertext())))
    return blocks


def page_dirs(tree: Path, doc: str = "gnome-help") -> tuple[Path, Path]:
    de, en = Path(tree) / HELP_DIR / "de" / doc, Path(tree) / HELP_DIR / "C" / doc
    if not (de.is_dir() and en.is_dir()):
        raise FileNotFoundError(f"{en} or {de} missing; is gnome-user-docs extracted here?")
    return de, en


def read_pages(tree: Path, doc: str = "gnome-help") -> dict[str, list[Pair]]:
    """Aligned pairs per page file name, pages in sorted order."""
    de_dir, en_dir = page_dirs(tree, doc)
    out = {}
    for en_file in sorted(en_dir.glob("*.page")):
        de_file = de_dir / en_file.name
        if de_file.is_file():
            out[en_file.name] = align_blocks(page_blocks(de_file.read_bytes()), page_blocks(en_file.read_bytes()))
    return out
