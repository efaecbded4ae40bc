# resumable-wasm — every entry point. `make demo` and `make test` install what they need first.
SHELL := /bin/bash
.DEFAULT_GOAL := help
export CHROMEDRIVER ?= /usr/bin/chromedriver
# The engines the browser layers run, in this order; `make test BROWSERS=chromium` runs one.
# Empty (`BROWSERS=` in the environment or on the command line) means all three, never none:
# a set-but-empty value must not skip a browser layer while `make test` stays green.
override BROWSERS := $(or $(strip $(BROWSERS)),chromium firefox webkit)
export BROWSERS
# The fewest tests each node layer must pass (scripts/node-tests.sh): a test file that goes
# missing fails the layer. Raise them with the tests; lower them only with a test removed.
E2E_MIN_TESTS := 132
NODE_MIN_TESTS := 6
export ENGINE_MIN_TESTS := 28

.PHONY: help tools build demo test lint test-clean-tree test-native test-size test-types test-package test-node test-wasm test-e2e test-engines size bench bench-publish clean

help:
	@echo "make demo   build, then serve the demo on http://127.0.0.1:8080 with the API on http://localhost:8081"
	@echo "            (other ports: make demo PAGE_PORT=9080 API_PORT=9081; HTTPS + HTTP/2: make demo TLS=1)"
	@echo "make test   lint + native tests + wasm browser tests + end-to-end suite (what CI runs)"
	@echo "           in Chromium, Firefox and WebKit; BROWSERS=\"chromium firefox\" picks engines"
	@echo "make build  release wasm -> pkg/ (npm package) and pkg/script/ (script-tag build)"
	@echo "make size   raw and gzip sizes of the shipped files (fails above the budget)"
	@echo "make bench  benchmark against Resumable.js and Flow.js, loopback and emulated links over"
	@echo "            HTTP/1.1 and HTTP/2 -> target/bench/BENCHMARKS.md (the full matrix: 80-90 min;"
	@echo "            make bench QUICK=1: a subset in about 3 min; make bench-publish copies a run to"
	@echo "            the committed BENCHMARKS.md)"

tools:
	@scripts/ensure-tools.sh --browser

build:
	@scripts/ensure-tools.sh
	@scripts/build.sh

# Other ports when 8080/8081 are taken: make demo PAGE_PORT=9080 API_PORT=9081 (API_PORT defaults
# to PAGE_PORT + 1).
demo: build
	@cargo build -q -p server-fixture
	@TLS="$(TLS)" PAGE_PORT="$(PAGE_PORT)" API_PORT="$(API_PORT)" S3="$(S3)" scripts/demo.sh

test: tools test-clean-tree lint test-native build test-size test-types test-package test-node test-wasm test-e2e test-engines
	@echo "make test: all layers passed"

lint:
	@scripts/check-repo-paths.sh
	cargo fmt --all -- --check
	cargo clippy -q --workspace --all-targets -- -D warnings
	cargo clippy -q -p resumable-wasm --all-targets --target wasm32-unknown-unknown -- -D warnings

# The tool install in a fresh clone must not change a tracked file (issue 17).
test-clean-tree:
	@scripts/test-clean-tree.sh

test-native:
	cargo test --workspace

# The consumers resolve `resumable-wasm` as an installed package does (node_modules, `exports`):
# tests/types/node_modules/resumable-wasm is a link to pkg/ (ignored, like every node_modules).
test-types:
	@mkdir -p tests/types/node_modules && ln -sfn ../../../pkg tests/types/node_modules/resumable-wasm
	node_modules/.bin/tsc -p tests/types/tsconfig.json

# The packed tarball as publint and attw see it (scripts/test-package.sh).
test-package:
	@scripts/test-package.sh

# The Node door: the package installed as the README says, uploading from Node into the
# fixture; importing it without a window (server-side rendering).
test-node:
	@cargo build -q -p server-fixture
	@scripts/node-tests.sh test-node $(NODE_MIN_TESTS) tests/node/*.test.mjs

test-wasm:
	@cargo build -q -p server-fixture
	@scripts/test-wasm.sh

# The Playwright suite is Chromium's (CDP); every engine runs the WebDriver core (test-engines).
test-e2e:
	@cargo build -q -p server-fixture
	@if [[ " $(BROWSERS) " == *" chromium "* ]]; then scripts/node-tests.sh test-e2e $(E2E_MIN_TESTS) tests/e2e/*.test.mjs; \
	  else echo "test-e2e: skipped, chromium is not in BROWSERS ($(BROWSERS))"; fi

test-engines:
	@cargo build -q -p server-fixture
	@scripts/test-engines.sh

size: build
	@scripts/size.sh

# The size budget (README "Size"): fails when the build just made is over it.
test-size:
	@scripts/size.sh

# A bench run writes into target/bench/ (ignored: the checkout stays clean); bench-publish turns
# the last run into the committed BENCHMARKS.md and bench/results.json. QUICK=1 runs the subset
# marked `quick` in bench/run.mjs with 2 rounds.
BENCH_DIR := target/bench
bench: build
	@cargo build -q --release -p server-fixture
	BENCH_QUICK=$(QUICK) BENCH_OUT=$(BENCH_DIR)/results.json BENCH_MD=$(BENCH_DIR)/BENCHMARKS.md node bench/run.mjs

bench-publish:
	@test -f $(BENCH_DIR)/results.json || { echo "bench-publish: no $(BENCH_DIR)/results.json: run make bench first" >&2; exit 1; }
	cp $(BENCH_DIR)/results.json bench/results.json
	node bench/run.mjs --render

clean:
	cargo clean
	rm -rf pkg node_modules
