"""LibreOffice user-interface strings (Debian libreoffice-l10n-de .mo catalogs)."""
from __future__ import annotations

from pathlib import Path

from . import Pair
from .mo import read_mo, strip_accelerators

RESOURCE_DIR = "usr/lib/libreoffice/program/resource/de/LC_MESSAGES"


def read_ui(tree: Path) -> list[Pair]:
    root = Path(tree) / RESOURCE_DIR
    files = sorted(root.glob("*.mo"))
    if not files:
        raise FileNotFoundError(f"{root}: no .mo catalogs; is libreoffice-l10n-de extracted here?")
    return [(strip_accelerators(de), strip_accelerators(en))
            for f in files for en, de in read_mo(f.read_bytes())]
