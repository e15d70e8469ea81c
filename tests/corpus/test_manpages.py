import gzip

from psfuture.corpus.manpages import man_blocks, read_manpages, roff_text

EN = r""".\" comment
.TH LS 1 "2022" "GNU coreutils 9.1"
.SH NAME
ls \- list directory contents
.SH DESCRIPTION
.PP
List information about the FILEs
(the current directory by default).
.TP
\fB\-a\fR, \fB\-\-all\fR
do not ignore entries starting with .
.nf
ls \-la /tmp
.fi
See
.BR dir (1).
"""
DE = r""".TH LS 1 "2022" "GNU coreutils 9.1"
.SH BEZEICHNUNG
ls \- Verzeichnisinhalte auflisten
.SH BESCHREIBUNG
.PP
Auflistung von Informationen über die DATEIen
(Standardvorgabe ist das aktuelle Verzeichnis).
.TP
\fB\-a\fP, \fB\-\-all\fP
Einträge nicht ignorieren, die mit ».« beginnen
.nf
ls \-la /tmp
.fi
Siehe
.BR dir (1).
.SH ÜBERSETZUNG
Die deutsche Übersetzung wurde von Erika Mustermann erstellt.
"""


def test_roff_text_drops_fonts_and_decodes_escapes():
    assert roff_text(r"\fB\-\-all\fP \(em \(lqa\(rq\e\&") == '--all — "a"\\'


def test_man_blocks_keep_headings_terms_and_paragraphs_but_not_code():
    assert man_blocks(EN) == [
        ("/title", "NAME"), ("SH/p", "ls - list directory contents"), ("/title", "DESCRIPTION"),
        ("PP/p", "List information about the FILEs (the current directory by default)."),
        ("TP/term/p", "-a, --all"), ("TP/p", "do not ignore entries starting with ."), ("fi/p", "See dir(1).")]


def test_read_manpages_pairs_pages_of_the_same_name_without_the_translators_section(tmp_path):
    for root, text in ((tmp_path / "en/usr/share/man/man1", EN), (tmp_path / "de/usr/share/man/de/man1", DE)):
        root.mkdir(parents=True)
        (root / "ls.1.gz").write_bytes(gzip.compress(text.encode()))
    pairs = read_manpages([tmp_path / "de", tmp_path / "en"])
    assert pairs[1] == ("ls - Verzeichnisinhalte auflisten", "ls - list directory contents")
    assert pairs[-1] == ("Siehe dir(1).", "See dir(1).") and len(pairs) == 7
