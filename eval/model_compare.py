#!/usr/bin/env python
"""Offline (greedy) BLEU of several model directories on the same sentences, as written and ASR-like (lowercased,
no punctuation; references unchanged), each model against the first with sacrebleu's paired bootstrap, and how much
each model loses on ASR-like input.

    python eval/model_compare.py --models checkpoints/offline build/ft2_plain_model --out eval/results/compare_ft2_full

Writes <out>/result.{json,md} and COMMAND.md. Sets: the GNOME dev (valid) and test sets, whole unless --limit.
"""
import argparse
import json
import platform
import shlex
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "eval"))
from offline_bleu import translate_all  # noqa: E402

SETS = {"dev": ("valid.de", "valid.en"), "test": ("test.de", "test.en")}


def main(argv=None) -> None:
    from psfuture.backends.base import ModelSpec

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", required=True, help="model directories; the first is the baseline")
    ap.add_argument("--corpus", type=Path, default=ROOT / "data/corpus")
    ap.add_argument("--sets", default="dev,test", help="comma-separated: dev, test")
    ap.add_argument("--conditions", default="written,asr", help="comma-separated: written, asr")
    ap.add_argument("--beam", type=int, default=1, help="1: greedy (default)")
    ap.add_argument("--limit", type=int, help="first N sentences of each set (a smoke check, not a result)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, required=True)
    ModelSpec.add_args(ap, path_flag=None)
    args = ap.parse_args(argv)
    if len(set(args.models)) < len(args.models):
        ap.error("--models: each model once (the rows are told apart by their path)")

    import torch

    from psfuture.backends import load
    from psfuture.corpus.asr import asr_like
    from psfuture.experiments import significance
    from psfuture.experiments.metrics import bleu
    from psfuture.experiments.report import cpu_facts

    torch.set_num_threads(args.threads)
    models = [load(ModelSpec.from_args(args).replace(path=m)) for m in args.models]
    # The whole path: two models may share a name and a folder name (checkpoints/offline and an old one's copy).
    names = [f"{m.info.get('name')} ({d})" for m, d in zip(models, args.models)]
    rows, outputs, refs_of, start = [], {}, {}, time.perf_counter()
    for set_name in args.sets.split(","):
        src_file, ref_file = SETS[set_name]
        sources = (args.corpus / src_file).read_text(encoding="utf-8").splitlines()[:args.limit]
        refs = (args.corpus / ref_file).read_text(encoding="utf-8").splitlines()[:args.limit]
        refs_of[set_name] = refs
        for condition in args.conditions.split(","):
            given = [asr_like(s) if condition == "asr" else s for s in sources]
            hyps = [translate_all(m, given, args.beam) for m in models]
            outputs[set_name, condition] = hyps
            scores = [bleu(h, refs) for h in hyps]
            for k, (h, (b, signature)) in enumerate(zip(hyps, scores)):
                row = {"set": set_name, "condition": condition, "model": names[k], "BLEU": round(b, 2),
                       "sentences": len(refs), "signature": signature}
                if k:
                    [c] = significance.compare_curves({"model": [(0.0, h)], "base": [(0.0, hyps[0])]},
                                                       [("model", "base")], refs, "config", 0.0)
                    row.update(delta=round(c.delta, 2), ci=[round(x, 2) for x in c.ci], p=c.p)
                rows.append(row)
    loss = []  # what ASR-like input costs each model, per set, as a share of the first model's
    for set_name in args.sets.split(","):
        if {(set_name, "written"), (set_name, "asr")} - set(outputs):
            continue
        base = None
        for k, name in enumerate(names):
            by = {r["condition"]: r["BLEU"] for r in rows if r["set"] == set_name and r["model"] == name}
            entry = {"set": set_name, "model": name, "written": by["written"], "asr": by["asr"],
                     "loss": round(by["written"] - by["asr"], 2)}
            base = base or entry
            entry["share_of_baseline_loss"] = round(entry["loss"] / base["loss"], 3) if base["loss"] else None
            if k and base["loss"]:  # the share's 95% interval, paired bootstrap over the same resamples
                written, asr = outputs[set_name, "written"], outputs[set_name, "asr"]
                _, ci = significance.loss_share((written[k], asr[k]), (written[0], asr[0]), refs_of[set_name])
                entry["share_ci"] = [round(x, 3) for x in ci]
            loss.append(entry)
    result = {"command": "python eval/model_compare.py " + shlex.join(sys.argv[1:] if argv is None else argv),
              "models": [{"dir": d, **{k: m.info.get(k) for k in ("name", "sha256", "precision", "device")}}
                         for d, m in zip(args.models, models)],
              "beam": args.beam, "rows": rows, "asr_loss": loss, "seconds": round(time.perf_counter() - start),
              **cpu_facts(), "torch": torch.__version__, "python": platform.python_version()}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "result.json").write_text(json.dumps(result, indent=1) + "\n")
    (args.out / "result.md").write_text(markdown(result))
    (args.out / "COMMAND.md").write_text(f"```\n{result['command']}\n```\n")
    print(markdown(result))


def markdown(r: dict) -> str:
    decoding = "greedy" if r["beam"] == 1 else f"beam {r['beam']}"
    lines = [f"# Offline BLEU ({decoding}), as written and ASR-like, against `{r['models'][0]['name']}`", ""]
    lines += [f"- `{m['dir']}`: `{m['name']}` sha256 `{(m['sha256'] or '?')[:16]}`, {m['precision']} on {m['device']}"
              for m in r["models"]]
    lines += [f"- BLEU `{r['rows'][0]['signature']}`; paired bootstrap 1,000 resamples, seed 12345; {r['cpu']} (native bfloat16: {r['native_bfloat16']}), "
              f"torch {r['torch']}; {r['seconds']} s", f"- `{r['command']}`", "",
              "| set | input | model | sentences | BLEU | delta vs first [95% CI] | p |", "|---|---|---|---:|---:|---|---:|"]
    for row in r["rows"]:
        delta = f"{row['delta']:+.2f} [{row['ci'][0]:+.2f}, {row['ci'][1]:+.2f}] | {row['p']:.3f}" if "delta" in row \
            else "(baseline) | "
        lines.append(f"| {row['set']} | {row['condition']} | {row['model']} | {row['sentences']} | {row['BLEU']:.2f} "
                     f"| {delta} |")
    if r["asr_loss"]:
        lines += ["", "What ASR-like input costs (BLEU as written minus BLEU ASR-like):", "",
                  "| set | model | written | ASR-like | loss | share of the first model's loss [95% CI] |",
                  "|---|---|---:|---:|---:|---:|"]
        lines += [f"| {x['set']} | {x['model']} | {x['written']:.2f} | {x['asr']:.2f} | {x['loss']:.2f} | "
                  f"{x['share_of_baseline_loss']}"
                  + (f" [{x['share_ci'][0]}, {x['share_ci'][1]}]" if "share_ci" in x else "") + " |"
                  for x in r["asr_loss"]]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
