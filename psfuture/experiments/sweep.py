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
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from psfuture.backends.base import ModelBackend as Model
from psfuture.backends.wrappers import Memo
from psfuture.calibration import Calibration
from psfuture.errors import ConfigError
from psfuture.experiments.chunks import ChunkStore
from psfuture.experiments.grids import (KNOBS, RULE_SETTINGS, RULES, THRESHOLDS, ablation_grid,  # noqa: F401
                                        curve_label, main_grid, parse_grid, parse_thresholds)
from psfuture.experiments.metrics import (LATENCY, Corpus, Result, bleu, computation_aware_al,  # noqa: F401
                                          latency_scores, read_corpus)
from psfuture.policies import Policy, PsFuture
from psfuture.session import Session, run_batched

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
    front = Memo(model)
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
    model.reserve(batch * len(policies))  # every live run's states fit
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
    where each finished batch is kept (psfuture.experiments.chunks), so the same run started again after a kill skips
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
