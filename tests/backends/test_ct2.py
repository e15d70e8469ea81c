"""The CTranslate2 adapter answers as the fairseq one does (tiny model converted in this session)."""
import pytest
import torch

pytest.importorskip("ctranslate2", reason="the ct2 extra is not installed")

from psfuture.backends.ct2 import CT2Model, convert  # noqa: E402
from psfuture.errors import ConfigError  # noqa: E402
from psfuture.model import Query, load_model  # noqa: E402
from psfuture.policies import PsFuture  # noqa: E402
from psfuture.experiments.sweep import stream  # noqa: E402

GERMAN = ["Im Anfang schuf Gott die Himmel und die Erde.", "Und Gott sah das Licht, dass es gut war."]
CAP = {"max_len_a": 1.0, "max_len_b": 5}


@pytest.fixture(scope="module")
def models(tiny_model_dir, tmp_path_factory):
    base = load_model(tiny_model_dir)
    out = tmp_path_factory.mktemp("ct2") / "tiny"
    return base, CT2Model(base, convert(tiny_model_dir, out))


def test_next_token_matches_fairseq(models):
    base, ct2 = models
    src = base.encode(GERMAN[0])
    eos = (base.vocab.eos,)
    # With and without EOS (PsFuture's prefix queries have none), empty and forced prefixes, mixed lengths.
    queries = [Query(src + eos), Query(src[:3]), Query(src + eos, src[:2]), Query(src[:4], src[:1]),
               Query(src + eos, src[:2], attn_layer=-1)]
    for want, got in zip(base.next_token(queries), ct2.next_token(queries)):
        assert torch.allclose(got.logprobs, want.logprobs, atol=1e-4)
        assert got.attn.shape == want.attn.shape and torch.allclose(got.attn, want.attn, atol=1e-4)


def test_sessions_and_offline_translation_match(models):
    base, ct2 = models
    for sentence in GERMAN:
        want, got = (stream(m, PsFuture(threshold=0.3), sentence, **CAP) for m in (base, ct2))
        assert (got.text, list(got.delays)) == (want.text, list(want.delays))
    assert ct2.translate(GERMAN, beam=1, **CAP) == base.translate(GERMAN, beam=1, **CAP)


def test_other_attention_layers_are_refused(models):
    base, ct2 = models
    n = ct2.num_decoder_layers
    with pytest.raises(ConfigError, match="does not exist"):
        ct2.next_token([Query(base.encode(GERMAN[0]), (), attn_layer=n)])
    if n > 1:
        with pytest.raises(ConfigError, match="last decoder layer"):
            ct2.next_token([Query(base.encode(GERMAN[0]), (), attn_layer=0)])


def test_conversion_is_reused(models, tiny_model_dir, tmp_path):
    out = convert(tiny_model_dir, tmp_path / "c")
    stamp = (out / "model.bin").stat().st_mtime_ns
    assert convert(tiny_model_dir, tmp_path / "c") == out and (out / "model.bin").stat().st_mtime_ns == stamp
