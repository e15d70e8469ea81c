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

import dataclasses
import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from psfuture.calibration import Calibration
from psfuture.chunks import ChunkStore
from psfuture.errors import ConfigError
from psfuture.model import Model
from psfuture.policies import POLICIES, AlignAtt, LocalAgreement, Offline, Policy, PsFuture, WaitK
from psfuture.session import Session, run_batched

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

    def fingerprint(self) -> str:
        """Name and sha256 of the sentences and references: saved results say what they were scored on."""
        text = "\n".join(self.sources) + "\0" + "\n".join(self.references)
        return f"{self.name} sha256:{hashlib.sha256(text.encode('utf-8')).hexdigest()[:16]}"


def read_corpus(src: str | Path, ref: str | Path, limit: int | None = None) -> Corpus:
    sources = Path(src).read_text(encoding="utf-8").splitlines()
    references = Path(ref).read_text(encoding="utf-8").splitlines()
    if len(sources) != len(references):
        raise ConfigError(f"{src} has {len(sources)} lines but {ref} has {len(references)}; they must be parallel")
    pairs = [(s, r) for s, r in zip(sources, references) if s.split()]
    pairs = pairs[:limit] if limit else pairs
    return Corpus([s for s, _ in pairs], [r for _, r in pairs], f"{Path(src).name}[:{len(pairs)}]")


def stream(model, policy: Policy, sentence: str, *, steps: list | None = None, **session_kw) -> Session:
    """One sentence through a Session exactly as SimulEval feeds an agent. `steps`, if given, gets the
    seconds of model work done after each word arrived (the last one includes the end of the source)."""
    s = Session(model, policy, **session_kw)
    words = sentence.split()
    for i, w in enumerate(words):
        start = time.perf_counter()
        if i < len(words) - 1:
            s.push(w)
        else:
            s.push(w, run=False)
            s.finish()
        if steps is not None:
            steps.append(time.perf_counter() - start)
    return s


def computation_aware_al(delays: Sequence[int], steps: Sequence[float], reference: str, rate: float) -> float:
    """AL in milliseconds as a listener would feel it on this hardware: source word i (1-based) is spoken
    by i/rate s, the step it triggers starts once it has arrived and the previous step is done, and a
    target word appears when the step that wrote it ends. SimulEval's own AL (reference length) on those
    times; SimulEval refuses computation-aware latency for text input, so the times are simulated here."""
    from simuleval.evaluator.scorers.latency_scorer import ALScorer

    end, ends = 0.0, []
    for i, seconds in enumerate(steps, 1):
        end = max(end, i / rate) + seconds
        ends.append(1000 * end)
    ins = _Timed(elapsed=[ends[d - 1] for d in delays], reference=reference,
                 reference_length=len(reference.split(" ")), source_length=1000 * len(steps) / rate)
    return float(ALScorer(computation_aware=True, use_ref_len=True).compute(ins))


@dataclass
class _Timed:  # the instance fields SimulEval's AL reads
    elapsed: list[float]
    reference: str
    reference_length: int
    source_length: float


def stream_batched(model, runs: Sequence[tuple[Policy, str]], **session_kw) -> list[Session]:
    """Many (policy, sentence) runs, each fed exactly as `stream` feeds one, in lockstep: each round
    every run still reading takes its next word, then the model work of the whole round goes through
    shared model calls (session.run_batched); the final decodes (all of the offline policy's work, the
    tail of every other) wait for one last round and share its calls. Sentences of similar length (the
    sweep batches them so) keep sources and target prefixes of similar length in each call."""
    sessions = [Session(model, policy, **session_kw) for policy, _ in runs]
    words = [sentence.split() for _, sentence in runs]
    for r in range(max(map(len, words), default=0)):
        active = []
        for s, w in zip(sessions, words):
            if r < len(w) - 1:
                s.push(w[r], run=False)
                active.append(s)
            elif r == len(w) - 1:  # the last word arrives together with the end of the source
                s.push(w[r], run=False)
                s.finish(run=False)
        run_batched(model, active)
    run_batched(model, sessions)  # every run's final decode, together
    return sessions


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
    CA_AL_ms: float | None = None  # computation-aware AL in ms at `rate` words/s (see computation_aware_al)
    cost_sentences: int = 0  # the first sentences the cost columns were measured on, one live stream each
    rate: float = 2.5  # source words per second of the computation-aware AL
    precision: str = "float32"  # the model's compute precision (--dtype/--quantize)
    corpus: str = ""  # Corpus.fingerprint() of the sentences scored ("" in results saved before it existed)
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
    ca_al_ms: list[float] = field(default_factory=list)


