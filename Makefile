# pki-issuer developer commands. `make test` is what CI runs.
SHELL := /bin/bash
CARGO ?= cargo
export CARGO_TERM_COLOR ?= never

.PHONY: all build test test-deps lint lint-packaging fmt-check clippy generate sync-crds check-generated demo bench e2e-kind e2e-kube kube-apiserver clean

all: build

build:
	$(CARGO) build --workspace --all-targets

## test: everything CI runs: formatting, lints, generated files, unit, test API server and e2e
## tests, then the e2e suite again on a real kube-apiserver + etcd.
test: test-deps fmt-check clippy check-generated lint-packaging
	$(CARGO) test --workspace --all-targets --locked
	bash e2e/scripts/e2e-kube.sh

## e2e-kube: the e2e suite on a real kube-apiserver v1.20 + etcd (builds or reuses the binary).
e2e-kube: test-deps
	bash e2e/scripts/e2e-kube.sh

## kube-apiserver: build (or find in the cache) the real kube-apiserver; prints its path.
kube-apiserver: test-deps
	bash e2e/scripts/kube-apiserver.sh build

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
	bash hack/sync-chart-crds.sh

## sync-crds: copy crds/ into helm/pki-issuer/crds and config/crd/bases.
sync-crds:
	bash hack/sync-chart-crds.sh

## check-generated: fail when crds/ is stale.
check-generated:
	$(CARGO) test --quiet --lib --locked crds_are_up_to_date

## lint-packaging: shellcheck, hadolint, yamllint, CRD copies in sync, helm lint + render (Helm v4 SDK), kustomize build.
lint-packaging:
	bash e2e/scripts/lint.sh

lint: fmt-check clippy lint-packaging

## demo: build, start the API server and pki-issuer, issue certificates, prove mTLS.
## APISERVER=test (default: the project's test API server) or APISERVER=kube (real kube-apiserver).
APISERVER ?= test
demo:
	APISERVER=$(APISERVER) bash e2e/scripts/demo.sh

## e2e-kind: e2e suite + kind-only checks on a kind cluster with real cert-manager (needs Docker, kind, helm; KEEP_CLUSTER=1 keeps it).
e2e-kind:
	bash e2e/kind/run.sh

bench:
	$(CARGO) bench --workspace

clean:
	$(CARGO) clean
