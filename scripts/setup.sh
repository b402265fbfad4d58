#!/usr/bin/env bash
# scripts/setup.sh — idempotent installer of the system packages Tandem needs to build and run
# (and, with --test, to test). Debian 12; runs as root, or as a user with sudo.
#
# Checks every package with dpkg-query and runs `apt-get update` + `apt-get install` only when
# something is missing, so a second run takes a fraction of a second.
#
# usage: scripts/setup.sh [--test]
#   --test   also the test dependencies: python3 with venv support (for scripts/autobahn/run.py
#            and the testsuite's bootstrap venv), then scripts/autobahn-install.sh
#            (Autobahn|Testsuite in $AUTOBAHN_HOME, default /tmp/tandem-autobahn).
# Progress goes to stderr.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# Build and run: TLS, permessage-deflate, the audit log, pkg-config for the C shims; crun and
# catatonit for the workspace kernels, and the interpreters they run from the host's /usr
# (Debian's python3, bash, nodejs); git and CA certificates; make for the Makefile.
PACKAGES=(libssl-dev zlib1g-dev libsqlite3-dev pkg-config openssl crun catatonit python3 bash nodejs git ca-certificates make)
WITH_TEST=0
for arg in "$@"; do
  case "$arg" in
    --test) WITH_TEST=1 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "setup: unknown argument $arg (usage: scripts/setup.sh [--test])" >&2; exit 2 ;;
  esac
done

log() { echo "setup: $*" >&2; }
START=$SECONDS
SUDO=""
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null 2>&1 || { log "error: not root and no sudo: cannot install packages"; exit 1; }
  SUDO="sudo"
fi

installed() { dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null | grep -q '^ii'; }

# Installs the given packages, with one `apt-get update` first.
apt_install() {
  log "installing: $*"
  # An unreachable extra source makes update fail; the install below decides whether that matters.
  $SUDO apt-get -qq -o DPkg::Lock::Timeout=300 update >&2 || log "warning: apt-get update reported errors"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    -o DPkg::Lock::Timeout=300 -o Dpkg::Use-Pty=0 "$@" >/dev/null
}

missing=()
for p in "${PACKAGES[@]}"; do installed "$p" || missing+=("$p"); done
if [ "$WITH_TEST" = 1 ]; then
  # python3 for scripts/autobahn/run.py; venv support (ensurepip) for the bootstrap venv.
  # A python3 that is not Debian's (pyenv, say) brings its own ensurepip.
  if ! command -v python3 >/dev/null 2>&1; then
    missing+=(python3 python3-venv)
  elif ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    installed python3-venv || missing+=(python3-venv)
  fi
fi
if [ "${#missing[@]}" -gt 0 ]; then
  apt_install "${missing[@]}"
else
  log "system packages present (${#PACKAGES[@]} checked)"
fi
command -v swift >/dev/null 2>&1 || log "warning: swift is not on PATH (the toolchain is expected at /opt/swift/usr/bin)"

if [ "$WITH_TEST" = 1 ]; then
  bash "$HERE/autobahn-install.sh"
fi
log "done [$((SECONDS - START))s]"
