#!/usr/bin/env python
"""Fine-tune an offline model with Prefix-to-Full (P2F) pairs, then export a model directory.

    python scripts/train_p2f.py --model checkpoints/offline --data data/bin --work build/p2f --out checkpoints/p2f

Restores the model's weights (optimizer, data loader, meters and lr schedule reset) and trains with
`--task prefix_to_full` from `--user-dir psfuture`, rebuilding the architecture from the checkpoint itself.
Checkpoints and build/p2f/train.log are written as training goes, so it can run in the background
(nohup ... &); started again with the same --work it resumes from <work>/checkpoint_last.pt (already at
--max-update it only exports; past it, it refuses unless --export-only). The exported
model is a plain `translation` checkpoint: inference needs no plugin. Anything after `--` goes to
fairseq-train verbatim (e.g. `-- --max-update 500`, or the distributed options in README.md).
"""
import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from export_model import export  # noqa: E402
from train import COMMON  # noqa: E402

import psfuture  # noqa: E402
import psfuture.tasks  # noqa: E402,F401  (allow-lists argparse.Namespace for torch.load)
from psfuture.tasks.p2f_loss import NAME as WEIGHTED_LOSS  # noqa: E402
from psfuture.tasks.alignment import table_path  # noqa: E402
from psfuture.tasks.prefix_to_full import BOUNDS, out_of_range  # noqa: E402

PACKAGE = Path(psfuture.__file__).resolve().parent  # an absolute --user-dir works from any working directory

PRESETS = {
    # Fine-tuning: a lower lr and a short warmup. cpu: 1,000 updates unless `-- --max-update N` says otherwise
    # (`make p2f` says 250), 4-7 s/update for the shipped 26M model on 2 cores; inverse-sqrt decay does not depend
    # on --max-update, so a longer --max-update on the same --work simply continues the same schedule.
    "cpu": ["--lr", "0.0003", "--warmup-updates", "200", "--max-tokens", "4096", "--max-update", "1000",
            "--save-interval-updates", "250", "--keep-interval-updates", "4", "--log-interval", "50",
            "--cpu", "--num-workers", "1"],
    "gpu": ["--lr", "0.0003", "--warmup-updates", "200", "--max-tokens", "16384", "--max-update", "2000",
            "--fp16", "--save-interval-updates", "250", "--keep-interval-updates", "4", "--log-interval", "100",
            "--num-workers", "4"],
    # Seconds: for the test suite.
    "tiny": ["--lr", "0.001", "--warmup-updates", "1", "--max-tokens", "2048", "--max-update", "3",
             "--log-interval", "1", "--cpu", "--num-workers", "0"],
}


def _load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=False)


def arch_flags(model_args) -> list[str]:
    """fairseq-train options that rebuild the architecture of a saved model (its cfg["model"])."""
    from fairseq.models import ARCH_MODEL_REGISTRY

    if isinstance(model_args, dict):  # dataclass-configured models store a dict named by `_name`
        model_args = argparse.Namespace(**{"arch": model_args.get("_name"), **model_args})
    if model_args.arch not in ARCH_MODEL_REGISTRY:
        raise SystemExit(f"error: the checkpoint's architecture {model_args.arch!r} is unknown to fairseq")
    parser = argparse.ArgumentParser()
    ARCH_MODEL_REGISTRY[model_args.arch].add_args(parser)
    flags = ["--arch", model_args.arch]
    for action in parser._actions:
        value = getattr(model_args, action.dest, None)
        if not action.option_strings or value is None or value == action.default:
            continue
        flags += [action.option_strings[0]] if action.nargs == 0 else [action.option_strings[0], str(value)]
    return flags


