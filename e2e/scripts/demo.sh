#!/usr/bin/env bash
# `make demo`: the whole product on one machine, no Docker and no cluster needed.
#
# Builds everything, starts an API server with cert-manager's CRDs (the project's test API server,
# or with APISERVER=kube a real control plane, e2e/scripts/control-plane.sh) and the real
# pki-issuer process, creates a demo "existing PKI" (root + intermediate) with openssl,
# a PKIIssuer with a SPIFFE policy, issues certificates for two workloads the way
# cert-manager does, shows their chains, proves an mTLS handshake between them succeeds and
# that a certificate from another root is refused, and shows a refused and a denied request
# with their reasons. With APISERVER=kube it then starts real cert-manager and has it turn a
# Certificate into a Secret. Exits non-zero if any step fails; always cleans up its processes.
set -euo pipefail

cd "$(dirname "$0")/../.."
ROOT_DIR=$(pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/pki-issuer-demo.XXXXXX")
PIDS=()
APISERVER=${APISERVER:-test}
KUBE_DIR="$WORK/control-plane"

cleanup() {
  local rc=$?
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ "$APISERVER" = kube ]; then
    bash "$ROOT_DIR/e2e/scripts/control-plane.sh" down "$KUBE_DIR" || true
  fi
  if [ "$rc" -ne 0 ]; then
    echo
    echo "demo FAILED (exit $rc); logs:"
    tail -n 30 "$WORK"/*.log 2>/dev/null || true
  fi
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT

# Bold step headers only on a terminal: piped or logged output has no escape codes.
if [ -t 1 ]; then
  step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
else
  step() { printf '\n==> %s\n' "$*"; }
fi
fail() { echo "FAILED: $*" >&2; exit 1; }

bash e2e/scripts/install-test-deps.sh

case "$APISERVER" in
test)
  step "Building pki-issuer and the test API server"
  cargo build --quiet --locked --bin pki-issuer && cargo build --quiet --locked -p test-apiserver --bin test-apiserver
  BIN="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/debug"

  step "Starting the test API server (cert-manager CRDs + pki-issuer CRDs)"
  export KUBECONFIG="$WORK/admin.kubeconfig"
  "$BIN/test-apiserver" --listen 127.0.0.1:0 --kubeconfig "$KUBECONFIG" \
    --crds e2e/testdata/cert-manager --crds helm/pki-issuer/crds >"$WORK/apiserver.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 100); do [ -s "$KUBECONFIG" ] && break; sleep 0.1; done
  [ -s "$KUBECONFIG" ] || fail "the test API server did not start"
  ;;
kube)
  step "Building pki-issuer and the real control plane (cached after the first build)"
  cargo build --quiet --locked --bin pki-issuer
  BIN="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/debug"
  bash e2e/scripts/control-plane.sh build >/dev/null

  # cert-manager starts later: first the demo plays its part and approves or denies by hand.
  step "Starting etcd, kube-apiserver, kube-controller-manager (cert-manager CRDs + pki-issuer CRDs)"
  bash e2e/scripts/control-plane.sh up "$KUBE_DIR" --bare
  export KUBECONFIG="$KUBE_DIR/kubeconfig"
  ;;
*) fail "APISERVER must be test or kube, not $APISERVER" ;;
esac
echo "  API server version: $(kubectl get --raw /version | python3 -c 'import json,sys; print(json.load(sys.stdin)["gitVersion"])')"

kubectl create namespace pki-issuer >/dev/null
kubectl create namespace demo >/dev/null

step "Starting pki-issuer"
"$BIN/pki-issuer" --kubeconfig "$KUBECONFIG" --cluster-resource-namespace pki-issuer \
  --metrics-addr 127.0.0.1:0 --probe-addr 127.0.0.1:0 --log-format text >"$WORK/pki-issuer.log" 2>&1 &
PIDS+=($!)

step "Creating the organisation's existing PKI: root CA + mesh intermediate (openssl)"
cd "$WORK"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-384 -nodes -keyout root.key -out root.pem \
  -days 3650 -subj "/O=Example Corp/CN=Example Corp Root CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout int.key -out int.csr \
  -subj "/O=Example Corp/CN=Example Corp Mesh Intermediate" 2>/dev/null
openssl x509 -req -in int.csr -CA root.pem -CAkey root.key -CAcreateserial -out int.pem -days 365 \
  -extfile <(printf 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\nnameConstraints=critical,permitted;URI:cluster.local,permitted;DNS:.svc,permitted;DNS:.svc.cluster.local\n') 2>/dev/null
openssl x509 -in int.pem -noout -subject -issuer -ext nameConstraints | sed 's/^/    /'

kubectl -n demo create secret tls mesh-intermediate --cert=int.pem --key=int.key >/dev/null
kubectl -n demo create configmap corp-roots --from-file=roots.pem=root.pem >/dev/null

step "Creating a PKIIssuer with a SPIFFE policy"
kubectl apply -f - <<'EOF'
apiVersion: pki-issuer.io/v1alpha1
kind: PKIIssuer
metadata:
  name: mesh
  namespace: demo
spec:
  secret:
    name: mesh-intermediate
  trustAnchors:
    configMap: {name: corp-roots, key: roots.pem}
  policy:
    maxDuration: 24h
    # Only the SAN types listed are allowed (no IP or email SANs).
    dnsNames: ["*.{namespace}.svc"]
    uris: ["spiffe://cluster.local/ns/{namespace}/sa/*"]
    usages: ["digital signature", "key encipherment", "server auth", "client auth"]
EOF
kubectl -n demo wait --for=condition=Ready pkiissuer/mesh --timeout=30s
kubectl -n demo get pkiissuers

# request NAME SAN... : a CertificateRequest made the way cert-manager makes it, approved through /status.
request() {
  local name=$1; shift
  local san
  san=$(printf '%s,' "$@"); san=${san%,}
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$name.key" -out "$name.csr" \
    -subj "/" -addext "subjectAltName=$san" 2>/dev/null
  kubectl apply -f - >/dev/null <<EOF
apiVersion: cert-manager.io/v1
kind: CertificateRequest
metadata:
  name: $name
  namespace: demo
spec:
  request: $(base64 -w0 <"$name.csr")
  duration: 12h
  usages: ["digital signature", "key encipherment", "server auth", "client auth"]
  issuerRef: {group: pki-issuer.io, kind: PKIIssuer, name: mesh}
EOF
}

approve() {
  local now
  now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  kubectl -n demo patch certificaterequest "$1" --subresource=status --type=merge -p \
    "{\"status\":{\"conditions\":[{\"type\":\"$2\",\"status\":\"True\",\"reason\":\"demo\",\"message\":\"$2 by the demo\",\"lastTransitionTime\":\"$now\"}]}}" >/dev/null
}

show_chain() {
  local i=0 subject
  awk -v dir="$WORK" -v n="$1" '/BEGIN CERT/{i++} {print > (dir "/" n "-part" i ".pem")}' "$1.chain.pem"
  for part in "$WORK/$1"-part*.pem; do
    i=$((i + 1))
    subject=$(openssl x509 -in "$part" -noout -subject | sed 's/^subject= *//')
    echo "    [$i] ${subject:-(empty subject: the identity is in the SANs)}"
    echo "        issuer:   $(openssl x509 -in "$part" -noout -issuer | sed 's/^issuer=//')"
    echo "        SANs:     $(openssl x509 -in "$part" -noout -ext subjectAltName 2>/dev/null | tail -n +2 | sed 's/^ *//')"
    echo "        notAfter: $(openssl x509 -in "$part" -noout -enddate | sed 's/^notAfter=//')"
  done
}

