# ModelPress: the whole set-up on a fresh Debian machine is `make demo` or `make test`.
SHELL := /bin/bash
export PATH := $(PATH):/opt/swift/usr/bin

DEB_PACKAGES := libzstd-dev libopenblas-dev liblapacke-dev pkg-config zstd
PIP_PACKAGES := numpy safetensors gguf ml_dtypes zstandard
VENV := .venv
PYTHON := $(CURDIR)/$(VENV)/bin/python
DEMO_MODEL := TestModels/pico-llama-f32
BIN := .build/release/modelpress

.PHONY: demo test deps pydeps build release bench clean

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

## test: install what is missing, then run every test (debug build).
test: deps pydeps
	MODELPRESS_PYTHON=$(PYTHON) swift test

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
	rm -rf .build out
