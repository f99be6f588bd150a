# Entry points for a fresh machine: `make solve` (the main job), `make test` (the suite) and
# `make lint`. They create .venv on first use; where no GPU is present torch is installed first from
# PyTorch's CPU-only index (tools/install_cpu_torch.py), so `pip install -e .` does not pull a
# multi-gigabyte CUDA build. Nothing here installs system packages except `make test-deps`, which
# CI (.ci/run) runs as root to get the browser and sandbox the full suite exercises.

VENV := .venv
PY := $(VENV)/bin/python
HAS_GPU := $(shell command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1 && echo 1)
BUDGET ?= $(if $(HAS_GPU),15m,3m)
VARIANT ?= attention/softcap
TORCH_VERSION := 2.13.0
SYSTEM_TEST_DEPS := chromium bubblewrap

.PHONY: solve test lint install test-deps

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) tools/install_cpu_torch.py --torch $(TORCH_VERSION) --python $(PY)
	$(PY) -m pip install -q -e '.[test]'
	touch $@

install: $(VENV)/.installed

solve: install
	$(VENV)/bin/kernelscale solve $(VARIANT) --budget $(BUDGET) --out runs/$(subst /,-,$(VARIANT))

test: install
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
		echo "chromium not found: the HTML report's browser tests are skipped (enable: sudo make test-deps)"
	$(PY) -m pytest -n 2 -q

lint: install
	$(VENV)/bin/ruff check src tests benchmarks tools
	$(VENV)/bin/ruff format --check src tests benchmarks tools
	$(PY) tools/check_sizes.py src
	$(PY) tools/check_layers.py src/kernelscale

# System packages for the full suite (Debian/Ubuntu, as root): the headless browser that renders
# the HTML report and bubblewrap, the verifier's sandbox.
test-deps:
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(SYSTEM_TEST_DEPS) || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(SYSTEM_TEST_DEPS))
