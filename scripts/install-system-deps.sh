#!/usr/bin/env bash
# Installs the Debian packages lobbypay needs that are missing.
# As root it installs them; otherwise it prints the command to run.
set -euo pipefail
wanted=("$@")
if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
  wanted+=(python3-venv)
fi
missing=()
for pkg in "${wanted[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "lobbypay: installing system packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "lobbypay: missing system packages: ${missing[*]}" >&2
  echo "lobbypay: install them with: sudo apt-get install ${missing[*]}" >&2
fi
