"""The prefix_to_full fairseq task: registration, prefix sampling, fairseq-train (single and distributed)."""
import importlib.util
import json
import pickle
import socket
import subprocess
import sys
from argparse import Namespace
from pathlib import Path

import numpy as np
import pytest
import torch

import psfuture.tasks.prefix_to_full as p2f
from psfuture.tasks.prefix_to_full import (PrefixDataset, cut_points, proportional_len, sample_prefix_len,
                                           word_start_mask)

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "psfuture"
TINY_ARCH = ["--arch", "transformer", "--encoder-layers", "1", "--decoder-layers", "1", "--encoder-embed-dim", "32",
             "--decoder-embed-dim", "32", "--encoder-ffn-embed-dim", "64", "--decoder-ffn-embed-dim", "64",
             "--encoder-attention-heads", "2", "--decoder-attention-heads", "2", "--share-all-embeddings",
             "--optimizer", "adam", "--lr", "0.001", "--max-tokens", "2048", "--cpu", "--log-format", "simple",
             "--no-epoch-checkpoints", "--no-last-checkpoints"]
SYMBOLS = ["<s>", "<pad>", "</s>", "<unk>", "\u2581Im", "\u2581A", "n", "f", "\u2581Gott", ".", "\u2581"]
TOKENS = np.array([4, 5, 6, 7, 8, 9, 10, 6])  # "Im Anfang Gott. n": words start at 0, 1, 4 and 6


def make_cfg(data_bin, *options):
    """fairseq-train's whole config for these options, as fairseq_cli.train builds it."""
    from fairseq import options as fairseq_options
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf

    parser = fairseq_options.get_training_parser()
    args = fairseq_options.parse_args_and_arch(
        parser, [str(data_bin), "--user-dir", str(PACKAGE), "--task", "prefix_to_full", *TINY_ARCH, *options])
    return convert_namespace_to_omegaconf(args)


def make_task(data_bin, *options):
    from fairseq import tasks

    return tasks.setup_task(make_cfg(data_bin, *options).task)


@pytest.fixture(scope="module")
def task(tiny_data_bin):
    t = make_task(tiny_data_bin, "--prefix-ratio", "1.0", "--seed", "3", "--prefix-eos", "keep")
    t.load_dataset("train")
    t.load_dataset("valid")
    return t


def full_item(ds: PrefixDataset, index: int) -> dict:
    return ds.dataset[index]


def test_cut_points_are_word_ends_or_every_token():
    assert cut_points(TOKENS, word_start_mask(SYMBOLS)).tolist() == [1, 4, 6, 8]
    assert cut_points(TOKENS, None).tolist() == list(range(1, 9))


def test_prefix_lengths_for_a_fixed_seed():
    ws = word_start_mask(SYMBOLS)
    draw = [sample_prefix_len(np.random.default_rng((7, 1, i)), TOKENS, ws, 1.0) for i in range(8)]
    assert draw == [8, 1, 8, 1, 1, 1, 8, 1]
    draw = [sample_prefix_len(np.random.default_rng((7, 1, i)), TOKENS, ws, 0.5) for i in range(8)]
    assert draw == [None] * 6 + [8, 1]
    assert sample_prefix_len(np.random.default_rng(0), TOKENS, ws, 0.0) is None
    # Long prefixes only: cuts below the share are never drawn; a share of 0 draws as before.
    draw = [sample_prefix_len(np.random.default_rng((7, 1, i)), TOKENS, ws, 1.0, 0.5) for i in range(16)]
    assert set(draw) == {4, 6, 8}


def test_registered_once_even_if_the_module_runs_again():
    from fairseq.tasks import TASK_REGISTRY
    from fairseq.utils import import_user_module

    assert TASK_REGISTRY["prefix_to_full"] is p2f.PrefixToFullTask
    import_user_module(Namespace(user_dir=str(PACKAGE)))  # psfuture is imported already: must not raise
    # A second copy of the module (a --user-dir under another name) must not break the first registration.
    spec = importlib.util.spec_from_file_location("psfuture_copy_of_prefix_to_full", p2f.__file__)
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
    assert TASK_REGISTRY["prefix_to_full"] is p2f.PrefixToFullTask


