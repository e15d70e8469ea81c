"""Sweep reports: result tables (csv/json), the markdown summary with BLEU at equal latency and its
paired bootstrap, and the BLEU/latency plot."""
from __future__ import annotations

import csv
import dataclasses
import json
import math
from pathlib import Path
from typing import Sequence

from psfuture.calibration import interpolate
from psfuture.errors import ConfigError
from psfuture.backends.base import ModelBackend as Model
from psfuture.policies import POLICIES, PsFuture
from psfuture.experiments.significance import compare_curves
from psfuture.experiments.grids import RULE_SETTINGS, curve_label
from psfuture.experiments.metrics import Corpus, Result, bleu, latency_scores


def write_table(path: Path, results: Sequence[Result]) -> None:
    rows = [r.row() for r in results]
    with open(path.with_suffix(".csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    path.with_suffix(".json").write_text(json.dumps(
        [dict(r.row(), settings=r.settings, predictions=r.predictions, delays=r.delays) for r in results],
        indent=1) + "\n")


def read_table(path: Path) -> list[Result]:
    """The results write_table saved at `path` (.json), predictions and delays included."""
    fields = {f.name for f in dataclasses.fields(Result)}
    return [Result(**{k: v for k, v in r.items() if k in fields})
            for r in json.loads(path.with_suffix(".json").read_text())]


def check_saved(results: Sequence[Result], corpus, model: Model | None = None) -> None:
    """Refuse saved results that were not scored on `corpus` (sweep.Corpus), or that hold two checkpoints or
    precisions under one model name (curves are told apart by name), or, given `model`, that another checkpoint
    or precision made: bootstrap and re-runs would be wrong."""
    if model is not None:
        mine = (model.info.get("sha256", ""), model.info.get("precision", "float32"))
        for r in results:
            if (r.model_sha256, r.precision) != mine:
                raise ConfigError(f"the saved sweep ran {r.model} sha256 {r.model_sha256[:12]}… in {r.precision}, this "
                                  f"check {model.info.get('name')} sha256 {mine[0][:12]}… in {mine[1]}; pass the "
                                  "sweep's --model and --dtype/--quantize")
    for r in results:
        if len(r.predictions) != len(corpus):
            raise ConfigError(f"a saved sweep holds {len(r.predictions)} predictions per run but {corpus.name} has "
                              f"{len(corpus)} sentences; pass the sweep's --src/--ref/--limit")
        if r.corpus and r.corpus != corpus.fingerprint():
            raise ConfigError(f"a saved sweep was scored on {r.corpus}, not on {corpus.fingerprint()}; pass the "
                              "sweep's --src/--ref/--limit")
    seen: dict = {}
    for r in results:
        if seen.setdefault(r.model, (r.model_sha256, r.precision)) != (r.model_sha256, r.precision):
            raise ConfigError(f"model name {r.model!r} stands for two checkpoints or precisions "
                              f"({seen[r.model]} and {(r.model_sha256, r.precision)}); compare them in separate runs")


def first(results: Sequence[Result], whole: Corpus, part: Corpus) -> list[Result]:
    """Results saved on `whole` (checked as check_saved does), re-scored on `part`, its first sentences: a
    whole-set sweep then pairs with a sweep of the first N. Cost columns are dropped (measured on other
    sentences); in float32, translations and delays do not depend on which other sentences a sweep held (in bfloat16 batching
    can flip near-ties, so the re-scored curve pairs fine but is not bit-for-bit a --limit sweep)."""
    if part.sources != whole.sources[:len(part)] or part.references != whole.references[:len(part)]:
        raise ConfigError(f"{part.name} is not the start of {whole.name}")
    check_saved(results, whole)
    out, n = [], len(part)
    for r in results:
        predictions, delays = r.predictions[:n], r.delays[:n]
        score, signature = bleu(predictions, part.references)
        out.append(dataclasses.replace(
            r, BLEU=score, bleu_signature=signature, sentences=n, corpus=part.fingerprint(), predictions=predictions,
            delays=delays, seconds_per_sentence=None, calls_per_word=None, CA_AL_ms=None, cost_sentences=0,
            **latency_scores(part.sources, part.references, delays, predictions)))
    return out