step "Issuing certificates for two workloads: frontend and backend"
for w in frontend backend; do
  request "$w" "DNS:$w.demo.svc" "URI:spiffe://cluster.local/ns/demo/sa/$w"
  approve "$w" Approved
done
for w in frontend backend; do
  kubectl -n demo wait --for=condition=Ready "certificaterequest/$w" --timeout=30s >/dev/null
  kubectl -n demo get certificaterequest "$w" -o jsonpath='{.status.certificate}' | base64 -d >"$w.chain.pem"
  kubectl -n demo get certificaterequest "$w" -o jsonpath='{.status.ca}' | base64 -d >"$w.ca.pem"
  cmp -s "$w.ca.pem" root.pem || fail "status.ca of $w is not the trust anchor"
  echo "  $w: $(kubectl -n demo get certificaterequest "$w" -o jsonpath='{.status.conditions[?(@.type=="Ready")].message}')"
  show_chain "$w"
  openssl verify -x509_strict -purpose sslclient -CAfile root.pem -untrusted "$w.chain.pem" "$w.chain.pem" | sed 's/^/    openssl verify: /'
done

step "mTLS between the workloads (openssl s_server / s_client, both verifying against the root)"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
openssl s_server -accept "127.0.0.1:$PORT" -www -cert backend.chain.pem -cert_chain backend.chain.pem \
  -key backend.key -CAfile root.pem -Verify 3 -verify_return_error >"$WORK/s_server.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
