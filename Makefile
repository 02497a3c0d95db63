# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
BUILD := build
OBJ_DIR := src/opensre/bpf/objects
BPF_SRC := $(wildcard bpf/*.bpf.c)
BPF_OBJ := $(patsubst bpf/%.bpf.c,$(OBJ_DIR)/%.bpf.o,$(BPF_SRC))
ARCH := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')
BTF ?= /sys/kernel/btf/vmlinux

.PHONY: all deps bpf venv demo test test-unit test-kernel bench clean

all: bpf venv

# system packages: compiler, libbpf headers, workloads the tests drive (bioinformatics tools
# for the Snakemake end-to-end test, chromium for the HTML report's browser test)
deps: .deps-stamp
.deps-stamp:
	@if ! command -v clang >/dev/null || ! command -v bpftool >/dev/null || [ ! -e /usr/include/bpf/bpf_helpers.h ] || ! command -v stress-ng >/dev/null || [ ! -x /usr/bin/time ] || ! command -v bwa >/dev/null || ! command -v bcftools >/dev/null || ! command -v chromium >/dev/null || ! command -v tmux >/dev/null; then \
		if [ "$$(id -u)" != 0 ]; then echo "missing build packages: run 'sudo make deps'" >&2; exit 1; fi; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang llvm libbpf-dev bpftool stress-ng time gcc make bwa samtools bcftools tmux chromium >/dev/null; \
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
$(VENV)/.stamp: pyproject.toml
	$(PY) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q -e '.[test]'
	@touch $@

demo: all
	$(VENV)/bin/opensre run --name demo -- bash demo/pipeline.sh
	$(VENV)/bin/opensre show demo | sed -n '/^TASK/,$$p'
	$(VENV)/bin/opensre tune demo

test: all
	$(VENV)/bin/pytest -q tests

test-unit: venv
	$(VENV)/bin/pytest -q tests/unit

bench: all
	$(VPY) bench/overhead.py

clean:
	rm -rf $(BUILD) $(OBJ_DIR) .deps-stamp
