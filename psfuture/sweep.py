"""Quality/latency sweeps of every policy over a test set, the PsFuture ablation, and threshold calibration.

Each sentence is streamed the way SimulEval 1.1.4 streams it (one word per step; the last word
arrives together with the end of the source), so delays equal SimulEval's. Latency metrics are
computed by SimulEval's own scorers (AL, LAAL, DAL, AP, ATD; word units, reference length) on
instances built from those delays; BLEU by sacrebleu on detokenized text, with its signature.

Runs of the same sentence under different configurations share model answers (`memo=True`):
identical results, far faster. The cost columns (seconds per sentence, model forward calls per
source word) come from runs that pay their own way (empty model caches per sentence); the sweep
repeats its first `cost_limit` sentences that way.
"""
from __future__ import annotations

import csv
import dataclasses
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from psfuture.calibration import Calibration, interpolate, load_calibration, pick_threshold  # noqa: F401
from psfuture.errors import ConfigError
from psfuture.model import Model
from psfuture.policies import POLICIES, AlignAtt, LocalAgreement, Offline, Policy, PsFuture, WaitK
from psfuture.session import Session

LATENCY = ("AL", "LAAL", "DAL", "AP", "ATD")
THRESHOLDS = {  # per divergence: from "writes almost always" to "waits almost always"
    "kl": (0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0),
    "rkl": (0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0),
    "js": (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2),
    "tv": (0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7),
    "top1": (0.5,),  # write iff both distributions agree on the top token
    "cos": (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4),  # 1 - cos(p, q), in [0, 1]
}


@dataclass
class Corpus:
    sources: list[str]
    references: list[str]
    name: str = ""

    def __len__(self) -> int:
        return len(self.sources)


def read_corpus(src: str | Path, ref: str | Path, limit: int | None = None) -> Corpus:
    sources = Path(src).read_text(encoding="utf-8").splitlines()
    references = Path(ref).read_text(encoding="utf-8").splitlines()
    if len(sources) != len(references):
        raise ConfigError(f"{src} has {len(sources)} lines but {ref} has {len(references)}; they must be parallel")
    pairs = [(s, r) for s, r in zip(sources, references) if s.split()]
    pairs = pairs[:limit] if limit else pairs
    return Corpus([s for s, _ in pairs], [r for _, r in pairs], f"{Path(src).name}[:{len(pairs)}]")


def stream(model, policy: Policy, sentence: str, **session_kw) -> Session:
    """One sentence through a Session exactly as SimulEval feeds an agent."""
    s = Session(model, policy, **session_kw)
    words = sentence.split()
    for w in words[:-1]:
        s.push(w)
    s.push(words[-1], run=False)
    s.finish()
    return s


class MemoModel:
    """A Model whose answers are remembered (until clear()): configurations streaming the same
    sentence ask many identical queries."""

    def __init__(self, model: Model):
        self.model = model
        self.memo: dict = {}

    def __getattr__(self, name):
        return getattr(self.model, name)

    def next_token(self, queries):
        new = [q for q in dict.fromkeys(queries) if q not in self.memo]
        if new:
            self.memo.update(zip(new, self.model.next_token(new)))
        return [self.memo[q] for q in queries]

    def clear(self) -> None:
        self.memo.clear()
        self.model.clear_cache()


def latency_scores(sources: Sequence[str], references: Sequence[str], delays: Sequence[Sequence[int]],
                   predictions: Sequence[str]) -> dict[str, float]:
    """SimulEval's scorers on text instances (word latency unit, reference length, as its defaults)."""
    from simuleval.evaluator.instance import INSTANCE_TYPE_DICT
    from simuleval.evaluator.scorers import get_scorer_class

    instances = {}
    for i, (src, ref, d, pred) in enumerate(zip(sources, references, delays, predictions)):
        ins = INSTANCE_TYPE_DICT["text-text"](i, None, None)
        ins.source, ins.reference, ins.latency_unit = src.split(), ref, "word"
        ins.delays, ins.elapsed, ins.prediction_list = list(d), [0] * len(d), pred.split()
        ins.finish_prediction = True
        instances[i] = ins
    return {name: float(get_scorer_class("latency", name)(computation_aware=False, use_ref_len=True)(instances))
            for name in LATENCY}


def bleu(predictions: Sequence[str], references: Sequence[str]) -> tuple[float, str]:
    from sacrebleu.metrics import BLEU

    metric = BLEU()  # 13a tokenization, as SimulEval's BLEU scorer
    score = metric.corpus_score(list(predictions), [list(references)])
    return score.score, str(metric.get_signature())


@dataclass
class Result:
    policy: str
    settings: dict
    signature: str
    BLEU: float
    AL: float
    LAAL: float
    DAL: float
    AP: float
    ATD: float
    sentences: int
    seconds_per_sentence: float | None
    calls_per_word: float | None  # encoder + decoder forward calls per source word
    bleu_signature: str
    model_sha256: str
    model: str = ""  # the model's name: sweeps may compare models (e.g. offline vs P2F)
    predictions: list[str] = field(default_factory=list, repr=False)
    delays: list[list[int]] = field(default_factory=list, repr=False)

    def row(self) -> dict:
        d = dataclasses.asdict(self)
        d.pop("predictions"), d.pop("delays")
        d["settings"] = json.dumps(self.settings, sort_keys=True)
        return d


