"""Paired bootstrap at equal latency on made-up systems whose answer is known."""
import random

import pytest

from psfuture.experiments.significance import compare_curves, loss_share, weights

WORDS = "the quick brown fox jumps over a lazy dog while it rains in the north".split()


def corpus(n=300, seed=1):
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(12)) for _ in range(n)]


def damage(refs, rate, seed):
    """Each word replaced by 'xyz' with probability `rate`."""
    rng = random.Random(seed)
    return [" ".join("xyz" if rng.random() < rate else w for w in r.split()) for r in refs]


def test_weights_interpolate_between_bracketing_points():
    assert weights([(1.0, 0), (3.0, 1), (5.0, 2)], 4.0) == [(0.5, 1), (0.5, 2)]
    assert weights([(2.0, 7)], 2.0) == [(1.0, 7)]
    assert weights([(1.0, 0), (3.0, 1)], 3.5) is None


def test_clear_difference_is_significant_and_equal_systems_are_not():
    refs = corpus()
    good, bad, twin = damage(refs, 0.1, 2), damage(refs, 0.4, 3), damage(refs, 0.1, 4)  # twin: same quality
    curves = {"good": [(2.0, good), (4.0, good)], "bad": [(3.0, bad)], "twin": [(1.0, twin), (5.0, twin)]}
    rows = {(c.a, c.b): c for c in compare_curves(curves, [("good", "bad"), ("good", "twin"), ("bad", "good")],
                                                  refs, "AL", 3.0, n_samples=200)}
    gb, gt, bg = rows["good", "bad"], rows["good", "twin"], rows["bad", "good"]
    assert gb.delta > 10 and gb.p < 0.05 and gb.ci[0] > 0
    assert gt.p > 0.05 and gt.ci[0] < 0 < gt.ci[1]
    assert bg.delta == pytest.approx(-gb.delta) and bg.ci[1] < 0
    assert "bs:200" in gb.signature and "tok:13a" in gb.signature


def test_points_a_curve_does_not_reach_are_left_out():
    refs = corpus(50)
    curves = {"a": [(1.0, refs), (2.0, refs)], "b": [(2.5, refs), (6.0, refs)]}
    assert compare_curves(curves, [("a", "b")], refs, "AL", 3.0, n_samples=50) == []


def test_loss_share_and_its_interval():
    refs = corpus()
    # a condition (say ASR-like input) costs the base ~40% of its words and the model ~10%: a share well under 1
    base = (damage(refs, 0.05, 5), damage(refs, 0.45, 6))
    model = (damage(refs, 0.05, 7), damage(refs, 0.15, 8))
    share, (low, high) = loss_share(model, base, refs, n_samples=200)
    assert 0 < low < share < high < 0.6
    same, (low, high) = loss_share(base, base, refs, n_samples=200)
    assert same == pytest.approx(1.0) and low == pytest.approx(1.0) and high == pytest.approx(1.0)


def test_model_compare_refuses_the_same_model_twice(tmp_path, capsys):
    """Its rows are told apart by path: the same folder twice would pair a model with itself under one name."""
    from conftest import load_script
    model_compare = load_script("eval/model_compare.py")
    with pytest.raises(SystemExit):
        model_compare.main(["--models", "checkpoints/offline", "checkpoints/offline", "--out", str(tmp_path)])
    assert "each model once" in capsys.readouterr().err
