#!/usr/bin/env bash
# scripts/bench.sh — Tandem side by side with SwiftNIO and other WebSocket servers, measured by the
# shared load generator wsbench and its runner `compare` (../shared/tools/wsbench/README.md).
#
# usage: scripts/bench.sh [--runs N] [--duration S] [--scenarios standard|all|ID,ID...]
#                         [--peers NAME,NAME...] [--out DIR] [--no-setup] [-v]
#
#   --runs N         runs per scenario and server, interleaved across servers (default 3)
#   --duration S     measured seconds per echo/handshake run, after 1 s of warm-up (default 5)
#   --scenarios X    standard (default: echo64-c100d1 echo64-c10d16 echo16k-c100d1 echo16k-c10d16
#                    hs-c32 idle-10k), all (adds echo64text-c100d1 echo16ktext-c10d16 hs-c32-fin
#                    bcast-n100), or a comma list of those ids
#   --peers LIST     servers besides nio and tandem, in table order (default: cws,lws,node-ws,
#                    python-websockets, plus hummingbird when it is already built). A peer named
#                    here is set up if it is missing (hummingbird: a 5-15 min Swift build); a peer
#                    that cannot be set up is skipped with a message.
#   --out DIR        where results go (default .build/bench/YYYYmmdd-HHMMSS; .build/bench/latest
#                    points at the last one)
#   --no-setup       never install or build peers; skip the ones that are missing
#   -v, --verbose    min..max spread in the tables and one line per run
#
# Servers, in table order (ratios "(x.xx)" are to the first, nio):
#   nio      Benchmarks/ (its own package): SwiftNIO NIOWebSocket echo, 1 event loop — the reference
#   tandem   .build/release/tandem serve --echo --host 127.0.0.1 --port $PORT --loops 1
#   peers    ../shared/tools/peers/run.sh NAME $PORT (cws = minimal C epoll server, lws =
#            libwebsockets, node-ws, python-websockets, hummingbird)
# Tandem serves its echo on /echo only, so wsbench runs with --path /echo for every server (all the
# peers echo on any path except /broadcast; the broadcast scenario keeps /broadcast).
#
# Needs the release build of tandem (`swift build -c release --product tandem`); builds, when
# missing or stale, wsbench (into $WSBENCH_BUILD, default /tmp/wsbench-build) and the Benchmarks
# package (into .build-bench). Peers are set up with ../shared/tools/peers/setup.sh (apt packages,
# C peers, Python venv in $PEER_BUILD_DIR, default /tmp/wsbench-peers).
# Output: the tables on stdout and in OUT/summary.md, every run's JSON line in OUT/results.jsonl
# (re-print with `compare --report OUT/results.jsonl --markdown`), server logs in OUT/logs/.
# Nothing here is meant to be committed: .build/ is ignored.
#
# Method (see the wsbench README): servers pinned to CPU 0, wsbench to CPU 1, compare's session at
# autogroup nice -19 (root). On a 2-core shared machine wall-clock figures move 10-15 % between
# sessions: compare ratios and server CPU per message, not absolute msgs/s.
# env: TANDEM_TOOLS (default ../shared/tools next to the repository), WSBENCH_BUILD, PEER_BUILD_DIR.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="${TANDEM_TOOLS:-$(cd "$ROOT/.." && pwd)/shared/tools}"
WSBENCH_BUILD="${WSBENCH_BUILD:-/tmp/wsbench-build}"
PEER_BUILD_DIR="${PEER_BUILD_DIR:-/tmp/wsbench-peers}"
export WSBENCH_BUILD PEER_BUILD_DIR
TANDEM_BIN="$ROOT/.build/release/tandem"
BENCH_PKG="$ROOT/Benchmarks"
BENCH_SCRATCH="$ROOT/.build-bench"
NIO_BIN="$BENCH_SCRATCH/release/nio-echo"

RUNS=3
DURATION=5
SCENARIOS=standard
PEERS=""
PEERS_GIVEN=0
OUT=""
SETUP=1
VERBOSE=()