def as_translation(state: dict) -> dict:
    """A P2F model is an ordinary translation model: ship it as one, loadable without --user-dir."""
    cfg = dict(state["cfg"])
    cfg["task"] = {**{k: v for k, v in cfg["task"].items() if not k.startswith("prefix_")}, "_name": "translation"}
    cfg["common"] = {**cfg["common"], "user_dir": None}
    if cfg.get("criterion") and cfg["criterion"].get("_name") == WEIGHTED_LOSS:
        cfg["criterion"] = {**cfg["criterion"], "_name": "label_smoothed_cross_entropy"}
    model = cfg["model"]
    if isinstance(model, argparse.Namespace):
        model = argparse.Namespace(**{k: v for k, v in vars(model).items() if not k.startswith("prefix_")})
        model.task, model.user_dir = "translation", None
        if getattr(model, "criterion", None) == WEIGHTED_LOSS:
            model.criterion = "label_smoothed_cross_entropy"
    cfg["model"] = model
    return {**state, "cfg": cfg}


def export_p2f(work: Path, data: Path, out: Path, *, average: int = 1, fp16: bool = False,
               name: str = "psfuture-p2f", extra_meta: dict | None = None) -> Path:
    """scripts/export_model.py over translation-task copies of the P2F checkpoints (the run stays resumable);
    model.json records the P2F settings the run actually used."""
    sources = [work / "checkpoint_last.pt", *(work.glob("checkpoint_*_*.pt") if average > 1 else [])]
    p2f = {}
    with tempfile.TemporaryDirectory(dir=work) as staging:
        for src in filter(Path.is_file, sources):
            state = _load(src)
            p2f = p2f or {k: v for k, v in state["cfg"]["task"].items() if k.startswith("prefix_")}
            torch.save(as_translation(state), Path(staging) / src.name)
        if p2f.get("prefix_target") == "aligned" and table_path(data).is_file():
            # eflomal is not seeded: the table a model was trained on is known by its hash only
            p2f["alignment_sha256"] = hashlib.sha256(table_path(data).read_bytes()).hexdigest()
        return export(Path(staging), data, out, average=average, fp16=fp16, name=name,
                      extra_meta={"p2f": p2f, **(extra_meta or {})})


