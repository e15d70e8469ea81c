#!/usr/bin/env python
"""Long-form evaluation: talks of consecutive test sentences, each streamed as ONE stream word by word (no sentence
boundaries given), segmented inside the engine (psfuture.longform), the output re-segmented to the reference
sentences with mweralign (minimum WER), scored with BLEU and chrF (sacrebleu) and StreamLAAL / StreamAL (SimulEval's
LAAL and AL per re-segmented sentence, delays counted from the sentence's first source word, clipped at 0).
Against the oracle: the same policy on the same sentences given one at a time (the sentence-level sweep), same
model and precision, with sacrebleu's paired bootstrap at equal configuration and, for PsFuture's threshold curve,
at equal LAAL.

    python eval/longform.py --condition written --out eval/results/longform_written_test_full
    python eval/longform.py --condition asr --cut model --out eval/results/longform_asr_test_full

Two input conditions: `written` (the German as written) and `asr` (lowercased, punctuation removed, as many
speech recognizers emit it; the English references unchanged). Writes <out>/result.{json,md} and COMMAND.md.

    python eval/longform.py --ca 60 --out eval/results/longform_ca_written_test60

`--ca N` measures instead the computation-aware StreamAL on this machine: the first N sentences as one talk, each
configuration alone (no batching, empty caches), every step timed; source word i is spoken at i/rate s, a step
starts when its word has arrived and the previous step is done, and an English word appears when the step that
wrote it ends; SimulEval's computation-aware AL (ms) per re-segmented sentence, from the start of its speech.
Writes <out>/result_ca.{json,md}.
"""
from __future__ import annotations

import argparse
import json
import platform
import re
import shlex
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = {  # label -> (policy, settings): the README's policies, two points of PsFuture's curve and more
    "offline": ("offline", {}), "waitk k=3": ("waitk", {"k": 3}), "waitk k=5": ("waitk", {"k": 5}),
    "la n=2": ("la", {}), "alignatt frames=2": ("alignatt", {"frames": 2}),
    "psfuture 0.05": ("psfuture", {"threshold": 0.05}), "psfuture 0.1": ("psfuture", {"threshold": 0.1}),
    "psfuture 0.2": ("psfuture", {"threshold": 0.2}), "psfuture 0.4": ("psfuture", {"threshold": 0.4}),
}


def talks(sources: list[str], size: int) -> list[range]:
    return [range(i, min(i + size, len(sources))) for i in range(0, len(sources), size)]


def stream_talks(model, policies, segmenter, sources, groups, session_kw, contexts=None):
    """Every (talk, policy) as one LongSession, all in lockstep: one word each per round, model calls shared."""
    from psfuture.longform import LongSession
    from psfuture.session import run_batched

    runs = [(g, p) for g in range(len(groups)) for p in range(len(policies))]
    words = [[w for i in groups[g] for w in sources[i].split()] for g, _ in runs]
    contexts = contexts or ["none"] * len(policies)
    streams = [LongSession(model, policies[p], segmenter, context=contexts[p], **session_kw) for _, p in runs]
    model.reserve(len(streams))
    for r in range(max(map(len, words))):
        active = []
        for s, w in zip(streams, words):
            if r < len(w):
                s.push([w[r]], run=False, last=r == len(w) - 1)
                active.append(s)
        run_batched(model, active)
    return {(g, p): s for (g, p), s in zip(runs, streams)}


def resegment(stream, sources, references, group):
    """The talk's output cut into one line per reference sentence, with each word's delay counted from the first
    source word of its sentence."""
    import mweralign

    ref = "\n".join(references[i] for i in group)
    hyp = " ".join(stream.target_words)
    lines = mweralign.align_texts(ref, hyp).split("\n") if hyp else [""] * len(group)
    lines = (lines + [""] * len(group))[:len(group)]
    starts, n = [], 0
    for i in group:
        starts.append(n)
        n += len(sources[i].split())
    out, k = [], 0
    for line, start, i in zip(lines, starts, group):
        ws = line.split()
        delays = [min(max(d - start, 0), len(sources[i].split())) for d in stream.delays[k:k + len(ws)]]
        out.append((" ".join(ws), delays))
        k += len(ws)
    assert k == len(stream.target_words), "re-segmentation changed the words"
    return out


