#!/usr/bin/env bash
# scripts/autobahn-install.sh — idempotent installer of Autobahn|Testsuite 25.10.1 (wstest),
# the RFC 6455 / RFC 7692 conformance suite that scripts/autobahn/run.py drives.
#
# The testsuite is Python 2.7 code (its PyPI sdist installs on Python 3 but cannot run there),
# and Debian 12 has no Python 2.7, so this script:
#   1. installs python2.7 + python2.7-dev 2.7.18 from Debian 11 (bullseye), taken from the same
#      Debian mirror this machine's apt already uses (read from its apt sources, never hard-coded)
#      through a temporary extra apt source pinned to priority 100 (bookworm always wins; only
#      packages found nowhere else come from bullseye). The source is removed again afterwards.
#      Fallback: the Debian 11 .debs in $AUTOBAHN_DEB_DIR, or, when that is unset and bullseye
#      fails, in ../shared/debs/python2.7-bullseye next to the repository;
#   2. makes a small Python 3 "bootstrap" venv with virtualenv 20.21.1 (the last virtualenv that
#      can create Python 2.7 environments);
#   3. makes the Python 2.7 venv $AUTOBAHN_VENV and installs the exact pins of
#      scripts/autobahn/requirements-py2.txt (autobahn 0.10.9, Twisted 19.10.0, wsaccel, ...).
# A stamp file in the venv (hash of the pins) makes a second run take well under a second.
#
# usage: scripts/autobahn-install.sh [--force]     (--force: rebuild the Python 2.7 venv)
# env:   AUTOBAHN_HOME     where the venvs go (default /tmp/tandem-autobahn)
#        AUTOBAHN_VENV     the Python 2.7 venv with wstest (default $AUTOBAHN_HOME/venv)
#        AUTOBAHN_DEB_DIR  install python2.7 from the .debs in this directory instead of bullseye
#        AUTOBAHN_DEBIAN_MIRROR, AUTOBAHN_DEBIAN_SECURITY_MIRROR  Debian mirror URIs for bullseye
#                          (default: the ones the apt sources use for this machine's release)
#        PYTHON3           Python 3 used for the bootstrap venv (default: python3 on PATH)
#        PYTHON27          the Python 2.7 interpreter (default /usr/bin/python2.7, Debian's path)
# Runs as root, or as a user with sudo. Progress goes to stderr.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
AUTOBAHN_HOME="${AUTOBAHN_HOME:-/tmp/tandem-autobahn}"
VENV="${AUTOBAHN_VENV:-$AUTOBAHN_HOME/venv}"
BOOT_VENV="$AUTOBAHN_HOME/bootstrap-venv"
PYTHON3="${PYTHON3:-python3}"
PYTHON27="${PYTHON27:-/usr/bin/python2.7}"
REQ="$HERE/autobahn/requirements-py2.txt"
SHARED_DEBS="$(cd "$ROOT/.." && pwd)/shared/debs/python2.7-bullseye"
VIRTUALENV_VERSION=20.21.1
STAMP="$VENV/.tandem-autobahn-stamp"
FORCE=0
for arg in "$@"; do
  case "$arg" in
    --force) FORCE=1 ;;
    -h|--help) sed -n '2,28p' "$0"; exit 0 ;;
    *) echo "autobahn-install: unknown argument $arg" >&2; exit 2 ;;
  esac
done

log() { echo "autobahn-install: $*" >&2; }
die() { log "error: $*"; exit 1; }
START=$SECONDS

SUDO=""
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null 2>&1 || die "not root and no sudo: cannot install system packages"
  SUDO="sudo"
fi
APT_UPDATED=0
# apt-get update once; a failing third-party source must not stop us (install decides).
apt_update() {
  if [ "$APT_UPDATED" = 0 ]; then
    $SUDO apt-get -qq -o DPkg::Lock::Timeout=300 update >&2 || log "warning: apt-get update reported errors"
    APT_UPDATED=1
  fi
}
apt_install() {
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    -o DPkg::Lock::Timeout=300 -o Dpkg::Use-Pty=0 "$@" >/dev/null
}

mkdir -p "$AUTOBAHN_HOME"
# Serialize concurrent installs (two make invocations, say).
if command -v flock >/dev/null 2>&1; then
  exec 9>"$AUTOBAHN_HOME/.install.lock"
  flock 9
fi

# ------------------------------------------------------------------ 0. fast path
req_hash() { sha256sum "$REQ" | cut -d' ' -f1; }
if [ "$FORCE" = 0 ] && [ -f "$STAMP" ] && [ "$(head -1 "$STAMP")" = "$(req_hash)" ] \
   && "$VENV/bin/python" -c 'import autobahntestsuite, autobahn, twisted, wsaccel' >/dev/null 2>&1; then
  log "already installed in $VENV ($(sed -n 2p "$STAMP")) [$((SECONDS - START))s]"
  exit 0
