#!/usr/bin/env bash
# A CPU profile of the server during an e2e run (issue 18), as a flame graph.
# usage: R=target/release bash docs/perf/session6/profile_e2e.sh RATE BATCH OUT
#   RATE: messages/s (open loop), BATCH: messages per request,
#   OUT: path prefix; writes OUT.json (the run's summary, with the server's
#   CPU per 1,000 messages) and OUT.svg (the flame graph).
# Needs perf (linux-perf) and inferno (cargo install inferno). The server is
# sampled at 199 Hz with DWARF call graphs for 12 s of a 25 s load; frames
# narrower than 0.2 % are left out of the picture.
set -euo pipefail
R=${R:-target/release}; RATE=$1; BATCH=$2; OUT=$3
TMP=$(mktemp -d /tmp/mcmp-prof.XXXX)
trap 'rm -rf "$TMP"' EXIT
"$R/mcmp-loadtest" --duration 25 e2e --mcmp-bin "$R/mcmp" --rate "$RATE" --connections 32 \
    --batch "$BATCH" --settle 60 --json "$OUT.json" > "$TMP/e2e.log" 2>&1 &
E2E=$!
PID=""
for _ in $(seq 100); do
    PID=$(pgrep -f "$R/mcmp serve" | head -1 || true)
    [ -n "$PID" ] && break
    sleep 0.1
done
sleep 6
perf record -F 199 -g --call-graph dwarf,8192 -p "$PID" -o "$TMP/perf.data" -- sleep 12 2>/dev/null
wait $E2E || true
grep -E "server CPU|PASSED|FAILED" "$TMP/e2e.log"
perf script -i "$TMP/perf.data" 2>/dev/null | inferno-collapse-perf > "$TMP/folded"
inferno-flamegraph --minwidth 0.2 --title "mcmp e2e rate $RATE batch $BATCH" < "$TMP/folded" > "$OUT.svg"
echo "wrote $OUT.json and $OUT.svg"
