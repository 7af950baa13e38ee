#!/usr/bin/env bash
# One node with [cluster] against one node without it, in the same run
# (issue 16): e2e at a fixed open-loop rate, single messages and batches,
# plus the Redis calls per accepted message (INFO commandstats of every
# master, before and after).
# usage: R=target/release bash docs/perf/session7/cluster_bench.sh [SECS] [SINGLE_RATE] [BATCH_RATE]
# Needs redis-server (apt install redis-server). Prints one line per run.
set -euo pipefail
R=${R:-target/release}; SECS=${1:-15}; SINGLE=${2:-8000}; BATCHED=${3:-25000}
TMP=$(mktemp -d /tmp/mcmp-cluster-bench.XXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT
"$R/mcmp-loadtest" redis-cluster --dir "$TMP/redis" > "$TMP/redis.out" &
PIDS+=($!)
for _ in $(seq 200); do [ "$(grep -c '^ready redis' "$TMP/redis.out" || true)" = 3 ] && break; sleep 0.1; done
PORTS=$(awk '/^ready redis/ {split($3, a, ":"); print a[2]}' "$TMP/redis.out")
SEEDS=$(echo "$PORTS" | awk '{printf "%s\"127.0.0.1:%s\"", (NR>1?", ":""), $1}')
calls() { for p in $PORTS; do redis-cli -p "$p" INFO commandstats; done | awk -F'[=,]' '/^cmdstat_/ && !/cmdstat_(info|cluster|ping)/ {s += $2} END {print s+0}'; }
run() { # MODE RATE BATCH
    local mode=$1 rate=$2 batch=$3 dir="$TMP/data-$1-$3" port=$((18200 + RANDOM % 500))
    mkdir -p "$dir"
    { echo "[reports]"; echo "allow-http = true"; echo "allow-private = true"
      if [ "$mode" = cluster ]; then echo "[cluster]"; echo "node-id = 1"; echo "redis = [$SEEDS]"; fi
    } > "$dir.toml"
    MCMP_ADMIN_TOKEN=adm "$R/mcmp" serve --listen 127.0.0.1:$port --data-dir "$dir" --config "$dir.toml" > "$dir.log" 2>&1 &
    local pid=$!; PIDS+=($pid)
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/readyz" > /dev/null && break; sleep 0.1; done
    local before; before=$(calls)
    "$R/mcmp-loadtest" --duration "$SECS" e2e --target "http://127.0.0.1:$port" --admin-token adm \
        --server-pid "$pid" --rate "$rate" --connections 32 --batch "$batch" --settle 60 \
        --json "$TMP/$mode-$batch.json" > "$TMP/$mode-$batch.log" 2>&1 || true
    local after; after=$(calls)
    kill "$pid"; wait "$pid" 2>/dev/null || true
    python3 - "$TMP/$mode-$batch.json" "$mode" "$batch" "$before" "$after" "$TMP/$mode-$batch.log" <<'PY'
import json, sys
f, mode, batch, before, after, log = sys.argv[1:]
d = json.load(open(f))
e = d.get("e2e", {})
acc = e.get("accepted", 0)
verdict = "PASSED" if e.get("passed") else "FAILED"
cpu = d.get("server_cpu", {}).get("ms_per_1000_messages", 0)
print(f"{mode:8} batch {batch:>3}: accepted/s {e.get('accepted_per_sec', 0):>9.0f}  final/s {e.get('final_per_sec', 0):>9.0f}"
      f"  p50 accept->final {e.get('accept_to_final_ms', {}).get('p50', 0):7.1f} ms"
      f"  server CPU {cpu:6.1f} ms/1k  redis calls/msg {(int(after)-int(before))/max(acc,1):.3f}  {verdict}")
PY
}
for batch in 1 100; do
    rate=$SINGLE; [ "$batch" = 100 ] && rate=$BATCHED
    run plain "$rate" "$batch"
    run cluster "$rate" "$batch"
done