log() { echo "bench: $*" >&2; }
die() { echo "bench: $*" >&2; exit 2; }
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS="${2:?--runs needs a value}"; shift 2 ;;
    --duration) DURATION="${2:?--duration needs a value}"; shift 2 ;;
    --scenarios) SCENARIOS="${2:?--scenarios needs a value}"; shift 2 ;;
    --peers) PEERS="${2?--peers needs a value}"; PEERS_GIVEN=1; shift 2 ;;
    --out) OUT="${2:?--out needs a value}"; shift 2 ;;
    --no-setup) SETUP=0; shift ;;
    -v|--verbose) VERBOSE=(-v); shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "bench: unknown argument '$1' (see scripts/bench.sh --help)" >&2; exit 2 ;;
  esac
done

[ -x "$TOOLS/wsbench/compare" ] || die "wsbench not found in $TOOLS/wsbench (set TANDEM_TOOLS)"
if [ ! -x "$TANDEM_BIN" ]; then
  die "$TANDEM_BIN is missing: build it first with
    swift build -c release --product tandem"
fi

# Two cores: SwiftPM builds run one at a time on this machine.
wait_for_other_swift_builds() {
  local said=0
  while pgrep -x swift-build >/dev/null 2>&1; do
    [ "$said" = 1 ] || log "waiting for another swift build to finish"
    said=1
    sleep 10
  done
}

# --- wsbench and the C echo (cws) ------------------------------------------------------------
if [ ! -x "$WSBENCH_BUILD/wsbench" ] || [ ! -x "$WSBENCH_BUILD/wsecho" ]; then
  log "building wsbench into $WSBENCH_BUILD"
  make -C "$TOOLS/wsbench" BUILDDIR="$WSBENCH_BUILD" >&2
fi

# --- the SwiftNIO reference (Benchmarks/) ----------------------------------------------------
if [ ! -x "$NIO_BIN" ] || [ -n "$(find "$BENCH_PKG/Package.swift" "$BENCH_PKG/Sources" -newer "$NIO_BIN" -print -quit)" ]; then
  wait_for_other_swift_builds
  log "building Benchmarks (nio-echo, release) into $BENCH_SCRATCH"
  swift build -c release --package-path "$BENCH_PKG" --scratch-path "$BENCH_SCRATCH" >&2
fi
[ -x "$NIO_BIN" ] || die "no $NIO_BIN after the build"

# --- peers -----------------------------------------------------------------------------------
if [ "$PEERS_GIVEN" = 0 ]; then
  PEERS="cws,lws,node-ws,python-websockets"
  if [ -x "$PEER_BUILD_DIR/hummingbird-build/release/HBEcho" ]; then
    PEERS="$PEERS,hummingbird"
  else
    log "hummingbird is not built: left out (--peers ...,hummingbird builds it, 5-15 min)"
  fi
fi

peer_ready() { # name
  case "$1" in
    cws|raw-tcp) [ -x "$WSBENCH_BUILD/wsecho" ] ;;
    lws) [ -x "$WSBENCH_BUILD/lws-echo" ] ;;
    node-ws) command -v node >/dev/null 2>&1 && dpkg -s node-ws >/dev/null 2>&1 ;;
    python-websockets) "$PEER_BUILD_DIR/py-venv/bin/python" -c 'import websockets' >/dev/null 2>&1 ;;
    hummingbird) [ -x "$PEER_BUILD_DIR/hummingbird-build/release/HBEcho" ] ;;
    websocketd) command -v websocketd >/dev/null 2>&1 ;;
    *) return 1 ;;
  esac
}

