#!/usr/bin/env bash
# Memory of messages queued behind a carrier that is down (issue 12).
# usage: R=target/release bash docs/perf/session4/queued.sh [RATE] [SECS]
# Starts a release mcmp whose only SMS route goes to an smpp sender whose
# SMSC refuses connections (127.0.0.1:9), sends RATE×SECS messages (batches
# of 100), waits until they are held, and prints RSS before and after.
# With SAMPLE=N (session 8), RSS is read every second for N s after the
# load instead, and the median and maximum from 11 s on are printed (the
# first seconds still hold the messages live, before they go cold, and
# the whole dedup keys of the last 10 s):
#   SAMPLE=40 R=target/release bash docs/perf/session4/queued.sh 100000 10
set -euo pipefail
R=${R:-target/release}; RATE=${1:-100000}; SECS=${2:-10}
DATA=$(mktemp -d /tmp/mcmp-queued.XXXX); PORT=18090
MCMP_ADMIN_TOKEN=adm "$R/mcmp" serve --listen 127.0.0.1:$PORT --data-dir "$DATA" > "$DATA.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$DATA" "$DATA.log"' EXIT
U=http://127.0.0.1:$PORT
. "$(dirname "$0")/down_tenant.sh"
down_tenant "$U"
rss() { awk '/VmRSS/ {print int($2/1024)}' /proc/$PID/status; }
echo "idle RSS: $(rss) MiB"
"$R/mcmp-loadtest" --duration "$SECS" run --target $U --client-id "$CID" --client-secret "$SEC" \
    --rate "$RATE" --connections 16 --batch 100 | tail -4
if [ -n "${SAMPLE:-}" ]; then
    S=""
    for _ in $(seq 1 "$SAMPLE"); do sleep 1; S="$S $(rss)"; done
    echo "RSS each second after the load (MiB):$S"
    python3 -c 'import statistics, sys
v = [int(x) for x in sys.argv[1:]][10:]
print(f"from t+11s: median {statistics.median(v)} MiB, max {max(v)} MiB, min {min(v)} MiB")' $S
    echo "CPU (user+system ticks): $(awk '{print $14+$15}' /proc/$PID/stat)"
else
    sleep 5
fi
M=$(curl -sf $U/metrics)
held=$(echo "$M" | awk '/^mcmp_held_messages/ {s+=$2} END {print s+0}')
mem=$(echo "$M" | awk '/^mcmp_memory_messages/ {s+=$2} END {print s+0}')
cold=$(echo "$M" | awk '/^mcmp_cold_messages/ {s+=$2} END {print s+0}')
r=$(rss)
echo "held: $held, in memory: $mem (cold: $cold), RSS: $r MiB"
python3 -c "print(f'per message: {($r - $(rss))*0 + $r*1048576/max($mem,1):.0f} bytes of RSS (all of it, idle included)')"
