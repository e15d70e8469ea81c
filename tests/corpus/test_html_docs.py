from psfuture.corpus.html_docs import Doc, align_identical, html_blocks, read_docs

EN = b"""<html><body><div class="navheader"><a href="x">Next</a></div>
<h1>1. Intro<a class="headerlink" href="#i">\xc2\xb6</a></h1>
<p>Install the <code>foo</code> package.</p><pre>apt install foo</pre>
<ul><li><p>First item.</p></li><li>Second item.</li></ul></body></html>"""
DE = ("<html><body><div class='navheader'><a href='x'>Weiter</a></div>"
      "<h1>1. Einleitung<a class='headerlink' href='#i'>¶</a></h1>"
      "<p>Installieren Sie das Paket <code>foo</code>.</p><pre>apt install foo</pre>"
      "<ul><li><p>Erster Punkt.</p></li><li>Zweiter Punkt.</li></ul></body></html>").encode()


def test_html_blocks_takes_innermost_blocks_without_navigation_code_or_header_links():
    assert html_blocks(EN) == [("/h1", "1. Intro"), ("/p", "Install the foo package."),
                               ("/li/p", "First item."), ("/li", "Second item.")]


def test_align_identical_pairs_by_position_only_when_structures_match():
    de, en = html_blocks(DE), html_blocks(EN)
    assert align_identical(de, en)[0] == ("1. Einleitung", "1. Intro")
    assert align_identical(de[:-1], en[:-1] + [("/p", "Extra.")]) == []


def test_doc_reads_files_by_renamed_name_and_skips_untranslated(tmp_path):
    (tmp_path / "en").mkdir()
    (tmp_path / "de").mkdir()
    (tmp_path / "en/ch01.en.html").write_bytes(EN)
    (tmp_path / "de/ch01.de.html").write_bytes(DE)
    (tmp_path / "en/ch02.en.html").write_bytes(EN)  # no German file
    doc = Doc("d", "1", "GPL", ("pkg", "de"), ("pkg", "en"), "*.en.html", (".en.", ".de."))
    assert [p.members for p in doc.packages()] == [("de/*", "en/*")]
    assert len(doc.read([tmp_path])) == 4
    assert read_docs(tmp_path / "de", tmp_path / "en", "*.en.html") == []  # names differ: no pairs
