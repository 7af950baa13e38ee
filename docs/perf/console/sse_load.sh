#!/usr/bin/env bash
# Accept under e2e load with and without 100 open console event streams
# (issue 15: "a console page never blocks the engine"). Alternates A (no
# streams) and B (100 streams) ROUNDS times against one release mcmp.
# usage: R=target/release bash docs/perf/console/sse_load.sh [RATE] [SECS] [ROUNDS]
set -euo pipefail
R=${R:-target/release}; RATE=${1:-8000}; SECS=${2:-15}; ROUNDS=${3:-2}
DATA=$(mktemp -d /tmp/mcmp-sse.XXXX); PORT=18300; U=http://127.0.0.1:$PORT
# The load tester's webhook sink is plain HTTP on loopback.
printf '[reports]\nallow-http = true\nallow-private = true\n' > "$DATA.toml"
MCMP_ADMIN_TOKEN=adm "$R/mcmp" serve --config "$DATA.toml" --listen 127.0.0.1:$PORT --data-dir "$DATA" > "$DATA.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$DATA" "$DATA.log" "$DATA.toml"' EXIT
for i in $(seq 100); do curl -sf $U/readyz >/dev/null && break; sleep 0.1; done
here=$(dirname "$0")
for round in $(seq "$ROUNDS"); do
  for mode in A B; do
    if [ $mode = B ]; then
      python3 "$here/streams.py" $U adm 100 $((SECS + 5)) > /tmp/sse-streams.out &
      SP=$!; sleep 2
    fi
    out=$("$R/mcmp-loadtest" --duration "$SECS" e2e --target $U --admin-token adm --rate "$RATE" \
          --connections 16 --settle 30 --run-id "sse$round$mode" --group-code "E2E$round$mode" --json /tmp/sse-$round$mode.json 2>&1 | tail -3)
    acc=$(python3 -c "import json;d=json.load(open('/tmp/sse-$round$mode.json'));l=d['latency_ms'];print(f\"accepted/s {d['throughput']['accepted_per_sec']:.0f} accept p50 {l['p50']} ms p99 {l['p99']} ms\")" 2>/dev/null || echo "$out")
    verdict=$(echo "$out" | grep -o "PASSED\|FAILED" | head -1)
    if [ $mode = B ]; then wait $SP; streams=$(cat /tmp/sse-streams.out); else streams="no streams"; fi
    echo "round $round $mode: $acc, e2e $verdict | $streams"
  done
done
