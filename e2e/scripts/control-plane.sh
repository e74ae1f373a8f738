#!/usr/bin/env bash
# A real Kubernetes control plane on loopback for the e2e suite, the demo, the cert-manager
# benchmark and checks by hand: etcd, kube-apiserver, kube-controller-manager and cert-manager's
# controller and webhook, all built from the Go module proxy at the versions in
# e2e/controlplane/versions.env.
#
#   control-plane.sh build            build what is missing (cached by version under
#                                     ${XDG_CACHE_HOME:-$HOME/.cache}/pki-issuer/control-plane/);
#                                     prints the cache directory.
#   control-plane.sh up DIR [--bare]  start etcd, kube-apiserver, kube-controller-manager on free
#                                     127.0.0.1 ports with state under DIR; install cert-manager's
#                                     CRDs, namespace, ServiceAccounts and RBAC (from its chart)
#                                     and ours; write an admin kubeconfig to DIR/kubeconfig; then
#                                     start cert-manager (not with --bare).
#   control-plane.sh cert-manager-start DIR | cert-manager-stop DIR
#                                     start cert-manager's webhook (and its webhook
#                                     configurations) and controller on a running control plane,
#                                     or stop them and delete the configurations.
#   control-plane.sh trust-manager-start DIR TRUST_NS | trust-manager-stop DIR
#                                     install trust-manager's CRDs and start its Bundle
#                                     controller (e2e/controlplane/trustmanager) reading sources
#                                     from TRUST_NS, as the admin user; or stop it.
#   control-plane.sh down DIR         stop exactly the processes `up DIR` started (pids in DIR).
#   control-plane.sh restart-apiserver DIR | restart-etcd DIR
#                                     stop one of them and start it again on the same port and
#                                     state (fault tests).
#
# Identities: the admin kubeconfig is a token of group system:masters (the tests' own client);
# kube-controller-manager runs as system:kube-controller-manager, cert-manager's controller as
# ServiceAccount cert-manager/cert-manager and its webhook as cert-manager/cert-manager-webhook
# (client certificates), each under the RBAC its own chart or the API server bootstraps.
# Two more tokens for the pod-certificate tests: DIR/pki/node.token is the kubelet of node
# pki-e2e-node (system:node:pki-e2e-node in group system:nodes: the Node authorizer and the
# NodeRestriction admission plugin, both on, treat it as that node's kubelet), and
# DIR/pki/user.token a plain user (pki-e2e-user) with no permissions of its own.
# Environment for `up`: CM_MIN_BACKOFF (cert-manager's minimum re-issue backoff, default 5s).
#
# Needs: go (1.26+), openssl, curl, kubectl, python3 (the project's venv: helm-python-sdk renders
# cert-manager's chart once per version).
set -euo pipefail

ROOT_DIR=$(cd "$(dirname "$0")/../.." && pwd)
CP_SRC="$ROOT_DIR/e2e/controlplane"
# shellcheck source=e2e/controlplane/versions.env
. "$CP_SRC/versions.env"
CACHE_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/pki-issuer/control-plane"
KUBE_DIR="$CACHE_DIR/kubernetes-$KUBERNETES_VERSION-etcd-$ETCD_VERSION"
ADMIN_TOKEN_USER="admin"
# The node whose kubelet identity the pod-certificate tests use.
E2E_NODE="pki-e2e-node"

log() { echo "control-plane.sh: $*" >&2; }
die() {
  log "$*"
  exit 1
}

# The cert-manager cache also depends on our own mains: their sources name the directory.
cert_manager_dir() {
  local sum
  sum=$(cd "$CP_SRC/certmanager" && find . -type f \( -name '*.go' -o -name 'go.mod' -o -name 'go.sum' \) -print0 |
    sort -z | xargs -0 sha256sum | sha256sum | cut -c1-12)
  echo "$CACHE_DIR/cert-manager-$CERT_MANAGER_VERSION-$sum"
}

