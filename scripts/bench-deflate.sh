#!/usr/bin/env bash
# scripts/bench-deflate.sh — permessage-deflate throughput and memory, Tandem vs Node ws (deflate on).
#
# usage: scripts/bench-deflate.sh [RUNS] [DURATION]       (defaults 3 and 5)
# Runs tandem-loadgen (Tandem's own client, pinned to CPU 1) against each server (pinned to CPU 0),
# interleaving servers within each round, for two shapes: 10 connections x 4 in flight of 1 KiB
# and 100 x 1 of 16 KiB, the messages being slices of Tandem's Swift sources. Then memory: 1000 compressed connections, each having
# exchanged one message, held open; reports server RSS growth per connection.
# Prints one JSON line per run and a median table. Needs: .build/release/tandem and
# .build/release/tandem-loadgen (swift build -c release --product ...), node with Debian's node-ws.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
RUNS="${1:-3}"; DURATION="${2:-5}"
LOADGEN=.build/release/tandem-loadgen
for b in .build/release/tandem "$LOADGEN"; do [ -x "$b" ] || { echo "missing $b: swift build -c release --product $(basename "$b")" >&2; exit 2; }; done
dpkg-query -W -f='${Status}' node-ws 2>/dev/null | grep -q "ok installed" || { apt-get update -qq && apt-get install -y -qq node-ws >/dev/null; }
export NODE_PATH=/usr/share/nodejs
OUT=.build/bench/deflate; mkdir -p "$OUT"; RESULTS="$OUT/results.jsonl"; : > "$RESULTS"
# The messages: slices of Tandem's own Swift sources (what a co-editing session sends around).
CORPUS="$OUT/corpus.txt"; cat Sources/*/*.swift > "$CORPUS"

start_server() {  # name port -> pid
  case "$1" in
    tandem) taskset -c 0 .build/release/tandem serve --echo --host 127.0.0.1 --port "$2" --loops 1 --config /dev/null >"$OUT/$1.log" 2>&1 & ;;
    node-ws) taskset -c 0 node scripts/peers/node-ws-deflate.js "$2" >"$OUT/$1.log" 2>&1 & ;;
  esac
  local pid=$!
  for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/"$2") 2>/dev/null && break; sleep 0.1; done
  echo "$pid"
}
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
path_for() { [ "$1" = tandem ] && echo /echo || echo /; }

SERVERS=(tandem node-ws)
declare -A PORT=([tandem]=19301 [node-ws]=19302) PID
for s in "${SERVERS[@]}"; do PID[$s]=$(start_server "$s" "${PORT[$s]}"); done
trap 'for s in "${SERVERS[@]}"; do kill "${PID[$s]}" 2>/dev/null || true; done' EXIT

for shape in "10 4 1024" "100 1 16384"; do
  set -- $shape
  for r in $(seq "$RUNS"); do
    order=("${SERVERS[@]}"); [ $((r % 2)) = 0 ] && order=(node-ws tandem)
    for s in "${order[@]}"; do
      cpu0=$(awk '{print $14+$15}' "/proc/${PID[$s]}/stat")
      line=$(taskset -c 1 "$LOADGEN" "ws://127.0.0.1:${PORT[$s]}$(path_for "$s")" --connections "$1" --inflight "$2" --size "$3" --duration "$DURATION" --deflate --corpus "$CORPUS")
      cpu1=$(awk '{print $14+$15}' "/proc/${PID[$s]}/stat")
      echo "{\"server\":\"$s\",\"shape\":\"c$1d$2s$3\",\"server_cpu_ticks\":$((cpu1 - cpu0)),\"run\":$line}" | tee -a "$RESULTS"
    done
  done
done

# Memory per compressed connection: fresh servers, 1000 connections that each sent one message.
for s in "${SERVERS[@]}"; do kill "${PID[$s]}" 2>/dev/null || true; done
sleep 0.5
for s in "${SERVERS[@]}"; do
  PID[$s]=$(start_server "$s" "${PORT[$s]}")
  sleep 0.5
  before=$(rss_kb "${PID[$s]}")
  fifo=$(mktemp -u); mkfifo "$fifo"
  taskset -c 1 "$LOADGEN" "ws://127.0.0.1:${PORT[$s]}$(path_for "$s")" --connections 1000 --inflight 1 --size 1024 --duration 1 --warmup 2 --deflate --corpus "$CORPUS" --hold <"$fifo" >"$OUT/hold-$s.json" &
  lg=$!
  exec 4>"$fifo"
  sleep 5
  held=$(rss_kb "${PID[$s]}")
  exec 4>&-; wait "$lg" || true; rm -f "$fifo"
  echo "{\"server\":\"$s\",\"memory\":{\"connections\":1000,\"rss_before_kb\":$before,\"rss_held_kb\":$held,\"bytes_per_conn\":$(( (held - before) * 1024 / 1000 ))}}" | tee -a "$RESULTS"
done

python3 - "$RESULTS" <<'PY'
import json, sys, statistics as st
rows = [json.loads(l) for l in open(sys.argv[1])]
runs = [r for r in rows if "run" in r]
shapes = sorted({r["shape"] for r in runs})
print("\n| server | " + " | ".join(f"{s} msgs/s" for s in shapes) + " | " + " | ".join(f"{s} p99 us" for s in shapes) + " | bytes/compressed conn |")
print("|---" * (2 + 2 * len(shapes)) + "|")
mem = {r["server"]: r["memory"]["bytes_per_conn"] for r in rows if "memory" in r}
for srv in ["tandem", "node-ws"]:
    rate = [st.median([r["run"]["msgs_per_s"] for r in runs if r["server"] == srv and r["shape"] == s]) for s in shapes]
    p99 = [st.median([r["run"]["p99_us"] for r in runs if r["server"] == srv and r["shape"] == s]) for s in shapes]
    print(f"| {srv} | " + " | ".join(f"{v:,.0f}" for v in rate) + " | " + " | ".join(f"{v:,.0f}" for v in p99) + f" | {mem.get(srv, 'n/a'):,} |")
PY
