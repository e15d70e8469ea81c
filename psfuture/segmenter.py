"""Where a stream of source words is cut into segments (no model, no torch): the rules and their settings.
The model rule is carried out by psfuture.longform, which asks the model."""
from __future__ import annotations

import re
from dataclasses import dataclass

from psfuture.errors import ConfigError

CUTS = ("punctuation", "model", "length", "given", "end")  # "given": the caller said so (a line end, a pause)
_FINAL = re.compile(r"[.!?\u2026][\"'\u201c\u201d\u201e\u00bb\u00ab)\]]*$")
_ORDINAL = re.compile(r"^\(?\d{1,2}\.$")  # "3." in "am 3. Oktober", list numbers ("im Jahr 2023." does end)
_CLOSING = "\"'\u201c\u201d\u201e\u00bb\u00ab)]"
# German abbreviations that end in a period and rarely end a sentence (lowercased; "z.B." and "z." of "z. B.").
ABBREVIATIONS = frozenset("""
z.b. z. b. d.h. d. h. u.a. u. a. usw. bzw. ca. dr. nr. vgl. etc. evtl. ggf. inkl. abb. tab. s. hr. fr. prof. st.
u.ä. o.ä. z.t. sog. bspw. max. min. mio. mrd. jh. v.a. bzgl. zzgl. ebd. gem. allg. betr. ehem. einschl. str. tel.
bd. kap. anm. mind. ggü. i.d.r. u.u. o. u. v. a. ff. f.
""".split())


def ends_sentence(word: str) -> bool:
    """Does this source word end a sentence by its punctuation (no look-ahead)?"""
    bare = word.rstrip(_CLOSING)
    return bool(_FINAL.search(word)) and bare.lower() not in ABBREVIATIONS and not _ORDINAL.match(bare)


@dataclass(frozen=True)
class Segmenter:
    punctuation: bool = True
    model: bool = False
    model_eos: float = 0.5  # probability of EOS under the pseudo-future that cuts (model rule)
    min_words: int = 3  # no model cut before a segment has this many words
    max_words: int = 60

    def __post_init__(self):
        for name in ("punctuation", "model"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name}={getattr(self, name)!r}: a cut rule is on or off (true or false)")
        if not (isinstance(self.max_words, int) and not isinstance(self.max_words, bool) and self.max_words >= 1):
            raise ConfigError(f"max_words={self.max_words!r}: a segment's word limit must be an integer >= 1")
        if not (isinstance(self.min_words, int) and not isinstance(self.min_words, bool) and self.min_words >= 1):
            raise ConfigError(f"min_words={self.min_words!r}: must be an integer >= 1")
        if not (isinstance(self.model_eos, (int, float)) and not isinstance(self.model_eos, bool)
                and 0 < self.model_eos <= 1):
            raise ConfigError(f"model_eos={self.model_eos!r}: a probability in (0, 1]")

    def signature(self) -> str:
        rules = [r for r in ("punctuation", "model") if getattr(self, r)]
        model = f",model_eos={self.model_eos},min_words={self.min_words}" if self.model else ""
        return f"segmenter({'+'.join(rules) or 'length'},max_words={self.max_words}{model})"


@dataclass(frozen=True)
class Segment:
    index: int
    start: int  # stream position of its first source word
    source: tuple[str, ...]
    words: tuple[str, ...]  # its translation, word by word
    delays: tuple[int, ...]  # source words of the stream read when each was written
    cut: str  # why it ended: one of CUTS

    @property
    def text(self) -> str:
        return " ".join(self.words)
