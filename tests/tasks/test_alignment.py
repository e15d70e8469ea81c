"""Aligned prefix targets: the eflomal table, what a prefix supports, and the task's use of it."""
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from test_prefix_to_full import make_task  # tests/tasks is on sys.path (pytest's rootdir-less import mode)

from psfuture.tasks.alignment import (AlignmentTable, aligned_len, align_split, parse_links, src_end, symmetrise,
                                      table_path, words)

ROOT = Path(__file__).resolve().parents[2]
W = "\u2581"


def test_words_group_pieces_at_word_marks_and_lowercase():
    got, index = words([W + "Die", W + "Or", "ks", W + "."])
    assert got == ["die", "orks", "."] and index.tolist() == [0, 1, 1, 2]
    got, index = words(["Im", W, "."])  # a sequence need not open with a word mark; a lone mark is a word
    assert got == ["im", "."] and index.tolist() == [0, 1, 1]


def test_src_end_is_where_every_aligned_source_word_is_complete():
    # Die Orks haben das Dorf angegriffen . -> The orcs have attacked the village .  (verb last in German)
    src_word = np.array([0, 1, 1, 2, 3, 4, 5, 5, 6])  # "Orks" and "angegriffen" are two pieces each
    tgt_word = np.array([0, 1, 2, 3, 4, 5, 6])
    links = {(0, 0), (1, 1), (2, 2), (5, 3), (3, 4), (4, 5), (6, 6)}
    ends = src_end(links, src_word, tgt_word)
    assert ends.tolist() == [1, 3, 4, 8, 5, 6, 9]
    assert aligned_len(ends, 3) == 2                   # "Die Orks" -> "The orcs"
    assert aligned_len(ends, 4) == 3                   # + "haben" -> "have"
    assert aligned_len(ends, 6) == 6                   # + "das Dorf": the target up to "village", "attacked" inside
    assert aligned_len(ends, 9) == 7
    assert aligned_len(np.array([0, 5, 0]), 2) == 1    # nothing aligned inside yet: one token, never empty
    assert aligned_len(np.array([2, 0, 0]), 2) == 1    # trailing unaligned tokens wait for a later link


def test_symmetrise_combines_the_two_directions():
    fwd, rev = parse_links("0-0 1-2 2-1"), parse_links("0-0 1-2 2-2")
    assert symmetrise(fwd, rev, "intersect") == {(0, 0), (1, 2)}
    assert symmetrise(fwd, rev, "union") == {(0, 0), (1, 2), (2, 1), (2, 2)}
    assert symmetrise(fwd, rev, "forward") == fwd


@pytest.fixture(scope="module")
def aligned_bin(tiny_data_bin, tmp_path_factory):
    d = tmp_path_factory.mktemp("aligned_bin")
    shutil.copytree(tiny_data_bin, d, dirs_exist_ok=True)
    align_split(d, log=lambda *_: None)
    return d


def test_table_covers_every_target_token_of_the_split(aligned_bin):
    from fairseq.data import Dictionary, data_utils

    d = Dictionary.load(str(aligned_bin / "dict.en.txt"))
    tgt = data_utils.load_indexed_dataset(str(aligned_bin / "train.de-en.en"), d)
    table = AlignmentTable(table_path(aligned_bin))
    assert len(table) == len(tgt)
    assert all(len(table[i]) == len(tgt[i]) - 1 for i in range(len(tgt)))  # EOS is never aligned
    src = data_utils.load_indexed_dataset(str(aligned_bin / "train.de-en.de"), d)  # its sizes live in its mmap
    assert all(table[i].max(initial=0) <= len(src[i]) - 1 for i in range(len(tgt)))
    assert np.mean(table.src_end > 0) > 0.3, "eflomal aligned almost nothing"


