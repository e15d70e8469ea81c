# The two commands: `make demo` (main job on the shipped model) and `make test` (the test suite).
# Each sets up everything it needs on a fresh Debian machine with Python 3.11.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test setup browser data model p2f finetune finetune-p2f finetune-asr finetune-words sweep bench clean

# Also re-run when this recipe changes, so an existing .venv picks up a changed install step.
$(STAMP): setup.py Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first, pinned: the CPU wheel on local disk (anything else pulls a multi-GB CUDA build).
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test]'
	# ve-fairseq requires torchaudio, but no torchaudio release matches this CPU torch: PyPI's builds (latest 2.11.1)
	# link CUDA torch libraries and fail to load, and transformers imports torchaudio whenever it is installed, so
	# every transformers model then fails. fairseq imports it only inside its speech/audio code, which we never use.
	$(PY) -m pip uninstall -q -y torchaudio
	touch $@

setup: $(STAMP)

# Debian's Chromium + driver for the browser test; skipped quietly when apt is unavailable.
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  { (apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null) || \
	    echo "note: could not install chromium; the browser test will be skipped"; }

demo: $(STAMP)
	$(VENV)/bin/psfuture demo

test: $(STAMP) browser
	$(PY) -m pytest -q

# Rebuild the shipped model from scratch (hours on CPU; see README "Train").
data: $(STAMP)
	$(PY) scripts/build_data.py --out data/corpus
	$(PY) scripts/prepare.py --corpus data/corpus --out data/bin --vocab-size 8000

model: data
	$(PY) scripts/train.py --data data/bin --work build/offline --preset cpu --average 5 --fp16-storage \
	  --name psfuture-offline-deen --out checkpoints/offline

# The P2F study's short recipe on top of the shipped model (~25 min on 2 cores; build/p2f_prop_model): today's corpus
# in the shipped model's vocabulary; prefix targets cut to the prefix's share (--prefix-target proportional), 250
# updates. The shipped checkpoints/p2f is the twin of checkpoints/offline: `make finetune-p2f` below.
data/p2f-bin/dict.de.txt: checkpoints/offline/dict.de.txt checkpoints/offline/spm.model | $(STAMP)
	test -f data/corpus/train.de || $(PY) scripts/build_data.py --out data/corpus
	$(PY) scripts/prepare.py --corpus data/corpus --out data/p2f-bin --model checkpoints/offline

p2f: $(STAMP) data/p2f-bin/dict.de.txt
	OMP_NUM_THREADS=2 $(PY) scripts/train_p2f.py --model checkpoints/offline --data data/p2f-bin --work build/p2f_prop \
	  --out build/p2f_prop_model --prefix-target proportional --fp16-storage --name psfuture-p2f-prop-deen -- --max-update 250 \
	  --save-interval-updates 50 --keep-interval-updates 1 --disable-validation --log-interval 25

# Issue 23's fine-tune of the shipped model (hours on CPU; resumable: run it again to continue from build/ft_*):
# `make data` (280k pairs since the Debian manuals, KDE, CLI catalogs and man pages joined) in the shipped model's
# vocabulary, a quarter of the German sources ASR-like (lowercased, unpunctuated), full pairs; its P2F twin on the
# same data and budget (proportional prefix targets). Models land in build/ft_*_model; the shipped ones are the
# plain run and its twin at 500 updates (~1.5 h each on one core of a 2-core CPU, both at once), from the first
# offline model (sha256 f3a1a530...; `git archive 5ebed6d checkpoints/offline | tar -x -C build/base`, then
# FT_BASE=build/base/checkpoints/offline). Then `UPDATES=500 BASE=$FT_BASE bash eval/finetune_compare.sh`.
FT_UPDATES ?= 500
FT_BASE ?= checkpoints/offline
data/ft-bin/dict.de.txt: checkpoints/offline/dict.de.txt checkpoints/offline/spm.model | $(STAMP)
	test -f data/corpus/train.de || $(PY) scripts/build_data.py --out data/corpus
	$(PY) scripts/prepare.py --corpus data/corpus --out data/ft-bin --model checkpoints/offline --asr-share 0.25

finetune: $(STAMP) data/ft-bin/dict.de.txt
	$(PY) scripts/train_p2f.py --model $(FT_BASE) --data data/ft-bin --work build/ft_plain \
	  --out build/ft_plain_model --prefix-ratio 0.0 --average 1 --fp16-storage --name psfuture-ft-deen -- \
	  --max-update $(FT_UPDATES) --save-interval-updates 100 --keep-interval-updates 5 --log-interval 25

