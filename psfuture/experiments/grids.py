"""The policy grids of a sweep: each policy over its knob, the PsFuture ablations, and --grid/--thresholds parsing."""
from __future__ import annotations

import dataclasses
from typing import Iterable, Sequence

from psfuture.errors import ConfigError
from psfuture.policies import POLICIES, AlignAtt, LocalAgreement, Offline, Policy, PsFuture, WaitK

THRESHOLDS = {  # per divergence: from "writes almost always" to "waits almost always"
    "kl": (0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0),
    "rkl": (0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0),
    "js": (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2),
    "tv": (0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7),
    "top1": (0.5,),  # write iff both distributions agree on the top token
    "cos": (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4),  # 1 - cos(p, q), in [0, 1]
}


KNOBS = {"waitk": "k", "la": "n", "alignatt": "frames", "psfuture": "threshold"}  # what a curve sweeps


def main_grid(specs: Sequence[str] = (), thresholds: dict[str, Sequence[float]] | None = None) -> list[Policy]:
    """Each policy over its knob, then the "policy.setting=v1,v2" overrides of `specs` (see parse_grid).
    PsFuture settings other than the threshold pick the curve(s); each runs over its divergence's thresholds
    (`thresholds[divergence]`, else THRESHOLDS), unless `specs` set psfuture.threshold for all."""
    fixed = [s for s in specs if s.startswith("psfuture.") and not s.startswith("psfuture.threshold=")]
    bases = parse_grid(fixed, [PsFuture()])
    grid = ([Offline()] + [WaitK(k=k) for k in (1, 2, 3, 4, 5, 7, 9)] + [LocalAgreement()]
            + [AlignAtt(frames=f) for f in (1, 2, 3, 4, 6)]
            + [dataclasses.replace(b, threshold=t) for b in bases
               for t in (thresholds or {}).get(b.divergence, THRESHOLDS[b.divergence])])
    return parse_grid([s for s in specs if s not in fixed], grid)


def curve_label(policy: Policy, others: Sequence[Policy]) -> str:
    """The policy's name plus the settings (other than its knob) in which it differs from its peers."""
    knob = KNOBS.get(policy.name)
    mine = {k: v for k, v in policy.settings().items() if k != knob}
    peers = [p.settings() for p in others if p.name == policy.name]
    differ = [k for k in mine if any(p.get(k) != mine[k] for p in peers)]
    return policy.name + "".join(f" {k}={mine[k]}" for k in differ)


FORMS = (("unk", 1), ("unk", 2), ("unk", 3), ("bos", 1), ("pad", 1), ("frequent", 1))


RULES = ({"divergence": "cos"}, {"agree": True}, {"futures": 2}, {"min_read": 2}, {"min_read": 3},
         {"write_from": "q"})  # the decision-rule options, one at a time ("rule")
RULE_SETTINGS = ("futures", "agree", "min_read", "write_from")


def ablation_grid(kind: str = "full", points: int = 4,
                  thresholds: dict[str, Sequence[float]] | None = None) -> list[PsFuture]:
    """PsFuture variants: pseudo-future form x EOS on the prefix x divergence ("full"), one factor at a
    time around the defaults ("ofat"), or the defaults and each decision-rule option of RULES alone ("rule");
    each over `points` thresholds spread over its divergence's range, or over `thresholds[divergence]`."""
    base = PsFuture()
    if kind == "rule":
        variants = [base] + [dataclasses.replace(base, **r) for r in RULES]
    elif kind == "full":
        variants = [PsFuture(placeholder=p, k=k, prefix_eos=e, divergence=d)
                    for p, k in FORMS for e in (True, False) for d in THRESHOLDS]
    elif kind == "ofat":
        variants = ([dataclasses.replace(base, placeholder=p, k=k) for p, k in FORMS]
                    + [dataclasses.replace(base, prefix_eos=not base.prefix_eos)]
                    + [dataclasses.replace(base, divergence=d) for d in THRESHOLDS if d != base.divergence])
    else:
        raise ConfigError(f"ablation kind {kind!r}: choose full, ofat or rule")
    out = []
    for v in dict.fromkeys(variants):
        grid = THRESHOLDS[v.divergence]
        picks = sorted({grid[round(i * (len(grid) - 1) / max(points - 1, 1))] for i in range(points)})
        picks = (thresholds or {}).get(v.divergence, picks)
        out += [dataclasses.replace(v, threshold=t) for t in picks]
    return out


def parse_thresholds(specs: Iterable[str]) -> dict[str, tuple[float, ...]]:
    """"kl=0.05,0.1" specs -> {"kl": (0.05, 0.1)}."""
    out = {}
    for spec in specs:
        name, _, values = spec.partition("=")
        if name not in THRESHOLDS or not values:
            raise ConfigError(f"--ablation-thresholds {spec!r}: write it as DIVERGENCE=T1,T2 with a divergence of "
                              f"{', '.join(THRESHOLDS)}")
        try:
            out[name] = tuple(sorted(float(v) for v in values.split(",")))
        except ValueError as e:
            raise ConfigError(f"--ablation-thresholds {spec!r}: {e}") from None
    return out


def parse_grid(specs: Iterable[str], base: Sequence[Policy]) -> list[Policy]:
    """Apply "--grid policy.setting=v1,v2" overrides: the named policy's configurations are replaced
    by the cross product of the given values over its remaining configurations."""
    policies = list(base)
    for spec in specs:
        try:
            key, values = spec.split("=", 1)
            name, setting = key.split(".", 1)
        except ValueError:
            raise ConfigError(f"--grid {spec!r}: write it as policy.setting=v1,v2 (e.g. waitk.k=1,3,5)") from None
        if name not in POLICIES:
            raise ConfigError(f"--grid {spec!r}: unknown policy {name!r}; choose one of {', '.join(POLICIES)}")
        fields = {f.name: f for f in dataclasses.fields(POLICIES[name])}
        if setting not in fields:
            raise ConfigError(f"--grid {spec!r}: {name} has no setting {setting!r} ({', '.join(fields)})")
        kind = type(fields[setting].default)
        parse = {bool: lambda v: v.lower() in ("1", "true", "yes"), type(None): lambda v: None if v == "none" else
                 int(v)}.get(kind, kind)
        try:
            parsed = [parse(v) for v in values.split(",")]
        except ValueError as e:
            raise ConfigError(f"--grid {spec!r}: {e}") from None
        mine = [p for p in policies if p.name == name] or [POLICIES[name]()]
        new = list(dict.fromkeys(dataclasses.replace(p, **{setting: v}) for p in mine for v in parsed))
        policies = [p for p in policies if p.name != name] + new
    return policies
