"""The transformers adapter on a tiny Marian model trained here: answers equal a plain forward pass,
every front end runs on it, and bad directories get clear errors."""
import asyncio
import json
import math
import shutil
import subprocess
import sys

import pytest
import torch
from hf_tiny import FIXTURES, build_tiny_m2m100, build_tiny_marian

from psfuture import agents
from psfuture.experiments import grids
from psfuture.calibration import load_calibration
from psfuture.errors import ConfigError, ModelLoadError
from psfuture.backends.hf import HFModel
from psfuture.model import Query, load_model
from psfuture.policies import POLICIES, make_policy
from psfuture.serve.server import StreamServer
from psfuture.session import Session

from serve.test_server import offline, translate
from experiments.test_sweep import edge_main

SENTENCE = "Und Gott sprach: Es werde Licht! und es ward Licht."
CAP = {"max_len_a": 1.0, "max_len_b": 5}


@pytest.fixture(scope="session")
def hf_dir(tmp_path_factory):
    return build_tiny_marian(tmp_path_factory.mktemp("tiny_hf"))


@pytest.fixture(scope="module")
def model(hf_dir):
    return load_model(hf_dir)


def full_forward(m, q):
    """The reference: one plain transformers forward pass over the whole source and prefix."""
    out = m.net(input_ids=torch.tensor([m.src_prefix + q.src]),
                decoder_input_ids=torch.tensor([(m.start,) + m.tgt_prefix + q.prefix]), output_attentions=True)
    logits = out.logits[0, -1].float()
    logits[m.vocab.pad] = -1e9
    attn = out.cross_attentions[-1 if q.attn_layer is None else q.attn_layer][0, :, -1].mean(0)[len(m.src_prefix):]
    return torch.log_softmax(logits, -1), attn


def assert_equal_to_forward(m, queries, answers):
    with torch.inference_mode():
        for q, a in zip(queries, answers):
            logp, attn = full_forward(m, q)
            assert int(a.logprobs.argmax()) == int(logp.argmax()), q
            assert torch.allclose(a.logprobs, logp, atol=1e-4) and torch.allclose(a.attn, attn, atol=1e-4), q
            assert a.attn.shape == (len(q.src),)


def test_load_dispatches_on_config_json(model, hf_dir):
    assert isinstance(model, HFModel) and model.info["name"] == "tiny-hf-marian"
    assert len(model.info["sha256"]) == 64 and model.info["path"] == str(hf_dir)
    v = model.vocab
    assert (v.eos, v.pad, v.unk) == (0, 1000, 1) and v.size == 1001 and model.start == v.pad
    assert v.word_start and all(model.pieces([i])[0].startswith("\u2581") for i in v.word_start)
    ids = model.encode(SENTENCE)
    assert model.decode(ids) == SENTENCE and ids == model.encode_word("Und") + model.encode(SENTENCE.split(" ", 1)[1])


def check_mixed_batches(model, sentence=SENTENCE):
    """Different sources, prefix lengths and attention layers in one call, stepping and whole prefixes mixed:
    every answer equals a plain forward pass, with at most one encoder and two decoder calls per call."""
    model.clear_cache()
    srcs = [model.encode(s) + (model.vocab.eos,) for s in (sentence, "Im Anfang", "Und die Erde war wüst und leer")]
    srcs.append(srcs[2][:-1])  # a source prefix without EOS, as PsFuture reads it
    prefixes = {s: () for s in srcs}
    for step in range(7):
        queries = [Query(s, prefixes[s], (None, 0, 1, -2)[j]) for j, s in enumerate(srcs) if step >= j]
        queries.append(Query(srcs[0], prefixes[srcs[0]][:1]))  # a whole prefix of another length
        before = dict(model.calls)
        answers = model.next_token(queries + queries[:1])  # a duplicate costs nothing
        assert model.calls["encoder"] - before.get("encoder", 0) <= 1
        assert model.calls["decoder"] - before.get("decoder", 0) <= 2
        assert_equal_to_forward(model, queries, answers)
        for q, a in zip(queries, answers):
            if q.prefix == prefixes[q.src]:
                prefixes[q.src] = q.prefix + (int(a.logprobs.argmax()),)
    assert min(map(len, prefixes.values())) >= 4 and len(set(map(len, prefixes.values()))) > 1


def test_mixed_batch_equals_full_forward_in_at_most_two_decoder_calls(model):
    check_mixed_batches(model)


def test_multilingual_m2m100_with_language_tags(hf_dir, tmp_path):
    m = load_model(build_tiny_m2m100(tmp_path / "m2m", hf_dir / "source.spm"), src_lang="de", tgt_lang="en")
    assert m.pieces(m.src_prefix) == ["__de__"] and m.pieces(m.tgt_prefix) == ["__en__"] and m.start == m.vocab.eos
    check_mixed_batches(m)
    assert "__en__" not in m.translate([SENTENCE], beam=2)[0]
    with pytest.raises(ConfigError, match="tgt_lang='xx' is not a language code"):
        load_model(tmp_path / "m2m", tgt_lang="xx")


def test_cached_steps_equal_stateless_model(model, hf_dir):
    stateless = load_model(hf_dir, incremental=False)
    src = model.encode(SENTENCE) + (model.vocab.eos,)
    prefix = ()
    model.clear_cache()
    for _ in range(6):
        before = model.calls["decoder_rows"]
        (a,), (b,) = model.next_token([Query(src, prefix)]), stateless.next_token([Query(src, prefix)])
        assert model.calls["decoder_rows"] == before + 1
        assert torch.allclose(a.logprobs, b.logprobs, atol=1e-4) and torch.allclose(a.attn, b.attn, atol=1e-4)
        prefix += (int(a.logprobs.argmax()),)
    with pytest.raises(ConfigError, match="attention layer 5 does not exist"):
        model.next_token([Query(src, (), 5)])


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_every_policy_runs_through_session(model, name):
    session = Session(model, make_policy(name), **CAP)
    for word in SENTENCE.split():
        session.push([word])
    session.finish()
    assert session.target_words and len(session.delays) == len(session.target_words)
    assert list(session.delays) == sorted(session.delays) and session.delays[-1] <= len(SENTENCE.split())


