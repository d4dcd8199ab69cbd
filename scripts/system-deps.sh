#!/usr/bin/env bash
# Install the Debian packages gradax needs, if they are missing: `system-deps.sh run` for the app
# (`make run`), `system-deps.sh test` for the whole test suite (`make test`, CI). Needs root to install;
# otherwise it names what is missing and the command that installs it, and fails.
#
#   run:  bubblewrap (the sandbox), util-linux (setpriv). SQLite is embedded: nothing else.
#   test: run's, plus chromium (browser tests), postgresql and redis-server (service tests), and for
#         the container test: docker.io (dockerd, containerd, runc), docker-compose (`docker-compose
#         config` validates compose.yaml) and mmdebstrap (builds the debian:bookworm-slim base locally
#         when the registry cannot be reached).
# Presence is judged by the program each package provides, so a machine that has them from elsewhere
# installs nothing.
set -euo pipefail
mode="${1:-run}"
missing=()
need() {  # need PACKAGE TEST-COMMAND...: PACKAGE is missing when the test fails
  local pkg="$1"; shift
  "$@" >/dev/null 2>&1 || missing+=("$pkg")
}
has() { command -v "$1"; }
has_postgres() { compgen -G '/usr/lib/postgresql/*/bin/pg_ctl' || has pg_ctl; }

need bubblewrap has bwrap
need util-linux has setpriv
case "$mode" in
  run) ;;
  test)
    need chromium test -x /usr/bin/chromium
    need postgresql has_postgres
    need redis-server has redis-server
    need docker.io has dockerd
    need docker-compose has docker-compose
    need mmdebstrap has mmdebstrap
    ;;
  *) echo "usage: $0 [run|test]" >&2; exit 2 ;;
esac

if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" != 0 ]; then
  {
    echo "gradax ($mode) needs these Debian packages, which are not installed: ${missing[*]}"
    echo "Installing them needs root. Run as root, or first:"
    echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}"
  } >&2
  exit 1
fi
echo "Installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${missing[@]}" >/dev/null
