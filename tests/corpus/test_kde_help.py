import pytest

from psfuture.corpus.kde_help import CUSTOMIZATION, HTML_DIR, align_sections, expand, load_entities, read_handbooks

DOC = """<?xml version="1.0" ?>
<!DOCTYPE book PUBLIC "-//KDE//DTD DocBook XML V4.5-Based Variant V1.1//EN" "dtd/kdedbx45.dtd" [
  <!ENTITY % addindex "IGNORE">
  <!ENTITY % {lang} "INCLUDE">
]>
<book lang="&language;"><chapter><title>{title}</title><para>{para}</para></chapter></book>"""


@pytest.fixture
def tree(tmp_path):
    custom = tmp_path / "kdoctools" / CUSTOMIZATION
    (custom / "en").mkdir(parents=True)
    (custom / "de").mkdir()
    (custom / "entities").mkdir()
    (custom / "en/user.entities").write_text('<!ENTITY LMB "<mousebutton>left</mousebutton> mouse button">')
    (custom / "de/user.entities").write_text('<!ENTITY LMB "<mousebutton>linke</mousebutton> Maustaste">')
    (custom / "entities/general.entities").write_text(
        "<!ENTITY dolphin '<application>Dolphin</application>'>\n<!ENTITY LMB \"unused\">")
    app = tmp_path / "app"
    for lang, name, title, para in (("en", "English", "Using &dolphin;", "Click the &LMB;&nbsp;once."),
                                    ("de", "German", "&dolphin; benutzen", "Klicken Sie einmal mit der &LMB;.")):
        f = app / HTML_DIR / lang / "dolphin" / "index.docbook"
        f.parent.mkdir(parents=True)
        f.write_text(DOC.format(lang=name, title=title, para=para))
    return [app, tmp_path / "kdoctools"]


def test_entities_are_the_languages_own_first(tree):
    de = load_entities(tree[1] / CUSTOMIZATION, "de")
    assert expand("&LMB; &dolphin; &amp; &unknown;", de) == (
        "<mousebutton>linke</mousebutton> Maustaste <application>Dolphin</application> &amp; &unknown;")


def test_read_handbooks_expands_kde_entities_per_language(tree):
    assert read_handbooks(tree) == [
        ("Dolphin benutzen", "Using Dolphin"),
        ("Klicken Sie einmal mit der linke Maustaste.", "Click the left mouse button\u00a0once.")]


def test_read_handbooks_needs_kdoctools(tree, tmp_path):
    with pytest.raises(FileNotFoundError, match="kdoctools5"):
        read_handbooks([tree[0], tmp_path / "none"])


def test_align_sections_keeps_sections_of_same_structure_only():
    en = [("c/title", "One"), ("c/para", "First."), ("t/entry", "Row a"), ("t/entry", "Row b"),
          ("c/title", "Two"), ("c/para", "Second.")]
    de = [("c/title", "Eins"), ("c/para", "Erstens."), ("t/entry", "Zeile a"),
          ("c/title", "Zwei"), ("c/para", "Zweitens.")]
    assert align_sections(de, en) == [("Zwei", "Two"), ("Zweitens.", "Second.")]
    assert align_sections(de[:3], en) == []  # a title more: sections cannot be matched