fi

# ------------------------------------------------------------------ 1. Python 2.7 (Debian 11)
py27_ok() {
  [ -x "$PYTHON27" ] || return 1
  "$PYTHON27" -c 'import ssl, zlib, hashlib, sysconfig, os, sys
sys.exit(0 if os.path.exists(os.path.join(sysconfig.get_config_var("INCLUDEPY"), "Python.h")) else 1)' 2>/dev/null
}

install_debs() {   # $1: directory with the Debian 11 python2.7 .debs
  local dir
  dir="$(cd "$1" && pwd)"
  log "installing python2.7 from the .debs in $dir"
  apt_update
  apt_install "$dir"/*.deb
}

# Prints "MAIN_URI SECURITY_URI" (the second may be empty): the URIs this machine's apt
# sources use for suite $1 (e.g. bookworm) and $1-security. Reads one-line (.list) and
# deb822 (.sources) files; disabled entries and deb-src are skipped.
debian_mirrors() {
  local files=() f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    case "$f" in */tandem-bullseye-py2.sources) continue ;; esac
    files+=("$f")
  done
  [ "${#files[@]}" -gt 0 ] || return 0
  awk -v cn="$1" '
    function consider(uri, suites,   n, s, i) {
      n = split(suites, s, /[ \t]+/)
      for (i = 1; i <= n; i++) {
        if (s[i] == cn && main == "") main = uri
        if (s[i] == cn "-security" && sec == "") sec = uri
      }
    }
    function flush(   u) {
      if (uris != "" && enabled != "no" && types ~ /(^|[ \t])deb([ \t]|$)/) {
        split(uris, u, /[ \t]+/); consider(u[1], suites)
      }
      uris = ""; suites = ""; enabled = ""; types = ""
    }
    function value(line) { sub(/^[^:]*:[ \t]*/, "", line); sub(/[ \t]+$/, "", line); return line }
    FNR == 1 { flush() }
    FILENAME ~ /\.sources$/ {
      if ($0 ~ /^[ \t]*$/) { flush(); next }
      if ($0 ~ /^#/) next
      k = tolower($1)
      if (k == "uris:") uris = value($0)
      else if (k == "suites:") suites = value($0)
      else if (k == "types:") types = value($0)
      else if (k == "enabled:") enabled = tolower(value($0))
      next
    }
    $1 == "deb" {
      line = $0; sub(/\[[^]]*\]/, "", line); split(line, f, /[ \t]+/)
      consider(f[2], f[3])
    }
    END { flush(); print main, sec }
  ' "${files[@]}"
}

install_from_bullseye() {
  local codename mirrors main sec
  local src=/etc/apt/sources.list.d/tandem-bullseye-py2.sources
  local pref=/etc/apt/preferences.d/tandem-bullseye-py2
  codename="$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")"
  mirrors="$(debian_mirrors "$codename")"
  main="${mirrors%% *}"; sec="${mirrors#* }"
  if [ -n "${AUTOBAHN_DEBIAN_MIRROR:-}" ]; then main="$AUTOBAHN_DEBIAN_MIRROR"; sec="${AUTOBAHN_DEBIAN_SECURITY_MIRROR:-}"; fi
  if [ -z "$main" ]; then log "no apt source for '$codename' found: cannot derive the Debian mirror"; return 1; fi
  log "installing python2.7 + python2.7-dev from Debian 11 (bullseye) on $main, pinned to priority 100"
  {
    echo "# Temporary (scripts/autobahn-install.sh): Python 2.7 for Autobahn|Testsuite exists only up to Debian 11."
    printf 'Types: deb\nURIs: %s\nSuites: bullseye\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$main"
    if [ -n "$sec" ]; then
      printf '\nTypes: deb\nURIs: %s\nSuites: bullseye-security\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$sec"
    fi
  } | $SUDO tee "$src" >/dev/null
  $SUDO tee "$pref" >/dev/null <<'EOF'
# Temporary (scripts/autobahn-install.sh): never prefer bullseye; only packages found nowhere else come from it.
Package: *
Pin: release n=bullseye
Pin-Priority: 100

Package: *
Pin: release n=bullseye-security
Pin-Priority: 100
EOF
  local rc=0
  if ! $SUDO apt-get -qq -o DPkg::Lock::Timeout=300 update >&2; then
    log "warning: apt-get update with bullseye reported errors"
  fi
  APT_UPDATED=1
  apt_install python2.7 python2.7-dev || rc=$?
  # The packages stay installed; the extra suite goes, so later apt runs are as before.
  $SUDO rm -f "$src" "$pref"
  return "$rc"
}