@dataclass
class _Streamed:
    predictions: list[str] = field(default_factory=list)
    delays: list[list[int]] = field(default_factory=list)
    calls: int = 0
    seconds: float = 0.0


def _stream_all(model: Model, sources: Sequence[str], policies: Sequence[Policy], memo: bool, bar,
                **session_kw) -> list[_Streamed]:
    front = MemoModel(model) if memo else model
    out = [_Streamed() for _ in policies]
    for sentence in sources:
        if memo:
            front.clear()
        for o, policy in zip(out, policies):
            if not memo:
                model.clear_cache()  # cost columns: every configuration pays for its own work
            start = time.perf_counter()
            s = stream(front, policy, sentence, **session_kw)
            o.seconds += time.perf_counter() - start
            o.calls += s.stats.encoder_calls + s.stats.decoder_calls
            o.predictions.append(s.text)
            o.delays.append(list(s.delays))
            bar.update()
    return out


def run(model: Model, corpus: Corpus, policies: Sequence[Policy], *, memo: bool = False,
        cost_limit: int | None = None, progress: bool = True, desc: str = "sweep", **session_kw) -> list[Result]:
    """Stream every sentence of `corpus` under every policy; score each policy.

    memo=False: each run pays its own way, and its time and model calls are the cost columns.
    memo=True: runs of the same sentence share model answers (identical results, far faster); the
    cost columns then come from repeating the first `cost_limit` sentences without sharing (none if 0/None).
    """
    from tqdm import tqdm

    cost_sources = corpus.sources[:cost_limit or 0] if memo else []
    bar = tqdm(total=(len(corpus) + len(cost_sources)) * len(policies), desc=desc, disable=not progress, unit="run")
    streamed = _stream_all(model, corpus.sources, policies, memo, bar, **session_kw)
    cost = _stream_all(model, cost_sources, policies, False, bar, **session_kw) if cost_sources else None
    bar.close()
    cost, cost_sources = (cost, cost_sources) if memo else (streamed, corpus.sources)
    words = sum(len(s.split()) for s in cost_sources)
    results = []
    for i, (policy, o) in enumerate(zip(policies, streamed)):
        score, signature = bleu(o.predictions, corpus.references)
        lat = latency_scores(corpus.sources, corpus.references, o.delays, o.predictions)
        results.append(Result(policy.name, policy.settings(), policy.signature(), score, **lat,
                              sentences=len(corpus),
                              seconds_per_sentence=cost[i].seconds / len(cost_sources) if cost else None,
                              calls_per_word=cost[i].calls / words if cost else None, bleu_signature=signature,
                              model_sha256=model.info.get("sha256", ""), model=model.info.get("name", ""),
                              predictions=o.predictions, delays=o.delays))
    return results


# ---- grids -----------------------------------------------------------------------------------------
KNOBS = {"waitk": "k", "la": "n", "alignatt": "frames", "psfuture": "threshold"}  # what a curve sweeps


def main_grid(specs: Sequence[str] = ()) -> list[Policy]:
    """Each policy over its knob, then the "policy.setting=v1,v2" overrides of `specs` (see parse_grid).
    PsFuture settings other than the threshold pick the curve(s); each runs over its divergence's thresholds."""
    fixed = [s for s in specs if s.startswith("psfuture.") and not s.startswith("psfuture.threshold=")]
    bases = parse_grid(fixed, [PsFuture()])
    grid = ([Offline()] + [WaitK(k=k) for k in (1, 2, 3, 4, 5, 7, 9)] + [LocalAgreement()]
            + [AlignAtt(frames=f) for f in (1, 2, 3, 4, 6)]
            + [dataclasses.replace(b, threshold=t) for b in bases for t in THRESHOLDS[b.divergence]])
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


# ---- calibration -----------------------------------------------------------------------------------
def calibrate(model: Model, dev: Corpus, base: PsFuture | None = None, progress: bool = True,
              **session_kw) -> Calibration:
    base = base or PsFuture()
    results = run(model, dev, [dataclasses.replace(base, threshold=t) for t in THRESHOLDS[base.divergence]],
                  memo=True, progress=progress, desc="calibrate", **session_kw)
    settings = {k: v for k, v in base.settings().items() if k != "threshold"}
    return Calibration(model.info.get("sha256", ""), base.name, settings, [(r.AL, r.settings["threshold"])
                                                                           for r in results])


# ---- reports -----------------------------------------------------------------------------------------
def write_table(path: Path, results: Sequence[Result]) -> None:
    rows = [r.row() for r in results]
    with open(path.with_suffix(".csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    path.with_suffix(".json").write_text(json.dumps(
        [dict(r.row(), settings=r.settings, predictions=r.predictions, delays=r.delays) for r in results],
        indent=1) + "\n")


