#!/usr/bin/env bash
# The e2e suite on a real kube-apiserver v1.20 + etcd (E2E_APISERVER=kube): builds or reuses
# the server binary, runs every e2e test, and prints how many were skipped there and why.
# Arguments go to the test binary (e.g. a test name filter).
#   E2E_KUBE_DIR=DIR   use a server started with `e2e/scripts/kube-apiserver.sh up DIR`
set -euo pipefail
cd "$(dirname "$0")/../.."
CARGO=${CARGO:-cargo}

start=$SECONDS
bash e2e/scripts/kube-apiserver.sh build >/dev/null
echo "kube-apiserver binary ready in $((SECONDS - start)) s"

skips=$(mktemp "${TMPDIR:-/tmp}/pki-issuer-e2e-skips.XXXXXX")
trap 'rm -f "$skips"' EXIT
start=$SECONDS
rc=0
E2E_APISERVER=kube E2E_SKIP_LOG="$skips" "$CARGO" test --locked --test e2e -- "$@" || rc=$?
echo
echo "e2e on the real kube-apiserver: $((SECONDS - start)) s, $(wc -l <"$skips") test(s) skipped there:"
sed 's/^/  /' "$skips"
exit "$rc"
