#!/usr/bin/env bash
# scripts/bench-kernels.sh — Tandem's kernels side by side with Jupyter (ipykernel via jupyter_client),
# interleaved so both see the same machine load.
#
# usage (repository root, as root): bash scripts/bench-kernels.sh [--rounds N]
#
#   --rounds N   interleaved rounds (default 5). Each round runs
#                  1. $TANDEM_BENCH_CMD --rounds 1 --json [--stats on the last round only]
#                     (5 cold starts, 5 pool attaches, 200 round trips, 50 prints; --stats adds
#                     about 40 s of stats sampling with 50 idle kernels at 2 and 10 Hz)
#                  2. scripts/bench-kernels/jupyter_bench.py --rounds 2 --execs 100 --json
#                     (1 unrecorded warm-up kernel, 2 cold starts, 100 round trips, 50 prints)
#
# Needs the release build of tandem (`swift build -c release --product tandem`); it is not built here.
# Creates, once, a venv with ipykernel and jupyter_client at $BENCH_VENV (default
# /tmp/tandem-bench-venv, from $BENCH_PYTHON, default python3). The Jupyter kernel is that venv's
# ipykernel (jupyter_bench.py writes its own kernelspec and checks the kernel's sys.prefix).
# Output: every JSON line, tagged with its round, in $OUT (default /tmp/tandem-bench-kernels.jsonl),
# then a Markdown table on stdout: median (p10-p90) per metric and system, and Jupyter/Tandem.
# env: TANDEM_BENCH_CMD (default ".build/release/tandem kernel bench"; evaluated by the shell, so a
#      stub such as "cat /tmp/stub.jsonl; :" works for testing), BENCH_VENV, BENCH_PYTHON, OUT.
# Timings are wall clock on a shared 2-core machine: compare ratios, not absolute numbers.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
ROUNDS=5
TANDEM_WS_BENCH_CMD="${TANDEM_WS_BENCH_CMD:-.build/release/tandem workspace bench}"
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) ROUNDS="${2:?--rounds needs a number}"; shift 2 ;;
        --rounds=*) ROUNDS="${1#--rounds=}"; shift ;;
        -h|--help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "bench-kernels: unknown argument: $1" >&2; exit 2 ;;
    esac
done
case "$ROUNDS" in ''|*[!0-9]*|0) echo "bench-kernels: --rounds must be a positive integer" >&2; exit 2 ;; esac

VENV="${BENCH_VENV:-/tmp/tandem-bench-venv}"
OUT="${OUT:-/tmp/tandem-bench-kernels.jsonl}"
TANDEM_BENCH_CMD="${TANDEM_BENCH_CMD:-.build/release/tandem kernel bench}"
JUPYTER_BENCH="$ROOT/scripts/bench-kernels/jupyter_bench.py"
COMMAND="bash scripts/bench-kernels.sh --rounds $ROUNDS"

# 1. The venv (idempotent).
if ! "$VENV/bin/python" -c 'import ipykernel, jupyter_client' 2>/dev/null; then
    if [ ! -x "$VENV/bin/python" ]; then
        echo "bench-kernels: creating venv $VENV" >&2
        "${BENCH_PYTHON:-python3}" -m venv "$VENV"
    fi
    echo "bench-kernels: installing ipykernel jupyter_client into $VENV" >&2
    "$VENV/bin/python" -m pip install --quiet ipykernel jupyter_client
fi

# 2. Tandem's release binary (only when the default command is used).
if [ "$TANDEM_BENCH_CMD" = ".build/release/tandem kernel bench" ] && [ ! -x .build/release/tandem ]; then
    echo "bench-kernels: .build/release/tandem is missing; build it first with:" >&2
    echo "    swift build -c release --product tandem" >&2
    exit 2
fi

# Keeps the JSON object of each line (text around it, e.g. from an `echo` stub, is dropped) and
# adds the round number.
tag() {
    "$VENV/bin/python" -c '
import json, sys
dec = json.JSONDecoder()
for line in sys.stdin:
    i = line.find("{")
    if i < 0:
        continue
    try:
        obj, _ = dec.raw_decode(line[i:])
    except ValueError:
        sys.stderr.write("bench-kernels: not JSON: " + line)
        continue
    if isinstance(obj, dict) and "metric" in obj:
        obj["round"] = int(sys.argv[1])
        print(json.dumps(obj, separators=(",", ":")))
' "$1"
}

