#!/usr/bin/env bash
# Checks that need a real cluster with real cert-manager (run by e2e/kind/run.sh after the
# e2e suite, or on their own against any cluster where cert-manager and pki-issuer run):
#
#  1. an openssl-made root and intermediate; the intermediate in a Secret, the root in ConfigMaps;
#  2. a PKIClusterIssuer and a PKIIssuer that become Ready;
#  3. a cert-manager Certificate from each that becomes Ready, whose Secret has tls.crt, tls.key
#     and ca.crt, and whose chain `openssl verify`s against the root;
#  4. a Certificate with duration 1h and renewBefore 59m30s that cert-manager re-issues
#     (tls.crt changes) about 30s later;
#  5. an openssl s_server / s_client mTLS handshake between two pods using the issued Secrets
#     succeeds, and a client whose certificate comes from another root is refused.
#
# Environment:
#   KUBECONFIG             the cluster (required)
#   PKI_NAMESPACE          pki-issuer's namespace = its cluster resource namespace (pki-issuer)
#   CHECKS_NAMESPACE       namespace for the checks, deleted at the end (pki-e2e-checks)
#   OPENSSL_IMAGE          image with openssl and a shell (docker.io/alpine/openssl:latest)
#   KEEP_CHECKS=1          keep the namespace and issuers for inspection
set -euo pipefail

PKI_NAMESPACE=${PKI_NAMESPACE:-pki-issuer}
NS=${CHECKS_NAMESPACE:-pki-e2e-checks}
OPENSSL_IMAGE=${OPENSSL_IMAGE:-docker.io/alpine/openssl:latest}
CLUSTER_ISSUER=e2e-checks-cluster
WAIT=${CHECKS_TIMEOUT:-120s}

log() { printf '\n== %s\n' "$*"; }
fail() {
  printf 'FAIL: %s\n' "$*" >&2
  diagnostics
  exit 1
}

diagnostics() {
  {
    echo "--- diagnostics"
    kubectl get pkiclusterissuers,pkiissuers -A -o wide || true
    kubectl -n "$NS" get certificates,certificaterequests -o wide || true
    kubectl -n "$NS" describe certificates || true
    kubectl -n "$NS" get events --sort-by=.lastTimestamp || true
    kubectl -n "$PKI_NAMESPACE" logs -l app.kubernetes.io/name=pki-issuer --tail=100 --prefix || true
  } >&2
}

# make_pki DIR: root CA, intermediate CA (pathlen 0) signed by the root, and an unrelated
# "intruder" root with a client certificate, all ECDSA P-256.
make_pki() {
  local dir=$1
  cat >"$dir/ext.cnf" <<'CNF'
[root]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[intermediate]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[intruder]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
subjectAltName = DNS:client.example.com
authorityKeyIdentifier = keyid:always
CNF
  local name
  for name in root intermediate intruder-root intruder; do
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/$name.key" 2>/dev/null
  done
  openssl req -new -key "$dir/root.key" -subj "/O=pki-issuer e2e/CN=e2e root" -out "$dir/root.csr"
  openssl x509 -req -in "$dir/root.csr" -signkey "$dir/root.key" -days 30 \
    -extfile "$dir/ext.cnf" -extensions root -out "$dir/root.crt" 2>/dev/null
  openssl req -new -key "$dir/intermediate.key" -subj "/O=pki-issuer e2e/CN=e2e intermediate" -out "$dir/intermediate.csr"
  openssl x509 -req -in "$dir/intermediate.csr" -CA "$dir/root.crt" -CAkey "$dir/root.key" \
    -set_serial "0x$(openssl rand -hex 16)" -days 7 \
    -extfile "$dir/ext.cnf" -extensions intermediate -out "$dir/intermediate.crt" 2>/dev/null
  openssl verify -CAfile "$dir/root.crt" "$dir/intermediate.crt" >/dev/null

  openssl req -new -key "$dir/intruder-root.key" -subj "/CN=intruder root" -out "$dir/intruder-root.csr"
  openssl x509 -req -in "$dir/intruder-root.csr" -signkey "$dir/intruder-root.key" -days 30 \
    -extfile "$dir/ext.cnf" -extensions root -out "$dir/intruder-root.crt" 2>/dev/null
  openssl req -new -key "$dir/intruder.key" -subj "/CN=client.example.com" -out "$dir/intruder.csr"
  openssl x509 -req -in "$dir/intruder.csr" -CA "$dir/intruder-root.crt" -CAkey "$dir/intruder-root.key" \
    -set_serial "0x$(openssl rand -hex 16)" -days 1 \
    -extfile "$dir/ext.cnf" -extensions intruder -out "$dir/intruder.crt" 2>/dev/null
}