def omni_scores(streams, sources, references, groups) -> dict:
    """OmniSTEval's own long-form scoring of the same streams: its re-segmentation (SoftSegmenter), BLEU, chrF and
    LongYAAL. Time is counted in source words (word i of a talk ends at i + 1), so YAAL is in words like StreamLAAL."""
    from omnisteval.alignment import Word
    from omnisteval.resegment import resegment as omni_resegment
    from omnisteval.scoring import evaluate_instances

    ref_words, hyp_words, segmentation, refs = [], [], [], []
    for stream, group in zip(streams, groups):
        lengths = [len(sources[i].split()) for i in group]
        end, offset = sum(lengths), 0
        ref_words.append([])
        for k, (i, n) in enumerate(zip(group, lengths)):
            seq = len(segmentation)
            segmentation.append({"offset": offset, "duration": n, "time_to_recording_end": end - offset,
                                 "doc_id": len(ref_words) - 1, "seg_id": k})
            ref_words[-1] += [Word(w, emission_cu=offset, seq_id=seq) for w in references[i].lower().split()]
            refs.append(references[i])
            offset += n
        hyp_words.append([Word(w, emission_cu=d) for w, d in zip(stream.target_words, stream.delays)])
    instances, _ = omni_resegment(ref_words, hyp_words, segmentation, refs, lang="en")
    scores = evaluate_instances(instances, is_longform=True)[0]
    return {"BLEU": round(scores["bleu"], 2), "chrF": round(scores["chrf"], 2),
            "LongYAAL": round(scores["long_yaal"], 3), "LAAL": round(scores["long_laal"], 3)}


def score(sources, references, predictions, delays):
    from sacrebleu.metrics import CHRF

    from psfuture.experiments.metrics import bleu, latency_scores

    b, signature = bleu(predictions, references)
    chrf = CHRF()
    # SimulEval's scorers need a word to score: an empty line is scored as one word written at its end.
    lat = latency_scores(sources, references, [d or [len(s.split())] for s, d in zip(sources, delays)],
                         [p or "-" for p in predictions])
    return {"BLEU": round(b, 2), "chrF": round(chrf.corpus_score(predictions, [references]).score, 2),
            "LAAL": round(lat["LAAL"], 3), "AL": round(lat["AL"], 3), "bleu_signature": signature,
            "chrf_signature": str(chrf.get_signature())}


