#!/usr/bin/env bash
# Offline models from scratch on one lent GPU (an H100/H200 with the workplace's CUDA image: Python 3.12, torch 2.11,
# no network), in three steps:
#
#   bash scripts/train_gpu.sh bundle          # here: .gpu/ = fairseq's wheels + the binarized corpus + dev text
#   bash scripts/train_gpu.sh run [PRESET..]  # there (device `run`, carry [".gpu"], timeout_s 600): trains the
#                                             # presets side by side (default: gpu gpu-big), exports each (average
#                                             # of its last 4 checkpoints, fp16), greedy dev BLEU of both as written
#                                             # and ASR-like (eval/model_compare.py), returns summary.tgz and the dev
#                                             # winner's checkpoint in 15 MiB parts (at most 4: 60 MiB)
#   bash scripts/train_gpu.sh rest            # there, at once (the machine stays warm ~30 s): the parts left
#
# Without a GPU, `run` is a smoke run of the same recipe on CPU (4 updates of each preset, 20 dev sentences) into
# build/gpu_smoke: test it here before device time is spent. Reassemble here with
# `cat .../checkpoint.pt.part* > DIR/checkpoint.pt` beside the model.json and the bundle's dict.*.txt and spm.model.
# The tracked tree (153 MB, the shipped checkpoints) is over the device's 64 MiB: move checkpoints/*/checkpoint.pt
# out of the checkout for the call and back after it.
# DATA: the binarized corpus (default data/ft-asr-bin: `make data/ft-asr-bin`, the shipped model's vocabulary, half
# the sources ASR-like); HOURS: each preset's training wall clock (default 0.11 h: both runs, the exports and the dev
# comparison fit one 600 s call).
set -euo pipefail
cd "$(dirname "$0")/.."
step=${1:?usage: train_gpu.sh bundle | run [PRESET...] | rest}; shift || true
DATA=${DATA:-data/ft-asr-bin}
HOURS=${HOURS:-0.11}
PARTS=4  # 4 x 15 MiB + summary.tgz under the 64 MiB a call returns

case $step in
bundle)
  PY=${PY:-.venv/bin/python}
  [ -f "$DATA/train.de-en.de.bin" ] || { echo "error: no $DATA (make $DATA)" >&2; exit 1; }
  rm -rf .gpu && mkdir -p .gpu/whl .gpu/bin .gpu/corpus
  # fairseq's compiled wheel for the device's Python; the pure-Python needs the image lacks, as built here
  $PY -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .gpu/whl ve-fairseq==0.12.3 bitarray==2.9.3  # 2.6.0 (as here) has no cp312 wheel
  $PY -m pip wheel -q --no-deps -w .gpu/whl hydra-core==1.3.8 omegaconf==2.3.1 antlr4-python3-runtime==4.9.3
  cp "$DATA"/{dict.de.txt,dict.en.txt,spm.model} "$DATA"/{train,valid}.de-en.* .gpu/bin/
  cp data/corpus/valid.de data/corpus/valid.en .gpu/corpus/
  grep -qx '/.gpu/' .gitignore || { echo "error: .gpu/ is not ignored" >&2; exit 1; }
  du -sh .gpu .gpu/*
  ;;
run)
  presets=${*:-gpu gpu-big}
  if command -v nvidia-smi >/dev/null && nvidia-smi -L; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .gpu/whl/*.whl
    export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
    PY=python3 dev=cuda smoke=() limit=() tmp=/tmp/gpu
  else
    echo "no GPU: a CPU smoke run of the same recipe"
    PY=${PY:-.venv/bin/python} dev=cpu smoke=(--smoke) limit=(--limit 20) tmp=build/gpu_smoke
    OUT=${OUT:-$tmp/out}; rm -rf "$tmp"
  fi
  mkdir -p "$tmp" "$OUT"
  pids=()
  for p in $presets; do  # side by side: a 26-42M model leaves most of the GPU idle
    $PY scripts/train.py --data .gpu/bin --work "$tmp/work_$p" --preset "$p" "${smoke[@]}" --average 4 \
      --fp16-storage --name "psfuture-$p-deen" --out "$tmp/model_$p" -- --stop-time-hours "$HOURS" \
      > "$tmp/train_$p.log" 2>&1 &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid" || echo "a training run failed (see $tmp/train_*.log)"; done
  models=(); for p in $presets; do [ -f "$tmp/model_$p/checkpoint.pt" ] && models+=("$tmp/model_$p"); done
  [ ${#models[@]} -gt 0 ] || { tail -n 30 "$tmp"/train_*.log; exit 1; }
  $PY eval/model_compare.py --models "${models[@]}" --corpus .gpu/corpus --sets dev --device $dev "${limit[@]}" \
    --out "$tmp/compare" || true
  # the winner: the best dev BLEU as written (the first model when the comparison failed)
  best=$($PY - "$tmp/compare/result.json" "${models[@]}" <<'EOF'
import json, sys
try:
    rows = [r for r in json.load(open(sys.argv[1]))["rows"] if r["condition"] == "written"]
    print(max(sys.argv[2:], key=lambda m: next(r["BLEU"] for r in rows if r["model"].endswith(f"({m})"))))
except Exception:
    print(sys.argv[2])
EOF
)
  echo "$best" > "$tmp/winner"
  split -b 15M -d "$best/checkpoint.pt" "$tmp/winner.part"
  for m in "${models[@]}"; do cp "$m/model.json" "$tmp/$(basename "$m").json"; done
  tar -czf "$OUT/summary.tgz" -C "$tmp" winner $(cd "$tmp" && ls train_*.log *.json) compare 2>/dev/null || true
  for f in $(ls "$tmp"/winner.part* | head -n $PARTS); do mv "$f" "$OUT/"; done
  tail -n 5 "$tmp"/train_*.log; cat "$tmp/compare/result.md" 2>/dev/null || true
  echo "winner: $best; parts back: $(ls "$OUT" | grep -c part); left: $(ls "$tmp" | grep -c winner.part)"
  ;;
rest)
  tmp=/tmp/gpu; [ -d "$tmp" ] || tmp=build/gpu_smoke
  OUT=${OUT:-$tmp/out}; mkdir -p "$OUT"
  for f in $(ls "$tmp"/winner.part* 2>/dev/null | head -n $PARTS); do mv "$f" "$OUT/"; done
  ls -la "$OUT"
  ;;
*) echo "usage: train_gpu.sh bundle | run [PRESET...] | rest" >&2; exit 2 ;;
esac