def test_train_batch_has_word_prefix_sources_and_full_targets(task):
    ds = task.dataset("train")
    assert isinstance(ds, PrefixDataset)
    batch = next(task.get_batch_iterator(ds, max_sentences=16, seed=1, epoch=1).next_epoch_itr(shuffle=False))
    eos, symbols = task.src_dict.eos(), task.src_dict.symbols
    for row, index in enumerate(batch["id"].tolist()):
        full = full_item(ds, index)
        body = full["source"][:-1]
        src = batch["net_input"]["src_tokens"][row]
        src = src[src.ne(task.src_dict.pad())]  # sources are left-padded
        cut = len(src) - 1
        rng = np.random.default_rng((3, 1, index))
        assert cut == sample_prefix_len(rng, body.numpy(), task.word_start, 1.0)
        assert src[-1] == eos and torch.equal(src[:-1], body[:cut])
        assert cut == len(body) or symbols[body[cut]].startswith("\u2581"), "cut inside a word"
        tgt = batch["target"][row]
        assert torch.equal(tgt[tgt.ne(task.tgt_dict.pad())], full["target"])


def test_proportional_length_is_the_same_share_and_never_empty():
    assert proportional_len(4, 8, 10) == 5
    assert proportional_len(1, 8, 10) == 1 and proportional_len(1, 20, 3) == 1
    assert proportional_len(8, 8, 10) == 10


def test_prefix_future_appends_the_pseudo_future_psfuture_sends(tiny_data_bin):
    t = make_task(tiny_data_bin, "--prefix-ratio", "1.0", "--seed", "3", "--prefix-future", "2")
    t.load_dataset("train")
    ds, eos, unk = t.dataset("train"), t.src_dict.eos(), t.src_dict.unk()
    cut_seen = 0
    for i in range(len(ds)):
        full, item = full_item(ds, i), ds[i]
        assert torch.equal(item["target"], full["target"])  # the target stays full
        src = item["source"].tolist()
        if src == full["source"].tolist()[:-1]:
            continue  # every word in, no EOS (drop): nothing is unread, so no pseudo-future
        cut_seen += 1
        assert src[-3:] == [unk, unk, eos] and src[:-3] == full["source"].tolist()[:len(src) - 3]
    assert cut_seen > len(ds) // 2
    with pytest.raises(ValueError, match="--prefix-future"):
        make_task(tiny_data_bin, "--prefix-future", "-1")


def test_proportional_target_is_cut_to_the_share_without_eos(tiny_data_bin):
    t = make_task(tiny_data_bin, "--prefix-ratio", "1.0", "--seed", "3", "--prefix-target", "proportional")
    t.load_dataset("train")
    ds, eos = t.dataset("train"), t.tgt_dict.eos()
    assert ds.target == "proportional"
    for i in range(len(ds)):
        full, item = full_item(ds, i), ds[i]
        src_len, tgt_len = len(full["source"]) - 1, len(full["target"]) - 1
        cut = len(item["source"])  # drop: no EOS on the prefix
        assert torch.equal(item["target"], full["target"][:proportional_len(cut, src_len, tgt_len)])
        assert item["target"][-1] != eos, "a cut target must not teach the model to stop"
    batch = next(t.get_batch_iterator(ds, max_sentences=8, seed=1, epoch=1).next_epoch_itr(shuffle=False))
    row = batch["target"][0]
    row = row[row.ne(t.tgt_dict.pad())]
    prev = batch["net_input"]["prev_output_tokens"][0][:len(row)]
    assert prev[0] == eos and torch.equal(prev[1:], row[:-1])  # teacher forcing still shifts by one


