# The two commands: `make demo` (main job on the shipped model) and `make test` (the test suite).
# Each sets up everything it needs on a fresh Debian machine with Python 3.11.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test setup browser data model p2f sweep bench clean

$(STAMP): setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first, pinned: the CPU wheel on local disk (anything else pulls a multi-GB CUDA build).
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test]'
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

clean:
	rm -rf $(VENV) build