def main(argv=None) -> None:
    from psfuture.backends.base import ModelSpec

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ModelSpec.add_args(ap)
    ap.add_argument("--src", type=Path, default=ROOT / "data/corpus/test.de")
    ap.add_argument("--ref", type=Path, default=ROOT / "data/corpus/test.en")
    ap.add_argument("--limit", type=int, help="first N sentences only (a smoke check, not a result)")
    ap.add_argument("--talk", type=int, default=200, help="consecutive sentences per stream (default: %(default)s)")
    ap.add_argument("--condition", choices=("written", "asr"), default="written")
    ap.add_argument("--cut", default="punctuation", help="cut rules, comma-separated: punctuation, model, none "
                    "(length only) (default: %(default)s)")
    ap.add_argument("--model-eos", type=float, default=0.5)
    ap.add_argument("--max-words", type=int, default=60)
    ap.add_argument("--context", choices=("none", "previous", "both"), default="none",
                    help="what a segment carries from the one before (both: each config with either, compared)")
    ap.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated labels of " + ", ".join(CONFIGS))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ca", type=int, metavar="N", help="only the computation-aware run, on the first N sentences")
    ap.add_argument("--rate", type=float, default=2.5, help="source words per second for --ca (default: %(default)s)")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)

    import torch

    from psfuture.backends import load
    from psfuture.experiments import significance
    from psfuture.experiments.report import cpu_facts
    from psfuture.experiments import sweep
    from psfuture.experiments.metrics import Corpus, read_corpus
    from psfuture.segmenter import Segmenter
    from psfuture.policies import make_policy

    torch.set_num_threads(args.threads)
    model = load(ModelSpec.from_args(args))
    corpus = read_corpus(args.src, args.ref, args.limit)
    from psfuture.corpus.asr import asr_like

    sources = [asr_like(s) if args.condition == "asr" else s for s in corpus.sources]
    keep = [i for i, s in enumerate(sources) if s]
    sources, references = [sources[i] for i in keep], [corpus.references[i] for i in keep]
    rules = set(re.split(r"[,+]", args.cut))
    segmenter = Segmenter(punctuation="punctuation" in rules, model="model" in rules, model_eos=args.model_eos,
                          max_words=args.max_words)
    labels = args.configs.split(",")
    policies = [make_policy(CONFIGS[x][0], **CONFIGS[x][1]) for x in labels]
    contexts = ["previous" if args.context == "previous" else "none"] * len(labels)
    base = list(range(len(labels)))  # run -> its policy's oracle
    if args.context == "both":
        base, contexts = base + base, contexts + ["previous"] * len(labels)
        labels, policies = labels + [x + " (previous)" for x in labels], policies + policies
    groups = talks(sources, args.talk)
    cap = {"max_len_a": 2.0, "max_len_b": 10}
    if args.ca:
        return computation_aware(args, model, policies, labels, segmenter, sources[:args.ca], references[:args.ca],
                                 cap)

    start = time.perf_counter()
    streams = stream_talks(model, policies, segmenter, sources, groups, cap, contexts)
    long_s = time.perf_counter() - start
    oracle = {}
    start = time.perf_counter()
    given = Corpus(sources, references, corpus.name)  # the sentence-level sweep: one sentence at a time, batched
    unique = policies[:max(base) + 1]
    for p, result in enumerate(sweep.run(model, given, unique, memo=True, batch=16, progress=False, **cap)):
        for i, (text, delays) in enumerate(zip(result.predictions, result.delays)):
            oracle[i, p] = (text, delays)
    oracle_s = time.perf_counter() - start

    oracle = {(i, p): oracle[i, b] for i in range(len(sources)) for p, b in enumerate(base)}
    rows, curves, texts = [], {"long-form": [], "oracle": []}, {}
    for p, label in enumerate(labels):
        lines = [line for g, group in enumerate(groups) for line in resegment(streams[g, p], sources, references, group)]
        long = score(sources, references, [t for t, _ in lines], [d for _, d in lines])
        orc = score(sources, references, [oracle[i, p][0] for i in range(len(sources))],
                    [list(oracle[i, p][1]) for i in range(len(sources))])
        [cmp] = significance.compare_curves({"long-form": [(0.0, [t for t, _ in lines])],
                                              "oracle": [(0.0, [oracle[i, p][0] for i in range(len(sources))])]},
                                             [("long-form", "oracle")], references, "config", 0.0)
        texts[label] = [t for t, _ in lines]
        omni = omni_scores([streams[g, p] for g in range(len(groups))], sources, references, groups)
        segs = [s for g in range(len(groups)) for s in streams[g, p].segments]
        rows.append({"config": label, "policy": policies[p].signature(), "long_form": long, "omnisteval": omni,
                     "oracle": orc,
                     "share": round(long["BLEU"] / orc["BLEU"], 4) if orc["BLEU"] else None,
                     "delta": round(cmp.delta, 2), "ci": [round(x, 2) for x in cmp.ci], "p": cmp.p,
                     "segments": len(segs), "cuts": {c: sum(s.cut == c for s in segs) for c in {s.cut for s in segs}}})
        if policies[p].name == "psfuture" and contexts[p] == contexts[0]:
            curves["long-form"].append((long["LAAL"], [t for t, _ in lines]))
            curves["oracle"].append((orc["LAAL"], [oracle[i, p][0] for i in range(len(sources))]))
    at_equal = []
    for at in (2.0, 3.0, 4.0):
        for c in significance.compare_curves({k: sorted(v, key=lambda x: x[0]) for k, v in curves.items()},
                                             [("long-form", "oracle")], references, "LAAL", at):
            at_equal.append({"LAAL": at, "long_form": round(c.bleu_a, 2), "oracle": round(c.bleu_b, 2),
                             "share": round(c.bleu_a / c.bleu_b, 4), "delta": round(c.delta, 2),
                             "ci": [round(x, 2) for x in c.ci], "p": c.p, "signature": c.signature})
    context = []  # previous segment as context vs none, same policy, paired
    for label in labels[:len(labels) // 2] if args.context == "both" else []:
        [c] = significance.compare_curves({"previous": [(0.0, texts[label + " (previous)"])],
                                            "none": [(0.0, texts[label])]},
                                           [("previous", "none")], references, "config", 0.0)
        context.append({"config": label, "previous": round(c.bleu_a, 2), "none": round(c.bleu_b, 2),
                        "delta": round(c.delta, 2), "ci": [round(x, 2) for x in c.ci], "p": c.p})
    result = {"command": "python eval/longform.py " + shlex.join(sys.argv[1:] if argv is None else argv),
              "model": {k: model.info.get(k) for k in ("name", "sha256", "precision", "device")},
              "corpus": corpus.fingerprint(), "condition": args.condition, "sentences": len(sources),
              "talks": len(groups), "words_per_talk": round(sum(len(s.split()) for s in sources) / len(groups)),
              "segmenter": segmenter.signature() + f", context={args.context}", "rows": rows,
              "psfuture_at_equal_laal": at_equal, "context": context,
              "seconds": {"long_form": round(long_s), "oracle": round(oracle_s)},
              **cpu_facts(), "torch": torch.__version__,
              "python": platform.python_version()}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "result.json").write_text(json.dumps(result, indent=1) + "\n")
    (args.out / "result.md").write_text(markdown(result))
    (args.out / "COMMAND.md").write_text(f"```\n{result['command']}\n```\n")
    print(markdown(result))