out=$(printf 'GET / HTTP/1.0\r\n\r\n' | openssl s_client -connect "127.0.0.1:$PORT" -servername backend.demo.svc \
  -verify_hostname backend.demo.svc -CAfile root.pem -verify_return_error \
  -cert frontend.chain.pem -cert_chain frontend.chain.pem -key frontend.key -quiet 2>&1) ||
  fail "mTLS handshake failed: $out"
grep -q "HTTP/1.0 200 ok" <<<"$out" || fail "no response over mTLS: $out"
echo "  frontend -> backend: handshake OK, both certificates verified against Example Corp Root CA"

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout intruder.key -out intruder.pem \
  -days 1 -subj "/CN=intruder" -addext "subjectAltName=URI:spiffe://cluster.local/ns/demo/sa/frontend" 2>/dev/null
if out=$(printf 'GET / HTTP/1.0\r\n\r\n' | openssl s_client -connect "127.0.0.1:$PORT" -CAfile root.pem \
  -cert intruder.pem -key intruder.key -quiet 2>&1); then
  grep -q "HTTP/1.0 200 ok" <<<"$out" && fail "a certificate from another root was accepted"
fi
echo "  intruder (self-signed, same SPIFFE ID) -> backend: refused"

step "A request outside the policy is refused, and a denied request is never signed"
request stolen "URI:spiffe://cluster.local/ns/kube-system/sa/admin"
approve stolen Approved
kubectl -n demo wait --for=jsonpath='{.status.conditions[?(@.type=="Ready")].reason}'=Failed certificaterequest/stolen --timeout=30s >/dev/null
echo "  stolen: $(kubectl -n demo get certificaterequest stolen -o jsonpath='{.status.conditions[?(@.type=="Ready")].message}')"
request unwanted "DNS:unwanted.demo.svc"
approve unwanted Denied
kubectl -n demo wait --for=jsonpath='{.status.conditions[?(@.type=="Ready")].reason}'=Denied certificaterequest/unwanted --timeout=30s >/dev/null
echo "  unwanted: $(kubectl -n demo get certificaterequest unwanted -o jsonpath='{.status.conditions[?(@.type=="Ready")].message}')"
[ -z "$(kubectl -n demo get certificaterequest stolen -o jsonpath='{.status.certificate}')" ] || fail "a refused request got a certificate"

if [ "$APISERVER" = kube ]; then
  step "Real cert-manager: a Certificate becomes a Secret"
  bash "$ROOT_DIR/e2e/scripts/control-plane.sh" cert-manager-start "$KUBE_DIR"
  # What the pki-issuer chart's approver role grants: cert-manager may approve for our signers.
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
  kubectl apply -f - <<'EOF'
apiVersion: cert-manager.io/v1
kind: Certificate
metadata:
  name: web
  namespace: demo
spec:
  secretName: web-tls
  dnsNames: [web.demo.svc]
  uris: [spiffe://cluster.local/ns/demo/sa/web]
  duration: 12h
  usages: ["digital signature", "key encipherment", "server auth", "client auth"]
  privateKey: {algorithm: ECDSA, size: 256}
  issuerRef: {group: pki-issuer.io, kind: PKIIssuer, name: mesh}
EOF
  kubectl -n demo wait --for=condition=Ready certificate/web --timeout=60s >/dev/null
  kubectl -n demo get certificate web
  kubectl -n demo get certificaterequests \
    -o custom-columns=REQUEST:.metadata.name,CREATED-BY:.spec.username,APPROVED:'.status.conditions[?(@.type=="Approved")].reason' |
    grep -E '^(REQUEST|web-)'
  kubectl -n demo get secret web-tls -o jsonpath='{.data.tls\.crt}' | base64 -d >web.chain.pem
  kubectl -n demo get secret web-tls -o jsonpath='{.data.ca\.crt}' | base64 -d >web.ca.pem
  cmp -s web.ca.pem root.pem || fail "ca.crt of web-tls is not the trust anchor"
  echo "  Secret web-tls (written by cert-manager): $(kubectl -n demo get secret web-tls -o jsonpath='{.data}' | jq -r 'keys | join(", ")')"
  show_chain web
  openssl verify -x509_strict -purpose sslserver -CAfile root.pem -untrusted web.chain.pem web.chain.pem | sed 's/^/    openssl verify: /'
fi

step "Events"
kubectl -n demo get events.events.k8s.io -o custom-columns=TYPE:.type,REASON:.reason,OBJECT:.regarding.name,NOTE:.note 2>/dev/null | cut -c1-160 || true

echo
echo "demo OK"