def test_past_weight_keeps_full_targets_and_weighs_the_unsupported_rest(tiny_data_bin):
    t = make_task(tiny_data_bin, "--prefix-ratio", "1.0", "--seed", "3", "--prefix-past-weight", "0.25")
    t.load_dataset("train")
    ds, pad = t.dataset("train"), t.tgt_dict.pad()
    batch = next(t.get_batch_iterator(ds, max_sentences=16, seed=1, epoch=1).next_epoch_itr(shuffle=False))
    weight, rest_in_body = batch["target_weight"], 0
    assert weight.shape == batch["target"].shape
    for row, index in enumerate(batch["id"].tolist()):
        full, item = full_item(ds, index), ds[index]
        assert torch.equal(item["target"], full["target"])  # the target stays full
        n = len(full["target"])  # EOS included
        supported = proportional_len(len(item["source"]), len(full["source"]) - 1, n - 1)
        assert batch["target"][row, :n].ne(pad).all()
        assert weight[row, :supported].eq(1.0).all() and weight[row, supported:n].eq(0.25).all()
        rest_in_body += supported < n - 1
    assert rest_in_body > 0, "no row had a weighted word: the test saw only whole sentences"
    plain = make_task(tiny_data_bin, "--prefix-ratio", "1.0", "--seed", "3")
    plain.load_dataset("train")
    batch = next(plain.get_batch_iterator(plain.dataset("train"), max_sentences=16, seed=1,
                                          epoch=1).next_epoch_itr(shuffle=False))
    assert "target_weight" not in batch  # weight 1: fairseq's own batches, untouched


def test_past_weight_settings_that_would_be_silently_ignored_are_refused(tiny_data_bin):
    from fairseq import tasks

    with pytest.raises(ValueError, match="--prefix-past-weight must be in"):
        make_task(tiny_data_bin, "--prefix-past-weight", "1.5")
    with pytest.raises(ValueError, match="--prefix-target full"):
        make_task(tiny_data_bin, "--prefix-past-weight", "0.5", "--prefix-target", "proportional")
    with pytest.raises(ValueError, match="right-padded"):
        make_task(tiny_data_bin, "--prefix-past-weight", "0.5", "--left-pad-target")
    cfg = make_cfg(tiny_data_bin, "--prefix-past-weight", "0.5", "--criterion", "label_smoothed_cross_entropy")
    with pytest.raises(ValueError, match="--criterion p2f_label_smoothed_cross_entropy"):
        tasks.setup_task(cfg.task).build_criterion(cfg.criterion)
    cfg = make_cfg(tiny_data_bin, "--prefix-past-weight", "0.5", "--criterion", "p2f_label_smoothed_cross_entropy")
    tasks.setup_task(cfg.task).build_criterion(cfg.criterion)


def test_min_share_draws_long_prefixes_only(tiny_data_bin):
    t = make_task(tiny_data_bin, "--prefix-ratio", "1.0", "--seed", "3", "--prefix-min-share", "0.6")
    t.load_dataset("train")
    ds = t.dataset("train")
    shares = [len(ds[i]["source"]) / (len(full_item(ds, i)["source"]) - 1) for i in range(len(ds))]
    assert min(shares) >= 0.6 and sum(s < 1 for s in shares) > len(ds) // 4


def test_curriculum_draws_long_prefixes_first_and_follows_train_step(tiny_data_bin):
    from types import SimpleNamespace

    cfg = make_cfg(tiny_data_bin, "--prefix-ratio", "1.0", "--seed", "3", "--prefix-curriculum", "10",
                   "--prefix-min-share", "0.2")
    from fairseq import tasks
    t = tasks.setup_task(cfg.task)
    t.load_dataset("train")
    ds = t.dataset("train")

    def shortest() -> float:
        return min(len(ds[i]["source"]) / (len(full_item(ds, i)["source"]) - 1) for i in range(len(ds)))

    assert ds.update == 0 and ds.floor() == 1.0 and shortest() == 1.0  # update 0: whole sentences only
    ds.update = 5
    assert ds.floor() == pytest.approx(0.6) and 0.6 <= shortest() < 1.0
    ds.update = 50
    assert ds.floor() == 0.2 and 0.2 <= shortest() < 0.6  # exactly S once the curriculum is over
    itr = t.get_batch_iterator(ds, max_sentences=8, seed=1, epoch=1, num_workers=2, data_buffer_size=4)
    assert itr.num_workers == 0 and itr.buffer_size == 0  # items made at fetch time, after the last update
    model, criterion = t.build_model(cfg.model), t.build_criterion(cfg.criterion)
    sample = next(itr.next_epoch_itr(shuffle=False))
    t.train_step(sample, model, criterion, SimpleNamespace(backward=lambda loss: loss.backward()), update_num=7)
    assert ds.update == 8  # what the trainer fetches next trains update 8
    t.load_dataset("train")  # a new epoch's dataset (sharded data) goes on from there
    assert t.dataset("train").update == 8
    with pytest.raises(ValueError, match="--prefix-curriculum"):
        make_task(tiny_data_bin, "--prefix-curriculum", "-1")


