import pytest

from psfuture.corpus.libreoffice_help import align_pages, read_help, segments

EN = b"""<html><body><div id="DisplayArea">
<h1 id="hd_id1">Centering Text</h1>
<p id="par_id2" class="listitem">Choose <span class="emph">Insert - Frame</span>.</p>
<p id="par_id3">Press <span id="swlnsys1" class="switchinline"><span hidden="true" id="MACx_1" class="MAC"><span class="keycode">Command</span></span><span hidden="true" id="defaultx_1"><span class="keycode">Ctrl</span></span></span><span class="keycode"> + F</span> to search.</p>
<p id="par_id4">Only in English.</p>
<div class="embedded"><p id="par_id2">Embedded copy.</p></div>
<p id="other">Not a help paragraph id.</p>
<p id="par_id5">First line<br>second line</p>
</div></body></html>"""

DE = """<html><body><div id="DisplayArea">
<h1 id="hd_id1">Text zentrieren</h1>
<p id="par_id3">Drücken Sie <span id="swlnsys1" class="switchinline"><span hidden="true" id="MACx_1" class="MAC">Befehl</span><span hidden="true" id="defaultx_1">Strg</span></span> + F zum Suchen.</p>
<p id="par_id2" class="listitem">Wählen Sie <span class="emph">Einfügen – Rahmen</span>.</p>
<p id="par_id5">Erste Zeile<br>zweite Zeile</p>
</div></body></html>""".encode()


def test_segments_by_id_with_default_os_variant_and_first_occurrence():
    assert segments(EN) == {
        "hd_id1": "Centering Text",
        "par_id2": "Choose Insert - Frame.",
        "par_id3": "Press Ctrl + F to search.",
        "par_id4": "Only in English.",
        "par_id5": "First line second line",
    }


def test_align_pages_pairs_shared_ids_in_english_order():
    assert align_pages(DE, EN) == [
        ("Text zentrieren", "Centering Text"),
        ("Wählen Sie Einfügen – Rahmen.", "Choose Insert - Frame."),
        ("Drücken Sie Strg + F zum Suchen.", "Press Ctrl + F to search."),
        ("Erste Zeile zweite Zeile", "First line second line"),
    ]


def test_switch_without_default_keeps_the_first_variant():
    html = (b'<p id="par_id1">In <span class="switchinline"><span hidden="true" id="WRITER1">Writer'
            b'</span><span hidden="true" id="CALC1">Calc</span></span> only.</p>')
    assert segments(html) == {"par_id1": "In Writer only."}


def test_read_help_walks_matching_files(tmp_path):
    for lang, html in (("en-US", EN), ("de", DE)):
        page = tmp_path / lang / "usr/share/libreoffice/help" / lang / "text/swriter/guide/center.html"
        page.parent.mkdir(parents=True)
        page.write_bytes(html)
    (tmp_path / "en-US/usr/share/libreoffice/help/en-US/text/only_en.html").write_bytes(EN)
    pairs = read_help(tmp_path / "de", tmp_path / "en-US")
    assert pairs == align_pages(DE, EN)
    with pytest.raises(FileNotFoundError, match="libreoffice-help-de"):
        read_help(tmp_path / "missing", tmp_path / "en-US")
