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


P2F_DIR = DEFAULT_MODEL_DIR.parent / "p2f"


@pytest.fixture(scope="module")
def p2f():
    return load_model(P2F_DIR)


def test_p2f_model_is_the_twin_of_the_shipped_models_first_stage(p2f):
    """The shipped model is a fine-tune in two stages; the P2F model and the first stage are fine-tunes of the same
    base on the same data for the same number of updates, one with prefix pairs and one without: the fair test of
    P2F (docs/training.md). The lineage comes from model.json, which keeps each base's own making."""
    meta = json.loads((P2F_DIR / "model.json").read_text())
    offline = json.loads((DEFAULT_MODEL_DIR / "model.json").read_text())
    first_stage = offline["base_model"]
    assert p2f.info["sha256"] == meta["sha256"] != offline["sha256"] != first_stage["sha256"]
    assert meta["base_model"]["sha256"] == first_stage["base_model"]["sha256"]
    assert meta["num_updates"] == first_stage["num_updates"]
    assert meta["p2f"]["prefix_eos"] == "drop" and 0 < meta["p2f"]["prefix_ratio"] < 1
    assert offline["p2f"]["prefix_ratio"] == 0
    for name in ("dict.de.txt", "dict.en.txt", "spm.model"):  # same vocabulary: the same front ends serve both
        assert (P2F_DIR / name).read_bytes() == (DEFAULT_MODEL_DIR / name).read_bytes(), name
    from psfuture.calibration import load_calibration

    assert load_calibration(p2f)("psfuture", 3.0) > 0  # its own calibration: --target-al works on it too


def test_p2f_model_translates_and_streams(p2f):
    sentence = "Klicken Sie auf die Schaltfläche, um das Fenster zu schließen."
    english = p2f.translate([sentence], beam=4)[0].lower()
    assert all(w in english for w in ("click", "button", "close", "window")), english
    s = Session(p2f, make_policy("psfuture"))
    for word in sentence.split():
        s.push(word)
    s.finish()
    assert {"click", "window"} <= set(s.text.lower().replace(".", "").split())
    assert min(s.delays) < len(sentence.split())
