from psfuture.corpus.asr import asr_like, asr_rows


def test_asr_like_lowercases_and_drops_punctuation_but_keeps_words_whole():
    assert asr_like("Klicken Sie auf „OK“, dann auf E-Mail.") == "klicken sie auf ok dann auf email"
    assert asr_like(" ... ") == ""


def test_asr_rows_is_a_fixed_share():
    rows = asr_rows(1000, 0.25)
    assert len(rows) == 250 and rows == asr_rows(1000, 0.25) and rows <= set(range(1000))
    assert asr_rows(10, 0.0) == set() and asr_rows(10, 1.0) == set(range(10))
