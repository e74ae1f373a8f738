#!/usr/bin/env bash
# A real kube-apiserver (v1.20.2, built from Debian bookworm's `kubernetes` source package) and
# etcd (Debian's etcd-server) on loopback, for the e2e suite, the demo and checks by hand.
#
#   kube-apiserver.sh build      fetch the source, patch, build; the binary is cached by version
#                                under ${XDG_CACHE_HOME:-$HOME/.cache}/pki-issuer/ and reused.
#                                Prints the binary's path on stdout.
#   kube-apiserver.sh up DIR     start etcd + kube-apiserver on free 127.0.0.1 ports, state under
#                                DIR (etcd data, certs, logs, pids); wait for /readyz; install
#                                cert-manager's CertificateRequest/Certificate CRDs and ours;
#                                write an admin kubeconfig to DIR/kubeconfig.
#   kube-apiserver.sh down DIR   stop exactly the processes `up DIR` started (pids in DIR).
#   kube-apiserver.sh restart-apiserver DIR | restart-etcd DIR
#                                stop one of them and start it again on the same port and state
#                                (fault tests).
#
# Needs (installed by e2e/scripts/install-test-deps.sh): etcd-server, golang-1.19-go, rsync, jq,
# golang-github-modern-go-reflect2-dev, dpkg-dev, openssl, kubectl.
set -euo pipefail

ROOT_DIR=$(cd "$(dirname "$0")/../.." && pwd)
# The Debian source package the binary is built from; bump both together.
KUBE_DEB_VERSION="1.20.5+really1.20.2-1.1+deb12u1"
KUBE_VERSION="v1.20.2"
CACHE_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/pki-issuer"
BIN_DIR="$CACHE_DIR/kube-apiserver-$KUBE_VERSION-$KUBE_DEB_VERSION"
GO_ROOT=/usr/lib/go-1.19
REFLECT2_SRC=/usr/share/gocode/src/github.com/modern-go/reflect2
ADMIN_TOKEN_USER="admin"

log() { echo "kube-apiserver.sh: $*" >&2; }
die() {
  log "$*"
  exit 1
}

# The Debian mirror this machine already uses for bookworm main (no host is hard-coded here).
debian_mirror() {
  # shellcheck disable=SC2016 # apt's own $(FIELD) placeholders
  apt-get indextargets --format '$(REPO_URI) $(RELEASE) $(IDENTIFIER)' 2>/dev/null |
    awk '$2=="bookworm" && $3=="Packages" { print $1; exit }'
}