def computation_aware(args, model, policies, labels, segmenter, sources, references, cap) -> None:
    from simuleval.evaluator.scorers.latency_scorer import ALScorer

    from psfuture.experiments.metrics import _Timed
    from psfuture.experiments.report import cpu_facts
    from psfuture.longform import LongSession

    group = range(len(sources))
    words = [w for s in sources for w in s.split()]
    starts = [sum(len(s.split()) for s in sources[:i]) for i in group]
    rows = []
    for label, policy in zip(labels, policies):
        model.clear_cache()
        stream, end, ends, spent = LongSession(model, policy, segmenter, **cap), 0.0, [], 0.0
        for i, word in enumerate(words, 1):
            t = time.perf_counter()
            stream.push([word], last=i == len(words))
            step = time.perf_counter() - t
            end, spent = max(end, i / args.rate) + step, spent + step
            ends.append(1000 * end)
        lines = resegment(stream, sources, references, group)
        als, k = [], 0
        for (text, _), start, i in zip(lines, starts, group):
            n = len(text.split())
            if n:
                spoken = 1000 * start / args.rate
                ins = _Timed(elapsed=[ends[d - 1] - spoken for d in stream.delays[k:k + n]], reference=references[i],
                             reference_length=len(references[i].split(" ")),
                             source_length=1000 * len(sources[i].split()) / args.rate)
                als.append(float(ALScorer(computation_aware=True, use_ref_len=True).compute(ins)))
            k += n
        rows.append({"config": label, "policy": policy.signature(), "ca_stream_al_ms": round(sum(als) / len(als)),
                     "compute_ms_per_word": round(1000 * spent / len(words), 1),
                     "behind_at_end_s": round(ends[-1] / 1000 - len(words) / args.rate, 2)})
    result = {"command": "python eval/longform.py " + shlex.join(sys.argv[1:]), "rate": args.rate,
              "model": {k: model.info.get(k) for k in ("name", "sha256", "precision", "device")},
              "condition": args.condition, "sentences": len(sources), "words": len(words),
              "segmenter": segmenter.signature(), "torch_threads": args.threads, "rows": rows,
              **cpu_facts()}
    m = result["model"]
    md = [f"# Computation-aware StreamAL on this machine: {args.condition} input", "",
          f"- the first {len(sources)} test sentences ({len(words)} words) as one talk at {args.rate:g} words/s, each "
          f"configuration alone; {result['segmenter']}",
          f"- model `{m['name']}` sha256 `{m['sha256'][:16]}`, {m['precision']} on {m['device']}, {args.threads} torch "
          f"thread(s); {result['cpu']} (native bfloat16: {result['native_bfloat16']})",
          f"- `{result['command']}`", "",
          "| config | CA StreamAL (ms) | compute ms per word | behind the speaker at the end (s) |", "|---|---:|---:|---:|"]
    md += [f"| {r['config']} | {r['ca_stream_al_ms']} | {r['compute_ms_per_word']} | {r['behind_at_end_s']} |"
           for r in rows]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "result_ca.json").write_text(json.dumps(result, indent=1) + "\n")
    (args.out / "result_ca.md").write_text("\n".join(md) + "\n")
    (args.out / "COMMAND.md").write_text(f"```\n{result['command']}\n```\n")
    print("\n".join(md))