def _stream_chunk(model: Model, sources: Sequence[str], policies: Sequence[Policy], chunk: Sequence[int],
                  store: ChunkStore | None = None, **session_kw) -> list[tuple[int, int, str, list[int]]]:
    """All policies of the sentences `chunk` together (stream_batched), one answer memo for the chunk;
    from `store` when an earlier run of this very sweep finished the chunk, and into it when streamed."""
    if store is not None and (saved := store.get(chunk, sources)) is not None:
        return saved
    front = MemoModel(model)
    front.clear()  # from empty caches: a chunk's answers do not depend on the chunks before it
    runs = [(k, i) for i in chunk for k in range(len(policies))]
    sessions = stream_batched(front, [(policies[k], sources[i]) for k, i in runs], **session_kw)
    answers = [(k, i, s.text, list(s.delays)) for (k, i), s in zip(runs, sessions)]
    if store is not None:
        store.put(chunk, sources, answers)
    return answers


_FORKED: tuple = ()  # what forked sweep workers inherit: (model, sources, policies, store, session_kw)


def _forked_chunk(chunk: Sequence[int]) -> list[tuple[int, int, str, list[int]]]:
    import torch

    torch.set_num_threads(1)  # one core per process: the processes are the parallelism
    model, sources, policies, store, session_kw = _FORKED
    return _stream_chunk(model, sources, policies, chunk, store, **session_kw)


def _stream_all(model: Model, sources: Sequence[str], policies: Sequence[Policy], bar, batch: int = 1,
                jobs: int = 1, store: ChunkStore | None = None, **session_kw) -> list[_Streamed]:
    """Stream `sources` under every policy, `batch` sentences of equal (or nearly equal) word count at a
    time, all policies of those sentences together (stream_batched), sharing one answer memo.
    jobs > 1: that many forked processes of one torch thread take the chunks, longest first (a chunk's
    results do not depend on which process or in which order it runs)."""
    global _FORKED
    out = [_Streamed(predictions=[""] * len(sources), delays=[[] for _ in sources]) for _ in policies]
    order = sorted(range(len(sources)), key=lambda i: len(sources[i].split())) if batch > 1 else list(range(len(sources)))
    chunks = [order[start:start + batch] for start in range(0, len(order), batch)]
    cache_size = model.cache_size
    model.cache_size = max(cache_size, 4 * batch * len(policies))  # every live run's states fit
    pool = None
    try:
        if jobs > 1 and len(chunks) > 1:
            import multiprocessing

            model.clear_cache()  # children inherit the parent's memory: start them light
            _FORKED = (model, sources, policies, store, session_kw)
            pool = multiprocessing.get_context("fork").Pool(min(jobs, len(chunks)))
            done = pool.imap_unordered(_forked_chunk, chunks[::-1])
        else:
            done = (_stream_chunk(model, sources, policies, chunk, store, **session_kw) for chunk in chunks)
        for answers in done:
            for k, i, text, delays in answers:
                out[k].predictions[i], out[k].delays[i] = text, delays
            bar.update(len(answers))
    finally:
        if pool is not None:
            pool.terminate()
        _FORKED = ()
        model.cache_size = cache_size
        model.clear_cache()
    return out


def _stream_timed(model: Model, sources: Sequence[str], references: Sequence[str], policies: Sequence[Policy],
                  bar, rate: float, **session_kw) -> list[_Streamed]:
    """Every run alone, as one live stream, from empty caches: its own seconds, model calls and
    computation-aware AL at `rate` source words per second."""
    out = [_Streamed() for _ in policies]
    for sentence, reference in zip(sources, references):
        for o, policy in zip(out, policies):
            model.clear_cache()
            steps: list[float] = []
            s = stream(model, policy, sentence, steps=steps, **session_kw)
            o.seconds += sum(steps)
            o.calls += s.stats.encoder_calls + s.stats.decoder_calls
            o.predictions.append(s.text)
            o.delays.append(list(s.delays))
            if s.delays:
                o.ca_al_ms.append(computation_aware_al(s.delays, steps, reference, rate))
            bar.update()
    return out