def test_full_target_is_the_default(task):
    ds = task.dataset("train")
    assert ds.target == "full"
    assert all(torch.equal(ds[i]["target"], full_item(ds, i)["target"]) for i in range(len(ds)))


def test_ratio_mixes_full_pairs_and_valid_stays_full(tiny_data_bin, task):
    half = make_task(tiny_data_bin, "--prefix-ratio", "0.5", "--prefix-eos", "drop")
    half.load_dataset("train")
    ds = half.dataset("train")
    cut = [len(ds[i]["source"]) != len(full_item(ds, i)["source"]) for i in range(len(ds))]
    assert 0.4 < np.mean(cut) < 0.6
    assert all(ds[i]["source"][-1] != half.src_dict.eos() for i in range(len(ds)) if cut[i])  # drop: no EOS
    valid = task.dataset("valid")
    assert not isinstance(valid, PrefixDataset)


def test_deterministic_per_seed_epoch_and_index_and_picklable(tiny_data_bin, task):
    ds = task.dataset("train")
    again = make_task(tiny_data_bin, "--prefix-ratio", "1.0", "--seed", "3", "--prefix-eos", "keep")
    again.load_dataset("train")
    copy = pickle.loads(pickle.dumps(ds))
    for other in (again.dataset("train"), copy):
        assert all(torch.equal(ds[i]["source"], other[i]["source"]) for i in range(len(ds)))
    epoch1 = [ds[i]["source"] for i in range(len(ds))]
    copy.set_epoch(2)
    assert sum(not torch.equal(a, copy[i]["source"]) for i, a in enumerate(epoch1)) > len(ds) // 4


def test_loader_workers_see_each_new_epoch(task):
    """fairseq-train's loop: one batch iterator per epoch, a data-loader worker process, no shuffling."""
    ds, epoch, seen = task.dataset("train"), 1, {}
    for _ in range(2):
        itr = task.get_batch_iterator(ds, max_tokens=4096, seed=1, epoch=epoch, num_workers=1)
        for batch in itr.next_epoch_itr(shuffle=False):
            lengths = batch["net_input"]["src_lengths"].tolist()
            seen.update({(epoch, i): n for i, n in zip(batch["id"].tolist(), lengths)})
        epoch = itr.next_epoch_idx
    assert epoch == 3
    for e in (1, 2):
        ds.set_epoch(e)
        assert all(seen[e, i] == len(ds[i]["source"]) for i in range(len(ds)))


def test_bad_settings_say_what_to_change(tiny_data_bin, tmp_path):
    with pytest.raises(ValueError, match="--prefix-ratio"):
        make_task(tiny_data_bin, "--prefix-ratio", "1.5")
    with pytest.raises(ValueError, match="--prefix-min-share"):
        make_task(tiny_data_bin, "--prefix-min-share", "-0.1")
    for lang in ("de", "en"):  # a word-level dictionary: no SentencePiece word marks
        (tmp_path / f"dict.{lang}.txt").write_text("Gott 5\nErde 3\n")
    with pytest.raises(ValueError, match="--prefix-unit token"):
        make_task(tmp_path, "-s", "de", "-t", "en")
    make_task(tmp_path, "-s", "de", "-t", "en", "--prefix-unit", "token")


def run(cmd: list[str]) -> tuple[int, str]:
    r = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600)
    return r.returncode, r.stdout  # fairseq logs to stdout


def run_fairseq_train(*args: str) -> tuple[int, str]:
    return run([sys.executable, "-m", "fairseq_cli.train", *args])