# split_chain PEM LEAF CHAIN: first certificate of PEM into LEAF, the rest into CHAIN.
split_chain() {
  awk -v leaf="$2" -v chain="$3" '
    /-----BEGIN CERTIFICATE-----/ { n++ }
    n == 1 { print > leaf; next }
    n > 1 { print > chain }
  ' "$1"
  [ -s "$3" ] || : >"$3"
}

# verify_tls_files DIR ROOT: DIR holds tls.crt, tls.key, ca.crt of an issued Secret.
verify_tls_files() {
  local dir=$1 root=$2 f
  for f in tls.crt tls.key ca.crt; do
    [ -s "$dir/$f" ] || { echo "$f is missing or empty" >&2; return 1; }
  done
  split_chain "$dir/tls.crt" "$dir/leaf.pem" "$dir/chain.pem"
  # The leaf chains to the openssl-made root through the intermediates in tls.crt ...
  openssl verify -CAfile "$root" -untrusted "$dir/chain.pem" "$dir/leaf.pem" >/dev/null
  # ... ca.crt holds that root (the issuer's trust anchors) ...
  openssl verify -CAfile "$dir/ca.crt" -untrusted "$dir/chain.pem" "$dir/leaf.pem" >/dev/null
  cmp -s <(openssl x509 -in "$dir/ca.crt" -outform DER) <(openssl x509 -in "$root" -outform DER) ||
    { echo "ca.crt is not the root" >&2; return 1; }
  # ... and tls.key is the leaf's key.
  cmp -s <(openssl pkey -in "$dir/tls.key" -pubout) <(openssl x509 -in "$dir/leaf.pem" -noout -pubkey) ||
    { echo "tls.key does not match the certificate" >&2; return 1; }
}