def run(model: Model, corpus: Corpus, policies: Sequence[Policy], *, memo: bool = False,
        cost_limit: int | None = None, batch: int = 1, jobs: int = 1, rate: float = 2.5, progress: bool = True,
        desc: str = "sweep", resume: str | Path | None = None, **session_kw) -> list[Result]:
    """Stream every sentence of `corpus` under every policy; score each policy.

    memo=False: each run streams alone, as one live stream, and pays its own way: its time, model calls
    and computation-aware AL (ms, at `rate` source words/s) are the cost columns.
    memo=True: the runs of `batch` sentences under all policies go together, sharing model calls and a
    memo of model answers (same translations and delays as batch=1 up to float rounding in near-ties,
    far faster; `jobs` processes share the batches out, same results); the cost columns then come from
    repeating the first `cost_limit` sentences the memo=False way (none if 0/None). `resume`: a folder
    where each finished batch is kept (psfuture.chunks), so the same run started again after a kill skips
    what was done (the timed runs are always repeated).
    """
    from tqdm import tqdm

    if not (isinstance(batch, int) and batch >= 1):
        raise ConfigError(f"batch={batch!r}: the number of sentences streamed together must be an integer >= 1")
    if not (isinstance(jobs, int) and jobs >= 1):
        raise ConfigError(f"jobs={jobs!r}: the number of sweep processes must be an integer >= 1")
    if not (isinstance(rate, (int, float)) and rate > 0):
        raise ConfigError(f"rate={rate!r}: the speaking rate must be a positive number of words per second")
    n_cost = min(cost_limit or 0, len(corpus)) if memo else len(corpus)
    bar = tqdm(total=(len(corpus) * memo + n_cost) * len(policies), desc=desc, disable=not progress, unit="run")
    cost = (_stream_timed(model, corpus.sources[:n_cost], corpus.references[:n_cost], policies, bar, rate,
                          **session_kw) if n_cost else None)
    store = ChunkStore(resume, model, policies, session_kw) if resume is not None and memo else None
    streamed = _stream_all(model, corpus.sources, policies, bar, batch, jobs, store, **session_kw) if memo else cost
    bar.close()
    words = sum(len(s.split()) for s in corpus.sources[:n_cost])
    scored, results = corpus.fingerprint(), []
    for i, (policy, o) in enumerate(zip(policies, streamed)):
        score, signature = bleu(o.predictions, corpus.references)
        lat = latency_scores(corpus.sources, corpus.references, o.delays, o.predictions)
        c = cost[i] if cost else None
        results.append(Result(policy.name, policy.settings(), policy.signature(), score, **lat,
                              sentences=len(corpus),
                              seconds_per_sentence=c.seconds / n_cost if c else None,
                              calls_per_word=c.calls / words if c else None,
                              CA_AL_ms=sum(c.ca_al_ms) / len(c.ca_al_ms) if c and c.ca_al_ms else None,
                              cost_sentences=n_cost, rate=rate, precision=model.info.get("precision", "float32"),
                              corpus=scored,
                              bleu_signature=signature,
                              model_sha256=model.info.get("sha256", ""), model=model.info.get("name", ""),
                              predictions=o.predictions, delays=o.delays))
    return results


# ---- grids -----------------------------------------------------------------------------------------
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


# ---- calibration -----------------------------------------------------------------------------------
def calibrate(model: Model, dev: Corpus, base: PsFuture | None = None, progress: bool = True, batch: int = 16,
              jobs: int = 1, thresholds: Sequence[float] | None = None, **session_kw) -> Calibration:
    """(AL, threshold) points of `base` on `dev` over `thresholds` (default: THRESHOLDS of its divergence)."""
    base = base or PsFuture()
    grid = thresholds or THRESHOLDS[base.divergence]
    results = run(model, dev, [dataclasses.replace(base, threshold=t) for t in grid],
                  memo=True, batch=batch, jobs=jobs, progress=progress, desc="calibrate", **session_kw)
    settings = {k: v for k, v in base.settings().items() if k != "threshold"}
    return Calibration(model.info.get("sha256", ""), base.name, settings,
                       [(r.AL, r.settings["threshold"]) for r in results],
                       precision=model.info.get("precision", "float32"), dev=f"{dev.name} ({len(dev)} sentences)")
