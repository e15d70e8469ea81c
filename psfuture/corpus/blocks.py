"""Align two translations of one document by the order of their text blocks."""
from __future__ import annotations

import difflib
from typing import Sequence

Block = tuple[str, str]  # (structural signature, text)


def align_blocks(de: Sequence[Block], en: Sequence[Block]) -> list[tuple[str, str]]:
    """(de, en) text pairs for blocks at matching positions of the two structures.

    Translators rarely change the markup, so where the tag sequences agree the i-th
    blocks are translations; runs where they differ (added or dropped blocks) are skipped."""
    sm = difflib.SequenceMatcher(None, [s for s, _ in de], [s for s, _ in en], autojunk=False)
    pairs = []
    for i, j, n in sm.get_matching_blocks():
        pairs.extend((de[i + k][1], en[j + k][1]) for k in range(n))
    return pairs
