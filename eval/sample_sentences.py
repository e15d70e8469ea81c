#!/usr/bin/env python
"""The demo's five sentences and issue 23's two everyday ones through each model, offline (greedy) and PsFuture at
the demo's default, side by side: what a newcomer sees. Seven sentences: a smoke check to read, not a score.

    python eval/sample_sentences.py --models checkpoints/offline build/ft_asr_model_u350_last \
        --out eval/results/sample_sentences_ft2

Writes <out>/result.md and COMMAND.md; the translations come from `psfuture translate` (the front end itself).
"""
import argparse
import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
POLICIES = {"offline (greedy)": ["--policy", "offline"], "PsFuture (demo default)": []}


def translate(model: str, flags: list[str], text: str) -> tuple[list[str], str]:
    run = subprocess.run([sys.executable, "-m", "psfuture.cli", "translate", "--model", model, *flags],
                         input=text, capture_output=True, text=True, cwd=ROOT)
    if run.returncode:  # the front end's own message (a bad --model, say), not a traceback of ours
        last = run.stderr.strip().splitlines()[-1:] or ["(no message)"]
        sys.exit(f"sample_sentences: psfuture translate --model {model} failed:\n{last[0]}")
    sha = re.search(r"sha256 ([0-9a-f]+)", run.stderr)
    return run.stdout.splitlines(), sha.group(1)[:8] if sha else "?"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", required=True, help="model directories")
    ap.add_argument("--sentences", type=Path, default=ROOT / "eval/data/sample_sentences.de")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    text = args.sentences.read_text(encoding="utf-8")
    sources = text.splitlines()
    columns = {}
    for model in args.models:
        for label, flags in POLICIES.items():
            lines, sha = translate(model, flags, text)
            columns[f"{Path(model).name} `{sha}` {label}"] = lines
    rows = ["| German | " + " | ".join(columns) + " |", "| --- |" + " --- |" * len(columns)]
    rows += [f"| {src} | " + " | ".join(c[i] if i < len(c) else "" for c in columns.values()) + " |"
             for i, src in enumerate(sources)]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "result.md").write_text(
        "# Sample sentences (a smoke check: seven sentences, read, not scored)\n\n"
        "Each column: model folder, sha256 of its checkpoint, policy (`psfuture translate`, default precision).\n\n"
        + "\n".join(rows) + "\n", encoding="utf-8")
    (args.out / "COMMAND.md").write_text(
        "```bash\npython eval/sample_sentences.py " + shlex.join(argv if argv is not None else sys.argv[1:])
        + "\n```\n", encoding="utf-8")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
