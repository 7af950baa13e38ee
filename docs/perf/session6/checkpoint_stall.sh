#!/usr/bin/env bash
# Accept latency while a shard checkpoints a backlog (issue 12): 1 M SMS held
# behind a carrier that is down (as session4/queued.sh), then 25 s of light
# single-message load (200/s) with checkpoint-interval = 10s; the light
# run's p99 and max show the checkpoints' stalls; then the idle CPU over 10 s.
# usage: R=target/release bash docs/perf/session6/checkpoint_stall.sh [INTERVAL]
set -euo pipefail
R=${R:-target/release}; DATA=$(mktemp -d /tmp/mcmp-ck.XXXX); PORT=18091
printf '[wal]\ncheckpoint-interval = "%s"\n' "${1:-10s}" > $DATA.toml
MCMP_ADMIN_TOKEN=adm MCMP_LOG=info "$R/mcmp" serve --config $DATA.toml --listen 127.0.0.1:$PORT --data-dir "$DATA" > "$DATA.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$DATA" "$DATA.log" $DATA.toml' EXIT
U=http://127.0.0.1:$PORT
. "$(dirname "$0")/../session4/down_tenant.sh"
down_tenant "$U"
"$R/mcmp-loadtest" --duration 10 run --target $U --client-id "$CID" --client-secret "$SEC" --rate 100000 --connections 16 --batch 100 | tail -2
# Now a light single-message load for 25 s: its max latency shows a checkpoint's stall.
"$R/mcmp-loadtest" --duration 25 run --target $U --client-id "$CID" --client-secret "$SEC" --rate 200 --connections 4 --batch 1 --run-id light | tail -3; c0=$(awk "{print \$14+\$15}" /proc/$PID/stat); sleep 10; c1=$(awk "{print \$14+\$15}" /proc/$PID/stat); echo "idle CPU over 10 s: $(( (c1-c0) ))0 ms"
grep -i "checkpoint" $DATA.log | tail -4
