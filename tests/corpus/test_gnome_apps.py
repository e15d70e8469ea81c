from psfuture.corpus.gnome import HELP_DIR
from psfuture.corpus.gnome_apps import LOCALE_DIR, read_app_help, read_app_ui


def _page(lang, title, para):
    return (f'<page xmlns="http://projectmallard.org/1.0/" id="x" xml:lang="{lang}">'
            f"<title>{title}</title><p>{para}</p></page>").encode()


def _write(root, rel, data):
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def test_read_app_help_pairs_every_document_with_german_pages_but_the_held_out_one(tmp_path):
    app, docs = tmp_path / "gedit", tmp_path / "gnome-user-docs"
    _write(app, f"{HELP_DIR}/C/gedit/save.page", _page("C", "Save a file", "Press Ctrl+S."))
    _write(app, f"{HELP_DIR}/de/gedit/save.page", _page("de", "Eine Datei speichern", "Drücken Sie Strg+S."))
    _write(app, f"{HELP_DIR}/C/untranslated/a.page", _page("C", "Alone", "Only English."))
    _write(docs, f"{HELP_DIR}/C/gnome-help/net.page", _page("C", "Network", "Held out."))
    _write(docs, f"{HELP_DIR}/de/gnome-help/net.page", _page("de", "Netzwerk", "Zurückgehalten."))
    _write(docs, f"{HELP_DIR}/C/system-admin-guide/lock.page", _page("C", "Lock down", "Disable it."))
    _write(docs, f"{HELP_DIR}/de/system-admin-guide/lock.page", _page("de", "Sperren", "Deaktivieren Sie es."))
    assert read_app_help([app, docs, tmp_path / "no-help"]) == [
        ("Eine Datei speichern", "Save a file"), ("Drücken Sie Strg+S.", "Press Ctrl+S."),
        ("Sperren", "Lock down"), ("Deaktivieren Sie es.", "Disable it."),
    ]


def test_read_app_ui_strips_mnemonics_and_drops_placeholders_and_time_zones(tmp_path, mo_bytes):
    _write(tmp_path / "app", f"{LOCALE_DIR}/gedit.mo",
           mo_bytes([(b"_Save", b"_Speichern"), (b"Saving %s", b"%s wird gespeichert")]))
    _write(tmp_path / "app", f"{LOCALE_DIR}/gnome-control-center-2.0-timezones.mo",
           mo_bytes([(b"Europe/Berlin", b"Europa/Berlin")]))
    assert read_app_ui([tmp_path / "app"]) == [("Speichern", "Save")]
