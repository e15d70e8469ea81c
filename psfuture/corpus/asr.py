"""Source text as many speech recognizers emit it: lowercased, no punctuation. Used to train a model that copes with
it (scripts/prepare.py --asr-share) and to evaluate that condition (eval/longform.py, eval/offline_bleu.py)."""
from __future__ import annotations

import random
import re

_PUNCT = re.compile(r"[^\w\s]|_")


def asr_like(sentence: str) -> str:
    """Lowercase, punctuation removed (a hyphenated or dotted word stays one word: "E-Mail" -> "email")."""
    return " ".join(w for w in (_PUNCT.sub("", t).lower() for t in sentence.split()) if w)


def asr_rows(n: int, share: float, seed: int = 1) -> set[int]:
    """Which of n training rows get an ASR-like source: a fixed-seed sample, the same on every run."""
    return set(random.Random(seed).sample(range(n), round(n * share)))
