#!/usr/bin/env bash
# Installs the Debian packages the test suite calls, when they are missing:
# openssl (chain verification), kubectl (conformance tests) and cfssl (the remote CA backend).
set -euo pipefail

need=()
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v kubectl >/dev/null 2>&1 || need+=(kubernetes-client)
command -v cfssl >/dev/null 2>&1 || need+=(golang-cfssl)

if [ "${#need[@]}" -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "missing test tools: ${need[*]}; install them with: sudo apt-get install ${need[*]}" >&2
  exit 1
fi
echo "installing test tools: ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
