#!/usr/bin/env bash
# Issue 23: fine-tunes of BASE on the 280k corpus at one budget (the plain run and its P2F twin; the second stage's
# runs), against BASE.
#   make finetune finetune-p2f FT_UPDATES=N     # first: both runs (build/ft_plain, build/ft_p2f), resumable
#   UPDATES=N bash eval/finetune_compare.sh     # export both at N updates, then evaluate
# 1. export: each run's last checkpoint (AVERAGE=1, the default: build/ft_{plain,p2f}_model_uN_last) or the average
#    of its last AVERAGE interval checkpoints (build/ft_{plain,p2f}_model_uN). At 500 updates dev chose the last
#    checkpoint (+1.17 greedy BLEU over the average of 100..500 for the plain run, +0.67 for P2F:
#    eval/results/compare_ft_u500_average_dev), so the shipped exports are the _last ones.
# 2. greedy BLEU, as written and ASR-like, whole dev and test, bootstrap against BASE
#    (eval/results/compare_ft_u$UPDATES[_last]_<sets>_full; SETS picks the sets)
# 3. PsFuture (KL) on the whole test set for both (SETS="test dev" adds dev), bootstrap of every curve pair at
#    AL 2/3/4 with BASE's sweep (BASE_SWEEP, by default the first model's sweep_test_full), written to
#    eval/results/ft_plain_u$UPDATES[_last]_<set>_full/bootstrap.md
# STAGES="export compare sweep" picks stages; a stage whose result exists is skipped. JOBS=1: one sweep process.
# The second stage (make finetune-asr finetune-words, from the 500-update plain model): RUNS="asr words" STUDY=ft2
#   BASE=build/stage1/checkpoints/offline (see the Makefile) BASE_SWEEP=eval/results/ft_plain_u500_last_test_full \
#   UPDATES=350 bash eval/finetune_compare.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
BASE=${BASE:-checkpoints/offline}  # the model both runs started from (since 2026-12-05 not the shipped one: see Makefile)
UPDATES=${UPDATES:?UPDATES=N: the update count both runs reached}
STAGES=${STAGES:-export compare sweep}
SETS=${SETS:-test}
AVERAGE=${AVERAGE:-1}
TAG=; [ "$AVERAGE" = 1 ] && TAG=_last
RUNS=${RUNS:-plain p2f}  # RUNS=plain: export and sweep one run while the other trains
STUDY=${STUDY:-ft}  # names the comparison's folder: eval/results/compare_$STUDY_u...
BASE_SWEEP=${BASE_SWEEP:-eval/results/sweep_test_full}  # BASE's PsFuture sweep on the whole test set
THRESHOLDS=${THRESHOLDS:-0.1,0.2,0.4}  # the averaged models' sweeps also ran 0.6
declare -A WORK=([plain]=build/ft_plain [p2f]=build/ft_p2f [asr]=build/ft_asr [words]=build/ft_words)
declare -A NAME=([plain]=psfuture-ft-deen [p2f]=psfuture-ft-p2f-deen [asr]=psfuture-ft-asr-deen
                 [words]=psfuture-ft-words-deen)
declare -A DATA=([plain]=data/ft-bin [p2f]=data/ft-bin [asr]=data/ft-asr-bin [words]=data/ft-words-bin)
has() { [[ " $STAGES " == *" $1 "* ]]; }

for run in $RUNS; do
  model=build/ft_${run}_model_u$UPDATES$TAG
  if has export && [ ! -f "$model/checkpoint.pt" ]; then
    # export only, and only a run that stands at exactly N updates (the run's own flags are in its model.json)
    done=$($PY -c "import sys; from pathlib import Path; sys.path.insert(0, 'scripts'); from train_p2f import _updates_done
print(_updates_done(Path(sys.argv[1])))" "${WORK[$run]}" 2>/dev/null | tail -n 1)
    [ "$done" = "$UPDATES" ] || { echo "error: ${WORK[$run]} stands at $done updates, not $UPDATES" >&2; exit 1; }
    extra=(--prefix-ratio 0.0); [ $run = p2f ] && extra=(--prefix-ratio 0.5 --prefix-target proportional)
    $PY scripts/train_p2f.py --model "$BASE" --data "${DATA[$run]}" --work "${WORK[$run]}" --out "$model" \
      "${extra[@]}" --average "$AVERAGE" --fp16-storage --name "${NAME[$run]}${TAG/_/-}" --export-only
  fi
done
models=(); for run in $RUNS; do models+=("build/ft_${run}_model_u$UPDATES$TAG"); done

out=eval/results/compare_${STUDY}_u$UPDATES${TAG}_${SETS// /_}_full
if has compare && [ ${#models[@]} -ge 1 ] && [ ! -f "$out/result.json" ]; then
  $PY eval/model_compare.py --models "$BASE" "${models[@]}" --sets "${SETS// /,}" --threads 2 --out "$out"
fi

if has sweep; then
  for set in $SETS; do
    src=data/corpus/test.de ref=data/corpus/test.en base=$BASE_SWEEP
    [ "$set" = dev ] && src=data/corpus/valid.de ref=data/corpus/valid.en base=
    dirs=()
    for run in $RUNS; do
      d=eval/results/ft_${run}_u$UPDATES${TAG}_${set}_full; dirs+=("$d")
      model=build/ft_${run}_model_u$UPDATES$TAG
      [ -f "$d/results.json" ] || $PY eval/sweep.py --model "$model" --src "$src" --ref "$ref" --policies psfuture \
        --thresholds "kl=$THRESHOLDS" --ablation none --cost-limit 0 --batch 16 --jobs "${JOBS:-2}" --threads 1 \
        --dtype bfloat16 --no-progress --out "$d"
    done
    if { [ -n "$base" ] || [ ${#dirs[@]} -ge 2 ]; } && [ ! -f "${dirs[0]}/bootstrap.md" ]; then $PY eval/bootstrap.py ${base:+"$base"} "${dirs[@]}" --src "$src" --ref "$ref" \
      --out "${dirs[0]}/bootstrap.md"; fi
  done
fi
