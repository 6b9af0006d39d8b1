# gatescope: `make run` serves the bundled default model; `make test` runs every test.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test lint bench fuzz fixtures clean chromium series-models

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,keras,onnx]'
	touch $@

run: $(VENV)/.installed
	$(VENV)/bin/gatescope serve --host $(HOST) --port $(PORT)

# Debian's chromium drives the browser tests (Playwright uses it through executable_path).
chromium:
	@command -v chromium >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium >/dev/null; }

# eslint and its rules, pinned by package-lock.json (npm ci installs exactly those).
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

lint: $(VENV)/.installed node_modules/.installed
	$(VENV)/bin/ruff check model app tests bench
	$(VENV)/bin/ruff format --check model app tests bench
	$(VENV)/bin/mypy model app
	npx --no-install eslint static/js

# Two workers (pytest-xdist), one per core: a test file runs whole on one worker, so its module and session
# fixtures (the browser tests' servers, Chromium) start once a worker.
test: $(VENV)/.installed chromium lint
	$(PY) -m pytest -q -n 2 --dist loadfile

# The long API fuzz: schemathesis, 2,000 examples an operation, against a real server on 127.0.0.1
# (make test runs the same test with 12). GATESCOPE_FUZZ_SEED picks another seed.
fuzz: $(VENV)/.installed
	GATESCOPE_FUZZ_EXAMPLES=2000 $(PY) -m pytest -q tests/app/test_schema_fuzz.py

# Speed, printed beside each target. Every library compared against runs in a process of its own at its
# own defaults, taking turns with gatescope's (bench/sides.py). PyTorch and orjson are never dependencies
# of gatescope: TORCH_PYTHON and ORJSON_PYTHON name an interpreter that has them (else this venv's, if it
# imports them; else those baselines are skipped, saying so). For example
#   python3 -m venv /tmp/torchenv && /tmp/torchenv/bin/pip install torch==2.13.0 numpy orjson
#   make bench TORCH_PYTHON=/tmp/torchenv/bin/python ORJSON_PYTHON=/tmp/torchenv/bin/python
bench: $(VENV)/.installed chromium
	$(PY) bench/core.py
	$(PY) bench/train.py
	$(PY) bench/wire.py
	$(PY) bench/api.py
	$(PY) bench/browser.py
	$(PY) bench/browser_cpu.py $(if $(BASELINE),--against $(BASELINE))
	$(PY) bench/load.py
	$(PY) bench/analysis.py
	$(PY) bench/causal.py

# Retrain the two bundled regression models with the commands their cards record (a few minutes each on
# this 2-core machine; never run by `make test`). The CO2 series is committed (tests/fixtures/make_co2.py
# wrote it from statsmodels, which gatescope never needs).
series-models: $(VENV)/.installed
	$(VENV)/bin/gatescope train adding --option length=30 --hidden 16 --steps 4000 --lr 1e-2 --forget-bias 2 --out model/pretrained/adding-lstm
	$(VENV)/bin/gatescope train co2 --hidden 24 --steps 1500 --lr 1e-2 --warmup 50 --out model/pretrained/co2-lstm

# Regenerate the committed reference fixtures (never run by `make test`). FIXTURE_PYTHON must have
# torch, keras, onnx, h5py, safetensors and tokenizers (and statsmodels, for make_co2.py): python3 -m venv /tmp/fx &&
# /tmp/fx/bin/pip install torch==2.13.0 keras onnx onnxscript h5py safetensors tokenizers statsmodels, then
# make fixtures FIXTURE_PYTHON=/tmp/fx/bin/python
FIXTURE_PYTHON ?= $(PY)
fixtures:
	for s in tests/fixtures/make_*.py; do PYTHONPATH=. KERAS_BACKEND=torch $(FIXTURE_PYTHON) $$s || exit 1; done

clean:
	rm -rf $(VENV) node_modules .pytest_cache .mypy_cache .ruff_cache tests/artifacts
