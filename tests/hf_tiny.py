"""A tiny Marian De->En model trained in seconds on the fixture corpus, saved as a transformers directory."""
import json
import random
from pathlib import Path

import torch

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def build_tiny_marian(out: Path, *, steps: int = 300, seed: int = 0) -> Path:
    import sentencepiece as spm

    from psfuture.backends.hf import _transformers

    tf = _transformers()
    out.mkdir(parents=True, exist_ok=True)
    files = [FIXTURES / "tiny.de", FIXTURES / "tiny.en"]
    spm.SentencePieceTrainer.train(input=",".join(map(str, files)), model_prefix=str(out / "sp"), vocab_size=1000,
                                   eos_id=0, unk_id=1, bos_id=-1, pad_id=-1, minloglevel=2, num_threads=1)
    sp = spm.SentencePieceProcessor(model_file=str(out / "sp.model"))
    vocab = {sp.id_to_piece(i): i for i in range(sp.get_piece_size())}
    vocab["<pad>"] = pad = len(vocab)
    for side in ("source", "target"):  # one joined SentencePiece model, as OPUS-MT's joint-vocabulary models
        (out / f"{side}.spm").write_bytes((out / "sp.model").read_bytes())
    for p in out.glob("sp.*"):
        p.unlink()
    (out / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    tok = tf.MarianTokenizer(source_spm=str(out / "source.spm"), target_spm=str(out / "target.spm"),
                             vocab=str(out / "vocab.json"), source_lang="de", target_lang="en")
    cfg = tf.MarianConfig(vocab_size=len(vocab), d_model=64, encoder_layers=2, decoder_layers=2,
                          encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=128,
                          decoder_ffn_dim=128, max_position_embeddings=256, pad_token_id=pad, eos_token_id=0,
                          decoder_start_token_id=pad, forced_eos_token_id=0, dropout=0.1)
    torch.manual_seed(seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # many times faster than several threads on a small shared machine
    try:
        net = tf.MarianMTModel(cfg)
        loss = _train(net, tok, pad, steps, seed)
    finally:
        torch.set_num_threads(threads)
    net.save_pretrained(out)
    tok.save_pretrained(out)
    (out / "model.json").write_text(json.dumps({"name": "tiny-hf-marian", "train_loss": round(loss, 3)}))
    return out


def _train(net, tok, pad: int, steps: int, seed: int) -> float:
    de = (FIXTURES / "tiny.de").read_text(encoding="utf-8").splitlines()
    en = (FIXTURES / "tiny.en").read_text(encoding="utf-8").splitlines()
    pairs = [(tok(s).input_ids[:48], tok(text_target=t).input_ids[:48]) for s, t in zip(de, en)]
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    rng = random.Random(seed)
    net.train()
    for _ in range(steps):
        batch = rng.sample(pairs, 32)
        src = torch.full((32, max(len(s) for s, _ in batch)), pad)
        tgt = torch.full((32, max(len(t) for _, t in batch)), -100)
        for i, (s, t) in enumerate(batch):
            src[i, :len(s)] = torch.tensor(s)
            tgt[i, :len(t)] = torch.tensor(t)
        loss = net(input_ids=src, attention_mask=(src != pad).long(), labels=tgt).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    return float(loss.detach())


def build_tiny_m2m100(out: Path, spm_model: Path) -> Path:
    """A randomly initialised M2M100 (the NLLB/M2M family: language tags, positions from ids) with its tokenizer."""
    import sentencepiece as spm

    from psfuture.backends.hf import _transformers

    tf = _transformers()
    out.mkdir(parents=True, exist_ok=True)
    (out / "sentencepiece.bpe.model").write_bytes(spm_model.read_bytes())
    sp = spm.SentencePieceProcessor(model_file=str(spm_model))
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    for i in range(sp.get_piece_size()):
        vocab.setdefault(sp.id_to_piece(i), len(vocab))
    (out / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    tok = tf.M2M100Tokenizer(vocab_file=str(out / "vocab.json"), spm_file=str(out / "sentencepiece.bpe.model"),
                             src_lang="de", tgt_lang="en")
    cfg = tf.M2M100Config(vocab_size=len(vocab) + 200, d_model=32, encoder_layers=2, decoder_layers=2,
                          encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64,
                          max_position_embeddings=128, pad_token_id=1, eos_token_id=2, bos_token_id=0,
                          decoder_start_token_id=2)
    torch.manual_seed(0)
    tf.M2M100ForConditionalGeneration(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return out
