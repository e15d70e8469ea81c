"""LibreOffice help pages (Debian libreoffice-help-<lang>), aligned on paragraph ids."""
from __future__ import annotations

import re
from pathlib import Path

from . import Pair
from .clean import parse_html

_ID = re.compile(r"^(?:par|hd)_id")


def _resolve_switches(root) -> None:
    """A "switchinline" holds one hidden variant per OS or application (Command / Ctrl);
    their text would run together ("CommandCtrl"), so keep only the default one."""
    for sw in root.xpath('//*[contains(concat(" ", @class, " "), " switchinline ")]'):
        kids = list(sw)
        keep = next((k for k in kids if k.get("id", "").startswith("default")), kids[0] if kids else None)
        for k in kids:
            if k is not keep:
                k.drop_tree()


def segments(html: bytes) -> dict[str, str]:
    """Paragraph and heading text by element id; an id repeated by embedded
    sections keeps its first text."""
    root = parse_html(html)
    _resolve_switches(root)
    out: dict[str, str] = {}
    for el in root.iter("p", "h1", "h2", "h3", "h4", "h5", "h6"):
        ident = el.get("id", "")
        if _ID.match(ident) and ident not in out:
            out[ident] = el.text_content()
    return out


def align_pages(de_html: bytes, en_html: bytes) -> list[Pair]:
    de, en = segments(de_html), segments(en_html)
    return [(de[i], en[i]) for i in en if i in de]


def help_root(tree: Path, lang: str) -> Path:
    root = Path(tree) / "usr/share/libreoffice/help" / lang / "text"
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no LibreOffice help for {lang!r}; "
                                f"is libreoffice-help-{lang.lower()} extracted here?")
    return root


def read_help(de_tree: Path, en_tree: Path) -> list[Pair]:
    de_root, en_root = help_root(de_tree, "de"), help_root(en_tree, "en-US")
    pairs: list[Pair] = []
    for en_file in sorted(en_root.rglob("*.html")):
        de_file = de_root / en_file.relative_to(en_root)
        if de_file.is_file():
            pairs += align_pages(de_file.read_bytes(), en_file.read_bytes())
    return pairs
