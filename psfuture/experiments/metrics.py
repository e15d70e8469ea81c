"""What a sweep scores: the corpus, SimulEval's latency scorers, sacrebleu's BLEU, a computation-aware AL, and
the result record that carries every signature (model sha256, policy settings, precision, sacrebleu signature)."""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from psfuture.errors import ConfigError

LATENCY = ("AL", "LAAL", "DAL", "AP", "ATD")


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