def test_aligned_target_is_cut_at_the_last_token_aligned_inside_the_prefix(aligned_bin):
    t = make_task(aligned_bin, "--prefix-ratio", "1.0", "--seed", "3", "--prefix-target", "aligned")
    t.load_dataset("train")
    ds, eos = t.dataset("train"), t.tgt_dict.eos()
    table, shorter = AlignmentTable(table_path(aligned_bin)), 0
    for i in range(len(ds)):  # ratio 1.0: every example is cut (a whole-sentence cut still loses its EOS)
        full, item = ds.dataset[i], ds[i]
        cut = len(item["source"])
        assert torch.equal(item["target"], full["target"][:aligned_len(table[i], cut)])
        assert item["target"][-1] != eos
        shorter += len(item["target"]) < len(full["target"]) - 1
    assert shorter > len(ds) // 2


def test_identical_sides_align_each_word_to_itself(tiny_corpus, tmp_path):
    """Rows in the wrong order or links shifted by a word would break the diagonal of a corpus aligned to itself."""
    corpus, out = tmp_path / "corpus", tmp_path / "bin"
    corpus.mkdir()
    for split in ("train", "valid", "test"):
        text = (tiny_corpus / f"{split}.de").read_text(encoding="utf-8")
        (corpus / f"{split}.de").write_text(text, encoding="utf-8")
        (corpus / f"{split}.en").write_text(text, encoding="utf-8")
    subprocess.run([sys.executable, str(ROOT / "scripts" / "prepare.py"), "--corpus", str(corpus), "--out", str(out),
                    "--vocab-size", "1000"], check=True, capture_output=True)
    align_split(out, log=lambda *_: None)
    from fairseq.data import Dictionary, data_utils

    d = Dictionary.load(str(out / "dict.de.txt"))
    src = data_utils.load_indexed_dataset(str(out / "train.de-en.de"), d)
    table, same, aligned = AlignmentTable(table_path(out)), 0, 0
    for i in range(len(table)):
        _, index = words([d[t] for t in src[i][:-1].tolist()])
        word_end = {w: tok + 1 for tok, w in enumerate(index)}  # the last piece of each word
        diagonal = np.array([word_end[w] for w in index])
        ends = table[i]
        aligned += int((ends > 0).sum())
        same += int(((ends > 0) & (ends == diagonal)).sum())
    assert aligned > 0.6 * len(table.src_end) and same > 0.95 * aligned


def test_aligned_needs_its_own_table(aligned_bin, tiny_data_bin, tmp_path):
    bare = tmp_path / "bare"
    shutil.copytree(tiny_data_bin, bare)
    table_path(bare).unlink(missing_ok=True)
    t = make_task(bare, "--prefix-target", "aligned")
    with pytest.raises(FileNotFoundError, match="scripts/align_p2f.py"):
        t.load_dataset("train")
    z = dict(np.load(table_path(aligned_bin)))
    z["fingerprint"] = np.array("0" * 16)  # as if made for another binarization
    np.savez(table_path(bare), **z)
    with pytest.raises(ValueError, match="another binarization"):
        t.load_dataset("train")
    z = dict(np.load(table_path(aligned_bin)))
    z["offsets"] = z["offsets"][:-1]  # one sentence short
    np.savez(table_path(bare), **z)
    with pytest.raises(ValueError, match="sentences, the dataset"):
        t.load_dataset("train")


def test_a_row_of_the_wrong_length_is_refused(aligned_bin):
    t = make_task(aligned_bin, "--prefix-ratio", "1.0", "--prefix-target", "aligned")
    t.load_dataset("train")
    ds = t.dataset("train")
    table = ds.alignment
    i = next(i for i in range(len(ds)) if len(ds.dataset[i]["target"]) > 2)
    table.offsets = table.offsets.copy()
    table.offsets[i + 1] -= 1  # row i one token short, as a table of another tokenization would be
    with pytest.raises(ValueError, match="rerun scripts/align_p2f.py"):
        ds[i]


def test_train_p2f_aligned_without_a_table_says_how_to_make_it(tiny_model_dir, tiny_data_bin, tmp_path):
    bare = tmp_path / "bare"
    shutil.copytree(tiny_data_bin, bare)
    table_path(bare).unlink(missing_ok=True)
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "train_p2f.py"), "--model", str(tiny_model_dir),
                        "--data", str(bare), "--work", str(tmp_path / "w"), "--out", str(tmp_path / "o"),
                        "--prefix-target", "aligned"], capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "align_p2f.py" in r.stderr and "Traceback" not in r.stderr
