#!/usr/bin/env bash
# Offline models from scratch on one lent GPU (an H100/H200 with the workplace's CUDA image: Python 3.12, torch 2.11,
# no network), in three steps:
#
#   bash scripts/train_gpu.sh bundle          # here: .gpu/ = fairseq's wheels + the binarized corpus + dev text
#   bash scripts/train_gpu.sh run [PRESET..]  # there (device `run`, carry [".gpu"], timeout_s 600): trains the
#                                             # presets side by side (default: gpu gpu-big), exports each (its last
#                                             # checkpoint, fp16), greedy BLEU of each on the whole dev set
#                                             # (eval/model_compare.py), returns summary.tgz and the dev winner's
#                                             # checkpoint in 15 MiB parts (at most 4: 60 MiB)
#   bash scripts/train_gpu.sh rest            # there, at once (the machine stays warm ~30 s): the parts left
#
# Without a GPU, `run` is a smoke run of the same recipe on CPU (4 updates of each preset, 20 dev sentences) into
# build/gpu_smoke: test it here before device time is spent. Reassemble here with
# `cat .../winner.part* > DIR/checkpoint.pt` beside its model.json (in summary.tgz) and the bundle's dict.*.txt and
# spm.model. The tracked tree (153 MB: the shipped checkpoints 105, eval/results 45) is over the 64 MiB a call
# carries: move checkpoints/ and eval/results/ out of the checkout for the call and back after it.
# DATA: the binarized corpus (default data/ft-asr-bin: `make data/ft-asr-bin`, the shipped model's vocabulary, half
# the sources ASR-like); HOURS: each preset's training wall clock (default 0.1 h); DEADLINE: seconds after which
# the dev comparison is cut short (default 560: the first model's parts are in $OUT before it starts, so a call cut
# at 600 s still returns a model).
set -euo pipefail
cd "$(dirname "$0")/.."
step=${1:?usage: train_gpu.sh bundle | run [PRESET...] | rest}; shift || true
DATA=${DATA:-data/ft-asr-bin}
HOURS=${HOURS:-0.1}
DEADLINE=${DEADLINE:-560}
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
    OUT=${OUT:-$tmp/out}
  fi
  rm -rf "$tmp" && mkdir -p "$tmp" "$OUT"  # a second run on a warm machine must not resume a spent clock
  pids=()
  for p in $presets; do  # side by side: a 26-42M model leaves most of the GPU idle
    $PY scripts/train.py --data .gpu/bin --work "$tmp/work_$p" --preset "$p" "${smoke[@]}" --average 1 \
      --fp16-storage --name "psfuture-$p-deen" --out "$tmp/model_$p" -- --stop-time-hours "$HOURS" \
      > "$tmp/train_$p.log" 2>&1 &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid" || echo "a training run failed (see $tmp/train_*.log)"; done
  models=(); for p in $presets; do [ -f "$tmp/model_$p/checkpoint.pt" ] && models+=("$tmp/model_$p"); done
  [ ${#models[@]} -gt 0 ] || { tail -n 30 "$tmp"/train_*.log; exit 1; }
  for m in "${models[@]}"; do cp "$m/model.json" "$tmp/$(basename "$m").json"; done
  pack() {  # $1: the model whose parts go back (at most $PARTS now, the rest with `rest`)
    rm -f "$OUT"/winner.part* "$tmp"/winner.part*
    echo "$1" > "$tmp/winner"
    split -b 15M -d "$1/checkpoint.pt" "$tmp/winner.part"
    for f in $(ls "$tmp"/winner.part* | head -n $PARTS); do mv "$f" "$OUT/"; done
    tar -czf "$OUT/summary.tgz" -C "$tmp" winner $(cd "$tmp" && ls train_*.log *.json) \
      $([ -d "$tmp/compare" ] && echo compare)
  }
  pack "${models[0]}"  # the fallback, should the comparison run out of time
  left=$((DEADLINE - SECONDS)); [ $left -gt 10 ] || left=10
  timeout $left $PY eval/model_compare.py --models "${models[@]}" --corpus .gpu/corpus --sets dev \
    --conditions written --device $dev "${limit[@]}" --out "$tmp/compare" || echo "no dev comparison (time or error)"
  # the winner: the best dev BLEU (the first model when the comparison failed)
  best=$($PY - "$tmp/compare/result.json" "${models[@]}" <<'EOF'
import json, sys
try:
    rows = json.load(open(sys.argv[1]))["rows"]
    print(max(sys.argv[2:], key=lambda m: next(r["BLEU"] for r in rows if r["model"].endswith(f"({m})"))))
except Exception:
    print(sys.argv[2])
EOF
)
  pack "$best"
  tail -n 3 "$tmp"/train_*.log; cat "$tmp/compare/result.md" 2>/dev/null || true
  echo "winner: $best; parts back: $(ls "$OUT" | grep -c part); left for rest: $(ls "$tmp" | grep -c winner.part)"
  ;;
rest)
  tmp=/tmp/gpu; [ -d "$tmp" ] || tmp=build/gpu_smoke
  OUT=${OUT:-$tmp/out}; mkdir -p "$OUT"
  for f in $(ls "$tmp"/winner.part* 2>/dev/null | head -n $PARTS); do mv "$f" "$OUT/"; done
  ls -la "$OUT"
  ;;
*) echo "usage: train_gpu.sh bundle | run [PRESET...] | rest" >&2; exit 2 ;;
esac
