"""The model adapter on the tiny real model: loading errors, caches, batching, incremental decoding."""
import shutil

import pytest
import torch

from psfuture.errors import ConfigError, ModelLoadError
from psfuture.model import Query, load_model, resolve_model_dir

SENTENCE = "Und Gott sprach: Es werde Licht! und es ward Licht."


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    return load_model(tiny_model_dir)


@pytest.fixture(scope="module")
def stateless(tiny_model_dir):
    return load_model(tiny_model_dir, incremental=False)


def greedy_ids(m, src, steps, layer=None):
    prefix, out = (), []
    for _ in range(steps):
        (a,) = m.next_token([Query(src, prefix, layer)])
        out.append(a)
        prefix += (int(a.logprobs.argmax()),)
    return prefix, out


def test_missing_directory_names_path_and_fix(tmp_path):
    with pytest.raises(ModelLoadError, match=r"does not exist.*PSFUTURE_MODEL"):
        load_model(tmp_path / "nope")


def test_missing_file_is_named(tiny_model_dir, tmp_path):
    d = tmp_path / "m"
    shutil.copytree(tiny_model_dir, d)
    (d / "spm.model").unlink()
    with pytest.raises(ModelLoadError, match="lacks spm.model"):
        load_model(d)


def test_corrupt_checkpoint_is_reported(tiny_model_dir, tmp_path):
    d = tmp_path / "m"
    shutil.copytree(tiny_model_dir, d)
    (d / "checkpoint.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ModelLoadError, match="checkpoint.pt.*corrupt"):
        load_model(d)


def test_env_variable_selects_model(monkeypatch, tiny_model_dir):
    monkeypatch.setenv("PSFUTURE_MODEL", str(tiny_model_dir))
    assert resolve_model_dir() == tiny_model_dir.resolve()
    monkeypatch.delenv("PSFUTURE_MODEL")
    assert resolve_model_dir().parts[-2:] == ("checkpoints", "offline")


def test_tokenization_roundtrip(model):
    words = SENTENCE.split()
    ids = model.encode(SENTENCE)
    assert ids == tuple(i for w in words for i in model.encode_word(w))
    assert model.vocab.unk not in ids
    assert model.info["sha256"] and model.info["name"] == "tiny-test-model"
    # Target side: ids of whole words decode back to the text (the dictionary is joined).
    assert model.decode(model.encode("In the beginning")) == "In the beginning"


def test_batched_two_pass_equals_separate_calls(model, stateless):
    src = model.encode(SENTENCE)[:6]
    v = model.vocab
    prefix_q = Query(src + (v.eos,), ())
    future_q = Query(src + (v.unk, v.unk, v.eos), ())
    prefix, _ = greedy_ids(model, src + (v.eos,), 3)
    for tgt in ((), prefix):
        pair = model.next_token([Query(prefix_q.src, tgt), Query(future_q.src, tgt)])
        for q, a in zip((prefix_q, future_q), pair):
            (alone,) = stateless.next_token([Query(q.src, tgt)])
            torch.testing.assert_close(a.logprobs, alone.logprobs, atol=1e-5, rtol=0)
            torch.testing.assert_close(a.attn, alone.attn, atol=1e-6, rtol=0)
            assert a.attn.shape == (len(q.src),)
    # The two rows of different length went through the model as one batch.
    before = dict(model.calls)
    model.next_token([Query(src[:3], ()), Query(src[:5], ())])
    assert model.calls["decoder"] - before["decoder"] == 1
    assert model.calls["encoder"] - before["encoder"] == 1


def test_incremental_steps_match_full_prefix_runs(model, stateless):
    src = model.encode(SENTENCE) + (model.vocab.eos,)
    before = dict(model.calls)
    prefix, inc = greedy_ids(model, src, 8, layer=0)
    assert model.calls["encoder"] - before["encoder"] <= 1  # cached per exact source
    full = [stateless.next_token([Query(src, prefix[:i], 0)])[0] for i in range(8)]
    for a, b in zip(inc, full):
        torch.testing.assert_close(a.logprobs, b.logprobs, atol=1e-5, rtol=0)
        torch.testing.assert_close(a.attn, b.attn, atol=1e-6, rtol=0)
        assert abs(float(a.attn.sum()) - 1.0) < 1e-4
    # The state for the last prefix is cached: one more step is one more decoder call of one row.
    before = dict(model.calls)
    model.next_token([Query(src, prefix, 0)])
    assert model.calls["decoder"] - before["decoder"] == 1 and model.calls["encoder"] == before["encoder"]


def test_bad_attention_layer(model):
    with pytest.raises(ConfigError, match="attention layer 99 does not exist: the decoder has 1 layers"):
        model.next_token([Query(model.encode("Gott"), (), 99)])


def test_queries_sharing_a_cached_parent_across_layers(model, stateless):
    src = model.encode(SENTENCE)
    (a,) = model.next_token([Query(src, ())])
    nxt = (int(a.logprobs.argmax()),)
    both = model.next_token([Query(src, nxt, 0), Query(src, nxt, None), Query(src, nxt, 0)])
    (alone,) = stateless.next_token([Query(src, nxt)])
    for answer in both:
        torch.testing.assert_close(answer.logprobs, alone.logprobs, atol=1e-5, rtol=0)


def test_offline_translate(model):
    out = model.translate([SENTENCE, "Im Anfang"], beam=2)
    assert len(out) == 2 and all(isinstance(s, str) and s for s in out)


def test_small_cache_keeps_states_a_later_group_needs(tiny_model_dir, stateless):
    m = load_model(tiny_model_dir, cache_size=1)
    a, b = m.encode("Gott sprach"), m.encode("Und es ward")
    (first,) = m.next_token([Query(b, ())])
    step = (int(first.logprobs.argmax()),)
    # The priming group for `a` runs first and fills the cache past its size before `b` steps.
    got = m.next_token([Query(a, ()), Query(b, step)])
    want = [stateless.next_token([q])[0] for q in (Query(a, ()), Query(b, step))]
    for g, w in zip(got, want):
        torch.testing.assert_close(g.logprobs, w.logprobs, atol=1e-5, rtol=0)
    assert m.calls["decoder"] == 3 and len(m._dec) == 1


def test_any_mix_is_two_decoder_calls_equal_to_one_at_a_time(model, stateless):
    """Sources, prefix lengths, attention layers and cached/uncached parents all mixed in one call."""
    v = model.vocab
    words = SENTENCE.split()
    srcs = [model.encode(" ".join(words[:n])) + tail for n, tail in
            ((2, (v.eos,)), (4, ()), (5, (v.unk, v.eos)), (7, (v.pad, v.eos)), (9, (v.eos,)))]
    prefixes = {s: greedy_ids(stateless, s, 6)[0] for s in srcs}
    model.clear_cache()
    # Cache parents of different lengths: these rows will step; the others need whole prefixes.
    warm = [Query(s, prefixes[s][:k]) for s, k in zip(srcs, (0, 2, 4, 1, 3))]
    model.next_token(warm)
    mix = [Query(s, prefixes[s][:k + 1], layer)
           for (s, k), layer in zip(zip(srcs, (0, 2, 4, 1, 3)), (None, 0, None, 0, None))]
    mix += [Query(srcs[0], prefixes[srcs[0]][:5]), Query(srcs[3], (), 0), Query(srcs[4], prefixes[srcs[4]][:6])]
    before = dict(model.calls)
    got = model.next_token(mix)
    assert model.calls["decoder"] - before["decoder"] == 2
    assert model.calls["encoder"] - before.get("encoder", 0) == 0
    for q, a in zip(mix, got):
        (alone,) = stateless.next_token([q])
        assert int(a.logprobs.argmax()) == int(alone.logprobs.argmax())
        torch.testing.assert_close(a.logprobs, alone.logprobs, atol=1e-4, rtol=0)
        torch.testing.assert_close(a.attn, alone.attn, atol=1e-5, rtol=0)
        assert a.attn.shape == (len(q.src),)
    # The stepped states were stored without the batch's padding: stepping again stays exact.
    nxt = [Query(q.src, q.prefix + (int(a.logprobs.argmax()),), q.attn_layer) for q, a in zip(mix, got)]
    for q, a in zip(nxt, model.next_token(nxt)):
        torch.testing.assert_close(a.logprobs, stateless.next_token([q])[0].logprobs, atol=1e-4, rtol=0)