cmd_build() {
  local bin="$BIN_DIR/kube-apiserver"
  if [ -x "$bin" ] && "$bin" --version 2>/dev/null | grep -qx "Kubernetes $KUBE_VERSION"; then
    echo "$bin"
    return 0
  fi
  [ -x "$GO_ROOT/bin/go" ] || die "Go 1.19 not found at $GO_ROOT (apt-get install golang-1.19-go)"
  [ -f "$REFLECT2_SRC/reflect2.go" ] || die "reflect2 1.0.2 not found (apt-get install golang-github-modern-go-reflect2-dev)"
  local tool
  for tool in rsync jq make dpkg-source; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found (run e2e/scripts/install-test-deps.sh)"
  done

  mkdir -p "$CACHE_DIR"
  local work
  work=$(mktemp -d "$CACHE_DIR/build.XXXXXX")
  # shellcheck disable=SC2064 # expand now: the trap must remove this very directory
  trap "rm -rf '$work'" EXIT
  local start=$SECONDS

  # Fetch the source package with a private apt configuration: the machine's own sources and
  # package lists stay untouched.
  local mirror
  mirror=$(debian_mirror)
  [ -n "$mirror" ] || die "no Debian bookworm mirror found in this machine's apt sources"
  mkdir -p "$work/apt/lists/partial" "$work/apt/cache/archives/partial" "$work/src"
  echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror bookworm main" >"$work/apt/sources.list"
  local apt_opts=(
    -o "Dir::Etc::SourceList=$work/apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
    -o "Dir::State::Lists=$work/apt/lists" -o "Dir::Cache=$work/apt/cache" -o Debug::NoLocking=1
    -o APT::Sandbox::User="$(id -un)"
  )
  log "fetching the kubernetes $KUBE_DEB_VERSION source package"
  apt-get "${apt_opts[@]}" -qq update
  (cd "$work/src" && apt-get "${apt_opts[@]}" -qq source --download-only "kubernetes=$KUBE_DEB_VERSION" >/dev/null)
  # apt checked the files against the signed Sources index; dpkg-source's own gpgv check of the
  # .dsc has no Debian keyring to use and only warns, so its output goes to a log.
  (cd "$work/src" && dpkg-source -x ./*.dsc tree >"$work/dpkg-source.log" 2>&1) || {
    cat "$work/dpkg-source.log" >&2
    die "dpkg-source failed"
  }

  # vendor/ has reflect2 v1.0.1, which crashes on Go >= 1.18 (segfault serving custom resources).
  log "replacing vendor/github.com/modern-go/reflect2 with Debian's 1.0.2"
  rm -rf "$work/src/tree/vendor/github.com/modern-go/reflect2"
  cp -r "$REFLECT2_SRC" "$work/src/tree/vendor/github.com/modern-go/reflect2"
  sed -i 's|^# github.com/modern-go/reflect2 v1.0.1$|# github.com/modern-go/reflect2 v1.0.2|' "$work/src/tree/vendor/modules.txt"
  sed -i 's|github.com/modern-go/reflect2 v1.0.1$|github.com/modern-go/reflect2 v1.0.2|' "$work/src/tree/go.mod"

  log "building cmd/kube-apiserver (about 5 minutes on 2 cores)"
  (
    cd "$work/src/tree"
    export PATH="$GO_ROOT/bin:$PATH" GOPATH="$work/gopath" GOCACHE="$work/gocache" HOME="$work" CGO_ENABLED=0
    unset GOFLAGS
    make WHAT=cmd/kube-apiserver >"$work/build.log" 2>&1
  ) || {
    tail -n 40 "$work/build.log" >&2
    die "build failed"
  }
  local built="$work/src/tree/_output/bin/kube-apiserver"
  "$built" --version | grep -qx "Kubernetes $KUBE_VERSION" || die "built binary reports $("$built" --version)"
  mkdir -p "$BIN_DIR"
  cp "$built" "$BIN_DIR/kube-apiserver.tmp"
  mv "$BIN_DIR/kube-apiserver.tmp" "$bin"
  log "built $bin in $((SECONDS - start)) s"
  echo "$bin"
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

start_etcd() {
  local dir=$1
  # shellcheck source=/dev/null
  . "$dir/ports"
  etcd --name pki-issuer-e2e --data-dir "$dir/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "pki-issuer-e2e=http://127.0.0.1:$ETCD_PEER_PORT" \
    --listen-metrics-urls "http://127.0.0.1:$ETCD_METRICS_PORT" \
    --unsafe-no-fsync --quota-backend-bytes=1073741824 --log-level warn \
    >>"$dir/etcd.log" 2>&1 </dev/null &
  echo $! >"$dir/etcd.pid"
  wait_until 30 curl -fsS "http://127.0.0.1:$ETCD_PORT/health" || {
    tail -n 20 "$dir/etcd.log" >&2
    die "etcd did not become healthy"
  }
}

start_apiserver() {
  local dir=$1 bin
  bin=$(cat "$dir/bin")
  # shellcheck source=/dev/null
  . "$dir/ports"
  "$bin" --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$APISERVER_PORT" --insecure-port 0 \
    --tls-cert-file "$dir/pki/serving.crt" --tls-private-key-file "$dir/pki/serving.key" \
    --client-ca-file "$dir/pki/ca.crt" \
    --token-auth-file "$dir/pki/tokens.csv" --authorization-mode RBAC \
    --service-account-key-file "$dir/pki/sa.pub" --service-account-signing-key-file "$dir/pki/sa.key" \
    --service-account-issuer https://kubernetes.default.svc --api-audiences https://kubernetes.default.svc \
    --service-cluster-ip-range 10.0.0.0/24 --endpoint-reconciler-type none \
    --enable-priority-and-fairness=false --watch-cache=true --storage-media-type application/json \
    --audit-policy-file "$dir/audit-policy.yaml" --audit-log-path "$dir/audit.log" --audit-log-mode blocking \
    --audit-log-maxsize 0 \
    --cert-dir "$dir/pki" --v 1 \
    >>"$dir/kube-apiserver.log" 2>&1 </dev/null &
  echo $! >"$dir/kube-apiserver.pid"
  wait_until 90 curl -fsS --cacert "$dir/pki/ca.crt" -H "Authorization: Bearer $(cat "$dir/pki/admin.token")" \
    "https://127.0.0.1:$APISERVER_PORT/readyz" || {
    tail -n 30 "$dir/kube-apiserver.log" >&2
    die "kube-apiserver did not become ready"
  }
}

make_pki() {
  local pki=$1
  mkdir -p "$pki"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
    -keyout "$pki/ca.key" -out "$pki/ca.crt" -subj "/CN=pki-issuer e2e kube-apiserver CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$pki/serving.key" \
    -out "$pki/serving.csr" -subj "/CN=kube-apiserver" 2>/dev/null
  openssl x509 -req -in "$pki/serving.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
    -days 3650 -out "$pki/serving.crt" \
    -extfile <(printf 'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc\nextendedKeyUsage=serverAuth\n') 2>/dev/null
  openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null
  openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
  openssl rand -hex 24 >"$pki/admin.token"
  echo "$(cat "$pki/admin.token"),$ADMIN_TOKEN_USER,$ADMIN_TOKEN_USER,system:masters" >"$pki/tokens.csv"
  chmod 600 "$pki"/*.key "$pki/admin.token" "$pki/tokens.csv"
}

write_kubeconfig() {
  local dir=$1
  # shellcheck source=/dev/null
  . "$dir/ports"
  cat >"$dir/kubeconfig.tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: kube-apiserver
  cluster:
    server: https://127.0.0.1:$APISERVER_PORT
    certificate-authority-data: $(base64 -w0 <"$dir/pki/ca.crt")
users:
- name: $ADMIN_TOKEN_USER
  user:
    token: $(cat "$dir/pki/admin.token")
contexts:
- name: kube-apiserver
  context:
    cluster: kube-apiserver
    user: $ADMIN_TOKEN_USER
current-context: kube-apiserver
EOF
  chmod 600 "$dir/kubeconfig.tmp"
  mv "$dir/kubeconfig.tmp" "$dir/kubeconfig"
}

install_crds() {
  local dir=$1 f
  local files=(
    "$ROOT_DIR/e2e/testdata/cert-manager/cert-manager.io_certificaterequests.yaml"
    "$ROOT_DIR/e2e/testdata/cert-manager/cert-manager.io_certificates.yaml"
  )
  for f in "$ROOT_DIR"/helm/pki-issuer/crds/*.yaml; do files+=("$f"); done
  # A plain create without validation: 1.20 does not know x-kubernetes-validations (CEL) or
  # selectableFields and drops them; client-side validation or server-side apply would refuse.
  for f in "${files[@]}"; do
    kubectl --kubeconfig "$dir/kubeconfig" create --validate=false -f "$f" >/dev/null
  done
  local names
  names=$(kubectl --kubeconfig "$dir/kubeconfig" get crd -o name)
  for name in $names; do
    kubectl --kubeconfig "$dir/kubeconfig" wait --for condition=Established --timeout 60s "$name" >/dev/null
  done
  # Discovery must list every resource before clients use it.
  wait_until 30 kubectl --kubeconfig "$dir/kubeconfig" get certificaterequests.cert-manager.io,pkiissuers.pki-issuer.io -A
}

cmd_up() {
  local dir=${1:?usage: kube-apiserver.sh up DIR}
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  if alive "$dir/kube-apiserver.pid" || alive "$dir/etcd.pid"; then
    die "$dir already has a running server; run: $0 down $dir"
  fi
  local bin
  bin=$(cmd_build)
  echo "$bin" >"$dir/bin"
  command -v etcd >/dev/null || die "etcd not found (apt-get install etcd-server)"
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
  } >"$dir/ports"
  start_etcd "$dir"
  start_apiserver "$dir"
  write_kubeconfig "$dir"
  install_crds "$dir"
  log "ready in $((SECONDS - start)) s: KUBECONFIG=$dir/kubeconfig (stop with: $0 down $dir)"
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

cmd_down() {
  local dir=${1:?usage: kube-apiserver.sh down DIR}
  stop "$dir/kube-apiserver.pid"
  stop "$dir/etcd.pid"
}

cmd_restart_apiserver() {
  local dir=${1:?usage: kube-apiserver.sh restart-apiserver DIR}
  stop "$dir/kube-apiserver.pid"
  start_apiserver "$dir"
}

cmd_restart_etcd() {
  local dir=${1:?usage: kube-apiserver.sh restart-etcd DIR}
  stop "$dir/etcd.pid"
  start_etcd "$dir"
}

case "${1:-}" in
build) cmd_build ;;
up) cmd_up "${2:-}" ;;
down) cmd_down "${2:-}" ;;
restart-apiserver) cmd_restart_apiserver "${2:-}" ;;
restart-etcd) cmd_restart_etcd "${2:-}" ;;
*)
  echo "usage: $0 build | up DIR | down DIR | restart-apiserver DIR | restart-etcd DIR" >&2
  exit 2
  ;;
esac
