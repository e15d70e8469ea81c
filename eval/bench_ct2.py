#!/usr/bin/env python
"""Side-by-side anchor: offline greedy decoding of one test set by our engine and by CTranslate2.

    pip install -e '.[ct2]' && python eval/bench_ct2.py            # shipped model, GNOME test set, 1 and 2 threads
    python eval/bench_ct2.py --threads 1 --limit 200 --session     # also the Session offline policy, both adapters

Equal work: the same sentences in the same batches (sorted by length, --batch-size), the same
length cap (fairseq's a * longest source + b per batch), greedy search. Batches alternate between
the engines (which goes first flips every batch), so load from other jobs hits both alike.
Converts the model to build/ct2/<name> on first use. Writes eval/results/bench_ct2_test_full/result.{json,md}.
"""
import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTES = """\
Running the policies through CTranslate2: psfuture/backends/ct2.py is that adapter (tests/backends/test_ct2.py
checks its log-probs, attention, sessions and translations against the fairseq adapter). It asks
`translate_batch(target_prefix=..., max_decoding_length=len(prefix) + 1, return_logits_vocab=True,
return_attention=True, return_end_token=True)` and log-softmaxes the logits at position len(prefix);
CTranslate2 drops the source EOS column from the attention, which the adapter restores as 1 - sum.
What it lacks is state: the Translator API keeps no encoder output or decoder state between calls,
so every policy step re-encodes the source and re-runs the whole prefix, where the fairseq adapter
caches encoder outputs and extends decoder states by one step. That loses more than CTranslate2's
faster kernels win: see the `Session Offline` rows (`--session`). To win on the policy path it would
take CTranslate2's C++ API (its Encoder/Decoder layers with a DecoderState kept per stream), i.e. a
compiled extension, not a Python adapter; its attention also comes from one layer fixed at conversion."""


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    from psfuture.backends import ModelSpec
    ModelSpec.add_args(ap)  # the fairseq side; CTranslate2 converts the same directory
    ap.add_argument("--src", type=Path, default=ROOT / "data/corpus/test.de")
    ap.add_argument("--ref", type=Path, default=ROOT / "data/corpus/test.en")
    ap.add_argument("--limit", type=int, help="first N sentences only (labelled as a sample)")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="intra-op threads for both engines")
    ap.add_argument("--batch-size", type=int, default=16, help="sentences per batch (Model.translate's default)")
    ap.add_argument("--session", action="store_true",
                    help="also decode through Session with the Offline policy: fairseq adapter vs CT2 adapter")
    ap.add_argument("--out", type=Path, default=ROOT / "eval/results/bench_ct2_test_full")
    args = ap.parse_args(argv)

    import ctranslate2
    import torch
    from tqdm import tqdm

    from psfuture.backends.ct2 import CT2Model, convert
    from psfuture.backends import load
    from psfuture.policies import Offline
    from psfuture.experiments.sweep import bleu, read_corpus, stream

    model = load(ModelSpec.from_args(args))
    converted = convert(model.info["path"])
    corpus = read_corpus(args.src, args.ref, args.limit)
    order = sorted(range(len(corpus)), key=lambda i: len(model.encode(corpus.sources[i])))
    batches = [order[i:i + args.batch_size] for i in range(0, len(order), args.batch_size)]
    load = [os.getloadavg()[0]]
    rows, outputs = [], {}
    for threads in args.threads:
        torch.set_num_threads(threads)
        engines = {"fairseq SequenceGenerator": model,
                   "CTranslate2 translate_batch": CT2Model(model, converted, threads=threads)}
        names = list(engines)
        hyps = {n: [""] * len(corpus) for n in names}
        seconds = dict.fromkeys(names, 0.0)
        engines[names[1]].translate(corpus.sources[:2], beam=1)  # first-call allocations: not steady state
        for b, idx in enumerate(tqdm(batches, desc=f"{threads} thread(s)", unit="batch")):
            for n in names if b % 2 == 0 else names[::-1]:
                t0 = time.perf_counter()
                out = engines[n].translate([corpus.sources[i] for i in idx], beam=1, batch_size=len(idx))
                seconds[n] += time.perf_counter() - t0
                for i, h in zip(idx, out):
                    hyps[n][i] = h
        if args.session:  # the policy path: one sentence at a time through next_token
            ct2 = engines[names[1]]
            for n, adapter in (("Session Offline, fairseq adapter", model), ("Session Offline, CT2 adapter", ct2)):
                names.append(n)
                hyps[n], seconds[n] = [""] * len(corpus), 0.0
            for i in tqdm(range(len(corpus)), desc="session", unit="sentence"):
                pair = [(names[2], model), (names[3], ct2)]
                for n, adapter in pair if i % 2 == 0 else pair[::-1]:
                    adapter.clear_cache()
                    t0 = time.perf_counter()
                    hyps[n][i] = stream(adapter, Offline(), corpus.sources[i]).text
                    seconds[n] += time.perf_counter() - t0
        base = names[0]
        for n in names:
            score, signature = bleu(hyps[n], corpus.references)
            rows.append({"threads": threads, "engine": n, "sentences_per_s": round(len(corpus) / seconds[n], 2),
                         "speedup_vs_fairseq": round(seconds[base] / seconds[n], 2), "bleu": round(score, 2),
                         "identical_to_fairseq": sum(a == b for a, b in zip(hyps[n], hyps[base])),
                         "sacrebleu": signature})
            print(json.dumps(rows[-1]), flush=True)
        outputs[threads] = hyps
        load.append(os.getloadavg()[0])
    command = "python eval/bench_ct2.py " + " ".join(argv if argv is not None else sys.argv[1:])
    sample = f"first {len(corpus)} sentences (a sample)" if args.limit else f"all {len(corpus)} sentences"
    result = {"model": model.info["name"], "model_sha256": model.info["sha256"], "test_set": str(args.src),
              "sentences": len(corpus), "sample": bool(args.limit), "batch_size": args.batch_size,
              "ctranslate2": ctranslate2.__version__, "torch": torch.__version__,
              "hardware": f"{platform.machine()}, {os.cpu_count()} CPU cores",
              "load_average_1min": [round(x, 2) for x in load], "command": command, "results": rows}
    args.out.mkdir(parents=True, exist_ok=True)  # a folder: result.{json,md}
    (args.out / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [f"# Offline greedy: our engine vs CTranslate2 ({model.info['name']})", "",
             f"Model sha256 `{model.info['sha256']}`; `{args.src.name}` {sample}; batches of {args.batch_size} "
             f"sorted by length; CTranslate2 {ctranslate2.__version__} (float32), torch {torch.__version__}; "
             f"{result['hardware']}; 1-min load average {result['load_average_1min']} (before, after each "
             f"thread count: above 1-2 the machine was shared and the absolute numbers are slow).", "",
             f"Command: `{command}`", "",
             "| threads | engine | sentences/s | speed vs fairseq | BLEU | identical to fairseq |",
             "| ---: | --- | ---: | ---: | ---: | ---: |"]
    lines += [f"| {r['threads']} | {r['engine']} | {r['sentences_per_s']} | {r['speedup_vs_fairseq']}x | {r['bleu']:.2f} "
              f"| {r['identical_to_fairseq']}/{len(corpus)} |" for r in rows]
    lines += ["", f"sacrebleu `{rows[0]['sacrebleu']}`.", "", NOTES]
    (args.out / "result.md").write_text("\n".join(lines) + "\n")
    print((args.out / "result.md").read_text())


if __name__ == "__main__":
    main()
