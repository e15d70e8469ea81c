import pytest

from psfuture.corpus.gimp import HELP_DIR, html_blocks, read_gimp


def _page(title, paras, extra=""):
    body = "".join(f"<p>{p}</p>" for p in paras)
    return (f'<html><body><div class="navheader"><table><tr><th>{title}</th></tr></table></div>'
            f'<div class="sect2"><h3 class="title"><a id="x"></a>4.4. {title}</h3>{extra}{body}'
            f'<ul><li><p>{paras[0]} (list)</p></li></ul></div>'
            f'<div class="navfooter"><p>{title}</p></div></body></html>').encode()


def test_html_blocks_skip_navigation_and_numbering_and_take_innermost_blocks():
    html = _page("Crop", ["The Crop Tool<br>crops.", "Press <span>Enter</span>."])
    assert html_blocks(html) == [
        ("div.sect2/h3.title", "Crop"),
        ("div.sect2/p.", "The Crop Tool crops."),
        ("div.sect2/p.", "Press Enter."),
        ("li./p.", "The Crop Tool crops. (list)"),
    ]


def test_read_gimp_aligns_pages_by_block_order(tmp_path):
    files = {
        ("en", "crop.html"): _page("Crop", ["Crop it.", "Press Enter."]),
        ("de", "crop.html"): _page("Zuschneiden", ["Schneiden Sie zu.", "Drücken Sie Eingabe."],
                                   extra='<div class="note"><p>Nur im Deutschen.</p></div>'),
        ("en", "only-en.html"): _page("Alone", ["Nothing to pair."]),
    }
    for (lang, name), html in files.items():
        path = tmp_path / lang / HELP_DIR / lang / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(html)
    assert read_gimp(tmp_path / "de", tmp_path / "en") == [
        ("Zuschneiden", "Crop"),
        ("Schneiden Sie zu.", "Crop it."),
        ("Drücken Sie Eingabe.", "Press Enter."),
        ("Schneiden Sie zu. (list)", "Crop it. (list)"),
    ]
    with pytest.raises(FileNotFoundError, match="gimp-help-de"):
        read_gimp(tmp_path / "none", tmp_path / "en")
