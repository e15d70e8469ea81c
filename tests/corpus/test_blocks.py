from psfuture.corpus.blocks import align_blocks


def test_identical_structures_zip():
    de = [("h1", "Titel"), ("p", "Absatz eins."), ("p", "Absatz zwei.")]
    en = [("h1", "Title"), ("p", "Paragraph one."), ("p", "Paragraph two.")]
    assert align_blocks(de, en) == [("Titel", "Title"), ("Absatz eins.", "Paragraph one."),
                                    ("Absatz zwei.", "Paragraph two.")]


def test_blocks_only_one_side_has_are_skipped():
    de = [("h1", "Titel"), ("p", "Absatz."), ("li", "Punkt.")]
    en = [("h1", "Title"), ("note", "An added note."), ("p", "Paragraph."), ("li", "Item."),
          ("li", "Extra item.")]
    assert align_blocks(de, en) == [("Titel", "Title"), ("Absatz.", "Paragraph."), ("Punkt.", "Item.")]
