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
IDX_DIR := /usr/share/datasets/fashion-mnist
# The TFLite metadata code, generated from the published schema by flatc (see pipelines/metadata/__init__.py).
SCHEMA := pipelines/metadata/metadata_schema.fbs
SCHEMA_CODE := pipelines/metadata/generated/metadata_schema_generated.py
# Root runs apt-get directly; anyone else through sudo.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test bench setup data mediapipe clean

run: setup data
	$(VENV)/bin/dlpipe --task=dense

test: setup data mediapipe
	$(VENV)/bin/python -m pytest

bench: setup data
	$(VENV)/bin/python -m benchmarks.run

setup: $(STAMP) $(SCHEMA_CODE)

$(STAMP): setup.cfg pyproject.toml
	@# Debian ships venv separately (python3-venv); install it only if venv is missing.
	$(PYTHON) -m venv --help >/dev/null 2>&1 || ($(SUDO) apt-get update && $(SUDO) apt-get install -y python3-venv)
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[test]'
	touch $(STAMP)

$(SCHEMA_CODE): $(SCHEMA)
	command -v flatc >/dev/null || ($(SUDO) apt-get update && $(SUDO) apt-get install -y flatbuffers-compiler)
	flatc --python --gen-object-api --gen-onefile -o $(dir $@) $(SCHEMA)

mediapipe: $(MEDIAPIPE_STAMP)

$(MEDIAPIPE_STAMP):
	$(PYTHON) -m venv $(MEDIAPIPE_VENV)
	$(MEDIAPIPE_VENV)/bin/pip install --quiet --upgrade pip
	$(MEDIAPIPE_VENV)/bin/pip install --quiet mediapipe==0.10.21
	touch $@

# The offline default data: Debian's dataset-fashion-mnist, installed only when its files are not there.
data:
	@if [ -f $(IDX_DIR)/train-images-idx3-ubyte.gz ]; then :; \
	elif command -v apt-get >/dev/null; then \
		$(SUDO) apt-get update && $(SUDO) apt-get install -y dataset-fashion-mnist; \
	else echo "no apt-get: put Fashion-MNIST's four IDX .gz files in $(IDX_DIR) (see BUILD.md)"; fi

clean:
	rm -rf $(VENV) $(MEDIAPIPE_VENV) runs build dist *.egg-info $(dir $(SCHEMA_CODE))