IFS=',' read -r -a PEER_LIST <<< "$PEERS"
SELECTED=()
SETUP_DONE=0
for p in "${PEER_LIST[@]}"; do
  p="${p// /}"
  [ -n "$p" ] || continue
  case "$p" in
    nio|tandem) continue ;;  # always there, always first
    cws|raw-tcp|lws|node-ws|python-websockets|hummingbird|websocketd) ;;
    *) log "unknown peer '$p' (known: cws lws node-ws python-websockets hummingbird websocketd raw-tcp): skipped"; continue ;;
  esac
  if ! peer_ready "$p" && [ "$SETUP" = 1 ]; then
    if [ "$p" = hummingbird ]; then
      wait_for_other_swift_builds
      log "building the hummingbird peer (release) into $PEER_BUILD_DIR"
      "$TOOLS/peers/build-swift.sh" hummingbird >&2 || log "hummingbird build failed"
    elif [ "$SETUP_DONE" = 0 ]; then
      log "setting up the peers (apt packages, C peers, Python venv): $TOOLS/peers/setup.sh --no-swift"
      "$TOOLS/peers/setup.sh" --no-swift >&2 || log "peer setup failed; continuing with what is there"
      SETUP_DONE=1
    fi
  fi
  if peer_ready "$p"; then
    SELECTED+=("$p")
  else
    log "peer '$p' is not available: skipped"
  fi
done

# --- output folder, wsbench wrapper ----------------------------------------------------------
[ -n "$OUT" ] || OUT="$ROOT/.build/bench/$(date +%Y%m%d-%H%M%S)"
mkdir -p "$OUT/logs"
OUT="$(cd "$OUT" && pwd)"
if [[ "$OUT" == "$ROOT/.build/bench/"* ]]; then ln -sfn "$OUT" "$ROOT/.build/bench/latest"; fi

# Tandem's echo endpoint is /echo; every peer echoes on any path except /broadcast.
WRAPPER="$OUT/wsbench-echo-path"
cat > "$WRAPPER" <<EOF
#!/usr/bin/env bash
# generated by scripts/bench.sh: wsbench with --path /echo for echo, handshake and idle runs
case "\${1:-}" in
  echo|handshake|idle) for a in "\$@"; do [ "\$a" = --path ] && exec $(printf %q "$WSBENCH_BUILD/wsbench") "\$@"; done
                       exec $(printf %q "$WSBENCH_BUILD/wsbench") "\$@" --path /echo ;;
esac
exec $(printf %q "$WSBENCH_BUILD/wsbench") "\$@"
EOF
chmod +x "$WRAPPER"

# --- run -------------------------------------------------------------------------------------
# The idle scenario holds 10,000 sockets per server: every server inherits the hard limit.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

q() { printf %q "$1"; }
ENTRIES=(
  "nio=exec $(q "$NIO_BIN") --port \$PORT --threads 1"
  "tandem=exec $(q "$TANDEM_BIN") serve --echo --host 127.0.0.1 --port \$PORT --loops 1"
)
for p in "${SELECTED[@]}"; do
  ENTRIES+=("$p=exec $(q "$TOOLS/peers/run.sh") $p \$PORT")
done

busy=0
for name in swift-build swift-frontend wsbench; do  # pgrep -x: names of at most 15 characters
  busy=$((busy + $(pgrep -cx "$name" || true)))
done
[ "$busy" = 0 ] || log "note: $busy swift-build/swift-frontend/wsbench processes are running; figures will be noisier"

CMD=("$TOOLS/wsbench/compare" --runs "$RUNS" --duration "$DURATION" --scenarios "$SCENARIOS"
     --markdown --json-out "$OUT/results.jsonl" --wsbench "$WRAPPER" "${VERBOSE[@]}" "${ENTRIES[@]}")
{
  echo "# command"
  printf '%q ' "${CMD[@]}"; echo
} > "$OUT/command.txt"
log "servers: nio tandem ${SELECTED[*]}; scenarios: $SCENARIOS; runs: $RUNS x ${DURATION}s"
log "results: $OUT (summary.md, results.jsonl, logs/)"

cd "$ROOT"
set +e
WSBENCH_LOGDIR="$OUT/logs" "${CMD[@]}" | tee "$OUT/summary.md"
status="${PIPESTATUS[0]}"
set -e
log "done (exit $status): $OUT/summary.md"
exit "$status"