# The trust-manager cache, named like cert-manager's.
trust_manager_dir() {
  local sum
  sum=$(cd "$CP_SRC/trustmanager" && find . -type f \( -name '*.go' -o -name 'go.mod' -o -name 'go.sum' \) -print0 |
    sort -z | xargs -0 sha256sum | sha256sum | cut -c1-12)
  echo "$CACHE_DIR/trust-manager-$TRUST_MANAGER_VERSION-$sum"
}

# check_pin MODULE_DIR MODULE VERSION: the module's go.mod requires exactly VERSION.
check_pin() {
  grep -qE "^[[:space:]]*(require )?$2 $3( // indirect)?$" "$1/go.mod" ||
    die "$1/go.mod does not require $2 $3 (versions.env); update both together"
}

go_env() {
  command -v go >/dev/null 2>&1 || PATH="$PATH:/usr/local/go/bin"
  command -v go >/dev/null 2>&1 || die "go not found (Go 1.26+ is needed to build the control plane)"
  export CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS="-mod=readonly -buildvcs=false"
}

build_kube() {
  local out=$KUBE_DIR
  if [ -x "$out/kube-apiserver" ] && [ -x "$out/kube-controller-manager" ] && [ -x "$out/etcd" ]; then
    return 0
  fi
  check_pin "$CP_SRC/kube" k8s.io/kubernetes "$KUBERNETES_VERSION"
  check_pin "$CP_SRC/kube" go.etcd.io/etcd/server/v3 "$ETCD_VERSION"
  go_env
  local minor ld="-s -w" p tmp start=$SECONDS
  minor=$(echo "$KUBERNETES_VERSION" | cut -d. -f2)
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld="$ld -X $p.gitVersion=$KUBERNETES_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
  done
  tmp=$(mktemp -d "$CACHE_DIR/build.XXXXXX")
  log "building kube-apiserver, kube-controller-manager $KUBERNETES_VERSION and etcd $ETCD_VERSION (cold: about 15 minutes on 2 cores)"
  (cd "$CP_SRC/kube" && go build -trimpath -ldflags "$ld" -o "$tmp/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    go.etcd.io/etcd/server/v3) || {
    rm -rf "$tmp"
    die "building Kubernetes/etcd failed"
  }
  mv "$tmp/server" "$tmp/etcd"
  "$tmp/kube-apiserver" --version | grep -qx "Kubernetes $KUBERNETES_VERSION" ||
    die "built kube-apiserver reports $("$tmp/kube-apiserver" --version)"
  rm -rf "$out"
  mv "$tmp" "$out"
  log "built Kubernetes and etcd in $((SECONDS - start)) s"
}

