#!/usr/bin/env bash
# scripts/fuzz.sh — builds the libFuzzer targets in Fuzz/ and runs each for a bounded time.
#
# usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#   SECONDS_PER_TARGET  default 60
#   TARGET              FuzzFrameDecoder, FuzzHTTPParser, FuzzHandshake (default: all three)
#
# Seeds are committed in Fuzz/Seeds/<name>/; the growing corpus lives in .build-fuzz/corpus/
# (ignored). A crash leaves its input in .build-fuzz/artifacts/ and makes the script exit 1.
# The last line is "fuzz: N passed, M failed" (targets).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
SECONDS_PER_TARGET="${1:-60}"
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(FuzzFrameDecoder FuzzHTTPParser FuzzHandshake)
SCRATCH="$ROOT/.build-fuzz"
seed_dir() { case "$1" in FuzzFrameDecoder) echo frame ;; FuzzHTTPParser) echo http ;; FuzzHandshake) echo handshake ;; esac; }

echo "fuzz: building (release, -sanitize=fuzzer,address)" >&2
swift build -c release --package-path Fuzz --scratch-path "$SCRATCH" \
  -Xswiftc -sanitize=fuzzer,address >&2

passed=0; failed=0
mkdir -p "$SCRATCH/artifacts"
for t in "${TARGETS[@]}"; do
  seeds="Fuzz/Seeds/$(seed_dir "$t")"
  corpus="$SCRATCH/corpus/$t"
  mkdir -p "$corpus"
  bin="$SCRATCH/release/$t"
  log="$SCRATCH/$t.log"
  echo "fuzz: $t for ${SECONDS_PER_TARGET}s (seeds $seeds)" >&2
  if "$bin" "$corpus" "$seeds" -max_total_time="$SECONDS_PER_TARGET" -max_len=4096 \
       -artifact_prefix="$SCRATCH/artifacts/$t-" -print_final_stats=1 >"$log" 2>&1; then
    runs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}')
    echo "fuzz: $t ok, ${runs:-?} executions, corpus $(ls "$corpus" | wc -l) inputs"
    passed=$((passed + 1))
  else
    echo "fuzz: $t FAILED, see $log and $SCRATCH/artifacts/" >&2
    tail -30 "$log" >&2
    failed=$((failed + 1))
  fi
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" = 0 ]