def _fmt(x, digits=2) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def markdown(results: Sequence[Result], ablation: Sequence[Result], models: Model | Sequence[Model],
             corpus: Corpus) -> str:
    models = [models] if isinstance(models, Model) else list(models)
    several = _several_models(results)
    title = " vs ".join(m.info.get("name", "") for m in models)
    lines = [f"# Sweep: {title} on {corpus.name}", "",
             *(f"- model: `{m.info.get('name', '')}` sha256 `{m.info.get('sha256', '')}`, computed in "
               f"{m.info.get('precision', 'float32')}" for m in models),
             f"- BLEU: sacrebleu `{results[0].bleu_signature if results else ''}` (detokenized)",
             "- latency: SimulEval 1.1.4 scorers, word units, reference length; delays from a "
             "SimulEval-identical stream",
             f"- cost columns (s/sent, calls/word, CA-AL ms): the first {results[0].cost_sentences if results else 0} "
             "sentences again, each alone as one live stream from empty caches on this machine; CA-AL: AL in ms "
             f"when source words arrive at {results[0].rate if results else 0:g} words/s and each step's compute "
             "delays what follows", "",
             "| " + "model | " * several
             + "policy | settings | BLEU | AL | LAAL | DAL | AP | ATD | s/sent | calls/word | CA-AL ms |",
             "|---" * (11 + several) + "|"]
    for r in results:
        settings = ", ".join(f"{k}={v}" for k, v in r.settings.items())
        lines.append("| " + f"{r.model} | " * several + f"{r.policy} | {settings} | {r.BLEU:.2f} | {_fmt(r.AL)} | "
                     f"{_fmt(r.LAAL)} | {_fmt(r.DAL)} | {_fmt(r.AP, 3)} | {_fmt(r.ATD)} | "
                     f"{_fmt(r.seconds_per_sentence, 3)} | {_fmt(r.calls_per_word)} | {_fmt(r.CA_AL_ms, 0)} |")
    curves = {label: group for label, group in curves_of(results).items() if len(group) > 1}
    if curves:
        lines += ["", "## BLEU at equal latency", "",
                  "Interpolated along each curve between its measured points ('-': the curve does not reach it).", "",
                  "| curve | " + " | ".join(f"BLEU@{m}={a}" for m, a in EQUAL_AT) + " |",
                  "|---" * (1 + len(EQUAL_AT)) + "|"]
        for label, group in curves.items():
            at = [interpolate([(getattr(r, m), r.BLEU) for r in group], a) for m, a in EQUAL_AT]
            lines.append(f"| {label} | " + " | ".join(_fmt(x) for x in at) + " |")
        lines += bootstrap_lines(curves_of(results), corpus.references)
    if ablation:
        lines += ["", "## PsFuture ablation (psfuture's own design choices, not the paper's settings)", "",
                  "BLEU interpolated at fixed AL along each variant's threshold curve ('-': not reached).", "",
                  "| pseudo-future | EOS on prefix | divergence | rule | BLEU@AL=2 | BLEU@AL=3 | BLEU@AL=4 "
                  "| BLEU@LAAL=3 | BLEU@LAAL=4 | points (AL, BLEU) |",
                  "|---" * 10 + "|"]
        for key, group in _variants(ablation).items():
            at = [interpolate([(getattr(r, m), r.BLEU) for r in group], a) for m, a in EQUAL_AT]
            form, eos, div, rule = key
            curve = " ".join(f"({a:.1f}, {b:.1f})" for a, b in sorted((r.AL, r.BLEU) for r in group))
            lines.append(f"| {form} | {eos} | {div} | {rule or 'default'} | " + " | ".join(map(_fmt, at))
                         + f" | {curve} |")
    return "\n".join(lines) + "\n"


EQUAL_AT = (("AL", 2), ("AL", 3), ("AL", 4), ("LAAL", 3), ("LAAL", 4))


def comparisons(curves: dict[str, list[Result]], references: Sequence[str], n_samples: int = 1000) -> list:
    """Every PsFuture curve against every other curve (paired bootstrap): at each EQUAL_AT point, and
    at the own AL of a peer measured at one configuration only (LA-2: PsFuture interpolated there)."""
    ours = [label for label, group in curves.items() if group[0].policy == "psfuture"]
    pairs = [(a, b) for a in ours for b in curves if b != a and not (b in ours and ours.index(b) < ours.index(a))]
    points = {m: {label: [(getattr(r, m), r.predictions) for r in group] for label, group in curves.items()}
              for m in ("AL", "LAAL")}
    out = []
    for metric, at in EQUAL_AT:
        out += compare_curves(points[metric], [(a, b) for a, b in pairs if len(curves[b]) > 1], references,
                              metric, at, n_samples)
    for a, b in pairs:
        if len(curves[b]) == 1:
            out += compare_curves(points["AL"], [(a, b)], references, "AL", curves[b][0].AL, n_samples)
    return out


def bootstrap_lines(curves: dict[str, list[Result]], references: Sequence[str]) -> list[str]:
    rows = comparisons(curves, references) if references and all(
        len(r.predictions) == len(references) for group in curves.values() for r in group) else []
    if not rows:
        return []
    lines = ["", "## Paired bootstrap at equal latency", "",
             "A - B in BLEU at the same latency, each side interpolated between its two bracketing configurations "
             "on the same resampled sentences (psfuture.experiments.significance); 95% interval of the difference and "
             f"sacrebleu's paired-bootstrap p-value. Signature: `{rows[0].signature}`.", "",
             "| A | B | at | BLEU A | BLEU B | A - B | 95% interval | p |", "|---|---|---|---|---|---|---|---|"]
    for c in rows:
        lines.append(f"| {c.a} | {c.b} | {c.metric}={c.at:.3g} | {c.bleu_a:.2f} | {c.bleu_b:.2f} | {c.delta:+.2f} | "
                     f"[{c.ci[0]:+.2f}, {c.ci[1]:+.2f}] | {c.p:.4f} |")
    return lines


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
    default = dataclasses.asdict(PsFuture())
    for r in results:
        s = r.settings
        form = f"{s['placeholder']} x{s['k']}" + ("" if s.get("future_eos", True) else " (no EOS)")
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


def cpu_facts() -> dict:
    """What a timing or a bfloat16 result depends on: the CPU model and whether it computes bfloat16 natively."""
    import subprocess

    out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    facts = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    flags = facts.get("Flags", "")
    return {"cpu": facts.get("Model name", "?").strip(), "native_bfloat16": "avx512_bf16" in flags or "amx_bf16" in flags}
