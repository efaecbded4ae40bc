# resumable-wasm — every entry point. `make demo` and `make test` install what they need first.
SHELL := /bin/bash
.DEFAULT_GOAL := help
export CHROMEDRIVER ?= /usr/bin/chromedriver

.PHONY: help tools build demo test lint test-native test-types test-wasm test-e2e size bench clean

help:
	@echo "make demo   build, then serve the demo on http://127.0.0.1:8080 with the API on http://localhost:8081"
	@echo "            (make demo TLS=1: both over HTTPS + HTTP/2 with a certificate made at start)"
	@echo "make test   lint + native tests + wasm browser tests + end-to-end suite (what CI runs)"
	@echo "make build  release wasm -> pkg/ (npm package) and pkg/script/ (script-tag build)"
	@echo "make size   raw and gzip sizes of the shipped files"
	@echo "make bench  benchmark against Resumable.js and Flow.js -> BENCHMARKS.md"

tools:
	@scripts/ensure-tools.sh --browser

build:
	@scripts/ensure-tools.sh
	@scripts/build.sh

demo: build
	@cargo build -q -p server-fixture
	@TLS="$(TLS)" scripts/demo.sh

test: tools lint test-native build test-types test-wasm test-e2e
	@echo "make test: all layers passed"

lint:
	cargo fmt --all -- --check
	cargo clippy -q --workspace --all-targets -- -D warnings
	cargo clippy -q -p resumable-wasm --all-targets --target wasm32-unknown-unknown -- -D warnings
	cargo clippy -q -p resumable-wasm --lib --target wasm32-unknown-unknown --release --no-default-features -- -D warnings

test-native:
	cargo test --workspace

test-types:
	node_modules/.bin/tsc -p tests/types/tsconfig.json

test-wasm:
	@cargo build -q -p server-fixture
	@scripts/test-wasm.sh

test-e2e:
	@cargo build -q -p server-fixture
	node --test --test-concurrency=1 tests/e2e/

size: build
	@scripts/size.sh

bench: build
	@cargo build -q --release -p server-fixture
	node bench/run.mjs

clean:
	cargo clean
	rm -rf pkg node_modules
