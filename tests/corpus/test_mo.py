import pytest

from psfuture.corpus.libreoffice_ui import RESOURCE_DIR, read_ui
from psfuture.corpus.mo import MoError, has_placeholder, read_mo, strip_accelerators


def test_read_mo_keeps_order_and_drops_header_context_plurals_and_untranslated(mo_bytes):
    data = mo_bytes([
        (b"", b"Content-Type: text/plain; charset=UTF-8\n"),
        (b"Open", b"\xc3\x96ffnen"),
        (b"menu\x04Close", b"Schlie\xc3\x9fen"),
        (b"%d file\x00%d files", b"%d Datei\x00%d Dateien"),
        (b"Untranslated", b""),
        (b"translator-credits", b"Erika Mustermann <erika@example.org>"),
    ])
    assert read_mo(data) == [("Open", "Öffnen"), ("Close", "Schließen"), ("%d file", "%d Datei")]


def test_read_mo_rejects_other_files():
    with pytest.raises(MoError, match="magic"):
        read_mo(b"#, fuzzy\nmsgid \"\"\nmsgstr \"\"\n")
    with pytest.raises(MoError, match="only 3 bytes"):
        read_mo(b"abc")


@pytest.mark.parametrize("text,stripped", [
    ("~Help", "Help"),
    ("Ima~ge", "Image"),
    ("Lo_gical", "Logical"),
    ("_X axis:", "X axis:"),
    ("CHAR_WIDTH and LINE_HEIGHT", "CHAR_WIDTH and LINE_HEIGHT"),  # identifiers, not accelerators
])
def test_strip_accelerators(text, stripped):
    assert strip_accelerators(text) == stripped


@pytest.mark.parametrize("text,expected", [
    ("Open %s", True), ("%2$d of %1$d", True), ("%-5.2f MB", True), ("Column %1", True),
    ("Column %COLUMNNUMBER", True), ("$(ARG1) not allowed", True), ("Hello {name}", True),
    ("${var} set", True), ("100 % sure", False), ("Zoom 50%", False), ("Plain text.", False),
])
def test_has_placeholder(text, expected):
    assert has_placeholder(text) is expected


def test_read_ui_reads_every_catalog_in_name_order(tmp_path, mo_bytes):
    root = tmp_path / RESOURCE_DIR
    root.mkdir(parents=True)
    (root / "b.mo").write_bytes(mo_bytes([(b"~Save", b"~Speichern"), (b"Open %1", b"%1 \xc3\xb6ffnen"),
                                          (b"About %PRODUCTNAME", b"\xc3\x9cber %PRODUCTNAME")]))
    (root / "a.mo").write_bytes(mo_bytes([(b"Sh_ow", b"_Anzeigen")]))
    assert read_ui(tmp_path) == [("Anzeigen", "Show"), ("Speichern", "Save"),
                                 ("Über LibreOffice", "About LibreOffice")]


def test_read_ui_without_catalogs_says_which_package(tmp_path):
    with pytest.raises(FileNotFoundError, match="libreoffice-l10n-de"):
        read_ui(tmp_path)
