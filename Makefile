# ModelPress: the whole set-up on a fresh Debian machine is `make demo` or `make test`.
SHELL := /bin/bash
export PATH := $(PATH):/opt/swift/usr/bin

DEB_PACKAGES := libzstd-dev libopenblas-dev liblapacke-dev pkg-config zstd
PIP_PACKAGES := numpy safetensors gguf ml_dtypes zstandard
VENV := .venv
PYTHON := $(CURDIR)/$(VENV)/bin/python
DEMO_MODEL := TestModels/pico-llama-f32
BIN := .build/release/modelpress

FUZZ_TARGETS := safetensors gguf imatrix recipe adapter-config zstd
FUZZ_SECONDS ?= 60
FUZZ_TEST_RUNS ?= 20000
FUZZ_TEST_INPUTS ?= 20000
FUZZ_OUT ?= out/fuzz
FUZZ_BIN := .build-fuzz/debug/modelpress-fuzz
FUZZ_BUILD := swift build --product modelpress-fuzz --build-path .build-fuzz -Xswiftc -sanitize=fuzzer,address \
	-Xswiftc -DMODELPRESS_LIBFUZZER -Xswiftc -use-ld=lld

.PHONY: demo test deps pydeps build release bench clean fuzz fuzz-short

## demo: install what is missing, build, compress a test model with a recipe and print the report,
## then quantize it to Q4_K GGUF and dequantize it back, printing the summaries, then store the BF16
## model losslessly as .zst and restore it byte for byte.
demo: deps release
	@mkdir -p out
	$(BIN) inspect $(DEMO_MODEL)
	$(BIN) compress $(DEMO_MODEL) --recipe Recipes/w4-group128.recipe -o out/pico-llama-w4g128.safetensors --report out/pico-llama-w4g128.report.json
	$(BIN) convert $(DEMO_MODEL) -o out/pico-llama-q4_k.gguf --type Q4_K
	$(BIN) inspect out/pico-llama-q4_k.gguf
	$(BIN) convert out/pico-llama-q4_k.gguf -o out/pico-llama-q4_k-dequantized.safetensors --dtype bf16
	$(BIN) inspect out/pico-llama-q4_k-dequantized.safetensors
	$(BIN) compress TestModels/pico-llama-bf16 --recipe Recipes/lossless.recipe -o out/pico-llama-bf16.safetensors.zst
	$(BIN) decompress out/pico-llama-bf16.safetensors.zst -o out/pico-llama-bf16-restored.safetensors
	cmp out/pico-llama-bf16-restored.safetensors TestModels/pico-llama-bf16/model.safetensors && echo "lossless: restored byte for byte"

## test: install what is missing, then run every test (debug build), then a short fuzz (fuzz-short).
test: deps pydeps
	MODELPRESS_PYTHON=$(PYTHON) swift test
	$(MAKE) --no-print-directory fuzz-short

## fuzz: build modelpress-fuzz with libFuzzer and AddressSanitizer (in .build-fuzz, apart from .build;
## lld, as gold fails on the sanitizer objects) and run each target (FUZZ_TARGETS) for FUZZ_SECONDS
## (default 60) from its seeds in Fuzz/Corpus/<target> with its Fuzz/Dictionaries entry, under
## -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=1024 -max_len=65536. New corpus entries, crash-,
## timeout- and oom- inputs and the logs go to FUZZ_OUT/<target>/ (default out/fuzz; Fuzz/Corpus is
## only read). Prints seconds, executions, new units and findings per target; fails on a finding.
## FUZZ_KEEP_GOING=1 restarts a target after a finding until its time is up.
fuzz: deps
	$(FUZZ_BUILD)
	Fuzz/run-fuzzers.sh $(FUZZ_BIN) $(FUZZ_SECONDS) $(FUZZ_OUT) $(FUZZ_TARGETS)

## fuzz-short: the fuzz of `make test`: FUZZ_TEST_RUNS (default 20000) inputs per target with libFuzzer
## from a fixed seed (the same inputs on every machine, about 2-35 s per target), or, where the
## toolchain has no libFuzzer, the in-process driver on FUZZ_TEST_INPUTS seeded mutants per target
## (debug build). Outputs in out/fuzz-test. Fails on a finding.
fuzz-short: deps
	@if Fuzz/has-libfuzzer.sh; then \
	  $(FUZZ_BUILD) && FUZZ_RUNS=$(FUZZ_TEST_RUNS) Fuzz/run-fuzzers.sh $(FUZZ_BIN) 120 out/fuzz-test $(FUZZ_TARGETS); \
	else \
	  echo "this toolchain has no libFuzzer (swiftc -sanitize=fuzzer): running the in-process mutation driver instead"; \
	  swift build --product modelpress-fuzz && .build/debug/modelpress-fuzz mutate all --corpus Fuzz/Corpus \
	    --inputs $(FUZZ_TEST_INPUTS) --crash-dir out/fuzz-test/in-process; \
	fi

## bench: release-mode benchmarks (see README, Performance).
bench: deps
	swift build -c release --product modelpress
	swift run -c release modelpress-bench

## deps: the Debian packages (C libraries) the build links against.
deps:
	@missing=""; for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=""; if [ "$$(id -u)" -ne 0 ]; then SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

## pydeps: a virtual environment with the Python packages the cross-check tests use.
pydeps:
	@if ! $(PYTHON) -c "import numpy, safetensors, gguf, ml_dtypes, zstandard" 2>/dev/null; then \
	  echo "creating $(VENV) with $(PIP_PACKAGES)"; \
	  python3 -m venv $(VENV) && $(PYTHON) -m pip install --quiet --disable-pip-version-check $(PIP_PACKAGES); \
	fi

build: deps
	swift build

release: deps
	swift build -c release --product modelpress

clean:
	rm -rf .build .build-fuzz out
