"""Word alignments for `--prefix-target aligned`: how many target tokens a source prefix supports.

    python scripts/align_p2f.py --data data/p2f-bin      # -> data/p2f-bin/train.align.npz

The aligner is eflomal (PyPI, a Bayesian IBM-style aligner; no model to download), run on the binarized split
itself, so example i of the table is example i of fairseq's dataset whatever filtering made the split. Words are
SentencePiece words (a piece opening with U+2581 starts one), lowercased. eflomal seeds its sampler itself, so two
runs give slightly different tables: a model trained on one records the table's sha256. For every target token
the table holds `src_end`: how many source tokens must be read before every source word it is aligned to is
complete (0: aligned to nothing). A prefix of `cut` source tokens then supports the target up to its last token
aligned inside the prefix (aligned prefix pairs in the spirit of CBSiMT 2023, arXiv 2311.03672, from its abstract
only): unaligned tokens and tokens aligned later that sit before it are kept, since a target prefix is contiguous.
Which symmetrisation, lowercasing and the one-token floor are psfuture's choices.
"""
import hashlib
from pathlib import Path

import numpy as np

WORD_START = "\u2581"  # SentencePiece's mark on the first piece of every whitespace-separated word
SYMMETRISE = ("intersect", "union", "forward", "reverse")


def words(pieces: list[str]) -> tuple[list[str], np.ndarray]:
    """Whitespace words of a SentencePiece sequence (lowercased) and each piece's word index."""
    index, out = np.zeros(len(pieces), dtype=np.int64), []
    for i, p in enumerate(pieces):
        if p.startswith(WORD_START) or not out:
            out.append("")
        out[-1] += p.lstrip(WORD_START) if p.startswith(WORD_START) else p
        index[i] = len(out) - 1
    # eflomal splits on any whitespace (str.split): a word holding some would shift every later link
    return ["".join("_" if c.isspace() else c for c in w.lower()) or WORD_START for w in out], index


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
    for s, t in links:  # in range: align_split refuses links past the last word
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
                log=print) -> Path:
    """Align one binarized split with eflomal and write its table next to it. Not reproducible bit for bit:
    eflomal's sampler seeds itself from /dev/urandom and takes no seed, so a model card names its table's sha256."""
    import os
    import tempfile
    from importlib.metadata import version

    try:
        import eflomal
    except ImportError as e:
        raise ImportError("--prefix-target aligned needs the eflomal aligner: pip install -e '.[align]'") from e
    from fairseq.data import Dictionary, data_utils

    if how not in SYMMETRISE:
        raise ValueError(f"symmetrisation must be one of {SYMMETRISE}, got {how!r}")
    data = Path(data)
    dicts = {lang: Dictionary.load(str(data / f"dict.{lang}.txt")) for lang in (src, tgt)}
    sets = {lang: data_utils.load_indexed_dataset(str(data / f"{split}.{src}-{tgt}.{lang}"), dicts[lang])
            for lang in (src, tgt)}
    if any(ds is None for ds in sets.values()):
        raise FileNotFoundError(f"no binarized {split} split for {src}-{tgt} in {data}")
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
        eflomal.Aligner().align(text[src], text[tgt], links_filename_fwd=str(fwd_file),
                                links_filename_rev=str(rev_file), quiet=True)
        fwd = fwd_file.read_text().splitlines()
        rev = rev_file.read_text().splitlines()
    if not len(fwd) == len(rev) == len(text[src]):
        raise RuntimeError(f"eflomal returned {len(fwd)}/{len(rev)} link lines for {len(text[src])} sentences")
    ends, offsets = [], [0]
    for i, (f, r) in enumerate(zip(fwd, rev)):
        links = symmetrise(parse_links(f), parse_links(r), how)
        n_src, n_tgt = len(split_words[src][i][0]), len(split_words[tgt][i][0])
        if any(s >= n_src or t >= n_tgt for s, t in links):
            raise RuntimeError(f"{split} pair {i}: eflomal linked past the last word ({n_src} source, {n_tgt} target)")
        e = src_end(links, split_words[src][i][1], split_words[tgt][i][1])
        ends.append(e)
        offsets.append(offsets[-1] + len(e))
    out = table_path(data, split)
    partial = out.with_suffix(".partial.npz")  # an interrupted run must not leave a table that looks finished
    np.savez(partial, src_end=np.concatenate(ends) if ends else np.zeros(0, np.int32),
             offsets=np.array(offsets, dtype=np.int64), symmetrise=how, aligner=f"eflomal {version('eflomal')}",
             languages=f"{src}-{tgt}", fingerprint=fingerprint(sets[src].sizes, sets[tgt].sizes))
    os.replace(partial, out)
    aligned = float(np.mean(np.concatenate(ends) > 0)) if ends else 0.0
    log(f"wrote {out}: {aligned:.1%} of target tokens aligned")
    return out


class AlignmentTable:
    """The per-token `src_end` of every example of one split, as `align_split` wrote it."""

    def __init__(self, path: Path):
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"--prefix-target aligned needs {path}; make it with python "
                                    f"scripts/align_p2f.py --data {path.parent} --split {path.name.split('.')[0]}")
        with np.load(path) as z:
            self.src_end, self.offsets = z["src_end"], z["offsets"]
            self.fingerprint = str(z["fingerprint"])
            self.languages = str(z["languages"]) if "languages" in z else "de-en"
        self.path = path

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def check(self, src_sizes: np.ndarray, tgt_sizes: np.ndarray) -> None:
        """Refuse a table made for another binarization (its rows would belong to other sentences)."""
        how = (f"a table is made for one binarized split, loaded as it is: one language direction (it holds "
               f"{self.languages}), no --truncate-source, no train1.. shards; rerun python scripts/align_p2f.py "
               f"--data {self.path.parent} if the data was binarized again")
        if len(self) != len(src_sizes):
            raise ValueError(f"{self.path} has {len(self)} sentences, the dataset {len(src_sizes)}: {how}")
        if self.fingerprint != fingerprint(src_sizes, tgt_sizes):
            raise ValueError(f"{self.path} was made for another binarization of this split (sentence lengths "
                             f"differ): {how}")

    def __getitem__(self, index: int) -> np.ndarray:
        return self.src_end[self.offsets[index]:self.offsets[index + 1]]
