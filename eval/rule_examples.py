#!/usr/bin/env python
"""The issue's verb-final examples under PsFuture's defaults and each decision-rule option alone.

    python eval/rule_examples.py [--model checkpoints/offline]

Prints, per configuration, the output and each target word's delay (source words read when it was written).
"""
import argparse

import torch

from psfuture.backends import ModelSpec, load
from psfuture.policies import Offline, PsFuture
from psfuture.experiments.sweep import stream

SENTENCES = ["Die Orks haben das Dorf im Norden angegriffen.",
             "Wenn Sie die Datei speichern wollen, klicken Sie auf Speichern."]
CONFIGS = [Offline(), PsFuture(), PsFuture(divergence="cos", threshold=0.03), PsFuture(agree=True),
           PsFuture(futures=2), PsFuture(min_read=3), PsFuture(write_from="q")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ModelSpec.add_args(ap)
    args = ap.parse_args()
    torch.set_num_threads(1)
    model = load(ModelSpec.from_args(args))
    default = PsFuture().settings()
    print(f"model {model.info.get('name')} sha256 {model.info.get('sha256')}\n")
    print("| configuration | output | delays |\n|---|---|---|")
    for policy in CONFIGS:
        changed = {k: v for k, v in policy.settings().items() if v != default.get(k)}
        label = policy.name + "".join(f" {k}={v}" for k, v in changed.items()) if policy.name == "psfuture" else policy.name
        for sentence in SENTENCES:
            s = stream(model, policy, sentence, max_len_a=2.0, max_len_b=10)
            print(f"| {label} | {s.text} | {' '.join(map(str, s.delays))} |")


if __name__ == "__main__":
    main()
