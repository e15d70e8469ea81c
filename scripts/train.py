#!/usr/bin/env python
"""Train the offline German->English transformer with fairseq, then export a model directory.

    python scripts/train.py --data data/bin --work build/offline --preset cpu --out checkpoints/offline

Presets are the architectures and schedules we measured (see checkpoints/offline/MODEL_CARD.md);
anything after `--` goes to fairseq-train verbatim. Checkpoints are saved as training goes, so a
killed run resumes from <work>/checkpoint_last.pt when started again.
"""
import argparse
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from export_model import export  # noqa: E402

PACKAGE = Path(__file__).resolve().parents[1] / "psfuture"

COMMON = [
    "--arch", "transformer", "--share-all-embeddings",
    "--optimizer", "adam", "--adam-betas", "(0.9, 0.98)", "--clip-norm", "0.0",
    "--lr-scheduler", "inverse_sqrt", "--weight-decay", "0.0001",
    "--criterion", "label_smoothed_cross_entropy", "--label-smoothing", "0.1",
    "--log-format", "simple", "--no-epoch-checkpoints", "--seed", "1",
    "--skip-invalid-size-inputs-valid-test",
]


def arch(layers: int, dim: int, ffn: int, heads: int, dec_layers: int | None = None) -> list[str]:
    return ["--encoder-layers", str(layers), "--decoder-layers", str(dec_layers or layers),
            "--encoder-embed-dim", str(dim), "--decoder-embed-dim", str(dim),
            "--encoder-ffn-embed-dim", str(ffn), "--decoder-ffn-embed-dim", str(ffn),
            "--encoder-attention-heads", str(heads), "--decoder-attention-heads", str(heads)]


PRESETS = {
    # Seconds on 2 cores: for the test suite, not for translation quality.
    "tiny": arch(1, 64, 128, 2) + [
        "--lr", "0.003", "--warmup-updates", "20", "--dropout", "0.1", "--max-tokens", "2048",
        "--max-epoch", "10", "--log-interval", "50", "--cpu", "--num-workers", "0"],
    # The documented CPU default: ~2-2.5 h on 2 cores.
    "cpu": arch(3, 256, 1024, 4) + [
        "--lr", "0.001", "--warmup-updates", "1000", "--dropout", "0.2", "--attention-dropout", "0.1",
        "--max-tokens", "4096", "--max-update", "12000", "--save-interval-updates", "1000",
        "--keep-interval-updates", "5", "--log-interval", "100", "--cpu", "--num-workers", "1"],
}
# One GPU (H100/H200), stopped by wall clock after ~8 minutes of training (the shipped model's first schedule).
_GPU_SCHEDULE = [
    "--encoder-normalize-before", "--decoder-normalize-before",
    "--lr", "0.001", "--warmup-updates", "1000", "--dropout", "0.3", "--attention-dropout", "0.1",
    "--activation-dropout", "0.1", "--max-tokens", "12288", "--max-update", "100000", "--fp16",
    "--stop-time-hours", "0.135", "--save-interval", "5", "--save-interval-updates", "400",
    "--keep-interval-updates", "4", "--log-interval", "200", "--num-workers", "4"]
# A deep encoder and a shallow decoder: the decoder runs once per target token on CPU at inference, the encoder
# once per READ.
PRESETS["gpu"] = arch(6, 512, 1024, 4, dec_layers=3) + _GPU_SCHEDULE
# Issue 23's larger model (42M parameters against 26M): twice the FFN width and heads, two more encoder layers; the
# decoder stays at 3 layers, so the per-token cost on CPU grows least.
PRESETS["gpu-big"] = arch(8, 512, 2048, 8, dec_layers=3) + _GPU_SCHEDULE

# Flags a --smoke run replaces (each with how many values follow it).
_GPU_ONLY = {"--fp16": 0, "--stop-time-hours": 1, "--max-update": 1, "--num-workers": 1, "--max-tokens": 1,
             "--save-interval-updates": 1, "--log-interval": 1}


def smoke(flags: list[str]) -> list[str]:
    """A preset's model and optimiser on CPU for four small updates, each checkpointed: checks a GPU recipe end to
    end (training, averaging, export) before device time is spent on it."""
    out, i = [], 0
    while i < len(flags):
        if flags[i] in _GPU_ONLY:
            i += 1 + _GPU_ONLY[flags[i]]
            continue
        out.append(flags[i])
        i += 1
    return out + ["--cpu", "--num-workers", "0", "--max-update", "4", "--max-tokens", "512",
                  "--save-interval-updates", "1", "--log-interval", "1", "--disable-validation"]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("data/bin"), help="output of scripts/prepare.py")
    ap.add_argument("--work", type=Path, default=Path("build/offline"), help="fairseq checkpoints and log")
    ap.add_argument("--preset", choices=sorted(PRESETS), default="cpu")
    ap.add_argument("--out", type=Path, help="export the trained model directory here")
    ap.add_argument("--average", type=int, default=1, help="average the last N interval checkpoints")
    ap.add_argument("--fp16-storage", action="store_true", help="store exported weights in half precision")
    ap.add_argument("--name", default="psfuture-offline-deen")
    ap.add_argument("--smoke", action="store_true", help="four small CPU updates of the preset (see smoke())")
    ap.add_argument("extra", nargs=argparse.REMAINDER, help="-- then extra fairseq-train options")
    args = ap.parse_args(argv)
    if not (args.data / "dict.de.txt").is_file():
        sys.exit(f"error: {args.data} holds no binarized data; run scripts/prepare.py first")
    extra = args.extra[1:] if args.extra[:1] == ["--"] else args.extra
    args.work.mkdir(parents=True, exist_ok=True)
    preset = smoke(PRESETS[args.preset]) if args.smoke else PRESETS[args.preset]
    # --user-dir psfuture: its tasks package allow-lists argparse.Namespace, without which fairseq cannot
    # resume from its own checkpoints under torch>=2.6.
    cmd = [sys.executable, "-m", "fairseq_cli.train", str(args.data), "--save-dir", str(args.work),
           "--user-dir", str(PACKAGE), *COMMON, *preset, *extra]
    subprocess.run(cmd, check=True)
    if args.out:
        export(args.work, args.data, args.out, average=args.average, fp16=args.fp16_storage,
               name=args.name, extra_meta={"preset": args.preset + (" (smoke)" if args.smoke else ""),
                           "train_command": cmd[1:]})


if __name__ == "__main__":
    main()
