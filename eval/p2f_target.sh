#!/usr/bin/env bash
# P2F target ablation: what a prefix pair is trained on and to say. One short fine-tune of the shipped
# offline model per --prefix-target at one mix ratio (same seed, schedule and prefix draws as
# eval/p2f_mix.sh, so "full" at RATIO is p2f_mix's run at that ratio), then the offline + PsFuture sweep
# of the base model and each on GNOME dev[:LIMIT].
#   bash eval/p2f_target.sh                               # TARGETS=proportional RATIO=0.5 UPDATES=250
#   TARGETS=full FUTURE=1 bash eval/p2f_target.sh         # prefix + <unk> </s> -> full target
# FUTURE=N appends PsFuture's pseudo-future (N <unk>, </s>) to every cut prefix (--prefix-future N).
#   TARGETS=full WEIGHT=0.3 bash eval/p2f_target.sh      # full targets, loss x0.3 past the proportional share
#   TARGETS=aligned bash eval/p2f_target.sh              # cut to the last token word-aligned inside the prefix
# (aligned word-aligns $DATA's train split first, once: scripts/align_p2f.py, eflomal, about a minute.)
#   MINSHARE=0.5 bash eval/p2f_target.sh                 # long prefixes only: at least half the source
#   CURRICULUM=250 bash eval/p2f_target.sh               # the shortest prefix falls from whole to MINSHARE over 250 updates
# WEIGHT applies to every entry of TARGETS, so a WEIGHT below 1 goes with TARGETS=full alone.
#   UPDATES="250 500 750" bash eval/p2f_target.sh       # one schedule, a model exported at each length
# A model that exists under build/p2f_target/model_<target>[_w<WEIGHT>][_m<MINSHARE>][_c<CURRICULUM>]_f<FUTURE>_r<ratio>[_u<UPDATES>] (no _u for
# 250) is not trained again. A longer UPDATES resumes the shorter run's checkpoint: the inverse-sqrt schedule does not
# depend on --max-update, so 250 then 500 is the 500-update run.
# BASE= (empty) leaves the base model out of the sweep; SWEEP=0 only trains.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
TARGETS=${TARGETS:-proportional}
FUTURE=${FUTURE:-0}
WEIGHT=${WEIGHT:-1}
MINSHARE=${MINSHARE:-0}
CURRICULUM=${CURRICULUM:-0}
RATIO=${RATIO:-0.5}
UPDATES=${UPDATES:-250}
LIMIT=${LIMIT:-400}
DTYPE=${DTYPE:-float32}
JOBS=${JOBS:-1}
DATA=${DATA:-data/p2f-bin}
OUT=${OUT:-eval/results/p2f_target_dev$LIMIT}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
BASE=${BASE-checkpoints/offline}
zero() { awk -v x="$1" 'BEGIN { exit !(x + 0 == 0) }'; }  # 0, 0.0 and 0.00 name one model
models=()
[ -n "$BASE" ] && models+=(--model "$BASE")
for t in $TARGETS; do
  [ "$t" = aligned ] && [ ! -f "$DATA/train.align.npz" ] && $PY scripts/align_p2f.py --data "$DATA"
  tag=$t; [ "$WEIGHT" = 1 ] || tag=${t}_w$WEIGHT
  zero "$MINSHARE" || tag=${tag}_m$MINSHARE
  zero "$CURRICULUM" || tag=${tag}_c$CURRICULUM
  work=build/p2f_target/${tag}_f${FUTURE}_r$RATIO
  for u in $(printf '%s\n' $UPDATES | sort -n -u); do  # shortest first: each resumes the one before
    model=build/p2f_target/model_${tag}_f${FUTURE}_r$RATIO; [ "$u" = 250 ] || model=${model}_u$u
    if [ ! -f "$model/checkpoint.pt" ]; then
      $PY scripts/train_p2f.py --data "$DATA" --prefix-ratio "$RATIO" --prefix-target "$t" --prefix-future "$FUTURE" \
        --prefix-past-weight "$WEIGHT" --prefix-min-share "$MINSHARE" \
        --prefix-curriculum "$CURRICULUM" --work "$work" --out "$model" --name "p2f-$tag-f$FUTURE-r$RATIO-u$u" \
        -- --max-update "$u" --save-interval-updates 50 --keep-interval-updates 1 --disable-validation \
        --log-interval 25
    fi
    models+=(--model "$model")
  done
done
[ "${SWEEP:-1}" = 0 ] && exit 0
$PY eval/sweep.py "${models[@]}" --src data/corpus/valid.de --ref data/corpus/valid.en --limit "$LIMIT" \
  --policies offline,psfuture --other-policies offline,psfuture --grid psfuture.threshold=0.05,0.1,0.2,0.5 \
  --ablation none --cost-limit 0 --threads 1 --jobs "$JOBS" --dtype "$DTYPE" --no-progress --out "$OUT"