def _updates_done(work: Path) -> int:
    last = work / "checkpoint_last.pt"
    return _load(last)["optimizer_history"][-1]["num_updates"] if last.is_file() else 0


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _lineage(model: Path) -> dict:
    """What the base model's own model.json says of its making: a fine-tune of a fine-tune keeps its whole line."""
    try:
        info = json.loads((model / "model.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {k: info[k] for k in ("name", "num_updates", "base_model") if k in info}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=Path("checkpoints/offline"), help="model directory to fine-tune")
    ap.add_argument("--data", type=Path, default=Path("data/bin"), help="binarized data with the model's dictionary")
    ap.add_argument("--work", type=Path, default=Path("build/p2f"), help="fairseq checkpoints and train.log")
    ap.add_argument("--out", type=Path, default=Path("checkpoints/p2f"), help="export the model directory here")
    ap.add_argument("--preset", choices=sorted(PRESETS), default="cpu")
    ap.add_argument("--prefix-ratio", type=float, default=0.5, help="share of prefix->full pairs")
    ap.add_argument("--prefix-unit", choices=("word", "token"), default="word")
    ap.add_argument("--prefix-min-share", type=float, default=0.0,
                    help="draw only prefixes with at least this share of the source (0: any)")
    ap.add_argument("--prefix-curriculum", type=int, default=0,
                    help="updates over which the shortest prefix falls from the whole source to --prefix-min-share")
    ap.add_argument("--prefix-eos", choices=("keep", "drop"), default="drop",
                    help="prefix source ends with </s>? (drop matches PsFuture's default prefix_eos=False)")
    ap.add_argument("--prefix-target", choices=("full", "proportional", "aligned"), default="full",
                    help="prefix pairs keep the full target, the same share of it as of the source, or the target up "
                         "to its last token word-aligned inside the prefix (aligned: scripts/align_p2f.py first)")
    ap.add_argument("--prefix-past-weight", type=float, default=1.0,
                    help="full targets: loss weight past the proportional share of a prefix pair (1: plain P2F)")
    ap.add_argument("--prefix-future", type=int, default=0,
                    help="<unk> placeholders (then </s>) after every cut prefix: train PsFuture's pseudo-future pass")
    ap.add_argument("--average", type=int, default=1, help="average the last N interval checkpoints on export")
    ap.add_argument("--fp16-storage", action="store_true", help="store exported weights in half precision")
    ap.add_argument("--name", default="psfuture-p2f-deen")
    ap.add_argument("--export-only", action="store_true", help="export <work> as it is, without training")
    ap.add_argument("extra", nargs=argparse.REMAINDER, help="-- then extra fairseq-train options")
    args = ap.parse_args(argv)
    extra = args.extra[1:] if args.extra[:1] == ["--"] else args.extra

    ckpt = args.model / "checkpoint.pt"
    if not ckpt.is_file():
        sys.exit(f"error: {args.model} is not a model directory (no checkpoint.pt); train one with scripts/train.py")
    for name in ("dict.de.txt", "dict.en.txt", "spm.model"):
        if not (args.data / name).is_file():
            sys.exit(f"error: {args.data / name} is missing; binarize the data with scripts/prepare.py")
    if (args.data / "dict.de.txt").read_bytes() != (args.model / "dict.de.txt").read_bytes():
        sys.exit(f"error: {args.data} was binarized with another dictionary than {args.model}; "
                 "fine-tune on the data the model was trained on")

    for name in BOUNDS:  # before fairseq starts: the task would say so only inside a traceback
        if bound := out_of_range(name, getattr(args, name)):
            sys.exit(f"error: --{name.replace('_', '-')} {getattr(args, name)} is out of range (must be {bound})")
    if args.prefix_target == "aligned" and not table_path(args.data).is_file():
        sys.exit(f"error: --prefix-target aligned needs {table_path(args.data)}; make it with "
                 f"python scripts/align_p2f.py --data {args.data}")

    args.work.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "fairseq_cli.train", str(args.data), "--user-dir", str(PACKAGE),
           "--task", "prefix_to_full", "--prefix-ratio", str(args.prefix_ratio),
           "--prefix-unit", args.prefix_unit, "--prefix-eos", args.prefix_eos,
           "--prefix-target", args.prefix_target, "--prefix-future", str(args.prefix_future),
           "--prefix-past-weight", str(args.prefix_past_weight), "--prefix-min-share", str(args.prefix_min_share),
           "--prefix-curriculum", str(args.prefix_curriculum),
           "--save-dir", str(args.work), "--log-file", str(args.work / "train.log"),
           *COMMON, *arch_flags(_load(ckpt)["cfg"]["model"]), *PRESETS[args.preset]]
    if args.prefix_past_weight < 1.0:
        cmd += ["--criterion", WEIGHTED_LOSS]  # the same label smoothing, weighted (after COMMON's: it wins)
    if not (args.work / "checkpoint_last.pt").is_file():  # later launches resume from it
        cmd += ["--restore-file", str(ckpt.resolve()), "--reset-optimizer", "--reset-dataloader", "--reset-meters",
                "--reset-lr-scheduler"]
    cmd += extra
    done = _updates_done(args.work)
    last = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    last.add_argument("--max-update", type=int, default=0)
    target = last.parse_known_args(cmd)[0].max_update  # the last one given is fairseq's; 0: no limit
    if target and done > target and not args.export_only:
        sys.exit(f"error: {args.work} holds a run at {done} updates, past --max-update {target}; exporting it would "
                 "mislabel it. Use another --work to train the shorter schedule, or --export-only.")
    trained = not args.export_only and (done < target or not target)  # at target fairseq would run one more
    if trained:
        print("training:", " ".join(cmd), f"\nlog: {args.work / 'train.log'}", flush=True)
        rc = subprocess.run(cmd).returncode
        if rc:
            sys.exit(f"error: fairseq-train stopped with exit status {rc} (its message is above; "
                     f"log: {args.work / 'train.log'}); rerun to resume from the last checkpoint")
    meta = {"base_model": {"path": str(args.model), "sha256": _sha256(ckpt), **_lineage(args.model)}}
    if trained:  # the launch that ran; a resumed one continued the run from `resumed_from_updates`
        meta.update(preset=args.preset, train_command=cmd[1:], **({"resumed_from_updates": done} if done else {}))
    if args.out:
        print(export_p2f(args.work, args.data, args.out, average=args.average, fp16=args.fp16_storage,
                         name=args.name, extra_meta=meta))


if __name__ == "__main__":
    main()
