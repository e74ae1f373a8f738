#!/usr/bin/env bash
# The e2e suite on a real control plane (E2E_APISERVER=kube): etcd, kube-apiserver,
# kube-controller-manager and cert-manager at the versions in e2e/controlplane/versions.env
# (e2e/scripts/control-plane.sh builds or reuses them). Runs every e2e test and prints how many
# were skipped there and why. Arguments go to the test binary (e.g. a test name filter).
#   E2E_KUBE_DIR=DIR   use a control plane started with `e2e/scripts/control-plane.sh up DIR --bare`
set -euo pipefail
cd "$(dirname "$0")/../.."
CARGO=${CARGO:-cargo}

start=$SECONDS
bash e2e/scripts/control-plane.sh build >/dev/null
# The kubelet harnesses (pod_cert::kubelet), built now rather than inside the running suite.
# shellcheck source=e2e/controlplane/versions.env
. e2e/controlplane/versions.env
bash e2e/scripts/podcert-harness.sh >/dev/null
bash e2e/scripts/podcert-harness.sh "$KUBELET_SKEW_VERSION" >/dev/null
echo "control plane binaries and kubelet harnesses ready in $((SECONDS - start)) s"

skips=$(mktemp "${TMPDIR:-/tmp}/pki-issuer-e2e-skips.XXXXXX")
trap 'rm -f "$skips"' EXIT
start=$SECONDS
rc=0
E2E_APISERVER=kube E2E_SKIP_LOG="$skips" "$CARGO" test --locked --test e2e -- "$@" || rc=$?
echo
echo "e2e on the real control plane: $((SECONDS - start)) s, $(wc -l <"$skips") test(s) skipped there:"
sed 's/^/  /' "$skips"
exit "$rc"
