import dataclasses
import pytest

from psfuture.corpus.build import BuildConfig, Source, build, split_heldout, write_corpus
from psfuture.corpus.clean import CleanConfig
from psfuture.corpus.fetch import Package

PAGES = {
    "a.page": [("Drucker einrichten", "Set up a printer"), ("Klicken Sie auf OK.", "Click OK.")],
    "b.page": [("Seite 2 von 3", "Page 2 of 4"),                 # numbers differ: misaligned
               ("Klicken Sie auf OK!", "Click OK!"),             # same as valid but punctuation
               ("WLAN verbinden", "Connect to Wi-Fi")],
    "c.page": [("Ton einstellen", "Adjust the sound")],
}


def test_split_heldout_alternates_pages_and_keeps_test_apart_from_valid():
    splits = split_heldout(PAGES, CleanConfig(match_numbers=True))
    assert splits == {
        "valid": [("Drucker einrichten", "Set up a printer"), ("Klicken Sie auf OK.", "Click OK."),
                  ("Ton einstellen", "Adjust the sound")],
        "test": [("WLAN verbinden", "Connect to Wi-Fi")],
    }


def _tsv_source(name, deb_name):
    """A source whose package holds "de<TAB>en" lines, read the way the real readers are."""
    def read(roots):
        text = (roots[0] / "usr/share/pairs.tsv").read_text(encoding="utf-8")
        return [tuple(line.split("\t")) for line in text.splitlines()]
    return Source(name, (Package("deb", deb_name, "1.0-1", ("usr/share/*",)),), "MIT", read)


@pytest.fixture
def cache(tmp_path, deb_bytes):
    dl = tmp_path / "cache/dl"
    dl.mkdir(parents=True)
    contents = {
        "one": "Guten Morgen.\tGood morning.\nDrucker einrichten\tSet up a printer\nHallo\tHallo\n"
               "Gute Nacht.\tGood night.\n",
        "two": "Guten Morgen.\tGood morning.\nDanke schön.\tThank you.\nWLAN verbinden!\tConnect to WiFi\n",
        "held": "",
    }
    for name, text in contents.items():
        (dl / f"{name}_1.0-1_all.deb").write_bytes(deb_bytes({"usr/share/pairs.tsv": text.encode()}))
    return tmp_path / "cache"


def _heldout():
    return Source("held", (Package("deb", "held", "1.0-1", ("usr/share/*",)),), "CC0",
                  lambda roots: PAGES, by_position=True)


def test_build_dedups_across_sources_and_removes_heldout_sentences(cache):
    sources = (_tsv_source("one", "one"), _tsv_source("two", "two"))
    corpus = build(BuildConfig(cache=cache, seed=1), sources, _heldout())
    assert sorted(corpus.splits["train"]) == [("Danke schön.", "Thank you."), ("Gute Nacht.", "Good night."),
                                              ("Guten Morgen.", "Good morning.")]
    assert corpus.splits["test"] == [("WLAN verbinden", "Connect to Wi-Fi")]
    assert [(r.name, r.extracted, r.cleaned, r.kept) for r in corpus.reports] == [
        ("one", 4, 3, 2),   # "Hallo" untranslated; "Drucker einrichten" is in valid
        ("two", 3, 3, 1),   # "Guten Morgen." given by "one"; "WLAN verbinden!" is in test
        ("held", 6, 4, 4),
    ]
    assert corpus.reports[0].packages == ["one 1.0-1 (Debian)"]
    again = build(BuildConfig(cache=cache, seed=1), sources, _heldout())
    assert again.splits == corpus.splits


def test_build_selects_sources_by_name(cache):
    sources = (_tsv_source("one", "one"), _tsv_source("two", "two"))
    corpus = build(BuildConfig(cache=cache, sources=("two",)), sources, _heldout())
    assert [r.name for r in corpus.reports] == ["two", "held"]
    with pytest.raises(ValueError, match=r"unknown sources \['three'\]"):
        build(BuildConfig(cache=cache, sources=("three",)), sources, _heldout())


def test_opt_in_source_is_built_only_when_named(cache):
    sources = (_tsv_source("one", "one"), dataclasses.replace(_tsv_source("two", "two"), default=False))
    assert [r.name for r in build(BuildConfig(cache=cache), sources, _heldout()).reports] == ["one", "held"]
    named = build(BuildConfig(cache=cache, sources=("one", "two")), sources, _heldout())
    assert [r.name for r in named.reports] == ["one", "two", "held"]


def test_write_corpus_writes_aligned_files_and_a_data_card(cache, tmp_path):
    corpus = build(BuildConfig(cache=cache), (_tsv_source("one", "one"),), _heldout())
    out = tmp_path / "corpus"
    write_corpus(corpus, out, "python scripts/build_data.py --out corpus")
    for split in ("train", "valid", "test"):
        de = (out / f"{split}.de").read_text(encoding="utf-8").splitlines()
        en = (out / f"{split}.en").read_text(encoding="utf-8").splitlines()
        assert list(zip(de, en)) == corpus.splits[split]
    card = (out / "DATA_CARD.md").read_text(encoding="utf-8")
    assert "`python scripts/build_data.py --out corpus`" in card
    assert "| one | one 1.0-1 (Debian) | MIT | 4 | 3 | 2 |" in card
    assert "| test | 1 | 2 | 3 |" in card
    assert "`held` is held out" in card