build_cert_manager() {
  local out
  out=$(cert_manager_dir)
  if [ -x "$out/controller" ] && [ -x "$out/webhook" ] && [ -f "$out/rbac.yaml" ]; then
    return 0
  fi
  check_pin "$CP_SRC/certmanager" github.com/cert-manager/cert-manager "$CERT_MANAGER_VERSION"
  go_env
  local tmp src start=$SECONDS
  tmp=$(mktemp -d "$CACHE_DIR/build.XXXXXX")
  log "building cert-manager $CERT_MANAGER_VERSION controller and webhook (cold: about 8 minutes on 2 cores)"
  (cd "$CP_SRC/certmanager" && go build -trimpath -ldflags "-s -w" -o "$tmp/" ./controller ./webhook) || {
    rm -rf "$tmp"
    die "building cert-manager failed"
  }
  # CRDs and chart from the same module version the binaries were built from.
  src=$(cd "$CP_SRC/certmanager" && go list -m -f '{{.Dir}}' github.com/cert-manager/cert-manager)
  mkdir -p "$tmp/crds"
  cp "$src"/deploy/crds/*.yaml "$tmp/crds/"
  # shellcheck source=e2e/scripts/venv.sh
  . "$ROOT_DIR/e2e/scripts/venv.sh"
  ensure_venv >&2
  "$PKI_VENV/bin/python" "$CP_SRC/cert_manager_chart.py" render "$src/deploy/charts/cert-manager" "$tmp" ||
    die "rendering cert-manager's chart failed"
  rm -rf "$out"
  mv "$tmp" "$out"
  log "built cert-manager in $((SECONDS - start)) s"
}

build_trust_manager() {
  local out
  out=$(trust_manager_dir)
  if [ -x "$out/controller" ] && [ -d "$out/crds" ]; then
    return 0
  fi
  check_pin "$CP_SRC/trustmanager" github.com/cert-manager/trust-manager "$TRUST_MANAGER_VERSION"
  go_env
  local tmp src start=$SECONDS
  tmp=$(mktemp -d "$CACHE_DIR/build.XXXXXX")
  log "building trust-manager $TRUST_MANAGER_VERSION Bundle controller (cold: about 5 minutes on 2 cores)"
  (cd "$CP_SRC/trustmanager" && go build -trimpath -ldflags "-s -w" -o "$tmp/" ./controller) || {
    rm -rf "$tmp"
    die "building trust-manager failed"
  }
  src=$(cd "$CP_SRC/trustmanager" && go list -m -f '{{.Dir}}' github.com/cert-manager/trust-manager)
  mkdir -p "$tmp/crds"
  cp "$src"/deploy/crds/*.yaml "$tmp/crds/"
  rm -rf "$out"
  mv "$tmp" "$out"
  log "built trust-manager in $((SECONDS - start)) s"
}

cmd_build() {
  mkdir -p "$CACHE_DIR"
  build_kube
  build_cert_manager
  build_trust_manager
  echo "$CACHE_DIR"
}

# A free TCP port on 127.0.0.1 (bound and released; the caller binds it right after).
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# wait_until SECONDS CMD...: retry CMD every 0.2 s until it succeeds or SECONDS pass.
wait_until() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.2
  done
}

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# healthy DIR NAME SECONDS CMD...: wait until CMD succeeds while process NAME (DIR/NAME.pid) runs;
# on failure show its log's tail and stop.
healthy() {
  local dir=$1 name=$2 deadline=$((SECONDS + $3))
  shift 3
  until "$@" >/dev/null 2>&1; do
    if ! alive "$dir/$name.pid" || [ "$SECONDS" -ge "$deadline" ]; then
      tail -n 30 "$dir/$name.log" >&2
      die "$name did not become healthy"
    fi
    sleep 0.2
  done
}

# spawn DIR NAME CMD...: start CMD in the background, log to DIR/NAME.log, pid in DIR/NAME.pid.
spawn() {
  local dir=$1 name=$2
  shift 2
  "$@" >>"$dir/$name.log" 2>&1 </dev/null &
  echo $! >"$dir/$name.pid"
}

start_etcd() {
  local dir=$1
  # shellcheck source=/dev/null
  . "$dir/ports"
  spawn "$dir" etcd "$KUBE_DIR/etcd" --name pki-issuer-e2e --data-dir "$dir/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "pki-issuer-e2e=http://127.0.0.1:$ETCD_PEER_PORT" \
    --listen-metrics-urls "http://127.0.0.1:$ETCD_METRICS_PORT" \
    --unsafe-no-fsync --quota-backend-bytes=1073741824 --log-level warn
  healthy "$dir" etcd 30 curl -fsS "http://127.0.0.1:$ETCD_PORT/health"
}

# The alpha/beta certificate features pki-issuer may use later, where this version has them
# (feature gate known to the binary); `up` records the served resources in DIR/features.
feature_gates() {
  local help gates=() g
  help=$("$KUBE_DIR/kube-apiserver" --help 2>/dev/null)
  for g in ClusterTrustBundle ClusterTrustBundleProjection PodCertificateRequest; do
    grep -qE "^[[:space:]]+(kube:)?$g=true[|]false" <<<"$help" && gates+=("$g=true")
  done
  local IFS=,
  echo "${gates[*]}"
}

start_apiserver() {
  local dir=$1 gates
  # shellcheck source=/dev/null
  . "$dir/ports"
  gates=$(cat "$dir/feature-gates")
  spawn "$dir" kube-apiserver "$KUBE_DIR/kube-apiserver" --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$APISERVER_PORT" \
    --tls-cert-file "$dir/pki/serving.crt" --tls-private-key-file "$dir/pki/serving.key" \
    --client-ca-file "$dir/pki/ca.crt" \
    --token-auth-file "$dir/pki/tokens.csv" --authorization-mode Node,RBAC \
    --enable-admission-plugins NodeRestriction \
    --service-account-key-file "$dir/pki/sa.pub" --service-account-signing-key-file "$dir/pki/sa.key" \
    --service-account-issuer https://kubernetes.default.svc --api-audiences https://kubernetes.default.svc \
    --service-cluster-ip-range 10.0.0.0/24 --endpoint-reconciler-type none \
    --feature-gates "$gates" \
    --runtime-config certificates.k8s.io/v1beta1=true \
    --storage-media-type application/json \
    --audit-policy-file "$dir/audit-policy.yaml" --audit-log-path "$dir/audit.log" --audit-log-mode blocking \
    --audit-log-maxsize 0 \
    --cert-dir "$dir/pki" --v 1
  healthy "$dir" kube-apiserver 90 curl -fsS --cacert "$dir/pki/ca.crt" \
    -H "Authorization: Bearer $(cat "$dir/pki/admin.token")" "https://127.0.0.1:$APISERVER_PORT/readyz"
}

start_controller_manager() {
  local dir=$1
  # shellcheck source=/dev/null
  . "$dir/ports"
  # The controllers a cluster's objects rely on (namespace deletion, garbage collection, RBAC
  # aggregation, ServiceAccount tokens, CSR cleanup); no workload or cloud controllers. Each
  # controller runs as its own ServiceAccount, as kubeadm sets it up: the garbage collector then
  # has its bootstrap role (every resource, custom ones included), not the narrow
  # system:kube-controller-manager one.
  spawn "$dir" kube-controller-manager "$KUBE_DIR/kube-controller-manager" \
    --kubeconfig "$dir/kcm.kubeconfig" \
    --authentication-kubeconfig "$dir/kcm.kubeconfig" --authorization-kubeconfig "$dir/kcm.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$KCM_PORT" \
    --controllers namespace-controller,garbage-collector-controller,clusterrole-aggregation-controller,serviceaccount-controller,serviceaccount-token-controller,root-ca-certificate-publisher-controller,certificatesigningrequest-cleaner-controller,podcertificaterequest-cleaner-controller \
    --service-account-private-key-file "$dir/pki/sa.key" --root-ca-file "$dir/pki/ca.crt" \
    --use-service-account-credentials \
    --leader-elect=false --v 1
  healthy "$dir" kube-controller-manager 60 curl -fsSk "https://127.0.0.1:$KCM_PORT/healthz"
}

# client_cert PKI NAME CN [ORG...]: a client certificate for NAME signed by the cluster CA.
client_cert() {
  local pki=$1 name=$2 cn=$3 subj
  shift 3
  subj="/CN=$cn"
  local o
  for o in "$@"; do subj="$subj/O=$o"; done
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$pki/$name.key" \
    -out "$pki/$name.csr" -subj "$subj" 2>/dev/null
  openssl x509 -req -in "$pki/$name.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
    -days 3650 -out "$pki/$name.crt" -extfile <(printf 'extendedKeyUsage=clientAuth\n') 2>/dev/null
  chmod 600 "$pki/$name.key"
}

make_pki() {
  local pki=$1
  mkdir -p "$pki"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
    -keyout "$pki/ca.key" -out "$pki/ca.crt" -subj "/CN=pki-issuer e2e control plane CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$pki/serving.key" \
    -out "$pki/serving.csr" -subj "/CN=kube-apiserver" 2>/dev/null
  openssl x509 -req -in "$pki/serving.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
    -days 3650 -out "$pki/serving.crt" \
    -extfile <(printf 'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc\nextendedKeyUsage=serverAuth\n') 2>/dev/null
  # cert-manager's webhook serves on 127.0.0.1 with a certificate of the same CA (its caBundle).
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$pki/cm-webhook-serving.key" \
    -out "$pki/cm-webhook-serving.csr" -subj "/CN=cert-manager-webhook" 2>/dev/null
  openssl x509 -req -in "$pki/cm-webhook-serving.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
    -days 3650 -out "$pki/cm-webhook-serving.crt" \
    -extfile <(printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n') 2>/dev/null
  client_cert "$pki" kcm system:kube-controller-manager
  client_cert "$pki" cm-controller system:serviceaccount:cert-manager:cert-manager \
    system:serviceaccounts system:serviceaccounts:cert-manager
  client_cert "$pki" cm-webhook system:serviceaccount:cert-manager:cert-manager-webhook \
    system:serviceaccounts system:serviceaccounts:cert-manager
  openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null
  openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
  openssl rand -hex 24 >"$pki/admin.token"
  openssl rand -hex 24 >"$pki/node.token"
  openssl rand -hex 24 >"$pki/user.token"
  {
    echo "$(cat "$pki/admin.token"),$ADMIN_TOKEN_USER,$ADMIN_TOKEN_USER,system:masters"
    echo "$(cat "$pki/node.token"),system:node:$E2E_NODE,system:node:$E2E_NODE,system:nodes"
    echo "$(cat "$pki/user.token"),pki-e2e-user,pki-e2e-user"
  } >"$pki/tokens.csv"
  chmod 600 "$pki"/*.key "$pki"/*.token "$pki/tokens.csv"
}

# kubeconfig DIR FILE USER-LINES: a kubeconfig for this control plane with the given user entry.
kubeconfig() {
  local dir=$1 file=$2 user=$3
  # shellcheck source=/dev/null
  . "$dir/ports"
  cat >"$file.tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: kube-apiserver
  cluster:
    server: https://127.0.0.1:$APISERVER_PORT
    certificate-authority-data: $(base64 -w0 <"$dir/pki/ca.crt")
users:
- name: user
  user:
$user
contexts:
- name: kube-apiserver
  context:
    cluster: kube-apiserver
    user: user
current-context: kube-apiserver
EOF
  chmod 600 "$file.tmp"
  mv "$file.tmp" "$file"
}

cert_user() {
  printf '    client-certificate: %s\n    client-key: %s' "$1.crt" "$1.key"
}

write_kubeconfigs() {
  local dir=$1
  kubeconfig "$dir" "$dir/kubeconfig" "    token: $(cat "$dir/pki/admin.token")"
  kubeconfig "$dir" "$dir/kcm.kubeconfig" "$(cert_user "$dir/pki/kcm")"
  kubeconfig "$dir" "$dir/cm-controller.kubeconfig" "$(cert_user "$dir/pki/cm-controller")"
  kubeconfig "$dir" "$dir/cm-webhook.kubeconfig" "$(cert_user "$dir/pki/cm-webhook")"
}

kc() { kubectl --kubeconfig "$KUBECONFIG_FILE" "$@"; }

install_objects() {
  local dir=$1 f cm
  cm=$(cert_manager_dir)
  KUBECONFIG_FILE="$dir/kubeconfig"
  # Server-side apply: the API server validates every field, CEL rules included.
  for f in "$cm"/crds/*.yaml "$ROOT_DIR"/helm/pki-issuer/crds/*.yaml; do
    kc apply --server-side --field-manager control-plane -f "$f" >/dev/null
  done
  kc create namespace cert-manager >/dev/null
  kc apply --server-side --field-manager control-plane -f "$cm/rbac.yaml" >/dev/null
  local names
  names=$(kc get crd -o name)
  for name in $names; do
    kc wait --for condition=Established --timeout 60s "$name" >/dev/null
  done
  # Discovery must list every resource before clients use it.
  wait_until 30 kc get certificaterequests.cert-manager.io,issuers.cert-manager.io,pkiissuers.pki-issuer.io -A
  kc api-resources --api-group certificates.k8s.io -o name 2>/dev/null | sort >"$dir/features"
}

cmd_up() {
  local dir=${1:?usage: control-plane.sh up DIR [--bare]} bare=${2:-}
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  if alive "$dir/kube-apiserver.pid" || alive "$dir/etcd.pid"; then
    die "$dir already has a running control plane; run: $0 down $dir"
  fi
  cmd_build >/dev/null
  local start=$SECONDS
  rm -rf "$dir/etcd" "$dir/pki"
  make_pki "$dir/pki"
  # Every write, one JSON line each (metadata only): tests count requests from it.
  cat >"$dir/audit-policy.yaml" <<'EOF'
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: None
  verbs: ["get", "list", "watch"]
- level: Metadata
EOF
  rm -f "$dir/audit.log"
  {
    echo "ETCD_PORT=$(free_port)"
    echo "ETCD_PEER_PORT=$(free_port)"
    echo "ETCD_METRICS_PORT=$(free_port)"
    echo "APISERVER_PORT=$(free_port)"
    echo "KCM_PORT=$(free_port)"
    echo "CM_WEBHOOK_PORT=$(free_port)"
    echo "CM_WEBHOOK_HEALTHZ_PORT=$(free_port)"
  } >"$dir/ports"
  feature_gates >"$dir/feature-gates"
  start_etcd "$dir"
  start_apiserver "$dir"
  write_kubeconfigs "$dir"
  start_controller_manager "$dir"
  install_objects "$dir"
  [ "$bare" = "--bare" ] || cmd_cert_manager_start "$dir"
  log "ready in $((SECONDS - start)) s: KUBECONFIG=$dir/kubeconfig (stop with: $0 down $dir)"
}

cmd_cert_manager_start() {
  local dir=${1:?usage: control-plane.sh cert-manager-start DIR} cm
  cm=$(cert_manager_dir)
  KUBECONFIG_FILE="$dir/kubeconfig"
  # shellcheck source=/dev/null
  . "$dir/ports"
  alive "$dir/cm-webhook.pid" || spawn "$dir" cm-webhook "$cm/webhook" --kubeconfig "$dir/cm-webhook.kubeconfig" \
    --secure-port "$CM_WEBHOOK_PORT" --healthz-port "$CM_WEBHOOK_HEALTHZ_PORT" \
    --tls-cert-file "$dir/pki/cm-webhook-serving.crt" --tls-private-key-file "$dir/pki/cm-webhook-serving.key"
  healthy "$dir" cm-webhook 30 curl -fsS "http://127.0.0.1:$CM_WEBHOOK_HEALTHZ_PORT/healthz"
  python3 "$CP_SRC/cert_manager_chart.py" webhooks "$cm/webhooks.json" \
    "https://127.0.0.1:$CM_WEBHOOK_PORT" "$dir/pki/ca.crt" >"$dir/cm-webhooks.json"
  kc apply --server-side --field-manager control-plane -f "$dir/cm-webhooks.json" >/dev/null
  alive "$dir/cm-controller.pid" || spawn "$dir" cm-controller "$cm/controller" \
    --kubeconfig "$dir/cm-controller.kubeconfig" \
    --certificate-request-minimum-backoff-duration "${CM_MIN_BACKOFF:-5s}" \
    --certificate-request-maximum-backoff-duration 1m
  sleep 0.5
  alive "$dir/cm-controller.pid" || {
    tail -n 20 "$dir/cm-controller.log" >&2
    die "cert-manager controller exited"
  }
}

cmd_cert_manager_stop() {
  local dir=${1:?usage: control-plane.sh cert-manager-stop DIR}
  stop "$dir/cm-controller.pid"
  if [ -f "$dir/cm-webhooks.json" ]; then
    KUBECONFIG_FILE="$dir/kubeconfig"
    kc delete --ignore-not-found -f "$dir/cm-webhooks.json" >/dev/null
  fi
  stop "$dir/cm-webhook.pid"
}

# ours PID DIR: PID is still a process this script started for DIR (its command line names DIR;
# guards against a recycled pid).
ours() { kill -0 "$1" 2>/dev/null && tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -qF "$2/"; }

# stop PIDFILE: SIGTERM the process recorded there (only if it is still ours), wait, then SIGKILL.
stop() {
  local pidfile=$1 pid
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  if ours "$pid" "$(dirname "$pidfile")"; then
    kill -TERM "$pid" 2>/dev/null || true
    wait_until 10 bash -c "! kill -0 $pid" || kill -KILL "$pid" 2>/dev/null || true
    wait_until 5 bash -c "! kill -0 $pid" || true
  fi
  rm -f "$pidfile"
}

cmd_trust_manager_start() {
  local dir=${1:?usage: control-plane.sh trust-manager-start DIR TRUST_NS} ns=${2:?trust namespace} tm port
  mkdir -p "$CACHE_DIR"
  build_trust_manager
  tm=$(trust_manager_dir)
  KUBECONFIG_FILE="$dir/kubeconfig"
  kc apply --server-side --field-manager control-plane -f "$tm/crds" >/dev/null
  kc wait --for condition=Established --timeout 30s crd/bundles.trust.cert-manager.io >/dev/null
  port=$(free_port)
  alive "$dir/trust-manager.pid" || spawn "$dir" trust-manager "$tm/controller" \
    --kubeconfig "$dir/kubeconfig" --trust-namespace "$ns" --probe-addr "127.0.0.1:$port"
  healthy "$dir" trust-manager 60 curl -fsS "http://127.0.0.1:$port/readyz"
}

cmd_trust_manager_stop() {
  stop "${1:?usage: control-plane.sh trust-manager-stop DIR}/trust-manager.pid"
}

cmd_down() {
  local dir=${1:?usage: control-plane.sh down DIR} name
  for name in trust-manager cm-controller cm-webhook kube-controller-manager kube-apiserver etcd; do
    stop "$dir/$name.pid"
  done
}

cmd_restart_apiserver() {
  local dir=${1:?usage: control-plane.sh restart-apiserver DIR}
  stop "$dir/kube-apiserver.pid"
  start_apiserver "$dir"
}

cmd_restart_etcd() {
  local dir=${1:?usage: control-plane.sh restart-etcd DIR}
  stop "$dir/etcd.pid"
  start_etcd "$dir"
}

case "${1:-}" in
build) cmd_build ;;
up) cmd_up "${2:-}" "${3:-}" ;;
down) cmd_down "${2:-}" ;;
cert-manager-start) cmd_cert_manager_start "${2:-}" ;;
cert-manager-stop) cmd_cert_manager_stop "${2:-}" ;;
trust-manager-start) cmd_trust_manager_start "${2:-}" "${3:-}" ;;
trust-manager-stop) cmd_trust_manager_stop "${2:-}" ;;
restart-apiserver) cmd_restart_apiserver "${2:-}" ;;
restart-etcd) cmd_restart_etcd "${2:-}" ;;
*)
  echo "usage: $0 build | up DIR [--bare] | down DIR | cert-manager-start DIR | cert-manager-stop DIR | trust-manager-start DIR TRUST_NS | trust-manager-stop DIR | restart-apiserver DIR | restart-etcd DIR" >&2
  exit 2
  ;;
esac
