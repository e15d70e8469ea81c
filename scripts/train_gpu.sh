#!/usr/bin/env bash
# The shipped offline model's training run, as executed on one lent GPU (an H200 with the
# workplace's CUDA image: Python 3.12, torch 2.11). fairseq travels as wheels in .gpu/whl/;
# .gpu/bin holds the binary splits, dictionaries and spm.model of `make data` (data/bin). Writes the exported model directory under $OUT,
# the checkpoint split in 15 MB parts (the transfer back caps files at 16 MiB).
set -euo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .gpu/whl/*.whl
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
nvidia-smi -L
python3 scripts/train.py --data .gpu/bin --work /tmp/work --preset gpu --average 4 --fp16-storage \
  --name psfuture-offline-deen --out /tmp/model "$@" 2>&1 | grep -v '^INFO:fairseq.tasks' > $OUT/train.log || true
tail -n 40 $OUT/train.log
cp /tmp/model/model.json $OUT/
split -b 15M -d /tmp/model/checkpoint.pt $OUT/checkpoint.pt.part
ls -la $OUT