if py27_ok; then
  log "python2.7 present: $PYTHON27"
elif [ -n "${AUTOBAHN_DEB_DIR:-}" ]; then
  ls "$AUTOBAHN_DEB_DIR"/*.deb >/dev/null 2>&1 || die "AUTOBAHN_DEB_DIR=$AUTOBAHN_DEB_DIR holds no .deb"
  install_debs "$AUTOBAHN_DEB_DIR"
  py27_ok || die "python2.7 still not usable after installing the .debs"
else
  if ! install_from_bullseye || ! py27_ok; then
    ls "$SHARED_DEBS"/*.deb >/dev/null 2>&1 \
      || die "python2.7 from bullseye failed and no fallback .debs in $SHARED_DEBS (set AUTOBAHN_DEB_DIR)"
    log "bullseye failed; falling back to $SHARED_DEBS"
    install_debs "$SHARED_DEBS"
    py27_ok || die "python2.7 still not usable after installing the .debs"
  fi
fi

# A C compiler builds wsaccel, Twisted's and zope.interface's extensions.
if ! command -v gcc >/dev/null 2>&1 || ! dpkg-query -W -f='${db:Status-Abbrev}' libc6-dev 2>/dev/null | grep -q '^ii'; then
  log "installing gcc libc6-dev"
  apt_update
  apt_install gcc libc6-dev
fi

# ------------------------------------------------------------------ 2. bootstrap venv
if ! "$BOOT_VENV/bin/python" -c "import virtualenv, sys; sys.exit(virtualenv.__version__ != '$VIRTUALENV_VERSION')" >/dev/null 2>&1; then
  log "creating bootstrap venv with virtualenv $VIRTUALENV_VERSION at $BOOT_VENV"
  command -v "$PYTHON3" >/dev/null 2>&1 || { apt_update; apt_install python3 python3-venv; }
  rm -rf "$BOOT_VENV"
  if ! "$PYTHON3" -m venv "$BOOT_VENV" >/dev/null 2>&1; then
    apt_update; apt_install python3-venv
    rm -rf "$BOOT_VENV"; "$PYTHON3" -m venv "$BOOT_VENV"
  fi
  "$BOOT_VENV/bin/pip" install -q --disable-pip-version-check "virtualenv==$VIRTUALENV_VERSION"
fi

# ------------------------------------------------------------------ 3. Python 2.7 venv
if [ "$FORCE" = 1 ] || ! "$VENV/bin/python" -c 'import sys; sys.exit(sys.version_info[:2] != (2, 7))' >/dev/null 2>&1; then
  log "creating Python 2.7 virtualenv at $VENV"
  rm -rf "$VENV"
  "$BOOT_VENV/bin/virtualenv" -q -p "$PYTHON27" "$VENV"
fi
rm -f "$STAMP"
log "installing the pins of ${REQ#$ROOT/} into $VENV (pip 20.3.4; compiles wsaccel etc.; ~1 min)"
PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_PYTHON_VERSION_WARNING=1 \
  "$VENV/bin/pip" install -q -r "$REQ" 2>&1 | grep -v -E 'DEPRECATION|^$' >&2 || true

# Verify every pin (pip's output above is filtered, so its exit status is not trusted).
"$VENV/bin/python" - "$REQ" <<'EOF' || die "the venv does not match ${REQ}"
import re, sys, pkg_resources
bad = []
for line in open(sys.argv[1]):
    line = line.split("#")[0].strip()
    if not line:
        continue
    name, ver = re.match(r"([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?==(\S+)", line).groups()
    try:
        have = pkg_resources.get_distribution(name).version
    except Exception:
        have = None
    if have != ver:
        bad.append("%s (want %s, have %s)" % (name, ver, have))
if bad:
    sys.stderr.write("autobahn-install: mismatched pins: %s\n" % ", ".join(bad))
    sys.exit(1)
EOF
versions="$("$VENV/bin/wstest" --autobahnversion 2>/dev/null | tr '\n' ' ' | sed 's/ *$//')"
case "$versions" in
  *"AutobahnTestSuite 25.10.1"*) ;;
  *) die "wstest does not report AutobahnTestSuite 25.10.1 (got: $versions)" ;;
esac
printf '%s\n%s, Python %s\n' "$(req_hash)" "$versions" \
  "$("$VENV/bin/python" -c 'import sys; print(sys.version.split()[0])')" >"$STAMP"
log "installed: $(sed -n 2p "$STAMP") in $VENV [$((SECONDS - START))s]"
