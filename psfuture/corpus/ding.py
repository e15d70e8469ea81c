"""The Ding German-English dictionary (Debian trans-de-en): its example sentences (a training source) and its
headwords (an opt-in source of everyday vocabulary, `scripts/build_data.py --add ding-words`)."""
from __future__ import annotations

import random
import re
from pathlib import Path

from . import Pair

DICT_PATH = "usr/share/trans/de-en"
# Grammar {f}, usage [ugs.], glosses (...), cross-references <...>, abbreviations /Abk./.
_ANNOTATION = re.compile(r"\{[^}]*\}|\[[^\]]*\]|\([^)]*\)|<[^>]*>|(?<!\S)/[^/\s]+/(?!\S)")
_ALTERNATIVE = re.compile(r"(?<=[^\W\d_]) ?/ ?[^\W\d_][\w-]*")  # "expire/lapse": keep the first
# Valency placeholders ("jdm. etw. geben" :: "to give sb. sth.") are no words to translate.
_PLACEHOLDER = re.compile(r"\b(?:jd[mnrs]|etw|sb|sth)\b")
_ALPHA = re.compile(r"[^\W\d_]")
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


def parse_headword(line: str, max_words: int = 3) -> Pair | None:
    """An entry's headword (first variant, first synonym) as a word pair: "Bahnhof {m} /Bhf./ | Bahnhöfe {pl} ::
    railway station [Br.]; ... | ..." -> ("Bahnhof", "railway station"). English infinitives drop their "to", as the
    German ones have no "zu"; sentences (the other source) and phrases with placeholders are skipped."""
    if line.startswith("#") or " :: " not in line:
        return None
    de, en = (side.split(" | ")[0].split("; ")[0] for side in line.rstrip("\n").split(" :: ", 1))
    if " / " in de + en or _PLACEHOLDER.search(de + " " + en):
        return None
    de, en = strip_annotations(de), strip_annotations(en)
    en = en[3:] if en.startswith("to ") else en
    if not de or not en or de == en or sentence_like(de) or not _ALPHA.search(de + en):
        return None
    return (de, en) if max(len(de.split()), len(en.split())) <= max_words else None


def _lines(tree: Path):
    path = Path(tree) / DICT_PATH
    if not path.is_file():
        raise FileNotFoundError(f"{path}: Ding dictionary not found; is trans-de-en extracted here?")
    with open(path, encoding="utf-8") as f:
        yield from f


def read_ding(tree: Path, min_words: int = 3) -> list[Pair]:
    return [p for line in _lines(tree) for p in parse_line(line, min_words)]


def read_headwords(tree: Path, limit: int | None = None, seed: int = 1) -> list[Pair]:
    """Every headword pair once, or a fixed-seed sample of `limit` of them (the mixing ratio is a training choice)."""
    pairs = list(dict.fromkeys(p for p in map(parse_headword, _lines(tree)) if p))
    return pairs if limit is None or limit >= len(pairs) else random.Random(seed).sample(pairs, limit)
