#!/usr/bin/env bash
# Restart after 10 M messages (issue 12): three e2e runs of ~3.4 M messages
# (the SMSC simulator verifies at most 4 M per run) against one release
# mcmp, then kill -9, restart, time until /readyz is 200, and count what
# answers: the stats' delivered count and an export of the whole period.
# usage: R=target/release OUT=docs/perf/session4 bash docs/perf/session4/restart10m.sh [RATE] [SECS]
set -euo pipefail
R=${R:-target/release}; OUT=${OUT:-.}; RATE=${1:-25000}; SECS=${2:-136}
DATA=${DATA:-/tmp/mcmp-10m}; PORT=18095; U=http://127.0.0.1:$PORT
rm -rf "$DATA"; mkdir -p "$DATA"
export MCMP_ADMIN_TOKEN=adm
start() { "$R/mcmp" serve --listen 127.0.0.1:$PORT --data-dir "$DATA/data" >> "$DATA/log" 2>&1 & PID=$!; }
ready() { for i in $(seq 600); do curl -sf $U/readyz >/dev/null && return 0; sleep 0.01; done; return 1; }
start; ready
T0=$(date +%s)
for run in 1 2 3; do
  "$R/mcmp-loadtest" --duration "$SECS" e2e --target $U --rate "$RATE" --connections 32 --batch 100 \
      --settle 180 --group-code "E2E$run" --json "$OUT/e2e10m-run$run.json" 2>&1 | tail -3
done
T1=$(date +%s)
for i in $(seq 600); do
  m=$(curl -sf -H "Authorization: Bearer adm" $U/admin/v1/stats | python3 -c 'import json,sys; print(json.load(sys.stdin)["memory_messages"])')
  [ "$m" = 0 ] && break; sleep 1
done
sleep 2
echo "load: $((T1 - T0)) s; stats before kill:"
curl -sf -H "Authorization: Bearer adm" $U/admin/v1/stats | python3 -c 'import json,sys; d=json.load(sys.stdin); print({k: d[k] for k in d if not isinstance(d[k], (dict, list))})'
du -sh "$DATA/data"/* 
kill -9 $PID; wait $PID 2>/dev/null || true
S=$(date +%s.%N); start; ready; E=$(date +%s.%N)
python3 -c "print(f'restart: /readyz 200 after {$E - $S:.2f} s')"
grep "recovered from the checkpoint" "$DATA/log" | tail -2
curl -sf -H "Authorization: Bearer adm" $U/admin/v1/stats | python3 -c 'import json,sys; d=json.load(sys.stdin); print("after restart:", {k: d[k] for k in d if not isinstance(d[k], (dict, list))})'
SINCE=$(date -u -d @$((T0 - 60)) +%Y-%m-%dT%H:%M:%SZ); UNTIL=$(date -u -d "+1 min" +%Y-%m-%dT%H:%M:%SZ)
n=$("$R/mcmp" export --server $U --since "$SINCE" --until "$UNTIL" --format jsonl | wc -l)
echo "export after restart: $n final messages"
kill $PID; wait $PID 2>/dev/null || true
