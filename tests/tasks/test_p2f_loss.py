"""The weighted P2F loss: per-token label smoothing scaled by the batch's target_weight, on a real model."""
import pytest
import torch
from fairseq import tasks

from psfuture.tasks.p2f_loss import P2FLabelSmoothedCrossEntropy

from test_prefix_to_full import make_cfg  # pytest's prepend import mode puts tests/tasks on sys.path


@pytest.fixture(scope="module")
def setup(tiny_data_bin):
    cfg = make_cfg(tiny_data_bin, "--prefix-ratio", "1.0", "--seed", "3", "--prefix-past-weight", "0.2",
                   "--criterion", "p2f_label_smoothed_cross_entropy", "--label-smoothing", "0.1")
    task = tasks.setup_task(cfg.task)
    task.load_dataset("train")
    torch.manual_seed(0)
    model = task.build_model(cfg.model).eval()
    criterion = task.build_criterion(cfg.criterion)
    batch = next(task.get_batch_iterator(task.dataset("train"), max_sentences=8, seed=1,
                                         epoch=1).next_epoch_itr(shuffle=False))
    return model, criterion, batch


def test_weights_scale_each_tokens_loss_and_the_logged_nll_stays_plain(setup):
    model, criterion, batch = setup
    assert isinstance(criterion, P2FLabelSmoothedCrossEntropy)
    weight = batch["target_weight"]
    assert weight.lt(1.0).any()
    with torch.no_grad():
        out = model(**batch["net_input"])
        per_token, nll_tokens = criterion.compute_loss(model, out, batch, reduce=False)
        loss, nll = criterion.compute_loss(model, out, batch)
        plain_loss, plain_nll = criterion.compute_loss(model, out, {k: v for k, v in batch.items()
                                                                    if k != "target_weight"})
    real = batch["target"].ne(criterion.padding_idx).reshape(-1, 1)
    assert torch.allclose(loss, per_token.sum()) and torch.allclose(nll, plain_nll)
    unweighted = per_token / weight.reshape(-1, 1)
    assert torch.allclose(unweighted.sum(), plain_loss, rtol=1e-5)
    assert per_token[~real].eq(0).all() and nll_tokens[~real].eq(0).all()  # padding still counts nothing
    assert loss < plain_loss


def test_a_batch_without_weights_is_fairseqs_label_smoothing(setup):
    from fairseq.criterions.label_smoothed_cross_entropy import LabelSmoothedCrossEntropyCriterion

    model, criterion, batch = setup
    batch = {k: v for k, v in batch.items() if k != "target_weight"}
    plain = LabelSmoothedCrossEntropyCriterion(criterion.task, False, 0.1)
    with torch.no_grad():
        out = model(**batch["net_input"])
        ours, theirs = criterion.compute_loss(model, out, batch), plain.compute_loss(model, out, batch)
    assert torch.equal(ours[0], theirs[0]) and torch.equal(ours[1], theirs[1])
