"""LibreOffice user-interface strings (Debian libreoffice-l10n-de .mo catalogs)."""
from __future__ import annotations

from pathlib import Path

from . import Pair
from .mo import has_placeholder, read_mo, strip_accelerators

RESOURCE_DIR = "usr/lib/libreoffice/program/resource/de/LC_MESSAGES"


def ui_text(text: str) -> str:
    # The help pages show the product name where the UI has its placeholder.
    return strip_accelerators(text).replace("%PRODUCTNAME", "LibreOffice")


def read_ui(tree: Path) -> list[Pair]:
    root = Path(tree) / RESOURCE_DIR
    files = sorted(root.glob("*.mo"))
    if not files:
        raise FileNotFoundError(f"{root}: no .mo catalogs; is libreoffice-l10n-de extracted here?")
    pairs = [(ui_text(de), ui_text(en)) for f in files for en, de in read_mo(f.read_bytes())]
    return [(de, en) for de, en in pairs if not (has_placeholder(de) or has_placeholder(en))]