def markdown(r: dict) -> str:
    m = r["model"]
    lines = [f"# Long-form vs oracle segmentation: {r['condition']} input", "",
             f"- {r['sentences']} sentences of {r['corpus']} as {r['talks']} streams of ~{r['words_per_talk']} words "
             f"({r['condition']}); {r['segmenter']}",
             f"- model `{m['name']}` sha256 `{m['sha256'][:16]}`, {m['precision']} on {m['device']}; {r['cpu']} "
             f"(native bfloat16: {r['native_bfloat16']}), torch {r['torch']}",
             f"- long-form re-segmented with mweralign; StreamLAAL/StreamAL = SimulEval's LAAL/AL per re-segmented "
             f"sentence; BLEU `{r['rows'][0]['long_form']['bleu_signature']}`, chrF "
             f"`{r['rows'][0]['long_form']['chrf_signature']}`; paired bootstrap 1,000 resamples, seed 12345",
             f"- `{r['command']}` ({r['seconds']['long_form']} s long-form, {r['seconds']['oracle']} s oracle)", "",
             "| config | long-form BLEU | chrF | StreamLAAL | StreamAL | oracle BLEU | chrF | LAAL | AL | share | "
             "delta [95% CI] | p | segments (cuts) |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---|"]
    for row in r["rows"]:
        a, o = row["long_form"], row["oracle"]
        cuts = ", ".join(f"{k} {v}" for k, v in sorted(row["cuts"].items()))
        lines.append(f"| {row['config']} | {a['BLEU']:.2f} | {a['chrF']:.2f} | {a['LAAL']:.2f} | {a['AL']:.2f} | "
                     f"{o['BLEU']:.2f} | {o['chrF']:.2f} | {o['LAAL']:.2f} | {o['AL']:.2f} | "
                     f"{100 * (row['share'] or 0):.1f}% | {row['delta']:+.2f} [{row['ci'][0]:+.2f}, {row['ci'][1]:+.2f}] "
                     f"| {row['p']:.3f} | {row['segments']} ({cuts}) |")
    if all("omnisteval" in row for row in r["rows"]):
        lines += ["", "The same streams scored by OmniSTEval 0.1.10 (its own re-segmentation; time in source words):", "",
                  "| config | BLEU | chrF | LongYAAL | LongLAAL |", "|---|---:|---:|---:|---:|"]
        lines += [f"| {row['config']} | {o['BLEU']:.2f} | {o['chrF']:.2f} | {o['LongYAAL']:.2f} | {o['LAAL']:.2f} |"
                  for row in r["rows"] for o in [row["omnisteval"]]]
    if r["psfuture_at_equal_laal"]:
        lines += ["", "PsFuture at equal LAAL (each curve interpolated between its thresholds):", "",
                  "| LAAL | long-form BLEU | oracle BLEU | share | delta [95% CI] | p |", "|---:|---:|---:|---:|---|---:|"]
        for e in r["psfuture_at_equal_laal"]:
            lines.append(f"| {e['LAAL']:g} | {e['long_form']:.2f} | {e['oracle']:.2f} | {100 * e['share']:.1f}% | "
                         f"{e['delta']:+.2f} [{e['ci'][0]:+.2f}, {e['ci'][1]:+.2f}] | {e['p']:.3f} |")
    if r.get("context"):
        lines += ["", "The previous segment as context (its source before the segment's, its translation as a forced "
                  "prefix) against none, same policy, long-form BLEU:", "",
                  "| config | previous | none | delta [95% CI] | p |", "|---|---:|---:|---|---:|"]
        lines += [f"| {c['config']} | {c['previous']:.2f} | {c['none']:.2f} | {c['delta']:+.2f} "
                  f"[{c['ci'][0]:+.2f}, {c['ci'][1]:+.2f}] | {c['p']:.3f} |" for c in r["context"]]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
