#!/usr/bin/env bash
# End-to-end run on a kind cluster with real cert-manager (needs a Docker engine):
#
#   1. create a kind cluster,
#   2. install cert-manager from its official chart (jetstack repository, crds.enabled=true),
#   3. build the pki-issuer image with docker and load it into kind,
#   4. install pki-issuer from helm/pki-issuer and wait for the rollout,
#   5. run the e2e suite against the cluster (E2E_KUBECONFIG),
#   6. run the kind-only checks (e2e/kind/checks.sh).
#
# The cluster is deleted at the end unless KEEP_CLUSTER=1.
#
# Environment (all optional):
#   KIND_CLUSTER_NAME      cluster name (pki-issuer-e2e)
#   KIND_NODE_IMAGE        kind node image, e.g. kindest/node:v1.33.1 (kind's default)
#   CERT_MANAGER_VERSION   cert-manager chart version (v1.19.1)
#   IMAGE                  image to build and load (pki-issuer:e2e)
#   KEEP_CLUSTER=1         keep the cluster (and print how to use it)
#   SKIP_SUITE=1           skip the cargo e2e suite; SKIP_CHECKS=1 skips checks.sh
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
cluster=${KIND_CLUSTER_NAME:-pki-issuer-e2e}
cert_manager_version=${CERT_MANAGER_VERSION:-v1.19.1}
image=${IMAGE:-pki-issuer:e2e}
namespace=pki-issuer
work="$root/e2e/.work/kind"
kubeconfig="$work/$cluster.kubeconfig"

log() { printf '\n== %s\n' "$*"; }

missing=0
need() {
  command -v "$1" >/dev/null 2>&1 && return 0
  echo "missing tool: $1 — $2" >&2
  missing=1
}
need docker "install Docker Engine: https://docs.docker.com/engine/install/"
need kind "go install sigs.k8s.io/kind@latest, or a release binary: https://kind.sigs.k8s.io/docs/user/quick-start/#installation"
need helm "https://helm.sh/docs/intro/install/ (e.g. the get-helm-3 script, or your package manager)"
need kubectl "https://kubernetes.io/docs/tasks/tools/ (Debian: apt-get install kubernetes-client)"
need openssl "apt-get install openssl"
need cargo "https://rustup.rs"
[ "$missing" -eq 0 ] || exit 1
docker info >/dev/null 2>&1 || { echo "docker cannot reach a Docker engine (is the daemon running?)" >&2; exit 1; }

cleanup() {
  local rc=$?
  if [ "$rc" -ne 0 ] && [ -f "$kubeconfig" ]; then
    echo "--- pki-issuer logs (failure)" >&2
    KUBECONFIG="$kubeconfig" kubectl -n "$namespace" logs -l app.kubernetes.io/name=pki-issuer --tail=200 --prefix >&2 || true
  fi
  if [ "${KEEP_CLUSTER:-0}" = 1 ]; then
    echo "KEEP_CLUSTER=1: cluster '$cluster' kept; use it with: export KUBECONFIG=$kubeconfig"
    echo "delete it with: kind delete cluster --name $cluster"
  else
    kind delete cluster --name "$cluster" >/dev/null 2>&1 || true
    rm -f "$kubeconfig"
  fi
  exit "$rc"
}
trap cleanup EXIT

mkdir -p "$work"
log "kind cluster $cluster"
if kind get clusters 2>/dev/null | grep -qx "$cluster"; then
  echo "reusing existing cluster $cluster"
  kind export kubeconfig --name "$cluster" --kubeconfig "$kubeconfig"
else
  kind create cluster --name "$cluster" --kubeconfig "$kubeconfig" --wait 180s \
    ${KIND_NODE_IMAGE:+--image "$KIND_NODE_IMAGE"}
fi
export KUBECONFIG="$kubeconfig"
kubectl cluster-info

log "cert-manager $cert_manager_version"
helm repo add jetstack https://charts.jetstack.io --force-update >/dev/null
helm upgrade --install cert-manager jetstack/cert-manager \
  --namespace cert-manager --create-namespace \
  --version "$cert_manager_version" \
  --set crds.enabled=true \
  --wait --timeout 5m
kubectl -n cert-manager rollout status deployment/cert-manager-webhook --timeout=180s

log "image $image"
DOCKER_BUILDKIT=1 docker build -t "$image" "$root"
kind load docker-image "$image" --name "$cluster"

log "pki-issuer (helm/pki-issuer)"
# The suite and checks.sh create PKIIssuers in namespaces made on the fly, so the controller
# may read Secrets and ConfigMaps cluster-wide here; cert-manager approves the requests.
helm upgrade --install pki-issuer "$root/helm/pki-issuer" \
  --namespace "$namespace" --create-namespace \
  --set image.repository="${image%:*}" \
  --set image.tag="${image##*:}" \
  --set image.pullPolicy=Never \
  --set rbac.secretsClusterWide=true \
  --set approver.enabled=true \
  --set logFormat=text \
  --wait --timeout 5m
kubectl -n "$namespace" rollout status deployment/pki-issuer --timeout=180s
kubectl -n "$namespace" get pods -o wide

if [ "${SKIP_SUITE:-0}" != 1 ]; then
  log "e2e suite against the cluster"
  (
    cd "$root"
    # cfssl:: starts CA processes on this host, which pods cannot reach; chart:: installs the
    # chart into the test API server itself. Both run on every `make test` instead.
    E2E_KUBECONFIG="$kubeconfig" E2E_CLUSTER_RESOURCE_NAMESPACE="$namespace" \
      cargo test --locked --test e2e -- --test-threads=4 --skip cfssl:: --skip chart::
  )
fi

if [ "${SKIP_CHECKS:-0}" != 1 ]; then
  log "kind-only checks"
  PKI_NAMESPACE="$namespace" "$root/e2e/kind/checks.sh"
fi

log "kind e2e passed"
