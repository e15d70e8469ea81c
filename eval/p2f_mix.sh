#!/usr/bin/env bash
# P2F mix-ratio ablation: short fine-tunes of the shipped offline model, one per share of
# prefix->full pairs (0.0 = the same fine-tune on full pairs only: the control), then one sweep
# of offline greedy + PsFuture over GNOME dev on the base model and every fine-tune.
#   bash eval/p2f_mix.sh                       # RATIOS="0.0 0.5 0.75" UPDATES=250 LIMIT=100
# A ratio whose model exists under build/p2f_mix/model_r<ratio> is not trained again (the main
# run's checkpoint at UPDATES is that ratio's run: same seed and schedule; export it there with
# scripts/train_p2f.py --export-only to reuse it).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
RATIOS=${RATIOS:-"0.0 0.5 0.75"}
UPDATES=${UPDATES:-250}
LIMIT=${LIMIT:-100}
OUT=${OUT:-eval/results/p2f_mix_dev$LIMIT}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
models=(--model checkpoints/offline)
for r in $RATIOS; do
  work=build/p2f_mix/r$r model=build/p2f_mix/model_r$r
  if [ ! -f "$model/checkpoint.pt" ]; then
    $PY scripts/train_p2f.py --prefix-ratio "$r" --work "$work" --out "$model" --name "p2f-r$r-u$UPDATES" \
      -- --max-update "$UPDATES" --save-interval-updates "$UPDATES" --log-interval 25
  fi
  models+=(--model "$model")
done
$PY eval/sweep.py "${models[@]}" --src data/corpus/valid.de --ref data/corpus/valid.en --limit "$LIMIT" \
  --policies offline,psfuture --other-policies offline,psfuture --grid psfuture.threshold=0.05,0.1,0.2,0.5 \
  --ablation none --cost-limit 0 --threads 1 --no-progress --out "$OUT"
