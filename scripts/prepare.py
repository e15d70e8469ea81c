#!/usr/bin/env python
"""Tokenize a parallel corpus with one joint SentencePiece model and binarize it for fairseq.

    python scripts/prepare.py --corpus data/corpus --out data/bin --vocab-size 8000

Reads <corpus>/{train,valid,test}.{de,en}; writes <out>/spm.model, the joined dictionary and
fairseq's binary splits. Deterministic for a given corpus.

    python scripts/prepare.py --corpus data/corpus --out data/bin --model checkpoints/offline

reuses a model directory's SentencePiece model and dictionary instead (to fine-tune that model,
e.g. with P2F, on a corpus built later). `--asr-share 0.2` gives a fixed-seed fifth of the training
sources as a speech recognizer emits them (lowercased, no punctuation; targets unchanged), so the model
learns to translate such input too; valid and test stay as written.
"""
import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import sentencepiece as spm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from psfuture.corpus.asr import asr_like, asr_rows  # noqa: E402

SRC, TGT = "de", "en"
SPLITS = ("train", "valid", "test")


def train_spm(corpus: Path, out: Path, vocab_size: int, threads: int) -> Path:
    prefix = out / "spm"
    spm.SentencePieceTrainer.train(
        input=[str(corpus / f"train.{SRC}"), str(corpus / f"train.{TGT}")],
        model_prefix=str(prefix),
        vocab_size=vocab_size,
        model_type="unigram",
        character_coverage=1.0,
        # fairseq's dictionary owns the specials; keep SentencePiece's out of the way.
        bos_id=-1, eos_id=-1, pad_id=-1, unk_id=0,
        input_sentence_size=2_000_000,
        shuffle_input_sentence=True,
        seed_sentencepiece_size=1_000_000,
        num_threads=threads,
        minloglevel=2,
    )
    return prefix.with_suffix(".model")


def encode(sp: spm.SentencePieceProcessor, src: Path, dst: Path, asr: set[int] = frozenset()) -> None:
    with src.open(encoding="utf-8") as fin, dst.open("w", encoding="utf-8") as fout:
        for i, line in enumerate(fin):
            line = asr_like(line) if i in asr else line.strip()
            fout.write(" ".join(sp.encode(line, out_type=str)) + "\n")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=Path("data/corpus"))
    ap.add_argument("--out", type=Path, default=Path("data/bin"))
    ap.add_argument("--vocab-size", type=int, default=8000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--model", type=Path, help="reuse this model directory's spm.model and dict.de.txt")
    ap.add_argument("--asr-share", type=float, default=0.0,
                    help="share of training sources made ASR-like: lowercased, no punctuation (default: 0)")
    args = ap.parse_args(argv)
    if not 0.0 <= args.asr_share <= 1.0:
        sys.exit(f"error: --asr-share {args.asr_share} must be between 0 and 1")

    for split in SPLITS:
        for lang in (SRC, TGT):
            if not (args.corpus / f"{split}.{lang}").is_file():
                sys.exit(f"error: {args.corpus / f'{split}.{lang}'} is missing; build the corpus first "
                         "(python scripts/build_data.py)")
    args.out.mkdir(parents=True, exist_ok=True)
    tok = args.out / "spm-text"
    tok.mkdir(exist_ok=True)
    if args.model:
        for f in ("spm.model", "dict.de.txt"):
            if not (args.model / f).is_file():
                sys.exit(f"error: {args.model / f} is missing; --model takes a model directory such as "
                         "checkpoints/offline")
        model = args.out / "spm.model"
        shutil.copyfile(args.model / "spm.model", model)
    else:
        model = train_spm(args.corpus, args.out, args.vocab_size, args.workers)
    sp = spm.SentencePieceProcessor(model_file=str(model))
    with (args.corpus / f"train.{SRC}").open(encoding="utf-8") as f:
        asr = asr_rows(sum(1 for _ in f), args.asr_share)
    for split in SPLITS:
        for lang in (SRC, TGT):
            encode(sp, args.corpus / f"{split}.{lang}", tok / f"{split}.{lang}",
                   asr if (split, lang) == ("train", SRC) else frozenset())
    for f in args.out.glob("dict.*.txt"):
        f.unlink()
    subprocess.run(
        [sys.executable, "-m", "fairseq_cli.preprocess", "--source-lang", SRC, "--target-lang", TGT,
         "--trainpref", str(tok / "train"), "--validpref", str(tok / "valid"), "--testpref", str(tok / "test"),
         "--destdir", str(args.out), "--joined-dictionary", "--workers", str(args.workers),
         *(["--srcdict", str(args.model / "dict.de.txt")] if args.model else [])],
        check=True,
    )
    print(f"prepared {args.out} (vocab {len(sp)} pieces; {len(asr)} training sources ASR-like)")


if __name__ == "__main__":
    main()
