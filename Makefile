# Two entry points for a fresh machine: `make solve` (the main job) and `make test` (the suite CI runs).
# Both create .venv on first use. torch is pinned to the CPU build first where no GPU is present,
# so `pip install -e .` does not pull a multi-gigabyte CUDA build.

VENV := .venv
PY := $(VENV)/bin/python
HAS_GPU := $(shell command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1 && echo 1)
BUDGET ?= $(if $(HAS_GPU),15m,3m)
VARIANT ?= attention/softcap

.PHONY: solve test install

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(if $(HAS_GPU),,$(PY) -m pip install -q torch==2.13.0)
	$(PY) -m pip install -q -e '.[test]'
	touch $@

install: $(VENV)/.installed

solve: install
	$(VENV)/bin/kernelscale solve $(VARIANT) --budget $(BUDGET) --out runs/$(subst /,-,$(VARIANT))

test: install
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
		(apt-get install -y -qq chromium >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)); } || \
		echo "chromium not installed: the HTML report's browser tests will be skipped"
	$(PY) -m pytest -n 2 -q
