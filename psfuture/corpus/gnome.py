"""GNOME desktop help (Debian gnome-user-docs), Mallard pages aligned by element order.
Held out from training: it gives the dev and test sets."""
from __future__ import annotations

from pathlib import Path

from lxml import etree

from . import Pair
from .blocks import Block, align_blocks

HELP_DIR = "usr/share/help"
# Mallard pages, and the DocBook documents some applications still ship.
_TEXT = {"title", "subtitle", "desc", "p", "para", "simpara", "term", "entry"}
_SKIP = {"credit", "license", "code", "screen", "media", "comment", "programlisting", "legalnotice"}
_PAGE_GLOBS = ("*.page", "*.docbook", "*.xml")
_NOT_PAGES = {"legal.xml"}  # the license text, included by every document


def _local(el) -> str:
    return etree.QName(el).localname if isinstance(el.tag, str) else ""


# as the Yelp help viewer renders them (DocBook's menuchoice like Mallard's guiseq)
_SEPARATORS = {"keyseq": "+", "keycombo": "+", "guiseq": " ▸ ", "menuchoice": " ▸ "}


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


def _expand_entities(root) -> None:
    """Replace references to the document's own text entities by their text, drop the rest
    (libxml2's "internal" mode silently stops expanding after the first external one)."""
    dtd = root.getroottree().docinfo.internalDTD
    values = {e.name: e.content or "" for e in dtd.iterentities()} if dtd is not None else {}
    for ref in list(root.iter(etree.Entity)):
        text = values.get(ref.name, "") + (ref.tail or "")
        parent, prev = ref.getparent(), ref.getprevious()
        if prev is not None:
            prev.tail = (prev.tail or "") + text
        else:
            parent.text = (parent.text or "") + text
        parent.remove(ref)


def page_blocks(xml: bytes) -> list[Block]:
    """Titles and paragraphs in document order; page metadata (Mallard <info>, DocBook
    <...info>) contributes only its <desc>, and code, credits and licenses none. Entities
    the document defines itself (DocBook's &app;) are expanded; others (&legal;, a file)
    are dropped, as are the parts of a malformed page that cannot be recovered."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, recover=True)
    root = etree.fromstring(xml, parser)
    if root is None:
        return []
    _expand_entities(root)
    _join_sequences(root)
    blocks = []
    for el in root.iter():
        name = _local(el)
        if name not in _TEXT:
            continue
        path = [_local(a) for a in el.iterancestors()]
        if _SKIP.intersection(path) or (name != "desc" and any(a.endswith("info") for a in path)):
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
    pages = sorted({f for pattern in _PAGE_GLOBS for f in en_dir.glob(pattern) if f.name not in _NOT_PAGES})
    for en_file in pages:
        de_file = de_dir / en_file.name
        if de_file.is_file():
            out[en_file.name] = align_blocks(page_blocks(de_file.read_bytes()), page_blocks(en_file.read_bytes()))
    return out
