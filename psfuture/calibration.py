"""A model directory's PsFuture threshold calibration (calibration.json): dev-set (AL, threshold)
points, so front ends can take a target latency instead of a threshold. Made by
`eval/sweep.py --target-al` (psfuture.experiments.sweep.calibrate); loaded next to the model by every front end."""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from psfuture.errors import ConfigError

REACH = 0.5  # source words a target AL may lie beyond the calibrated range (it gets the end point's threshold)


def interpolate(points: Sequence[tuple[float, float]], x: float) -> float | None:
    """Linear interpolation through (x, y) points sorted by x; None outside their range."""
    pts = sorted(points)
    for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
        if x0 <= x <= x1:
            return y0 if x1 == x0 else y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return pts[0][1] if len(pts) == 1 and pts[0][0] == x else None


def pick_threshold(points: Sequence[tuple[float, float]], target_al: float) -> float:
    """The threshold whose dev-set AL is target_al, from (AL, threshold) points: interpolated between
    the first bracketing pair (AL need not be monotone in the threshold), clamped to the measured range."""
    pts = sorted(points)
    if target_al <= pts[0][0]:
        return pts[0][1]
    if target_al >= pts[-1][0]:
        return pts[-1][1]
    return interpolate(pts, target_al)


@dataclass
class Calibration:
    """Dev-set (threshold, AL) points per policy settings, saved next to a model as calibration.json."""

    model_sha256: str
    policy: str
    settings: dict
    points: list[tuple[float, float]]  # (AL, threshold)
    precision: str = "float32"  # the compute precision the points were measured in
    dev: str = ""  # the dev sentences they were measured on

    def threshold(self, policy: str, target_al: float, settings: dict | None = None) -> float:
        """The threshold for `target_al`; `settings` (the policy's others) must be those calibrated for."""
        if policy != self.policy:
            raise ConfigError(f"target_al is calibrated for {self.policy} only, not {policy}")
        from psfuture.policies import POLICIES

        calibrated = {**POLICIES[policy]().settings(), **self.settings}  # a setting added later: its default
        differ = {k: v for k, v in (settings or {}).items() if calibrated.get(k, v) != v}
        if differ:
            mine = ", ".join(f"{k}={calibrated[k]}" for k in differ)
            raise ConfigError(f"target_al is calibrated for {policy} with {mine}, not "
                              f"{', '.join(f'{k}={v}' for k, v in differ.items())}: give a threshold instead, or "
                              "calibrate those settings (eval/sweep.py --target-al AL --grid psfuture.SETTING=V)")
        if not (isinstance(target_al, (int, float)) and math.isfinite(target_al) and target_al > 0):
            raise ConfigError(f"target_al must be a positive number of source words, got {target_al!r}")
        low, high = min(al for al, _ in self.points), max(al for al, _ in self.points)
        if not low - REACH <= target_al <= high + REACH:
            raise ConfigError(f"target_al={target_al:g} is outside this model's calibrated range: AL {low:.2f} to "
                              f"{high:.2f} source words on {self.dev or 'its dev set'}; pick a value in it, give a "
                              "threshold instead, or recalibrate over more thresholds (eval/sweep.py --target-al)")
        return pick_threshold(self.points, target_al)

    __call__ = threshold  # the (policy, target_al) -> threshold callable the front ends take

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(dataclasses.asdict(self), indent=1) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "Calibration":
        d = json.loads(Path(path).read_text())
        return cls(d["model_sha256"], d["policy"], d["settings"], [tuple(p) for p in d["points"]],
                   d.get("precision", "float32"), d.get("dev", ""))


def load_calibration(model) -> Calibration | None:
    """The model directory's calibration.json, if it has one made for this very checkpoint."""
    path = Path(model.info.get("path", "")) / "calibration.json"
    if not path.is_file():
        return None
    cal = Calibration.load(path)
    return cal if cal.model_sha256 == model.info.get("sha256") else None
