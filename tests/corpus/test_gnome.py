import pytest

from psfuture.corpus.gnome import HELP_DIR, page_blocks, read_pages


def _page(lang, title, desc, paras, code="ls -l"):
    body = "".join(f"<p>{p}</p>" for p in paras)
    return f"""<?xml version="1.0" encoding="utf-8"?>
<page xmlns="http://projectmallard.org/1.0/" id="x" xml:lang="{lang}">
  <info>
    <title type="sort">zzz</title>
    <credit type="author"><name>Jane Doe</name></credit>
    <desc>{desc}</desc>
    <license><p>Creative Commons Share Alike 3.0</p></license>
  </info>
  <title>{title}</title>
  <section><title>{title}!</title>{body}<code>{code}</code><screen>$ {code}</screen></section>
</page>""".encode()


def test_page_blocks_take_titles_paragraphs_and_the_description_only():
    blocks = page_blocks(_page("C", "Connect", "Pair <em>devices</em>.", ["Turn it on.", "Click <gui>Pair</gui>."]))
    assert blocks == [("info/desc", "Pair devices."), ("page/title", "Connect"),
                      ("section/title", "Connect!"), ("section/p", "Turn it on."),
                      ("section/p", "Click Pair.")]


def test_read_pages_pairs_per_page_file_in_sorted_order(tmp_path):
    pages = {
        ("C", "b.page"): _page("C", "Connect", "Pair devices.", ["Turn it on."]),
        ("de", "b.page"): _page("de", "Verbinden", "Geräte koppeln.", ["Schalten Sie es ein."]),
        ("C", "a.page"): _page("C", "About", "Learn more.", []),
        ("de", "a.page"): _page("de", "Info", "Mehr erfahren.", []),
        ("C", "c.page"): _page("C", "Untranslated", "No German page.", []),
    }
    for (lang, name), xml in pages.items():
        path = tmp_path / HELP_DIR / lang / "gnome-help" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(xml)
    assert read_pages(tmp_path) == {
        "a.page": [("Mehr erfahren.", "Learn more."), ("Info", "About"), ("Info!", "About!")],
        "b.page": [("Geräte koppeln.", "Pair devices."), ("Verbinden", "Connect"), ("Verbinden!", "Connect!"),
                   ("Schalten Sie es ein.", "Turn it on.")],
    }
    with pytest.raises(FileNotFoundError, match="gnome-user-docs"):
        read_pages(tmp_path / "none")


def test_key_and_menu_sequences_are_joined_as_displayed():
    xml = b"""<page xmlns="http://projectmallard.org/1.0/"><p>Press <keyseq>
      <key>Shift</key> <key>Ctrl</key><key>Alt</key></keyseq> or choose <guiseq><gui>Edit</gui>
      <gui>Preferences</gui></guiseq>.</p></page>"""
    assert page_blocks(xml) == [("page/p", "Press Shift+Ctrl+Alt or choose Edit ▸ Preferences.")]
    docbook = b"<article><para>Choose <menuchoice><guimenu>Edit</guimenu><guimenuitem>Copy</guimenuitem>" \
              b"</menuchoice> or press <keycombo><keycap>Ctrl</keycap><keycap>C</keycap></keycombo>.</para></article>"
    assert page_blocks(docbook) == [("article/para", "Choose Edit ▸ Copy or press Ctrl+C.")]


def test_docbook_blocks_expand_own_entities_and_skip_metadata_and_external_entities():
    xml = b"""<?xml version="1.0"?>
<!DOCTYPE article PUBLIC "-//OASIS//DTD DocBook XML V4.1.2//EN" "docbookx.dtd" [
  <!ENTITY app "Tali">
  <!ENTITY legal SYSTEM "legal.xml">
]>
<article><articleinfo><title>Tali Manual</title>&legal;</articleinfo>
  <sect1><title>Playing &app;</title><para>Roll the dice.</para>
  <informaltable><tgroup><tbody><row><entry>Yahtzee</entry></row></tbody></tgroup></informaltable>
  <programlisting>tali --help</programlisting></sect1></article>"""
    assert page_blocks(xml) == [("sect1/title", "Playing Tali"), ("sect1/para", "Roll the dice."),
                                ("row/entry", "Yahtzee")]


def test_read_pages_takes_docbook_files_but_not_the_license(tmp_path):
    def write(lang, name, text):
        path = tmp_path / HELP_DIR / lang / "tali" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(f"<article><sect1><para>{text}</para></sect1></article>".encode())
    write("C", "index.docbook", "Roll the dice.")
    write("de", "index.docbook", "Würfeln Sie.")
    write("C", "legal.xml", "Permission is granted to copy.")
    write("de", "legal.xml", "Das Kopieren ist gestattet.")
    assert read_pages(tmp_path, "tali") == {"index.docbook": [("Würfeln Sie.", "Roll the dice.")]}
