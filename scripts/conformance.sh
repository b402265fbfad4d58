#!/usr/bin/env bash
# scripts/conformance.sh — Autobahn|Testsuite (RFC 6455 / RFC 7692) against Tandem's release build.
#
# usage: scripts/conformance.sh [quick|full]        (default quick; run from anywhere)
#
#   1. server suite: starts `.build/release/tandem serve --echo --host 127.0.0.1 --port PORT
#      --data TMPDIR` (free port, stopped on exit), waits until the port accepts, then runs all
#      517 cases (both modes) against ws://127.0.0.1:PORT/echo;
#   2. client suite: runs `.build/release/tandem-autobahn-client` against wstest's fuzzing
#      server (it reads AUTOBAHN_URL and AUTOBAHN_AGENT from the environment);
#        quick: every case except 12.* and 13.*, plus a deterministic sample of 12 cases of
#               12.* and 12 of 13.* (run.py --sample-compression 12), 325 cases;
#        full:  all 517 cases.
# UNIMPLEMENTED (permessage-deflate not negotiated) counts as failed in both suites.
# Reports: .build/autobahn/server/ and .build/autobahn/client/ (index.html, summary.json,
# wstest.log); the server's own output: .build/autobahn/tandem-server.log.
# Exit status: 0 when both suites pass, otherwise 1 (2 on a usage or setup error).
#
# env: AUTOBAHN_SERVER_TIMEOUT, AUTOBAHN_CLIENT_TIMEOUT  seconds per suite (quick: 2700 and 1500,
#        full: 7200 each); TANDEM_SERVE_EXTRA_ARGS  extra words for `tandem serve`;
#      AUTOBAHN_CASES  (debugging) case patterns for both suites instead of the above, e.g. '6.4.*';
#      AUTOBAHN_HOME / AUTOBAHN_VENV as for scripts/autobahn-install.sh.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
MODE="${1:-quick}"
SERVER_BIN=.build/release/tandem
CLIENT_BIN=.build/release/tandem-autobahn-client
OUT=.build/autobahn
RUN=(python3 scripts/autobahn/run.py)

case "$MODE" in
  quick)
    CLIENT_SELECTION=(--cases '*' --exclude '12.*,13.*' --sample-compression 12)
    SERVER_TIMEOUT="${AUTOBAHN_SERVER_TIMEOUT:-2700}"
    CLIENT_TIMEOUT="${AUTOBAHN_CLIENT_TIMEOUT:-1500}" ;;
  full)
    CLIENT_SELECTION=(--cases '*')
    SERVER_TIMEOUT="${AUTOBAHN_SERVER_TIMEOUT:-7200}"
    CLIENT_TIMEOUT="${AUTOBAHN_CLIENT_TIMEOUT:-7200}" ;;
  -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
  *) echo "usage: scripts/conformance.sh [quick|full]" >&2; exit 2 ;;
esac
SERVER_SELECTION=(--cases '*')
if [ -n "${AUTOBAHN_CASES:-}" ]; then   # debugging: the same patterns for both suites
  SERVER_SELECTION=(--cases "$AUTOBAHN_CASES")
  CLIENT_SELECTION=(--cases "$AUTOBAHN_CASES")
fi

log() { echo "conformance: $*" >&2; }
for bin in "$SERVER_BIN" "$CLIENT_BIN"; do
  if [ ! -x "$bin" ]; then
    log "error: $bin not found; build it first:"
    log "  swift build -c release --product tandem && swift build -c release --product tandem-autobahn-client"
    exit 2
  fi
done
bash scripts/autobahn-install.sh   # a no-op (well under a second) when already installed
rm -rf "$OUT/server" "$OUT/client"
mkdir -p "$OUT"

# ------------------------------------------------------------------ the server under test
SERVER_PID=""
DATA_DIR="$(mktemp -d -t tandem-conformance-data.XXXXXX)"
SERVER_LOG="$OUT/tandem-server.log"

