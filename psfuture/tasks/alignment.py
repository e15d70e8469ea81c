"""Word alignments for `--prefix-target aligned`: how many target tokens a source prefix supports.

    python scripts/align_p2f.py --data data/p2f-bin      # -> data/p2f-bin/train.align.npz

The aligner is eflomal (PyPI, a Bayesian IBM-style aligner; no model to download), run on the binarized split
itself, so example i of the table is example i of fairseq's dataset whatever filtering made the split. Words are
SentencePiece words (a piece opening with U+2581 starts one), lowercased. For every target token the table holds
`src_end`: how many source tokens must be read before every source word it is aligned to is complete (0: aligned to
nothing). A prefix of `cut` source tokens then supports the target up to its last token aligned inside the prefix
(aligned prefix pairs in the spirit of CBSiMT 2023, arXiv 2311.03672, from its abstract only): unaligned tokens and tokens aligned later that sit
before it are kept, since a target prefix is contiguous. Which symmetrisation, lowercasing and the one-token floor
are psfuture's choices.
"""
import hashlib
from pathlib import Path

import numpy as np

WORD_START = "\u2581"
SYMMETRISE = ("intersect", "union", "forward", "reverse")


def words(pieces: list[str]) -> tuple[list[str], np.ndarray]:
    """Whitespace words of a SentencePiece sequence (lowercased) and each piece's word index."""
    index, out = np.zeros(len(pieces), dtype=np.int64), []
    for i, p in enumerate(pieces):
        if p.startswith(WORD_START) or not out:
            out.append("")
        out[-1] += p.lstrip(WORD_START) if p.startswith(WORD_START) else p
        index[i] = len(out) - 1
    return [w.lower() or WORD_START for w in out], index


def parse_links(line: str) -> set[tuple[int, int]]:
    """One Pharaoh line ("0-1 2-2"): (source word, target word) pairs."""
    return {tuple(int(x) for x in link.split("-")) for link in line.split()}


def symmetrise(fwd: set, rev: set, how: str) -> set:
    return {"intersect": fwd & rev, "union": fwd | rev, "forward": fwd, "reverse": rev}[how]


def src_end(links: set, src_word: np.ndarray, tgt_word: np.ndarray) -> np.ndarray:
    """Per target token: source tokens to read before all its aligned source words are complete (0: none)."""
    word_end = np.zeros(int(src_word.max()) + 1 if len(src_word) else 0, dtype=np.int64)
    for tok, w in enumerate(src_word):
        word_end[w] = tok + 1
    need = np.zeros(int(tgt_word.max()) + 1 if len(tgt_word) else 0, dtype=np.int64)
    for s, t in links:
        if s < len(word_end) and t < len(need):
            need[t] = max(need[t], word_end[s])
    return need[tgt_word].astype(np.int32)


def aligned_len(ends: np.ndarray, cut: int) -> int:
    """Target tokens a source prefix of `cut` tokens supports: up to the last one aligned inside it; at least
    one, like the proportional cut, so no example is empty."""
    inside = np.flatnonzero((ends > 0) & (ends <= cut))
    return max(1, int(inside[-1]) + 1 if len(inside) else 0) if len(ends) else 0


def table_path(data: Path, split: str = "train") -> Path:
    return Path(data) / f"{split}.align.npz"


def fingerprint(src_sizes: np.ndarray, tgt_sizes: np.ndarray) -> str:
    """Ties a table to one binarization: the split's sentence lengths (EOS included, as fairseq stores them)."""
    return hashlib.sha256(np.asarray(src_sizes, np.int64).tobytes() + b"|" +
                          np.asarray(tgt_sizes, np.int64).tobytes()).hexdigest()[:16]


