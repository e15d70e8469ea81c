"""The shipped model: loads by default, translates plausibly, streams under PsFuture."""
import json

import pytest

from psfuture.model import DEFAULT_MODEL_DIR, load_model
from psfuture.policies import make_policy
from psfuture.session import Session


@pytest.fixture(scope="module")
def shipped():
    return load_model()


def test_default_is_the_shipped_model(shipped):
    meta = json.loads((DEFAULT_MODEL_DIR / "model.json").read_text())
    assert shipped.info["sha256"] == meta["sha256"]
    assert shipped.info["name"] == "psfuture-offline-deen"


@pytest.mark.parametrize("german, words", [
    ("Klicken Sie auf die Schaltfläche, um das Fenster zu schließen.", {"click", "button", "close", "window"}),
    ("Öffnen Sie die Einstellungen.", {"open", "settings"}),
])
def test_offline_translation_has_the_content_words(shipped, german, words):
    english = shipped.translate([german], beam=4)[0].lower()
    assert all(w in english for w in words), english


def test_psfuture_stream_translates_while_reading(shipped):
    s = Session(shipped, make_policy("psfuture"))
    sentence = "Klicken Sie auf die Schaltfläche, um das Fenster zu schließen."
    for word in sentence.split():
        s.push(word)
    s.finish()
    assert {"click", "window"} <= set(s.text.lower().replace(".", "").split())
    assert min(s.delays) < len(sentence.split())  # something was written before the source ended