stop_server() {
  [ -n "$SERVER_PID" ] || return 0
  if kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
  fi
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
}
cleanup() { stop_server; rm -rf "$DATA_DIR"; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Starts the echo server on a free port (3 tries, in case the port was taken meanwhile).
start_server() {
  local attempt i
  for attempt in 1 2 3; do
    PORT="$(free_port)"
    # shellcheck disable=SC2086  # TANDEM_SERVE_EXTRA_ARGS is split into words on purpose
    "$SERVER_BIN" serve --echo --host 127.0.0.1 --port "$PORT" --data "$DATA_DIR" \
      ${TANDEM_SERVE_EXTRA_ARGS:-} >"$SERVER_LOG" 2>&1 &
    SERVER_PID=$!
    for i in $(seq 1 300); do          # up to 30 s
      if port_open "$PORT"; then
        log "tandem serve --echo is up on 127.0.0.1:$PORT (pid $SERVER_PID, data $DATA_DIR)"
        return 0
      fi
      kill -0 "$SERVER_PID" 2>/dev/null || break
      sleep 0.1
    done
    log "attempt $attempt: the server did not accept connections on port $PORT; tail of $SERVER_LOG:"
    tail -n 15 "$SERVER_LOG" | sed 's/^/  /' >&2
    stop_server
  done
  return 1
}

SERVER_RC=0
CLIENT_RC=0
SERVER_SECONDS=0
CLIENT_SECONDS=0
SERVER_NOTE=""

# ------------------------------------------------------------------ 1. server suite
log "server suite ($MODE): ${SERVER_SELECTION[*]} against tandem serve --echo"
if start_server; then
  t0=$SECONDS
  "${RUN[@]}" server --url "ws://127.0.0.1:$PORT/echo" "${SERVER_SELECTION[@]}" --unimplemented-fail \
    --agent tandem --report-dir "$OUT/server" --timeout "$SERVER_TIMEOUT" || SERVER_RC=$?
  SERVER_SECONDS=$((SECONDS - t0))
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    log "the server exited during the suite; tail of $SERVER_LOG:"
    tail -n 30 "$SERVER_LOG" | sed 's/^/  /' >&2
    SERVER_RC=1
    SERVER_NOTE=" (tandem serve exited during the suite)"
  fi
  stop_server
else
  log "error: could not start $SERVER_BIN"
  SERVER_RC=2
  SERVER_NOTE=" (tandem serve did not start)"
fi

# ------------------------------------------------------------------ 2. client suite
log "client suite ($MODE): $CLIENT_BIN against wstest's fuzzing server"
t0=$SECONDS
"${RUN[@]}" client "${CLIENT_SELECTION[@]}" --unimplemented-fail --agent tandem \
  --report-dir "$OUT/client" --timeout "$CLIENT_TIMEOUT" -- "$CLIENT_BIN" || CLIENT_RC=$?
CLIENT_SECONDS=$((SECONDS - t0))

# ------------------------------------------------------------------ summary
# Reads passed/failed of one suite from its summary.json ("0 0" when there is none).
counts() {
  python3 -c 'import json, sys
try:
    d = json.load(open(sys.argv[1]))
    print(d["passed"], d["failed"])
except Exception:
    print(0, 0)' "$1"
}
read -r sp sf < <(counts "$OUT/server/summary.json")
read -r cp cf < <(counts "$OUT/client/summary.json")
[ "$SERVER_RC" = 0 ] || [ "$sf" -gt 0 ] || sf=1   # an error with no failed case still counts as one
[ "$CLIENT_RC" = 0 ] || [ "$cf" -gt 0 ] || cf=1
{
  echo
  echo "conformance ($MODE), Autobahn|Testsuite:"
  printf '  server suite: %4d passed, %3d failed  exit %d  %5d s  report %s/server/index.html%s\n' \
    "$sp" "$sf" "$SERVER_RC" "$SERVER_SECONDS" "$OUT" "$SERVER_NOTE"
  printf '  client suite: %4d passed, %3d failed  exit %d  %5d s  report %s/client/index.html\n' \
    "$cp" "$cf" "$CLIENT_RC" "$CLIENT_SECONDS" "$OUT"
  echo "conformance: $((sp + cp)) passed, $((sf + cf)) failed"
} | tee "$OUT/conformance-summary.txt"
[ "$SERVER_RC" = 0 ] && [ "$CLIENT_RC" = 0 ]
