#!/usr/bin/env bash
# Install the Debian packages gradax needs at run time, if they are missing and we are root.
# bubblewrap: the sandbox. Nothing else is needed for `make run` (SQLite is embedded).
set -euo pipefail
missing=()
command -v bwrap >/dev/null || missing+=(bubblewrap)
command -v setpriv >/dev/null || missing+=(util-linux)
for pkg in "${EXTRA_PACKAGES[@]:-}"; do [ -n "$pkg" ] && missing+=("$pkg"); done
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" != 0 ]; then
  echo "gradax needs: ${missing[*]} (apt-get install -y ${missing[*]}); run as root or install them." >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${missing[@]}"
