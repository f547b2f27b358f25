# docker-socket-operator — every entry point a user or CI needs.
SHELL := /bin/bash
DSO_CACHE ?= /var/cache/docker-socket-operator
export DSO_CACHE
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
export PIP_CACHE_DIR := $(DSO_CACHE)/pip
SHARED ?= $(abspath ../shared)
export SHARED
# A bare `make` lists the entry points (the included files' first target is a long Go build).
.DEFAULT_GOAL := help

include mk/controlplane.mk
include mk/node.mk
include mk/kstatus.mk
include mk/image.mk
include mk/install.mk


.PHONY: generate help deps system-deps venv lint typecheck test test-unit test-integration demo bench \
        crds catalogue check-generated e2e clean fuzz compiled clean-compiled

help:
	@echo "make demo   - the proxy before a private dockerd, the operator on a control plane, a real node with client pods"
	@echo "make test   - lint, types, generated files, unit, integration and real-node tests"
	@echo "make bench  - proxy vs direct socket (and operator figures when the control plane exists)"
	@echo "make fuzz   - differential fuzzer through the real proxy (FUZZ_SECONDS=600, FUZZ_SEED=...)"

deps: system-deps venv compiled

# The request path compiled with mypyc (setup.py, hack/build_compiled.py): what the tests, the
# bench and the image run. Without a C compiler the proxy runs as pure Python.
compiled: venv
	@$(PY) hack/build_compiled.py || echo "!! mypyc build failed: the proxy runs as pure Python"

clean-compiled: venv
	$(PY) hack/build_compiled.py --clean

# Debian packages the tests and the demo start for real: dockerd, podman (catatonit: the pause
# process of `podman kube play` pods; Debian recommends it), busybox for the image.
system-deps:
	@missing=""; \
	$(PYTHON) -c 'import ensurepip' 2>/dev/null || missing="$$missing python3-venv"; \
	$(PYTHON) -c 'import os, sysconfig; assert os.path.exists(sysconfig.get_path("include") + "/Python.h")' 2>/dev/null || missing="$$missing python3-dev"; \
	for pair in gcc:gcc dockerd:docker.io podman:podman docker-compose:docker-compose catatonit:catatonit busybox:busybox-static newuidmap:uidmap debootstrap:debootstrap openssl:openssl; do \
	  command -v $${pair%%:*} >/dev/null 2>&1 || missing="$$missing $${pair#*:}"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

$(VENV)/.stamp: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -U pip
	$(PY) -m pip install -q -e '.[dev,operator]'
	touch $@

venv: $(VENV)/.stamp

lint: venv
	$(VENV)/bin/ruff check operator tests e2e hack bench demo
	$(VENV)/bin/ruff format --check operator tests e2e hack bench demo

typecheck: venv
	$(VENV)/bin/mypy
	MYPYPATH=operator:.:hack $(VENV)/bin/mypy --strict --explicit-package-bases tests bench demo hack

catalogue: venv
	$(PY) -m docker_socket_operator.catalogue.build --specs $(SHARED)/docker-api

crds: venv
	$(PY) -m docker_socket_operator.cli crd --output crds/

# Everything generated from the models and the chart, after a change to either.
generate: crds install-manifests policy-reference

test-unit: venv
	$(VENV)/bin/pytest -q tests/unit

test-integration: deps
	$(VENV)/bin/pytest -q tests/integration

test: deps lint typecheck
	@# A failed control-plane build does not hide the rest: the kube tests then skip, saying why.
	@$(MAKE) --no-print-directory controlplane || echo "!! control plane build failed: kube-marked tests will skip"
	@$(MAKE) --no-print-directory node-deps node-bins || echo "!! node build failed: node-marked tests will skip"
	@$(MAKE) --no-print-directory kstatus-check || echo "!! kstatus-check build failed: the kstatus checks will skip"
	$(VENV)/bin/pytest -q -rs tests

demo: deps
	@$(MAKE) --no-print-directory controlplane || echo "!! control plane build failed (it needs Go, README.md): the demo skips its Kubernetes parts"
	@$(MAKE) --no-print-directory node-deps node-bins || echo "!! node build failed: the demo skips its real-node part"
	$(PY) demo/run.py

bench: deps
	@command -v haproxy >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy >/dev/null; } || echo "haproxy peer unavailable"
	$(PY) bench/proxy_bench.py
	@if [ -x $(DSO_CACHE)/bin/kube-apiserver ]; then $(PY) bench/operator_bench.py; \
	 else echo "operator benchmark skipped: run 'make controlplane' first"; fi

# The differential fuzzer (docs/fuzzing.md) for longer than `make test` runs it.
FUZZ_SECONDS ?= 600
FUZZ_SEED ?=
fuzz: venv
	$(PY) -m tests.fuzz.runner --seconds $(FUZZ_SECONDS) $(if $(FUZZ_SEED),--seed $(FUZZ_SEED))

e2e:
	@bash e2e/run.sh

clean:
	-$(PY) hack/build_compiled.py --clean
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
