# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
# The venv's interpreter must be world-readable so that non-root users can run the
# read-only commands (runs, show, tune, top): Debian's /usr/bin/python3 (deps installs
# python3-venv for it), not e.g. a pyenv build under root's mode-700 home.
PY ?= $(if $(or $(wildcard /usr/bin/python3),$(wildcard /usr/bin/apt-get)),/usr/bin/python3,python3)
VENV := .venv
VPY := $(VENV)/bin/python
BUILD := build
OBJ_DIR := src/opensre/bpf/objects
BPF_SRC := $(wildcard bpf/*.bpf.c)
BPF_OBJ := $(patsubst bpf/%.bpf.c,$(OBJ_DIR)/%.bpf.o,$(BPF_SRC))
ARCH := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')
BTF ?= /sys/kernel/btf/vmlinux

.PHONY: all deps bpf venv wheel demo test test-unit test-kernels bench clean

all: bpf venv

# system packages: compiler, libbpf headers, workloads the tests drive (bioinformatics tools
# for the Snakemake end-to-end test, chromium for the HTML report's browser test, a JVM for Spark
# reading the Parquet lake)
deps: .deps-stamp
.deps-stamp:
	@if ! command -v clang >/dev/null || ! command -v bpftool >/dev/null || [ ! -e /usr/include/bpf/bpf_helpers.h ] || ! command -v stress-ng >/dev/null || [ ! -x /usr/bin/time ] || ! command -v bwa >/dev/null || ! command -v bcftools >/dev/null || ! command -v chromium >/dev/null || ! command -v tmux >/dev/null || ! command -v java >/dev/null || ! $(PY) -c 'import ensurepip' 2>/dev/null; then \
		if [ "$$(id -u)" != 0 ]; then echo "missing build packages: run 'sudo make deps'" >&2; exit 1; fi; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang llvm libbpf-dev bpftool stress-ng time gcc make bwa samtools bcftools tmux chromium python3-venv openjdk-17-jre-headless >/dev/null; \
	fi
	@touch $@

$(BUILD)/vmlinux.h: | deps
	@mkdir -p $(BUILD)
	@test -r $(BTF) || { echo "kernel BTF not found at $(BTF): CO-RE needs CONFIG_DEBUG_INFO_BTF=y" >&2; exit 1; }
	bpftool btf dump file $(BTF) format c > $@.tmp && mv $@.tmp $@

# Objects are built from the committed source on every install; the .src-sha256
# stamp records which source an object came from (checked by the loader's tests).
$(OBJ_DIR)/%.bpf.o: bpf/%.bpf.c $(wildcard bpf/include/*.h) $(BUILD)/vmlinux.h
	@mkdir -p $(OBJ_DIR)
	clang -g -O2 -Wall -Werror -target bpf -mcpu=v3 -D__TARGET_ARCH_$(ARCH) -I$(BUILD) -Ibpf -c $< -o $@
	cat $< bpf/include/*.h | sha256sum | cut -d' ' -f1 > $@.src-sha256

bpf: $(BPF_OBJ)

venv: $(VENV)/.stamp
$(VENV)/.stamp: pyproject.toml | deps
	@# a venv made by another interpreter is recreated (venv keeps old links otherwise)
	@if [ -e $(VENV)/bin/python3 ] && [ "$$(readlink -f $(VENV)/bin/python3)" != "$$($(PY) -c 'import os, sys; print(os.path.realpath(sys.executable))')" ]; then \
		echo "recreating $(VENV) with $(PY)"; rm -rf $(VENV); fi
	$(PY) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q -e '.[test]'
	@touch $@

# A wheel for the hosts that run opensre: the Python package plus the prebuilt CO-RE
# objects (built here from bpf/, checked against their source stamps) and
# opensre/bpf/objects/BUILD-INFO.json, their provenance (commit, clang, sha256s); see
# docs/install.md. Refuses stale or orphan objects, and bpf/ sources that differ from
# the commit unless ALLOW_DIRTY=1 (recorded in BUILD-INFO.json).
# Tagged py3-none-linux_<machine>, not any: the objects are compiled for this
# architecture (__TARGET_ARCH_$(ARCH), its byte order). linux_x86_64 is a tag every pip
# on Linux x86_64 accepts (Debian 12's pip 23 included), glibc or musl; a manylinux tag
# would promise a glibc ABI the wheel has nothing to do with (no native host code:
# libbpf.so.1 is loaded through ctypes at run time). PyPI refuses linux_* tags; this
# wheel is for your own hosts or index.
WHEEL_PLAT := linux_$(shell uname -m)
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
wheel: bpf venv
	@rm -f dist/opensre-*.whl
	@rm -rf $(BUILD)/lib $(BUILD)/bdist.*
	@set -e; trap 'rm -f $(OBJ_DIR)/BUILD-INFO.json' EXIT; \
	$(VPY) tools/build_info.py --arch $(ARCH) --version $(VERSION) $(if $(ALLOW_DIRTY),--allow-dirty) -o $(OBJ_DIR)/BUILD-INFO.json; \
	$(VPY) -m pip wheel -q --no-deps -w dist --config-settings=--build-option=--plat-name=$(WHEEL_PLAT) .
	@rm -rf $(BUILD)/lib $(BUILD)/bdist.*
	@ls -l dist/opensre-$(VERSION)-*.whl

demo: all
	$(VENV)/bin/opensre run --name demo -- bash demo/pipeline.sh
	$(VENV)/bin/opensre show demo | sed -n '/^TASK/,$$p'
	$(VENV)/bin/opensre tune demo

test: all
	$(VENV)/bin/pytest -q --timeout=900 tests

# the kernel test tier again inside each kernel of tests/kernels/kernels.txt (Debian 12's
# 6.1 LTS), booted under qemu with virtme-ng; one summary line per kernel (root)
test-kernels: all
	bash tests/kernels/run.sh $(ARGS)

test-unit: venv
	$(VENV)/bin/pytest -q tests/unit

bench: all
	$(VPY) bench/overhead.py

clean:
	rm -rf $(BUILD) $(OBJ_DIR) .deps-stamp