def test_psfuture_writes_before_the_source_ends(model):
    session = Session(model, make_policy("psfuture", threshold=1.0), **CAP)
    for word in SENTENCE.split():
        session.push([word])
    session.finish()
    assert min(session.delays) < len(SENTENCE.split())


def test_translate_offline(model):
    (text,) = model.translate([SENTENCE], beam=2)
    assert isinstance(text, str) and text


@pytest.fixture(scope="module")
def testset(tmp_path_factory):
    d = tmp_path_factory.mktemp("hf_corpus")
    for lang in ("de", "en"):
        lines = (FIXTURES / f"tiny.{lang}").read_text(encoding="utf-8").splitlines()
        (d / f"test.{lang}").write_text("\n".join(lines[201:204]) + "\n", encoding="utf-8")
    return d


@pytest.mark.parametrize("agent,settings", [(agents.PsFutureAgent, {"threshold": 0.3}), (agents.OfflineAgent, {}),
                                            (agents.WaitKAgent, {"k": 2}), (agents.LocalAgreementAgent, {}),
                                            (agents.AlignAttAgent, {"frames": 2, "layer": 0})])
def test_simuleval_agents(agent, settings, testset, hf_dir):
    scores = agents.evaluate(agent, {"source": testset / "test.de", "target": testset / "test.en",
                                     "checkpoint": hf_dir, "no_progress_bar": True, **CAP, **settings})
    assert all(math.isfinite(scores[m]) for m in ("BLEU", "AL", "LAAL", "AP", "DAL")) and scores["AP"] > 0


def test_websocket_server(model):
    async def main():
        async with StreamServer(port=0, model=model) as server:
            return await translate(server.port, SENTENCE, policy="waitk", k=2)

    ready, done, words = asyncio.run(asyncio.wait_for(main(), 120))
    assert ready["model"]["name"] == "tiny-hf-marian"
    assert (words, done["delays"]) == tuple(offline(model, SENTENCE, "waitk", k=2))


def test_cli_translate(hf_dir):
    r = subprocess.run([sys.executable, "-m", "psfuture.cli", "translate", "--model", str(hf_dir), "--policy",
                        "waitk", "--set", "k=2"], input=SENTENCE + "\n", capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    words, _ = offline(load_model(hf_dir), SENTENCE, "waitk", k=2)  # the engine's: the last word comes with the end
    assert r.stdout.split() == words  # a line per segment: "Licht!" ends the first


def test_sweep_table_and_calibration(hf_dir, testset, tmp_path, capsys):
    d = tmp_path / "model"
    shutil.copytree(hf_dir, d)
    run = ["--model", str(d), "--limit", "2", "--src", str(testset / "test.de"), "--ref", str(testset / "test.en"),
           "--out", str(tmp_path / "out"), "--no-progress", "--max-len-a", "1", "--max-len-b", "5"]
    edge_main(run + ["--policies", "offline,waitk,alignatt,psfuture", "--grid", "waitk.k=2", "--grid",
                     "psfuture.threshold=0.1,1", "--ablation", "none", "--cost-limit", "1"])
    rows = json.loads((tmp_path / "out" / "results.json").read_text())
    policies = [r["policy"] for r in rows]
    assert set(policies) == {"offline", "waitk", "alignatt", "psfuture"} and policies.count("psfuture") == 2
    assert all(r["model_sha256"] == load_model(d).info["sha256"] for r in rows)
    assert "| psfuture |" in (tmp_path / "out" / "sweep.md").read_text()
    edge_main(run + ["--dev-src", str(testset / "test.de"), "--dev-ref", str(testset / "test.en"), "--target-al", "3",
                     "--out", str(d)])
    cal = load_calibration(load_model(d))
    assert cal is not None and len(cal.points) == len(grids.THRESHOLDS["kl"])


def test_directory_of_neither_kind(tmp_path):
    (tmp_path / "weights.bin").write_bytes(b"x")
    with pytest.raises(ModelLoadError, match="config.json.*transformers|transformers.*config.json"):
        load_model(tmp_path)


def test_decoder_only_config_is_refused(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2", "n_layer": 1}))
    with pytest.raises(ModelLoadError, match="'gpt2' model, not an encoder-decoder.*marian"):
        load_model(tmp_path)


def test_missing_tokenizer_is_named(hf_dir, tmp_path):
    d = tmp_path / "m"
    shutil.copytree(hf_dir, d)
    for name in ("source.spm", "target.spm", "vocab.json", "tokenizer_config.json"):
        (d / name).unlink(missing_ok=True)
    with pytest.raises(ModelLoadError, match="tokenizer.*save_pretrained"):
        load_model(d)


def test_unknown_target_language_is_a_config_error(hf_dir):
    with pytest.raises(ConfigError, match="tgt_lang='xx_Latn' is not a language code"):
        load_model(hf_dir, tgt_lang="xx_Latn")


def test_cli_reports_a_decoder_only_model_in_one_line(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2", "n_layer": 1}))
    r = subprocess.run([sys.executable, "-m", "psfuture.cli", "translate", "--model", str(tmp_path)], input="",
                       capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "not an encoder-decoder" in r.stderr and "Traceback" not in r.stderr
