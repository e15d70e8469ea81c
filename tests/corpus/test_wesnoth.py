import pytest

from psfuture.corpus.wesnoth import read_wesnoth, split_pair


def test_context_prefix_is_removed():
    assert split_pair("Feinde", "teamname^Enemies") == [("Feinde", "Enemies")]


def test_paragraphs_pair_up_when_both_sides_have_the_same_number():
    de = "Erster Absatz.\n\nZweiter Absatz."
    en = "First paragraph.\n\nSecond paragraph."
    assert split_pair(de, en) == [("Erster Absatz.", "First paragraph."), ("Zweiter Absatz.", "Second paragraph.")]
    assert split_pair("Alles in einem.", en) == [("Alles in einem.", "First paragraph. Second paragraph.")]


def test_help_markup_keeps_the_shown_text():
    de = "Siehe <ref>dst='terrain' text='Gelände'</ref> und <bold>text='Dörfer'</bold>."
    en = "See <ref>dst='terrain' text='Terrain'</ref> and <bold>text='villages'</bold>."
    assert split_pair(de, en) == [("Siehe Gelände und Dörfer.", "See Terrain and villages.")]


@pytest.mark.parametrize("de,en", [
    ("Willkommen, $player_name!", "Welcome, $player_name!"),
    ("Brücke {bridge_type}", "Bridge {bridge_type}"),
    ("main=Brücke", "main=Bridge"),
    ("Der [scenario]-Tag", "The [scenario] tag"),
])
def test_lines_with_placeholders_are_dropped(de, en):
    assert split_pair(de, en) == []


def test_read_wesnoth_collects_german_catalogs_of_all_packages(tmp_path, mo_bytes):
    for pkg, entries in (("data", [(b"Recruit", b"Ausbilden")]), ("httt", [(b"Move", b"Bewegen")])):
        d = tmp_path / pkg / "usr/share/games/wesnoth/1.16/locale/de/LC_MESSAGES"
        d.mkdir(parents=True)
        (d / f"wesnoth-{pkg}.mo").write_bytes(mo_bytes(entries))
        fr = tmp_path / pkg / "usr/share/games/wesnoth/1.16/locale/fr/LC_MESSAGES"
        fr.mkdir(parents=True)
        (fr / f"wesnoth-{pkg}.mo").write_bytes(mo_bytes([(b"Move", b"Bouger")]))
    assert read_wesnoth([tmp_path / "data", tmp_path / "httt"]) == [("Ausbilden", "Recruit"), ("Bewegen", "Move")]
    with pytest.raises(FileNotFoundError, match="German Wesnoth"):
        read_wesnoth([tmp_path / "none"])