def align_split(data: Path, split: str = "train", src: str = "de", tgt: str = "en", how: str = "intersect",
                seed: int = 1, log=print) -> Path:
    """Align one binarized split with eflomal and write its table next to it."""
    import tempfile

    try:
        import eflomal
    except ImportError as e:
        raise SystemExit("--prefix-target aligned needs the eflomal aligner: pip install -e '.[align]'") from e
    from fairseq.data import Dictionary, data_utils

    if how not in SYMMETRISE:
        raise ValueError(f"symmetrisation must be one of {SYMMETRISE}, got {how!r}")
    data = Path(data)
    dicts = {lang: Dictionary.load(str(data / f"dict.{lang}.txt")) for lang in (src, tgt)}
    sets = {lang: data_utils.load_indexed_dataset(str(data / f"{split}.{src}-{tgt}.{lang}"), dicts[lang])
            for lang in (src, tgt)}
    if any(ds is None for ds in sets.values()):
        raise SystemExit(f"no binarized {split} split for {src}-{tgt} in {data}")
    pieces = {lang: [] for lang in sets}
    for lang, ds in sets.items():
        eos = dicts[lang].eos()
        for i in range(len(ds)):
            ids = ds[i].tolist()
            pieces[lang].append([dicts[lang][t] for t in (ids[:-1] if ids and ids[-1] == eos else ids)])
    split_words = {lang: [words(p) for p in pieces[lang]] for lang in sets}
    text = {lang: [" ".join(w) for w, _ in split_words[lang]] for lang in sets}
    log(f"aligning {len(text[src])} {split} pairs with eflomal ({how})")
    with tempfile.TemporaryDirectory() as tmp:
        fwd_file, rev_file = Path(tmp) / "fwd", Path(tmp) / "rev"
        np.random.seed(seed)  # eflomal's sampler draws its seeds from numpy's global generator
        eflomal.Aligner().align(text[src], text[tgt], links_filename_fwd=str(fwd_file),
                                links_filename_rev=str(rev_file), quiet=True)
        fwd = fwd_file.read_text().splitlines()
        rev = rev_file.read_text().splitlines()
    ends, offsets = [], [0]
    for i, (f, r) in enumerate(zip(fwd, rev, strict=True)):
        e = src_end(symmetrise(parse_links(f), parse_links(r), how), split_words[src][i][1], split_words[tgt][i][1])
        ends.append(e)
        offsets.append(offsets[-1] + len(e))
    out = table_path(data, split)
    np.savez(out, src_end=np.concatenate(ends) if ends else np.zeros(0, np.int32),
             offsets=np.array(offsets, dtype=np.int64), symmetrise=how, aligner=f"eflomal {eflomal_version()}",
             fingerprint=fingerprint(sets[src].sizes, sets[tgt].sizes))
    aligned = float(np.mean(np.concatenate(ends) > 0)) if ends else 0.0
    log(f"wrote {out}: {aligned:.1%} of target tokens aligned")
    return out


def eflomal_version() -> str:
    from importlib.metadata import version

    return version("eflomal")


class AlignmentTable:
    """The per-token `src_end` of every example of one split, as `align_split` wrote it."""

    def __init__(self, path: Path):
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"--prefix-target aligned needs {path}; make it with "
                                    f"python scripts/align_p2f.py --data {path.parent}")
        with np.load(path) as z:
            self.src_end, self.offsets = z["src_end"], z["offsets"]
            self.fingerprint, self.how = str(z["fingerprint"]), str(z["symmetrise"])
        self.path = path

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def check(self, src_sizes: np.ndarray, tgt_sizes: np.ndarray) -> None:
        """Refuse a table made for another binarization (its rows would belong to other sentences)."""
        if len(self) != len(src_sizes) or self.fingerprint != fingerprint(src_sizes, tgt_sizes):
            raise ValueError(f"{self.path} was made for another binarization of this split; rerun "
                             f"python scripts/align_p2f.py --data {self.path.parent}")

    def __getitem__(self, index: int) -> np.ndarray:
        return self.src_end[self.offsets[index]:self.offsets[index + 1]]
