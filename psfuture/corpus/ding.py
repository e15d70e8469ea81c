"""Example sentences from the Ding German-English dictionary (Debian trans-de-en)."""
from __future__ import annotations

import re
from pathlib import Path

from . import Pair

DICT_PATH = "usr/share/trans/de-en"
# Grammar {f}, usage [ugs.], glosses (...), cross-references <...>, abbreviations /Abk./.
_ANNOTATION = re.compile(r"\{[^}]*\}|\[[^\]]*\]|\([^)]*\)|<[^>]*>|(?<!\S)/[^/\s]+/(?!\S)")
_ALTERNATIVE = re.compile(r"(?<=[^\W\d_]) ?/ ?[^\W\d_][\w-]*")  # "expire/lapse": keep the first
_SENTENCE = re.compile(r"^[\"„“‚‘'¡¿]?[^\W\d_].*[.!?…][\"“”‘’']?$")


def strip_annotations(text: str) -> str:
    text = _ALTERNATIVE.sub("", " ".join(_ANNOTATION.sub(" ", text).split()))
    return re.sub(r"\s+([,.!?;:])", r"\1", " ".join(text.split()))


def sentence_like(text: str, min_words: int = 3) -> bool:
    return len(text.split()) >= min_words and bool(_SENTENCE.match(text)) and text[0].upper() == text[0]


def parse_line(line: str, min_words: int = 3) -> list[Pair]:
    """One entry is "de :: en" with parallel "|"-separated variants, each a ";"-separated
    list of synonyms. Sentence-like variants give a pair of their first synonyms."""
    if line.startswith("#") or " :: " not in line:
        return []
    de, en = line.rstrip("\n").split(" :: ", 1)
    de_vars, en_vars = de.split(" | "), en.split(" | ")
    if len(de_vars) != len(en_vars):
        return []
    pairs = []
    for d, e in zip(de_vars, en_vars):
        d, e = d.split("; ")[0], e.split("; ")[0]
        if " / " in d + e:  # alternative phrasings ("ask you / to ask you") no sentence can keep
            continue
        d, e = strip_annotations(d), strip_annotations(e)
        if sentence_like(d, min_words) and sentence_like(e, min_words):
            pairs.append((d, e))
    return pairs


def read_ding(tree: Path, min_words: int = 3) -> list[Pair]:
    path = Path(tree) / DICT_PATH
    if not path.is_file():
        raise FileNotFoundError(f"{path}: Ding dictionary not found; is trans-de-en extracted here?")
    with open(path, encoding="utf-8") as f:
        return [p for line in f for p in parse_line(line, min_words)]
