"""Where a stream is cut: the punctuation rule on German, and the settings' checks."""
import pytest

from psfuture.errors import ConfigError
from psfuture.segmenter import Segmenter, ends_sentence


@pytest.mark.parametrize("word, ends", [
    ("Erde.", True), ("gut!", True), ("wirklich?", True), ('"Ja."', True), ("Licht!»", True), ("(siehe oben).", True),
    ("z.B.", False), ("Nr.", False), ("usw.", False), ("bzw.", False), ("3.", False), ("12.", False),
    ("Erde", False), ("Gott:", False), ("Datei,", False), ("v1.2", False), ("...", True), ("2023.", True),
    ("usw.)", False),
])
def test_punctuation_rule_on_german(word, ends):
    assert ends_sentence(word) is ends


@pytest.mark.parametrize("bad, match", [({"max_words": 0}, "max_words"), ({"model_eos": 0}, "model_eos"),
                                        ({"punctuation": "yes"}, "on or off"), ({"min_words": 0}, "min_words")])
def test_bad_settings_are_named(bad, match):
    with pytest.raises(ConfigError, match=match):
        Segmenter(**bad)


def test_signature_names_every_rule_in_use():
    assert Segmenter().signature() == "segmenter(punctuation,max_words=60)"
    assert Segmenter(punctuation=False, model=True, model_eos=0.3).signature() == \
        "segmenter(model,max_words=60,model_eos=0.3,min_words=3)"
