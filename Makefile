# pki-issuer developer commands. `make test` is what CI runs.
SHELL := /bin/bash
CARGO ?= cargo
export CARGO_TERM_COLOR ?= never

.PHONY: all build test test-deps lint fmt-check clippy generate check-generated demo bench e2e-kind clean

all: build

build:
	$(CARGO) build --workspace --all-targets

## test: everything CI runs: formatting, lints, generated files, unit, test API server and e2e tests.
test: test-deps fmt-check clippy check-generated
	$(CARGO) test --workspace --all-targets --locked

## test-deps: install the tools the tests call (Debian packages) when they are missing.
test-deps:
	@bash e2e/scripts/install-test-deps.sh

fmt-check:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

## generate: regenerate crds/ from the Rust types.
generate:
	$(CARGO) run --quiet --bin crdgen -- crds/

## check-generated: fail when crds/ is stale.
check-generated:
	$(CARGO) test --quiet --lib --locked crds_are_up_to_date

lint: fmt-check clippy

bench:
	$(CARGO) bench --workspace

clean:
	$(CARGO) clean