def _fmt(x, digits=2) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def markdown(results: Sequence[Result], ablation: Sequence[Result], models: Model | Sequence[Model],
             corpus: Corpus) -> str:
    models = [models] if isinstance(models, Model) else list(models)
    several = _several_models(results)
    title = " vs ".join(m.info.get("name", "") for m in models)
    lines = [f"# Sweep: {title} on {corpus.name}", "",
             *(f"- model: `{m.info.get('name', '')}` sha256 `{m.info.get('sha256', '')}`" for m in models),
             f"- BLEU: sacrebleu `{results[0].bleu_signature if results else ''}` (detokenized)",
             "- latency: SimulEval 1.1.4 scorers, word units, reference length; delays from a "
             "SimulEval-identical stream", "",
             "| " + "model | " * several
             + "policy | settings | BLEU | AL | LAAL | DAL | AP | ATD | s/sent | calls/word |",
             "|---" * (10 + several) + "|"]
    for r in results:
        settings = ", ".join(f"{k}={v}" for k, v in r.settings.items())
        lines.append("| " + f"{r.model} | " * several + f"{r.policy} | {settings} | {r.BLEU:.2f} | {_fmt(r.AL)} | "
                     f"{_fmt(r.LAAL)} | {_fmt(r.DAL)} | {_fmt(r.AP, 3)} | {_fmt(r.ATD)} | "
                     f"{_fmt(r.seconds_per_sentence, 3)} | {_fmt(r.calls_per_word)} |")
    curves = {label: group for label, group in curves_of(results).items() if len(group) > 1}
    if curves:
        lines += ["", "## BLEU at equal latency", "",
                  "Interpolated along each curve between its measured points ('-': the curve does not reach it).", "",
                  "| curve | " + " | ".join(f"BLEU@{m}={a}" for m, a in EQUAL_AT) + " |",
                  "|---" * (1 + len(EQUAL_AT)) + "|"]
        for label, group in curves.items():
            at = [interpolate([(getattr(r, m), r.BLEU) for r in group], a) for m, a in EQUAL_AT]
            lines.append(f"| {label} | " + " | ".join(_fmt(x) for x in at) + " |")
    if ablation:
        lines += ["", "## PsFuture ablation (psfuture's own design choices, not the paper's settings)", "",
                  "BLEU interpolated at fixed AL along each variant's threshold curve ('-': not reached).", "",
                  "| pseudo-future | EOS on prefix | divergence | rule | BLEU@AL=2 | BLEU@AL=3 | BLEU@AL=4 "
                  "| BLEU@LAAL=3 | BLEU@LAAL=4 | points (AL, BLEU) |",
                  "|---" * 11 + "|"]
        for key, group in _variants(ablation).items():
            at = [interpolate([(getattr(r, m), r.BLEU) for r in group], a) for m, a in EQUAL_AT]
            form, eos, div, rule = key
            curve = " ".join(f"({a:.1f}, {b:.1f})" for a, b in sorted((r.AL, r.BLEU) for r in group))
            lines.append(f"| {form} | {eos} | {div} | {rule or 'default'} | " + " | ".join(map(_fmt, at))
                         + f" | {curve} |")
    return "\n".join(lines) + "\n"


EQUAL_AT = (("AL", 2), ("AL", 3), ("AL", 4), ("LAAL", 3), ("LAAL", 4))


def _several_models(results: Sequence[Result]) -> bool:
    return len({r.model for r in results}) > 1


def curves_of(results: Sequence[Result]) -> dict[str, list[Result]]:
    """Results grouped into latency curves: one per model and policy family (see curve_label);
    the model's name leads the label when the results come from several models."""
    several = _several_models(results)
    policies = [POLICIES[r.policy](**r.settings) for r in results]
    curves: dict = {}
    for r, p in zip(results, policies):
        if r.policy != "offline":
            curves.setdefault((f"{r.model}: " if several else "") + curve_label(p, policies), []).append(r)
    return curves


def _variants(results: Sequence[Result]) -> dict:
    groups: dict = {}
    for r in results:
        s = r.settings
        form = f"{s['placeholder']} x{s['k']}" + ("" if s.get("future_eos", True) else " (no EOS)")
        default = dataclasses.asdict(PsFuture())
        rule = " ".join(f"{k}={s[k]}" for k in RULE_SETTINGS if k in s and s[k] != default[k])
        groups.setdefault((form, s["prefix_eos"], s["divergence"], rule), []).append(r)
    return groups


def plot(path: Path, results: Sequence[Result], title: str = "") -> None:
    """BLEU vs AL and vs LAAL: one curve per model and policy configuration family, offline BLEU as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = curves_of(results)
    several = _several_models(results)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for ax, metric in zip(axes, ("AL", "LAAL")):
        for label, group in curves.items():
            pts = sorted((getattr(r, metric), r.BLEU) for r in group)
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=label)
        for r, style in zip([r for r in results if r.policy == "offline"], ("--", ":", "-.")):
            ax.axhline(r.BLEU, color="gray", linestyle=style,
                       label=f"{r.model}: offline (greedy)" if several else "offline (greedy)")
        ax.set_xlabel(f"{metric} (source words)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("BLEU")
    axes[1].legend(loc="lower right", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
