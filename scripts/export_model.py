#!/usr/bin/env python
"""Turn fairseq training checkpoints into a shippable psfuture model directory.

    python scripts/export_model.py --work build/offline --data data/bin --out checkpoints/offline

Keeps the weights and the config only (no optimizer state), optionally averages the last N interval
checkpoints and stores half precision, and copies the dictionary and SentencePiece model beside it.
"""
import argparse
import hashlib
import json
import re
import shutil
from pathlib import Path

import torch

import psfuture.tasks  # noqa: F401  (allow-lists argparse.Namespace for torch.load)


def _checkpoints(work: Path, n: int) -> list[Path]:
    interval = sorted(work.glob("checkpoint_*_*.pt"), key=lambda p: int(re.findall(r"_(\d+)\.pt$", p.name)[0]))
    if n > 1 and len(interval) >= n:
        return interval[-n:]
    last = work / "checkpoint_last.pt"
    if not last.is_file():
        raise SystemExit(f"error: no checkpoint in {work}")
    return [last]


def _get(section, key):
    return section[key] if isinstance(section, dict) else getattr(section, key)


def _set(section, key, value) -> None:
    if isinstance(section, dict):
        section[key] = value
    else:
        setattr(section, key, value)


def share_tied(weights: dict) -> dict:
    """Store tied embeddings once: averaging and casting give each name its own copy."""
    seen: list = []
    out = {}
    for k, v in weights.items():
        twin = next((t for t in seen if t.shape == v.shape and t.dtype == v.dtype and torch.equal(t, v)), None)
        if twin is None:
            seen.append(v)
        out[k] = v if twin is None else twin
    return out


def count_parameters(weights: dict) -> int:
    return sum(v.numel() for v in {id(v): v for k, v in weights.items() if not k.endswith("_float_tensor")}.values())


def repack(model_dir: Path) -> None:
    """Re-save a model directory's checkpoint with tied weights stored once; refresh model.json."""
    model_dir = Path(model_dir)
    state = torch.load(model_dir / "checkpoint.pt", map_location="cpu", weights_only=False)
    state["model"] = share_tied(state["model"])
    state["cfg"]["common"]["user_dir"] = None
    if state["cfg"].get("model") is not None:
        _set(state["cfg"]["model"], "user_dir", None)
    torch.save(state, model_dir / "checkpoint.pt")
    meta = json.loads((model_dir / "model.json").read_text())
    meta["sha256"] = hashlib.sha256((model_dir / "checkpoint.pt").read_bytes()).hexdigest()
    meta["parameters"] = count_parameters(state["model"])
    (model_dir / "model.json").write_text(json.dumps(meta, indent=2) + "\n")


def export(work: Path, data: Path, out: Path, *, average: int = 1, fp16: bool = False,
           name: str = "psfuture-model", extra_meta: dict | None = None) -> Path:
    paths = _checkpoints(Path(work), average)
    state = torch.load(paths[-1], map_location="cpu", weights_only=False)
    if len(paths) > 1:
        acc = {k: v.float().clone() for k, v in state["model"].items()}
        for p in paths[:-1]:
            for k, v in torch.load(p, map_location="cpu", weights_only=False)["model"].items():
                acc[k] += v.float()
        state["model"] = {k: v / len(paths) for k, v in acc.items()}
    weights = share_tied({k: (v.half() if fp16 and v.is_floating_point() else v) for k, v in state["model"].items()})
    cfg = state["cfg"]
    # The loader points fairseq at the model directory itself; don't ship this machine's paths.
    for section in ("task", "model"):
        _set(cfg[section], "data", ".")
    for section in ("common", "model"):  # inference needs no plugin; a training machine's path means nothing
        _set(cfg[section], "user_dir", None)
    for section in ("checkpoint",):
        if cfg.get(section) is not None:
            _set(cfg[section], "save_dir", ".")
    shipped = {"cfg": cfg, "model": weights, "args": None, "extra_state": {},
               "optimizer_history": [{"criterion_name": "label_smoothed_cross_entropy", "optimizer_name": "none",
                                      "lr_scheduler_state": {}, "num_updates": state["optimizer_history"][-1]
                                      .get("num_updates", 0)}],
               "last_optimizer_state": None}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.save(shipped, out / "checkpoint.pt")
    for f in ("dict.de.txt", "dict.en.txt", "spm.model"):
        shutil.copyfile(Path(data) / f, out / f)
    m = cfg["model"]
    meta = {
        "name": name,
        "sha256": hashlib.sha256((out / "checkpoint.pt").read_bytes()).hexdigest(),
        **{k: _get(m, k) for k in ("arch", "encoder_layers", "decoder_layers", "encoder_embed_dim",
                                   "encoder_ffn_embed_dim", "encoder_attention_heads")},
        "parameters": count_parameters(weights),
        "num_updates": shipped["optimizer_history"][-1]["num_updates"],
        "averaged_checkpoints": [p.name for p in paths],
        "storage_dtype": "float16" if fp16 else "float32",
        **(extra_meta or {}),
    }
    (out / "model.json").write_text(json.dumps(meta, indent=2) + "\n")
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, help="fairseq --save-dir of the run")
    ap.add_argument("--data", type=Path, help="binarized data dir (dict + spm.model)")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--repack", type=Path, metavar="MODEL_DIR",
                    help="only re-save MODEL_DIR's checkpoint with tied weights stored once")
    ap.add_argument("--average", type=int, default=1)
    ap.add_argument("--fp16-storage", action="store_true")
    ap.add_argument("--name", default="psfuture-model")
    a = ap.parse_args(argv)
    if a.repack:
        return repack(a.repack)
    if not (a.work and a.data and a.out):
        ap.error("--work, --data and --out are required (or --repack MODEL_DIR)")
    print(export(a.work, a.data, a.out, average=a.average, fp16=a.fp16_storage, name=a.name))


if __name__ == "__main__":
    main()
