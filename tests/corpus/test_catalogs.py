from psfuture.corpus.catalogs import LOCALE_DIR, kde_text, read_catalogs, split_entry


def test_kde_text_strips_accelerators_but_not_entities_or_literal_ampersands():
    assert kde_text("Save &As...") == "Save As..."
    assert kde_text("&Datei") == "Datei"
    assert kde_text("Tom &amp; Jerry") == "Tom &amp; Jerry"
    assert kde_text("Drag && Drop") == "Drag & Drop"


def test_split_entry_splits_option_lists_and_keeps_wrapped_prose_whole():
    assert split_entry("  -a, --all          alles anzeigen\n  -q, --quiet        still sein\n",
                       "  -a, --all          show all\n  -q, --quiet        be quiet\n") == [
        ("alles anzeigen", "show all"), ("still sein", "be quiet")]
    assert split_entry("Bitte prüfen Sie die\nDatei und versuchen es erneut.",
                       "Please check the file\nand try again.") == [
        ("Bitte prüfen Sie die Datei und versuchen es erneut.", "Please check the file and try again.")]
    assert split_entry("%<#pragma%> ist hier nicht erlaubt", "%<#pragma%> is not allowed here") == [
        ("'#pragma' ist hier nicht erlaubt", "'#pragma' is not allowed here")]


def test_read_catalogs_flips_to_german_first_and_drops_placeholders_and_credits(tmp_path, mo_bytes):
    root = tmp_path / LOCALE_DIR
    root.mkdir(parents=True)
    (root / "app.mo").write_bytes(mo_bytes([
        (b"&Open File", b"Datei \xc3\xb6&ffnen"),
        (b"Delete %1?", b"%1 l\xc3\xb6schen?"),
        (b"NAME OF TRANSLATORS\x04Your names", b"Erika Mustermann"),
    ]))
    assert read_catalogs([tmp_path], kde=True) == [("Datei öffnen", "Open File")]
    assert read_catalogs([tmp_path]) == [("Datei ö&ffnen", "&Open File")]