LOAD_BEFORE="$(uptime)"
: > "$OUT"
FAILED=0
for r in $(seq 1 "$ROUNDS"); do
    stats=""
    [ "$r" -eq "$ROUNDS" ] && stats="--stats"
    echo "bench-kernels: round $r/$ROUNDS: tandem ${stats:+(with --stats)}" >&2
    if ! tandem_out="$(eval "$TANDEM_BENCH_CMD --rounds 1 --json $stats")"; then
        echo "bench-kernels: round $r: tandem bench failed" >&2
        FAILED=1
    fi
    printf '%s\n' "$tandem_out" | tag "$r" >> "$OUT"
    if [ -z "${SKIP_WS:-}" ]; then
        echo "bench-kernels: round $r/$ROUNDS: tandem over tandem.v1 (WebSocket)" >&2
        if ! ws_out="$(eval "$TANDEM_WS_BENCH_CMD --executions 200 --json")"; then
            echo "bench-kernels: round $r: tandem workspace bench failed" >&2
            FAILED=1
        fi
        printf '%s\n' "$ws_out" | tag "$r" >> "$OUT"
    fi
    echo "bench-kernels: round $r/$ROUNDS: jupyter" >&2
    if ! jupyter_out="$("$VENV/bin/python" "$JUPYTER_BENCH" --rounds 2 --execs 100 --json)"; then
        echo "bench-kernels: round $r: jupyter bench failed" >&2
        FAILED=1
    fi
    printf '%s\n' "$jupyter_out" | tag "$r" >> "$OUT"
done
LOAD_AFTER="$(uptime)"

# 4. The table.
"$VENV/bin/python" - "$OUT" "$LOAD_BEFORE" "$LOAD_AFTER" "$COMMAND" "$TANDEM_BENCH_CMD" <<'PY'
import json, sys
path, load_before, load_after, command, tandem_cmd = sys.argv[1:6]

def pct(s, q):
    k = (len(s) - 1) * q / 100.0
    lo = int(k); hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)

samples, stats, order, fanout = {}, [], [], []
for line in open(path):
    o = json.loads(line)
    if o["metric"] == "stats_cpu_percent":
        stats.append(o)
        continue
    if o["metric"] == "ws_fanout":
        fanout.append(o)
        continue
    key = (o["metric"], o["system"])
    samples.setdefault(key, []).extend(o.get("samples_ms", []))
    if o["metric"] not in order:
        order.append(o["metric"])
known = ["cold_start_first_result", "pool_attach_first_result", "exec_roundtrip", "ws_exec_roundtrip", "print_latency", "shutdown"]
order = [m for m in known if m in order] + [m for m in order if m not in known]

def cell(s):
    if not s:
        return "—", None
    s = sorted(s)
    med = pct(s, 50)
    return f"{med:.3f} ({pct(s, 10):.3f}–{pct(s, 90):.3f}), n={len(s)}", med

print("| metric | Tandem median (p10–p90) ms | Jupyter median (p10–p90) ms | ratio (Jupyter/Tandem) |")
print("|---|---|---|---|")
for m in order:
    t, tm = cell(samples.get((m, "tandem"), []))
    j, jm = cell(samples.get((m, "jupyter"), []))
    ratio = f"{jm / tm:.1f}×" if tm and jm else "—"
    print(f"| {m} | {t} | {j} | {ratio} |")
print()
for o in stats:
    print(f"- stats sampling ({o.get('system')}, round {o.get('round')}): {o.get('kernels')} idle kernels at {o.get('hz')} Hz: "
          f"{o.get('value')} % of one core")
if not stats:
    print("- stats sampling: no stats_cpu_percent line")
if fanout:
    rates = sorted(o["aggregate_mb_s"] for o in fanout)
    spread = max(o["last_s"] - o["first_s"] for o in fanout)
    print(f"- fan-out over tandem.v1: {fanout[0]['clients']} clients × {fanout[0]['megabytes']} MB: median {pct(rates, 50):.1f} MB/s aggregate "
          f"(min {rates[0]:.1f}, max {rates[-1]:.1f}, n={len(rates)}); largest first-to-last client spread {spread * 1000:.0f} ms")
print(f"- load before: {load_before.strip()}")
print(f"- load after:  {load_after.strip()}")
print(f"- command: `{command}` (tandem side: `{tandem_cmd} --rounds 1 --json [--stats on the last round]`; "
      f"jupyter side: `jupyter_bench.py --rounds 2 --execs 100 --json`); raw lines: {path}")
PY
[ "$FAILED" = 0 ] || echo "- **a step failed** (see stderr): some numbers are missing or partial"
exit "$FAILED"
