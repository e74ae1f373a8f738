# pki-issuer developer commands. `make test` is what CI runs.
SHELL := /bin/bash
CARGO ?= cargo
export CARGO_TERM_COLOR ?= never

.PHONY: all build test test-deps monitoring dashboard lint lint-packaging fmt-check clippy generate check-generated demo bench bench-sign bench-e2e bench-cert-manager e2e-kind e2e-kube control-plane chaos clean leak-scan fuzz-replay fuzz

all: build

build:
	$(CARGO) build --workspace --all-targets

# Where the e2e suite dumps pki-issuer logs, Events and status for the leak scan (one per make run).
RUN_ID := $(shell date +%Y%m%d-%H%M%S)
E2E_OUTPUT_DIR ?= $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)/e2e-output/run-$(RUN_ID)
export E2E_OUTPUT_DIR

## test: everything CI runs: formatting, lints, generated files, unit, test API server and e2e
## tests, the leak scan of the e2e output, the e2e suite again on a real control plane (with
## real cert-manager), the alert rule tests, and the fuzz corpus replay.
test: test-deps fmt-check clippy check-generated lint-packaging monitoring
	$(CARGO) test --workspace --all-targets --locked
	$(MAKE) leak-scan
	bash e2e/scripts/e2e-kube.sh
	$(MAKE) fuzz-replay

## e2e-kube: the e2e suite on a real control plane (kube-apiserver, etcd,
## kube-controller-manager, cert-manager; versions in e2e/controlplane/versions.env).
e2e-kube: test-deps
	bash e2e/scripts/e2e-kube.sh

## control-plane: build (or find in the cache) the control plane's binaries; prints the cache dir.
control-plane: test-deps
	bash e2e/scripts/control-plane.sh build

## leak-scan: fail when the e2e run in E2E_OUTPUT_DIR wrote a private key or auth secret to a log,
## Event or status (run after the e2e suite).
leak-scan:
	$(CARGO) test --locked --test e2e -- --ignored --exact leak_scan::scan_e2e_output --nocapture

## fuzz-replay: build the fuzz targets and run every checked-in corpus file through them.
fuzz-replay:
	bash fuzz/replay.sh

## fuzz: fuzz each target for FUZZ_SECONDS (default 300) seconds; see docs/fuzzing.md.
FUZZ_SECONDS ?= 300
fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) bash fuzz/run.sh

## test-deps: install the tools the tests call (Debian packages) when they are missing.
test-deps:
	@bash e2e/scripts/install-test-deps.sh

fmt-check:
	$(CARGO) fmt --all -- --check
	$(CARGO) fmt --manifest-path fuzz/Cargo.toml -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

## generate: regenerate the CRDs (helm/pki-issuer/crds, config/crd/bases) from the Rust types
## and config/rbac/rbac.yaml from the chart.
generate:
	$(CARGO) run --quiet --bin crdgen
	bash hack/gen-config-rbac.sh

## check-generated: fail when a generated CRD is stale (config/rbac is checked by lint-packaging).
check-generated:
	$(CARGO) test --quiet --lib --locked crds_are_up_to_date

## monitoring: promtool check + unit tests of every alert (each with a runbook entry), and the
## Grafana dashboard is what e2e/monitoring/dashboard.py generates. (The real-Prometheus e2e test
## prometheus::alerts_fire_against_a_real_prometheus runs with the e2e suite.)
monitoring: test-deps
	bash e2e/monitoring/check.sh

## dashboard: regenerate helm/pki-issuer/dashboards/pki-issuer.json.
dashboard:
	bash e2e/monitoring/check.sh --generate

## lint-packaging: shellcheck, hadolint, yamllint, CRD copies in sync, helm lint + render (Helm v4 SDK), kustomize build.
lint-packaging:
	bash e2e/scripts/lint.sh

lint: fmt-check clippy lint-packaging

## demo: build, start the API server and pki-issuer, issue certificates, prove mTLS.
## APISERVER=test (default: the project's test API server) or APISERVER=kube (real kube-apiserver).
APISERVER ?= test
demo:
	APISERVER=$(APISERVER) bash e2e/scripts/demo.sh

## chaos: the long fault scenarios (500 requests each, the issue's fault durations), one at a
## time; one JSON line per scenario in $(CHAOS_REPORT) (see docs/reliability.md).
CHAOS_REPORT ?= target/chaos-report.jsonl
chaos: test-deps
	E2E_FAULTS_LONG=1 E2E_FAULTS_REPORT=$(abspath $(CHAOS_REPORT)) $(CARGO) test --locked --test e2e faults:: -- --test-threads=1 --nocapture

## e2e-kind: e2e suite + kind-only checks on a kind cluster with real cert-manager (needs Docker, kind, helm; KEEP_CLUSTER=1 keeps it).
e2e-kind:
	bash e2e/kind/run.sh

## bench: both benchmarks below (release builds; see docs/performance.md).
bench: bench-sign bench-e2e

# Go for the comparison in bench-sign: `go` on PATH, else Debian's golang-1.x-go.
GO ?= $(shell command -v go 2>/dev/null || ls /usr/lib/go-1.*/bin/go 2>/dev/null | sort -V | tail -n 1)

## bench-sign: signing path per signer/leaf key type vs the crypto floor and Go's path (one thread).
bench-sign:
	GO="$(GO)" $(CARGO) bench --bench signing

## bench-e2e: pki-issuer against the test API server: 10,000-request burst and 100/s for 30 s.
bench-e2e:
	$(CARGO) bench --bench issuance

## bench-cert-manager: real cert-manager on the real control plane, N Certificates
## (BENCH_CERTIFICATES, default 200) through its CA issuer and through pki-issuer, same intermediate.
bench-cert-manager: test-deps
	bash e2e/scripts/bench-cert-manager.sh

clean:
	$(CARGO) clean
