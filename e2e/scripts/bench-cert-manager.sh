#!/usr/bin/env bash
# `make bench-cert-manager`: real cert-manager on the real control plane
# (e2e/scripts/control-plane.sh), the same intermediate CA (key in one Secret) behind
#   * cert-manager's own CA issuer (a ClusterIssuer `ca`), and
#   * pki-issuer (release build; a PKIClusterIssuer `pki` with a policy it checks every
#     request against, and its re-check of every issued certificate),
# N Certificates (default 200, BENCH_CERTIFICATES) to Ready Secrets through each, one after the
# other in one run, each timed from the first create to the last Ready. pki-issuer's CPU time is
# read from /proc. Last line:
#   cm-bench: pki-issuer <r>/s, cert-manager CA issuer <r>/s, ratio <x>, pki-issuer <cpu-ms> CPU-ms per certificate
set -euo pipefail

cd "$(dirname "$0")/../.."
ROOT_DIR=$(pwd)
N=${BENCH_CERTIFICATES:-200}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/pki-issuer-cm-bench.XXXXXX")
CP="$WORK/cp"
PKI_PID=

cleanup() {
  local rc=$?
  [ -z "$PKI_PID" ] || kill "$PKI_PID" 2>/dev/null || true
  bash "$ROOT_DIR/e2e/scripts/control-plane.sh" down "$CP" || true
  if [ "$rc" -ne 0 ]; then
    tail -n 20 "$WORK"/pki-issuer.log "$CP"/cm-controller.log 2>/dev/null || true
  fi
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT

log() { echo "bench-cert-manager: $*" >&2; }

bash e2e/scripts/install-test-deps.sh
cargo build --quiet --locked --release --bin pki-issuer
BIN="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/pki-issuer"
bash e2e/scripts/control-plane.sh up "$CP"
export KUBECONFIG="$CP/kubeconfig"

# One intermediate, one Secret in cert-manager's cluster resource namespace, read by both.
cd "$WORK"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout root.key -out root.pem \
  -days 3650 -subj "/O=Bench Corp/CN=Bench Root CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout int.key -out int.csr \
  -subj "/O=Bench Corp/CN=Bench Intermediate" 2>/dev/null
openssl x509 -req -in int.csr -CA root.pem -CAkey root.key -CAcreateserial -days 365 -out int.pem \
  -extfile <(printf 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n') 2>/dev/null
cd "$ROOT_DIR"
kubectl -n cert-manager create secret tls intermediate --cert "$WORK/int.pem" --key "$WORK/int.key" >/dev/null
kubectl -n cert-manager create configmap roots --from-file=roots.pem="$WORK/root.pem" >/dev/null
# cert-manager may approve requests for pki-issuer's signers (what the chart's approver role grants).
kubectl apply -f - >/dev/null <<'EOF'
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: pki-issuer-approver}
rules:
- apiGroups: [cert-manager.io]
  resources: [signers]
  resourceNames: ["pkiissuers.pki-issuer.io/*", "pkiclusterissuers.pki-issuer.io/*"]
  verbs: [approve]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: pki-issuer-approver}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: pki-issuer-approver}
subjects:
- {kind: ServiceAccount, name: cert-manager, namespace: cert-manager}
EOF

"$BIN" --kubeconfig "$KUBECONFIG" --cluster-resource-namespace cert-manager \
  --metrics-addr 127.0.0.1:0 --probe-addr 127.0.0.1:0 --log-format text >"$WORK/pki-issuer.log" 2>&1 &
PKI_PID=$!

kubectl apply -f - >/dev/null <<'EOF'
apiVersion: cert-manager.io/v1
kind: ClusterIssuer
metadata: {name: ca}
spec:
  ca: {secretName: intermediate}
