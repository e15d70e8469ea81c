#!/usr/bin/env python
"""Offline BLEU of a model directory on a test set: greedy and beam search, sacrebleu signatures.

    python eval/offline_bleu.py                                  # shipped model, GNOME test set
    python eval/offline_bleu.py --model checkpoints/p2f --beams 1 4

Writes eval/results/offline_bleu_<model name, - as _>_test_full/result.{json,md} (or --out DIR); the model card
quotes these files.
"""
import argparse
import json
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def translate_all(model, sources: list[str], beam: int, chunk: int = 64) -> list[str]:
    from tqdm import tqdm

    order = sorted(range(len(sources)), key=lambda i: len(sources[i]))  # similar lengths batch with less padding
    hyps: list[str] = [""] * len(sources)
    for start in tqdm(range(0, len(order), chunk), desc=f"beam {beam}", unit="chunk"):
        idx = order[start:start + chunk]
        for i, h in zip(idx, model.translate([sources[i] for i in idx], beam=beam)):
            hyps[i] = h
    return hyps


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--src", type=Path, default=ROOT / "data/corpus/test.de")
    ap.add_argument("--ref", type=Path, default=ROOT / "data/corpus/test.en")
    ap.add_argument("--beams", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--limit", type=int)
    ap.add_argument("--out", type=Path, help="output folder (default: eval/results/offline_bleu_<model>_test_full)")
    ap.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    from psfuture.backends.base import ModelSpec
    ModelSpec.add_args(ap)
    args = ap.parse_args(argv)
    for f in (args.src, args.ref):
        if not f.is_file():
            sys.exit(f"error: {f} not found; build the corpus with `python scripts/build_data.py` or pass --src/--ref")

    from psfuture.errors import PsFutureError
    from psfuture.backends import load
    from psfuture.experiments.sweep import bleu, read_corpus

    if args.threads:
        import torch
        torch.set_num_threads(args.threads)
    try:
        model = load(ModelSpec.from_args(args))
    except PsFutureError as e:
        sys.exit(f"error: {e}")
    corpus = read_corpus(args.src, args.ref, args.limit)
    rows = []
    for beam in args.beams:
        t0 = time.perf_counter()
        hyps = translate_all(model, list(corpus.sources), beam)
        seconds = time.perf_counter() - t0
        score, signature = bleu(hyps, corpus.references)
        rows.append({"beam": beam, "bleu": round(score, 2), "sacrebleu": signature,
                     "seconds_per_sentence": round(seconds / len(hyps), 4)})
        print(f"beam {beam}: BLEU {score:.2f}  ({signature})", flush=True)
    meta = model.info
    result = {"model": meta["name"], "model_sha256": meta["sha256"], "test_set": str(args.src.relative_to(ROOT))
              if args.src.is_relative_to(ROOT) else str(args.src), "sentences": len(corpus.sources),
              "hardware": f"{platform.machine()}, {__import__('os').cpu_count()} CPU cores", "results": rows,
              "command": "python eval/offline_bleu.py " + " ".join(argv if argv is not None else sys.argv[1:])}
    out = args.out or ROOT / "eval/results" / f"offline_bleu_{meta['name'].replace('-', '_')}_test_full"
    out.mkdir(parents=True, exist_ok=True)
    stem = out / "result"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [f"# Offline BLEU: {meta['name']}", "",
             f"Model sha256 `{meta['sha256']}`; test set `{result['test_set']}` ({len(corpus.sources)} sentences); "
             f"{result['hardware']}; command `{result['command']}`.", "",
             "| decoding | BLEU | s/sentence | sacrebleu signature |", "| --- | ---: | ---: | --- |"]
    lines += [f"| {'greedy' if r['beam'] == 1 else 'beam ' + str(r['beam'])} | {r['bleu']:.2f} | "
              f"{r['seconds_per_sentence']:.3f} | `{r['sacrebleu']}` |" for r in rows]
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(stem.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