# secret_key NS NAME KEY: a Secret's decoded data key.
secret_key() {
  local key=${3//./\\.}
  kubectl -n "$1" get secret "$2" -o "jsonpath={.data.$key}" | base64 -d
}

fetch_secret() {
  local ns=$1 name=$2 dir=$3 f
  mkdir -p "$dir"
  for f in tls.crt tls.key ca.crt; do
    secret_key "$ns" "$name" "$f" >"$dir/$f"
  done
}

issuer_spec() {
  cat <<YAML
  secret:
    name: e2e-checks-intermediate
  trustAnchors:
    configMap: {name: e2e-checks-roots, key: roots.pem}
  policy:
    maxDuration: 24h
    dnsNames: ["*.{namespace}.svc", "*.{namespace}.svc.cluster.local"]
    usages: ["digital signature", "key encipherment", "server auth", "client auth"]
    keyAlgorithms: [{algorithm: ECDSA, minSize: 256}]
YAML
}

certificate() {
  local name=$1 kind=$2 issuer=$3 dns=$4 usage=$5 duration=${6:-24h} renew=${7:-8h}
  cat <<YAML
---
apiVersion: cert-manager.io/v1
kind: Certificate
metadata:
  name: $name
  namespace: $NS
spec:
  secretName: $name-tls
  duration: $duration
  renewBefore: $renew
  privateKey: {algorithm: ECDSA, size: 256, rotationPolicy: Always}
  dnsNames: ["$dns.$NS.svc", "$dns.$NS.svc.cluster.local"]
  usages: ["digital signature", "key encipherment", "$usage"]
  issuerRef: {group: pki-issuer.io, kind: $kind, name: $issuer}
YAML
}

cleanup() {
  if [ "${KEEP_CHECKS:-0}" = 1 ]; then
    echo "KEEP_CHECKS=1: keeping namespace $NS and PKIClusterIssuer $CLUSTER_ISSUER"
  else
    kubectl delete namespace "$NS" --ignore-not-found --wait=false >/dev/null 2>&1 || true
    kubectl delete pkiclusterissuer "$CLUSTER_ISSUER" --ignore-not-found >/dev/null 2>&1 || true
    kubectl -n "$PKI_NAMESPACE" delete secret e2e-checks-intermediate --ignore-not-found >/dev/null 2>&1 || true
    kubectl -n "$PKI_NAMESPACE" delete configmap e2e-checks-roots --ignore-not-found >/dev/null 2>&1 || true
  fi
  rm -rf "$WORK"
}

main() {
  : "${KUBECONFIG:?KUBECONFIG must name the cluster}"
  WORK=$(mktemp -d)
  trap cleanup EXIT

  log "PKI: root and intermediate (openssl)"
  make_pki "$WORK"
  kubectl create namespace "$NS" --dry-run=client -o yaml | kubectl apply -f -
  local ns
  for ns in "$PKI_NAMESPACE" "$NS"; do
    kubectl -n "$ns" create secret tls e2e-checks-intermediate \
      --cert="$WORK/intermediate.crt" --key="$WORK/intermediate.key" --dry-run=client -o yaml | kubectl apply -f -
    kubectl -n "$ns" create configmap e2e-checks-roots \
      --from-file=roots.pem="$WORK/root.crt" --dry-run=client -o yaml | kubectl apply -f -
  done
  kubectl -n "$NS" create secret tls intruder-tls \
    --cert="$WORK/intruder.crt" --key="$WORK/intruder.key" --dry-run=client -o yaml | kubectl apply -f -

  log "issuers"
  {
    printf 'apiVersion: pki-issuer.io/v1alpha1\nkind: PKIClusterIssuer\nmetadata:\n  name: %s\nspec:\n' "$CLUSTER_ISSUER"
    issuer_spec
    printf -- '---\napiVersion: pki-issuer.io/v1alpha1\nkind: PKIIssuer\nmetadata:\n  name: e2e-checks\n  namespace: %s\nspec:\n' "$NS"
    issuer_spec
  } | kubectl apply -f -
  kubectl wait --for=condition=Ready "pkiclusterissuer/$CLUSTER_ISSUER" --timeout="$WAIT" || fail "PKIClusterIssuer not Ready"
  kubectl -n "$NS" wait --for=condition=Ready pkiissuer/e2e-checks --timeout="$WAIT" || fail "PKIIssuer not Ready"

  log "Certificates from both issuers"
  {
    certificate server PKIClusterIssuer "$CLUSTER_ISSUER" server "server auth"
    certificate client PKIIssuer e2e-checks client "client auth"
    # cert-manager renews at notAfter - renewBefore = about 30s after issuance.
    certificate rotating PKIIssuer e2e-checks rotating "server auth" 1h 59m30s
  } | kubectl apply -f -
  local cert
  for cert in server client rotating; do
    kubectl -n "$NS" wait --for=condition=Ready "certificate/$cert" --timeout="$WAIT" || fail "Certificate $cert not Ready"
  done
  for cert in server client; do
    fetch_secret "$NS" "$cert-tls" "$WORK/$cert"
    verify_tls_files "$WORK/$cert" "$WORK/root.crt" || fail "Secret $cert-tls does not verify"
    echo "ok: $cert-tls has tls.crt, tls.key, ca.crt and verifies against the root"
  done

  log "renewal: duration 1h, renewBefore 59m30s"
  local first current deadline
  first=$(secret_key "$NS" rotating-tls tls.crt | openssl x509 -noout -fingerprint -sha256)
  deadline=$((SECONDS + 180))
  while :; do
    current=$(secret_key "$NS" rotating-tls tls.crt | openssl x509 -noout -fingerprint -sha256 || true)
    if [ -n "$current" ] && [ "$current" != "$first" ]; then
      break
    fi
    [ "$SECONDS" -lt "$deadline" ] || fail "rotating-tls was not re-issued within 180s"
    sleep 5
  done
  kubectl -n "$NS" wait --for=condition=Ready certificate/rotating --timeout="$WAIT" || fail "re-issued Certificate not Ready"
  fetch_secret "$NS" rotating-tls "$WORK/rotating"
  verify_tls_files "$WORK/rotating" "$WORK/root.crt" || fail "re-issued rotating-tls does not verify"
  echo "ok: re-issued (revision $(kubectl -n "$NS" get certificate rotating -o jsonpath='{.status.revision}'))"

  log "mTLS between pods"
  kubectl apply -f - <<YAML
apiVersion: v1
kind: Pod
metadata:
  name: mtls-server
  namespace: $NS
  labels: {app: mtls-server}
spec:
  containers:
    - name: server
      image: $OPENSSL_IMAGE
      command: ["openssl"]
      # -Verify: require a client certificate that chains to ca.crt; -cert_chain sends the
      # intermediates that follow the leaf in tls.crt.
      args: ["s_server", "-accept", "8443", "-www",
             "-cert", "/tls/tls.crt", "-cert_chain", "/tls/tls.crt", "-key", "/tls/tls.key",
             "-CAfile", "/tls/ca.crt", "-Verify", "3", "-verify_return_error"]
      ports: [{containerPort: 8443}]
      readinessProbe:
        tcpSocket: {port: 8443}
        periodSeconds: 2
      volumeMounts: [{name: tls, mountPath: /tls, readOnly: true}]
  volumes:
    - name: tls
      secret: {secretName: server-tls}
---
apiVersion: v1
kind: Service
metadata:
  name: server
  namespace: $NS
spec:
  selector: {app: mtls-server}
  ports: [{port: 8443, targetPort: 8443}]
---
apiVersion: v1
kind: Pod
metadata:
  name: mtls-client
  namespace: $NS
spec:
  containers:
    - name: client
      image: $OPENSSL_IMAGE
      command: ["sleep", "3600"]
      volumeMounts:
        - {name: tls, mountPath: /tls, readOnly: true}
        - {name: intruder, mountPath: /intruder, readOnly: true}
  volumes:
    - name: tls
      secret: {secretName: client-tls}
    - name: intruder
      secret: {secretName: intruder-tls}
YAML
  kubectl -n "$NS" wait --for=condition=Ready pod/mtls-server pod/mtls-client --timeout=180s || fail "mTLS pods not Ready"

  local host="server.$NS.svc" out
  # -verify_return_error: the client refuses a server certificate that does not chain to
  # ca.crt or does not name $host.
  out=$(kubectl -n "$NS" exec mtls-client -- sh -c \
    "printf 'GET / HTTP/1.0\r\n\r\n' | openssl s_client -connect $host:8443 -servername $host \
       -verify_hostname $host -CAfile /tls/ca.crt -verify_return_error \
       -cert /tls/tls.crt -cert_chain /tls/tls.crt -key /tls/tls.key -quiet 2>&1") ||
    fail "mTLS handshake with the issued client certificate failed: $out"
  grep -q "HTTP/1.0 200 ok" <<<"$out" || fail "no HTTP response over mTLS: $out"
  echo "ok: mTLS handshake with issued certificates"

  if out=$(kubectl -n "$NS" exec mtls-client -- sh -c \
    "printf 'GET / HTTP/1.0\r\n\r\n' | openssl s_client -connect $host:8443 -servername $host \
       -CAfile /tls/ca.crt -cert /intruder/tls.crt -key /intruder/tls.key -quiet 2>&1"); then
    grep -q "HTTP/1.0 200 ok" <<<"$out" && fail "the server accepted a client certificate from another root: $out"
  fi
  echo "ok: a client certificate from another root is refused"

  log "all kind checks passed"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  main "$@"
fi