def test_fairseq_train_runs_the_task_from_user_dir(tiny_data_bin, tmp_path):
    rc, log = run_fairseq_train(str(tiny_data_bin), "--user-dir", "psfuture", "--task", "prefix_to_full",
                                *TINY_ARCH, "--max-update", "3", "--num-workers", "1", "--save-dir", str(tmp_path))
    assert rc == 0, log[-3000:]
    assert "task: PrefixToFullTask" in log and "num_updates 3" in log


def test_fairseq_train_runs_a_curriculum_with_loader_workers_asked_for(tiny_data_bin, tmp_path):
    rc, log = run_fairseq_train(str(tiny_data_bin), "--user-dir", "psfuture", "--task", "prefix_to_full",
                                *TINY_ARCH, "--max-update", "3", "--num-workers", "2", "--prefix-curriculum", "2",
                                "--save-dir", str(tmp_path))
    assert rc == 0, log[-3000:]
    assert "num_updates 3" in log and "--prefix-curriculum: loading data in the training process" in log


def test_fairseq_distributed_training_two_cpu_ranks(tiny_data_bin, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    common = [str(tiny_data_bin), "--user-dir", "psfuture", "--task", "prefix_to_full", *TINY_ARCH,
              "--max-update", "2", "--num-workers", "1", "--save-dir", str(tmp_path), "--distributed-world-size", "2",
              "--distributed-backend", "gloo", "--ddp-backend", "legacy_ddp", "--distributed-no-spawn",
              "--distributed-init-method", f"tcp://127.0.0.1:{port}"]
    cmd = [sys.executable, "-m", "fairseq_cli.train", *common, "--distributed-rank", "1"]
    rank1 = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        rc, log = run_fairseq_train(*common, "--distributed-rank", "0")
        log1, _ = rank1.communicate(timeout=600)
    finally:
        rank1.kill()
    assert rc == 0, log[-3000:]
    assert rank1.returncode == 0, log1[-3000:]
    assert "training on 2 devices" in log and "num_updates 2" in log


def test_train_p2f_fine_tunes_and_exports_a_translation_model(tiny_model_dir, tiny_data_bin, tmp_path):
    out = tmp_path / "p2f"
    rc, out_log = run([sys.executable, str(ROOT / "scripts" / "train_p2f.py"), "--model", str(tiny_model_dir),
                       "--data", str(tiny_data_bin), "--work", str(tmp_path / "work"), "--out", str(out),
                       "--preset", "tiny", "--prefix-ratio", "0.7", "--prefix-target", "proportional"])
    assert rc == 0, out_log[-3000:]
    assert f"Loaded checkpoint {tiny_model_dir.resolve() / 'checkpoint.pt'}" in out_log
    log = (tmp_path / "work" / "train.log").read_text()
    assert "task: PrefixToFullTask" in log and "num_updates 3" in log
    for name in ("checkpoint.pt", "dict.de.txt", "dict.en.txt", "spm.model", "model.json"):
        assert (out / name).is_file(), name
    meta = json.loads((out / "model.json").read_text())
    assert meta["p2f"]["prefix_ratio"] == 0.7 and meta["p2f"]["prefix_target"] == "proportional"
    assert meta["num_updates"] == 3
    parent = json.loads((tiny_model_dir / "model.json").read_text())  # the base's own making, kept as lineage
    assert meta["base_model"]["name"] == parent["name"] and meta["base_model"]["sha256"] == parent["sha256"]
    base = torch.load(tiny_model_dir / "checkpoint.pt", map_location="cpu", weights_only=False)["model"]
    tuned = torch.load(out / "checkpoint.pt", map_location="cpu", weights_only=False)
    assert tuned["cfg"]["task"]["_name"] == "translation" and tuned["cfg"]["common"]["user_dir"] is None
    assert base.keys() == tuned["model"].keys()
    assert any(not torch.equal(base[k].float(), tuned["model"][k].float()) for k in base)
    # Plain fairseq loads it, with no --user-dir and psfuture.tasks never imported.
    load = ("import argparse, sys, torch; torch.serialization.add_safe_globals([argparse.Namespace]);"
            "from fairseq import checkpoint_utils;"
            f"m, cfg, t = checkpoint_utils.load_model_ensemble_and_task([{str(out / 'checkpoint.pt')!r}],"
            f" arg_overrides={{'data': {str(out)!r}, 'source_lang': 'de', 'target_lang': 'en'}});"
            "assert 'psfuture.tasks' not in sys.modules; print(type(t).__name__)")
    r = subprocess.run([sys.executable, "-c", load], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0 and r.stdout.split()[-1] == "TranslationTask", r.stderr[-3000:]
    # Relaunched at the length it already has, it exports without a 4th update; asked for less, it refuses.
    base_cmd = [sys.executable, str(ROOT / "scripts" / "train_p2f.py"), "--model", str(tiny_model_dir), "--data",
                str(tiny_data_bin), "--work", str(tmp_path / "work"), "--preset", "tiny", "--prefix-ratio", "0.7",
                "--prefix-target", "proportional"]
    rc, out_log = run([*base_cmd, "--out", str(tmp_path / "again")])
    assert rc == 0 and "training:" not in out_log, out_log[-3000:]
    again = json.loads((tmp_path / "again" / "model.json").read_text())
    assert again["num_updates"] == 3 and "train_command" not in again  # no launch ran to record
    assert (tmp_path / "work" / "train.log").read_text() == log
    rc, out_log = run([*base_cmd, "--out", str(tmp_path / "short"), "--", "--max-update=2"])
    assert rc != 0 and "past --max-update 2" in out_log and not (tmp_path / "short").exists()
    rc, out_log = run([*base_cmd, "--out", str(tmp_path / "longer"), "--", "--max-update", "4"])
    assert rc == 0, out_log[-3000:]
    longer = json.loads((tmp_path / "longer" / "model.json").read_text())
    assert longer["num_updates"] == 4 and longer["resumed_from_updates"] == 3


def test_train_p2f_past_weight_trains_with_the_weighted_loss_and_exports_plain(tiny_model_dir, tiny_data_bin,
                                                                               tmp_path):
    out = tmp_path / "p2f"
    rc, out_log = run([sys.executable, str(ROOT / "scripts" / "train_p2f.py"), "--model", str(tiny_model_dir),
                       "--data", str(tiny_data_bin), "--work", str(tmp_path / "work"), "--out", str(out),
                       "--preset", "tiny", "--prefix-ratio", "1.0", "--prefix-past-weight", "0.3"])
    assert rc == 0, out_log[-3000:]
    log = (tmp_path / "work" / "train.log").read_text()
    assert "P2FLabelSmoothedCrossEntropy" in log and "num_updates 3" in log
    assert json.loads((out / "model.json").read_text())["p2f"]["prefix_past_weight"] == 0.3
    cfg = torch.load(out / "checkpoint.pt", map_location="cpu", weights_only=False)["cfg"]
    assert cfg["criterion"]["_name"] == "label_smoothed_cross_entropy"  # loadable without --user-dir


def test_train_p2f_refuses_data_with_another_dictionary(tiny_model_dir, tmp_path):
    for name in ("dict.de.txt", "dict.en.txt", "spm.model"):
        (tmp_path / name).write_text("x 1\n")
    rc, log = run([sys.executable, str(ROOT / "scripts" / "train_p2f.py"), "--model", str(tiny_model_dir),
                   "--data", str(tmp_path), "--work", str(tmp_path / "work")])
    assert rc != 0 and "another dictionary" in log


def test_train_p2f_says_which_setting_is_out_of_range(tiny_model_dir, tiny_data_bin, tmp_path):
    for flag, value in (("--prefix-min-share", "1.5"), ("--prefix-curriculum", "-3"), ("--prefix-ratio", "2.0")):
        rc, log = run([sys.executable, str(ROOT / "scripts" / "train_p2f.py"), "--model", str(tiny_model_dir),
                       "--data", str(tiny_data_bin), "--work", str(tmp_path / "work"), flag, value])
        assert rc != 0 and f"{flag} {value} is out of range" in log and "Traceback" not in log
    assert not (tmp_path / "work").exists()  # refused before anything was started


def test_default_prefix_eos_matches_what_the_engine_feeds():
    from psfuture.policies import PsFuture

    assert (p2f.PrefixToFullConfig().prefix_eos == "keep") == PsFuture().prefix_eos
