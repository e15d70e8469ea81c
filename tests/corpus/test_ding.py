import pytest

from psfuture.corpus.ding import DICT_PATH, parse_line, read_ding, strip_annotations


def test_sentence_variants_pair_up_by_position():
    line = ("Aufgabe {f} | Aufgaben {pl} | Das ist nicht meine Aufgabe. | Ich erledige das. :: "
            "job | jobs | It isn’t my job. | I'll take care of it.\n")
    assert parse_line(line) == [("Das ist nicht meine Aufgabe.", "It isn’t my job."),
                                ("Ich erledige das.", "I'll take care of it.")]


def test_first_synonym_and_annotations_removed():
    line = ("Wie halten Sie sich fit?; Wie bleiben Sie fit? [ugs.] :: "
            "How do you keep yourself in shape?; What form of exercise do you do? [coll.]")
    assert parse_line(line) == [("Wie halten Sie sich fit?", "How do you keep yourself in shape?")]


@pytest.mark.parametrize("line", [
    "# Version :: devel",
    "Aalfang {m} :: eel fishing",                                     # not a sentence
    "Das ist gut. | Das ist schlecht. :: That is good.",              # variants do not line up
    "Ich möchte dich fragen. :: I want to ask you / to ask you.",     # whole alternative phrasings
    "Geh! :: Go!",                                                    # under three words
])
def test_lines_without_usable_sentences(line):
    assert parse_line(line) == []


def test_strip_annotations():
    assert strip_annotations("Er hat's (wirklich) getan {v} [ugs.] <Tat> /Abk./ !") == "Er hat's getan!"
    assert strip_annotations("The film [Br.]/movie [Am.] ended.") == "The film ended."
    assert strip_annotations("in a jab at sb./sth.") == "in a jab at sb./sth."


def test_read_ding(tmp_path):
    path = tmp_path / DICT_PATH
    path.parent.mkdir(parents=True)
    path.write_text("# comment\nDas Buch verkauft sich gut. :: The book sells well.\n", encoding="utf-8")
    assert read_ding(tmp_path) == [("Das Buch verkauft sich gut.", "The book sells well.")]
    with pytest.raises(FileNotFoundError, match="trans-de-en"):
        read_ding(tmp_path / "missing")