finetune-p2f: $(STAMP) data/ft-bin/dict.de.txt
	$(PY) scripts/train_p2f.py --model $(FT_BASE) --data data/ft-bin --work build/ft_p2f \
	  --out build/ft_p2f_model --prefix-ratio 0.5 --prefix-target proportional --average 1 --fp16-storage \
	  --name psfuture-ft-p2f-deen -- --max-update $(FT_UPDATES) --save-interval-updates 100 --keep-interval-updates 5 \
	  --log-interval 25

# Issue 23's second stage: the 500-update fine-tune (FT2_BASE; shipped until 2026-12-06 as 9be85cd6, from git:
# `git archive 7668c53 checkpoints/offline | tar -x -C build/stage1`) trained on with half of the German sources
# ASR-like (finetune-asr: the ASR lever), and beside it the same with the Ding dictionary's 172k headword pairs mixed
# in (finetune-words: the vocabulary lever). `--seed 2`: a new batch order, not the first stage's first batches
# again. Resumable; models in build/ft_{asr,words}_model; evaluation: eval/finetune_compare.sh (its header).
FT2_UPDATES ?= 350
FT2_BASE ?= build/stage1/checkpoints/offline
data/ft-asr-bin/dict.de.txt: checkpoints/offline/dict.de.txt checkpoints/offline/spm.model | $(STAMP)
	test -f data/corpus/train.de || $(PY) scripts/build_data.py --out data/corpus
	$(PY) scripts/prepare.py --corpus data/corpus --out data/ft-asr-bin --model checkpoints/offline --asr-share 0.5

data/ft-words-bin/dict.de.txt: checkpoints/offline/dict.de.txt checkpoints/offline/spm.model | $(STAMP)
	test -f data/corpus-words/train.de || $(PY) scripts/build_data.py --out data/corpus-words --add ding-words
	$(PY) scripts/prepare.py --corpus data/corpus-words --out data/ft-words-bin --model checkpoints/offline --asr-share 0.5

finetune-asr finetune-words: finetune-%: $(STAMP) data/ft-%-bin/dict.de.txt
	test -f $(FT2_BASE)/checkpoint.pt || { echo "error: no $(FT2_BASE): mkdir -p build/stage1 && git archive 7668c53 checkpoints/offline | tar -x -C build/stage1 (the first stage), or set FT2_BASE"; exit 1; }
	$(PY) scripts/train_p2f.py --model $(FT2_BASE) --data data/ft-$*-bin --work build/ft_$* \
	  --out build/ft_$*_model --prefix-ratio 0.0 --average 1 --fp16-storage --name psfuture-ft-$*-deen -- \
	  --max-update $(FT2_UPDATES) --save-interval-updates 50 --keep-interval-updates 8 --log-interval 25 --seed 2

# Benchmarks and sweeps: printed tables, results under eval/results/.
# The README's main table: every policy on the whole GNOME test set (1,425 sentences) on the shipped model, batched,
# in the front ends' default precision (--dtype auto: bfloat16 on a CPU with native bfloat16), 2 processes;
# PsFuture's default (KL) curve and the cosine one. (The first model's sweep, with its P2F twin, stays in
# eval/results/sweep_test_full; the shipped P2F twin's curve is eval/results/ft_p2f_u500_last_test_full.)
sweep: $(STAMP)
	$(PY) eval/sweep.py --model checkpoints/offline --grid waitk.k=1,3 \
	  --grid alignatt.frames=1,2 --grid psfuture.divergence=kl,cos \
	  --thresholds kl=0.1,0.2,0.4 --thresholds cos=0.03,0.08 --ablation none --cost-limit 10 --batch 16 --jobs 2 \
	  --threads 1 --no-progress --out eval/results/sweep_ft2_test_full

# 1, 4, 8, 16, 32 streams at 2.5 words/s: one process with 2 torch threads against 2 worker processes x 1 thread,
# in float32 and in bfloat16.
# Sweep throughput, one lever at a time (every 20th sentence of the whole GNOME test set).
bench: $(STAMP)
	$(PY) eval/bench_stream.py --levels 1 4 8 16 32 --wps 2.5 --workers 1 2 1 2 --threads 2 1 2 1 \
	  --dtype float32 float32 bfloat16 bfloat16 --seconds 15
	$(PY) eval/bench_sweep.py --limit 0 --every 20 --runs offline,alignatt,psfuture --batch 16 --threads 1 \
	  --dtype bfloat16 --jobs 2

clean:
	rm -rf $(VENV) build
