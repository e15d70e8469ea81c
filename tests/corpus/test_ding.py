import pytest

from psfuture.corpus.ding import DICT_PATH, parse_headword, parse_line, read_ding, read_headwords, strip_annotations


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


@pytest.mark.parametrize("line, pair", [
    ("Bahnhof {m} /Bhf./ | Bahnhöfe {pl} :: railway station [Br.]; train station [Am.] | railway stations",
     ("Bahnhof", "railway station")),
    ("angreifen {vi} [sport] | angreifend :: to attack | attacking", ("angreifen", "attack")),
    ("Bundesregierung {f} [pol.] :: Federal Government", ("Bundesregierung", "Federal Government")),
    ("jdm. etw. geben :: to give sb. sth.", None),                     # placeholders
    ("Das ist gut. :: That is good.", None),                           # a sentence: the other source
    ("Aufnahme {f} eines sehr langen Namens :: recording of a very long name", None),  # over three words
    ("Radar {m,n} :: radar", ("Radar", "radar")),
    ("Okay :: Okay", None),                                            # untranslated
    ("# Version :: devel", None),
])
def test_headword_pairs(line, pair):
    assert parse_headword(line) == pair


def test_read_headwords_dedups_and_samples_with_a_fixed_seed(tmp_path):
    path = tmp_path / DICT_PATH
    path.parent.mkdir(parents=True)
    lines = [f"Wort{i} {{n}} :: word{i}" for i in range(50)] + ["Wort1 {n} | Wörter :: word1 | words"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert len(read_headwords(tmp_path)) == 50
    sample = read_headwords(tmp_path, limit=10)
    assert len(sample) == 10 and sample == read_headwords(tmp_path, limit=10) and set(sample) < set(read_headwords(tmp_path))