---
apiVersion: pki-issuer.io/v1alpha1
kind: PKIClusterIssuer
metadata: {name: pki}
spec:
  secret: {name: intermediate}
  trustAnchors: {configMap: {name: roots, key: roots.pem}}
  policy:
    maxDuration: 24h
    dnsNames: ["*.{namespace}.svc"]
EOF
kubectl wait --for condition=Ready --timeout 60s clusterissuer/ca >/dev/null
kubectl wait --for condition=Ready --timeout 60s pkiclusterissuer/pki >/dev/null

# certificates NS GROUP KIND NAME: N Certificate documents for issuer GROUP/KIND/NAME in NS.
certificates() {
  local ns=$1 group=$2 kind=$3 name=$4 i
  for i in $(seq 1 "$N"); do
    cat <<EOF
---
apiVersion: cert-manager.io/v1
kind: Certificate
metadata: {name: w$i, namespace: $ns}
spec:
  secretName: w$i
  dnsNames: [w$i.$ns.svc]
  duration: 24h
  usages: [digital signature, key encipherment, server auth, client auth]
  privateKey: {algorithm: ECDSA, size: 256}
  issuerRef: {group: $group, kind: $kind, name: $name}
EOF
  done
}

ready_count() {
  kubectl -n "$1" get certificates -o json |
    jq '[.items[] | select(any(.status.conditions[]?; .type == "Ready" and .status == "True"))] | length'
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$PKI_PID/stat"; }

# run NS GROUP KIND NAME: create the Certificates, wait until all are Ready; prints seconds.
run() {
  local ns=$1 start end ready
  kubectl create namespace "$ns" >/dev/null
  certificates "$@" >"$WORK/$ns.yaml"
  start=$(date +%s.%N)
  kubectl create -f "$WORK/$ns.yaml" >/dev/null
  local deadline=$((SECONDS + 600))
  while :; do
    ready=$(ready_count "$ns")
    [ "$ready" -lt "$N" ] || break
    [ "$SECONDS" -lt "$deadline" ] || {
      log "$ns: only $ready/$N Ready after 600 s"
      return 1
    }
    sleep 0.2
  done
  end=$(date +%s.%N)
  # Every Secret holds a chain from the shared intermediate.
  kubectl -n "$ns" get secret w1 -o jsonpath='{.data.tls\.crt}' | base64 -d >"$WORK/$ns-w1.pem"
  openssl verify -CAfile "$WORK/root.pem" -untrusted "$WORK/int.pem" "$WORK/$ns-w1.pem" >/dev/null
  python3 -c "print(f'{$end - $start:.3f}')"
}

log "$N Certificates through cert-manager's CA issuer"
t_ca=$(run bench-ca cert-manager.io ClusterIssuer ca)
ticks0=$(cpu_ticks)
log "$N Certificates through pki-issuer"
t_pki=$(run bench-pki pki-issuer.io PKIClusterIssuer pki)
ticks1=$(cpu_ticks)
hz=$(getconf CLK_TCK)
python3 - "$N" "$t_ca" "$t_pki" "$ticks0" "$ticks1" "$hz" <<'EOF'
import sys
n, t_ca, t_pki, t0, t1, hz = int(sys.argv[1]), *map(float, sys.argv[2:])
r_ca, r_pki = n / t_ca, n / t_pki
cpu_ms = (t1 - t0) * 1000 / hz / n
print(f"| issuer | Certificates | seconds to all Ready | Certificates/s |")
print(f"| --- | --- | --- | --- |")
print(f"| cert-manager CA issuer | {n} | {t_ca:.1f} | {r_ca:.1f} |")
print(f"| pki-issuer (PKIClusterIssuer) | {n} | {t_pki:.1f} | {r_pki:.1f} |")
print(f"cm-bench: pki-issuer {r_pki:.1f}/s, cert-manager CA issuer {r_ca:.1f}/s, ratio {r_pki / r_ca:.2f}, pki-issuer {cpu_ms:.2f} CPU-ms per certificate")
EOF
