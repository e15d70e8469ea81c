import pytest

from psfuture.corpus.clean import CleanConfig, clean_pairs, key, normalize, reject_reason


def test_normalize_removes_markup_entities_and_invisible_characters():
    assert normalize("  Klicken Sie&nbsp;auf <b>OK</b>,\u00ad\n\tdann   weiter ") == "Klicken Sie auf OK, dann weiter"
    assert normalize("<span class='x'>a &lt; b</span>") == "a < b"


def test_normalize_composes_unicode():
    assert normalize("Gro\u0308\u00dfe") == "Größe"


def test_key_ignores_case_punctuation_and_spacing():
    assert key("Hello,  World!") == key("hello world") == "helloworld"


@pytest.mark.parametrize("de,en,reason", [
    ("", "Save", "empty"),
    ("123", "456", "no letters"),
    ("LibreOffice", "LibreOffice.", "untranslated"),
    ("wort " * 101, "word " * 101, "too long"),
    ("Speichern", "Save the document to a new file on your computer now", "word ratio"),
    ("Ein Satz mit acht Wörtern hier drin, ja.", "A sentence with eight words in it, yes.", None),
    ("Bildgrößenänderungsdialog", "Resize", None),  # within the short-side floor
    ("Donaudampfschifffahrtsgesellschaftskapitän", "Captain", "char ratio"),
])
def test_reject_reason(de, en, reason):
    assert reject_reason(de, en) == reason


def test_numbers_must_match_only_when_asked():
    de, en = "Drücken Sie F9.", "Press F5."
    assert reject_reason(de, en) is None
    assert reject_reason(de, en, CleanConfig(match_numbers=True)) == "numbers differ"
    assert reject_reason("Seite 2 von 10", "Page 2 of 10", CleanConfig(match_numbers=True)) is None


def test_clean_pairs_normalizes_filters_and_deduplicates_in_order():
    pairs = [
        ("Datei  öffnen", "Open <b>file</b>"),
        ("Datei öffnen", "Open file"),        # same pair once normalized
        ("Hilfe", "Hilfe"),                   # untranslated
        ("Datei öffnen", "Open a file"),      # another translation of the same German: kept
        ("   ", "Empty"),
        ("Schließen", "Close"),
    ]
    assert clean_pairs(pairs) == [("Datei öffnen", "Open file"), ("Datei öffnen", "Open a file"),
                                  ("Schließen", "Close")]
