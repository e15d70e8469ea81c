"""Paired bootstrap resampling for BLEU at equal latency: sacrebleu's test (Koehn 2004, as Moses'
bootstrap-hypothesis-difference-significance.pl), extended to points between measured configurations.

Curves are rarely measured at exactly the same latency. A curve's BLEU at, say, AL 3 is the linear
interpolation between its two configurations that bracket AL 3, with the weights fixed by their
whole-set latencies. Each bootstrap resample recomputes the BLEU of every configuration involved on
the same resampled sentences and interpolates with those weights, so the comparison stays paired.
A configuration measured exactly at the point is one term with weight 1. The p-value and the 95%
interval are computed by sacrebleu's own helpers, on the same 1,000 resamples and seed (12345) by default.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np


@dataclass(frozen=True)
class Comparison:
    a: str  # curve labels: the difference is a - b
    b: str
    metric: str  # latency metric of the point, e.g. AL
    at: float
    bleu_a: float
    bleu_b: float
    delta: float
    ci: tuple[float, float]  # 95% interval of the resampled delta
    p: float  # sacrebleu's paired-bootstrap p-value for "a and b differ"
    n_samples: int
    signature: str


def weights(points: Sequence[tuple[float, int]], at: float) -> list[tuple[float, int]] | None:
    """[(weight, key)] interpolating at `at` between the two (latency, key) points that bracket it."""
    pts = sorted(points)
    for (x0, k0), (x1, k1) in zip(pts, pts[1:]):
        if x0 <= at <= x1:
            w = 0.0 if x1 == x0 else (at - x0) / (x1 - x0)
            return [(1 - w, k0), (w, k1)]
    return [(1.0, pts[0][1])] if len(pts) == 1 and pts[0][0] == at else None


def _resampled(bleu, predictions: Sequence[str], refs: list[list[str]], idx: np.ndarray) -> tuple[float, np.ndarray]:
    """BLEU on the whole set and on each resample (rows of idx), from per-sentence statistics."""
    stats = np.array(bleu._extract_corpus_statistics(list(predictions), refs), dtype="float32")
    return (bleu._compute_score_from_stats(stats.sum(0)).score,
            np.array([bleu._compute_score_from_stats(s.sum(0)).score for s in stats[idx]]))


def loss_share(model: tuple[Sequence[str], Sequence[str]], base: tuple[Sequence[str], Sequence[str]],
               references: Sequence[str], n_samples: int = 1000, seed: int = 12345) -> tuple[float, tuple[float, float]]:
    """What a condition costs one model as a share of what it costs another, with a 95% percentile interval over
    paired resamples: (BLEU(model[0]) - BLEU(model[1])) / (BLEU(base[0]) - BLEU(base[1])), each pair being the
    same sentences in two conditions (as written, ASR-like) and every resample drawn once for all four."""
    from sacrebleu.metrics import BLEU

    bleu, refs = BLEU(), [list(references)]
    idx = np.random.default_rng(seed).choice(len(references), size=(n_samples, len(references)), replace=True)
    (mw, mws), (ma, mas), (bw, bws), (ba, bas) = (_resampled(bleu, p, refs, idx) for p in (*model, *base))
    base_loss = bws - bas
    # a resample where the condition costs the base nothing has no share: left out
    ratios = np.divide(mws - mas, base_loss, out=np.full_like(base_loss, np.nan), where=base_loss > 0)
    low, high = np.nanpercentile(ratios, [2.5, 97.5])
    return (mw - ma) / (bw - ba), (float(low), float(high))


def compare_curves(curves: dict[str, Sequence[tuple[float, Sequence[str]]]], pairs: Sequence[tuple[str, str]],
                   references: Sequence[str], metric: str, at: float, n_samples: int = 1000,
                   seed: int = 12345) -> list[Comparison]:
    """Each (a, b) of `pairs` compared at `metric` = `at`; curves: label -> [(latency, predictions)].
    Pairs where a curve does not reach the point are left out."""
    from sacrebleu.metrics import BLEU
    from sacrebleu.significance import _compute_p_value, estimate_ci

    bleu = BLEU()
    refs = [list(references)]
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(references), size=(n_samples, len(references)), replace=True)
    cache: dict = {}

    def scores(label: str, key: int) -> tuple[float, np.ndarray]:
        if (label, key) not in cache:
            cache[label, key] = _resampled(bleu, curves[label][key][1], refs, idx)
        return cache[label, key]

    def at_point(label: str):
        mix = weights([(x, k) for k, (x, _) in enumerate(curves[label])], at)
        if mix is None:
            return None
        parts = [(w, *scores(label, k)) for w, k in mix if w > 0] or [(1.0, *scores(label, mix[0][1]))]
        return sum(w * f for w, f, _ in parts), sum(w * s for w, _, s in parts)

    out = []
    for a, b in pairs:
        pa, pb = at_point(a), at_point(b)
        if pa is None or pb is None:
            continue
        delta, sample = pa[0] - pb[0], pa[1] - pb[1]
        diffs = np.abs(sample)
        p = float(_compute_p_value(diffs - diffs.mean(), abs(delta)))
        mean, half = estimate_ci(sample)
        out.append(Comparison(a, b, metric, at, pa[0], pb[0], delta, (mean - half, mean + half), p, n_samples,
                              f"{bleu.get_signature()}|bs:{n_samples}|seed:{seed}|interpolated:{metric}"))
    return out
