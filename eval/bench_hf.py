"""Cost per query of the two model adapters (fairseq, transformers) on the same work.

The work is a fixed replay, the same for every model whatever its weights say: for each sentence, each
source prefix (new source: whole-prefix decoding), two target tokens on it (the second extends the
first's cached state), then the rest of the reference on the full source (cached steps). Target
prefixes are the reference translation in the model's own tokenizer. Run one stream at a time and
8 streams batched into each next_token call (as the server batches).

    python eval/bench_hf.py                 # tiny pair (trained here, ~1 min) + shipped-size pair
    python eval/bench_hf.py --sizes shipped

Models: the shipped fairseq model vs a Marian of its size (same SentencePiece model, random weights:
cost does not depend on the weights); the tiny fairseq model of the tests vs the tests' tiny Marian.
Prints a markdown table; a benchmark, not a test: numbers depend on the machine and its load.
"""
from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
sys.path.insert(0, str(ROOT / "tests"))


def shipped_size_marian(out: Path) -> Path:
    """A randomly initialised Marian with the shipped model's shape and SentencePiece model."""
    import sentencepiece as spm

    from psfuture.backends.hf import _transformers

    tf = _transformers()
    info = json.loads((ROOT / "checkpoints/offline/model.json").read_text())
    sp = spm.SentencePieceProcessor(model_file=str(ROOT / "checkpoints/offline/spm.model"))
    vocab = {"</s>": 0, "<unk>": 1}  # Marian's order; pieces map to ids through vocab.json
    for i in range(sp.get_piece_size()):
        vocab.setdefault(sp.id_to_piece(i), len(vocab))
    vocab["<pad>"] = pad = len(vocab)
    out.mkdir(parents=True, exist_ok=True)
    for side in ("source", "target"):
        (out / f"{side}.spm").write_bytes((ROOT / "checkpoints/offline/spm.model").read_bytes())
    (out / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    tok = tf.MarianTokenizer(source_spm=str(out / "source.spm"), target_spm=str(out / "target.spm"),
                             vocab=str(out / "vocab.json"), eos_token="</s>", unk_token="<unk>", pad_token="<pad>")
    dim, ffn, heads = info["encoder_embed_dim"], info["encoder_ffn_embed_dim"], info["encoder_attention_heads"]
    cfg = tf.MarianConfig(vocab_size=len(vocab), d_model=dim, encoder_layers=info["encoder_layers"],
                          decoder_layers=info["decoder_layers"], encoder_attention_heads=heads,
                          decoder_attention_heads=heads, encoder_ffn_dim=ffn, decoder_ffn_dim=ffn,
                          max_position_embeddings=1024, pad_token_id=pad, eos_token_id=0,
                          decoder_start_token_id=pad, forced_eos_token_id=0)
    torch.manual_seed(0)
    tf.MarianMTModel(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    (out / "model.json").write_text(json.dumps({"name": "marian-shipped-size-random"}))
    return out


def tiny_fairseq(work: Path) -> Path:
    corpus, data, out = work / "corpus", work / "bin", work / "fairseq"
    corpus.mkdir(parents=True)
    for lang in ("de", "en"):
        lines = (FIXTURES / f"tiny.{lang}").read_text(encoding="utf-8").splitlines(keepends=True)
        (corpus / f"train.{lang}").write_text("".join(lines), encoding="utf-8")
        for split in ("valid", "test"):
            (corpus / f"{split}.{lang}").write_text("".join(lines[:50]), encoding="utf-8")
    for script, *args in (("prepare.py", "--corpus", corpus, "--out", data, "--vocab-size", "1000"),
                          ("train.py", "--data", data, "--work", work / "train", "--preset", "tiny", "--out", out,
                           "--name", "tiny-fairseq")):
        r = subprocess.run([sys.executable, str(ROOT / "scripts" / script), *map(str, args)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if r.returncode:
            sys.exit(f"scripts/{script} failed:\n{r.stderr[-2000:]}")
    return out


def workload(model, pairs) -> list[list]:
    """Per sentence, the list of next_token calls (each a list of queries) of the replay."""
    from psfuture.model import Query

    eos, out = model.vocab.eos, []
    for de, en in pairs:
        words, tgt, calls = de.split(), model.encode(en), []
        src = ()
        for i, w in enumerate(words):
            src += model.encode_word(w)
            j = min(i, len(tgt) - 2)
            calls += [[Query(src, tgt[:j])], [Query(src, tgt[:j + 1])]]
        full = src + (eos,)
        calls += [[Query(full, tgt[:j])] for j in range(len(tgt) + 1)]
        out.append(calls)
    return out


def measure(model, pairs, batch: int) -> dict:
    work = workload(model, pairs)
    model.clear_cache()
    model.next_token(work[0][0])  # warm-up (position tables, allocator)
    model.clear_cache()
    before, seconds, queries = dict(model.calls), model.seconds, 0
    for start in range(0, len(work), batch):
        group = work[start:start + batch]
        for step in range(max(map(len, group))):
            qs = [q for calls in group if step < len(calls) for q in calls[step]]
            model.next_token(qs)
            queries += len(qs)
    spent = model.seconds - seconds
    return {"queries": queries, "decoder_calls": model.calls["decoder"] - before.get("decoder", 0),
            "ms_per_query": 1000 * spent / queries, "seconds": spent}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", nargs="+", choices=("tiny", "shipped"), default=["tiny", "shipped"])
    ap.add_argument("--sentences", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: %(default)s)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    from hf_tiny import build_tiny_marian

    from psfuture.backends import ModelSpec, load

    de = (FIXTURES / "tiny.de").read_text(encoding="utf-8").splitlines()
    en = (FIXTURES / "tiny.en").read_text(encoding="utf-8").splitlines()
    pairs = list(zip(de, en))[200:200 + args.sentences]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for size in args.sizes:
            if size == "tiny":
                dirs = [tiny_fairseq(tmp / "tiny"), build_tiny_marian(tmp / "tiny_hf", steps=50)]
            else:
                dirs = [ROOT / "checkpoints/offline", shipped_size_marian(tmp / "marian")]
            for d in dirs:
                model = load(ModelSpec(str(d), device=args.device))
                params = sum(p.numel() for p in model.net.parameters())
                for batch in (1, 8):
                    r = measure(model, pairs, batch)
                    rows.append((size, model.info.get("kind", "fairseq"), model.info["name"], params, batch, r))
    print(f"Cost per query, same replay ({args.sentences} sentences of tests/fixtures/tiny.de, lines 200+), "
          f"torch threads {args.threads}, {platform.processor() or platform.machine()}, torch {torch.__version__}\n")
    print("| size | adapter | model | parameters | streams per call | queries | decoder calls | ms/query |")
    print("|---|---|---|---|---|---|---|---|")
    for size, kind, name, params, batch, r in rows:
        print(f"| {size} | {kind} | {name} | {params / 1e6:.1f}M | {batch} | {r['queries']} | {r['decoder_calls']} "
              f"| {r['ms_per_query']:.2f} |")


if __name__ == "__main__":
    main()
