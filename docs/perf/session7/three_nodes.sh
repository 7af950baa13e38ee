#!/usr/bin/env bash
# Three nodes on this machine against one (issue 16): accept only (the
# customer's route goes to a sender that is down, so every message is held),
# closed loop, one message per request. One node with [cluster] first,
# then three nodes with the same total of connections, each driven by its
# own `mcmp-loadtest run`; the rates are summed. The nodes, Redis and the
# load share the machine's two cores: this shows the overhead of more
# nodes, not scaling.
# usage: R=target/release bash docs/perf/session7/three_nodes.sh [SECS] [CONNECTIONS]
set -euo pipefail
R=${R:-target/release}; SECS=${1:-10}; CONN=${2:-48}
HERE=$(cd "$(dirname "$0")" && pwd)
TMP=$(mktemp -d /tmp/mcmp-three.XXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT
"$R/mcmp-loadtest" redis-cluster --dir "$TMP/redis" > "$TMP/redis.out" &
PIDS+=($!)
for _ in $(seq 200); do [ "$(grep -c '^ready redis' "$TMP/redis.out" || true)" = 3 ] && break; sleep 0.1; done
SEEDS=$(awk '/^ready redis/ {printf "%s\"%s\"", (n++ ? ", " : ""), $3}' "$TMP/redis.out")
. "$HERE/../session4/down_tenant.sh"
node() { # N PORT: starts node N on PORT
    mkdir -p "$TMP/d$1"
    printf '[cluster]\nnode-id = %s\nredis = [%s]\n' "$1" "$SEEDS" > "$TMP/n$1.toml"
    MCMP_ADMIN_TOKEN=adm "$R/mcmp" serve --listen 127.0.0.1:$2 --data-dir "$TMP/d$1" --config "$TMP/n$1.toml" > "$TMP/n$1.log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$2/readyz" > /dev/null && break; sleep 0.1; done
}
load() { # PORT CONNECTIONS OUT
    "$R/mcmp-loadtest" --duration "$SECS" run --target "http://127.0.0.1:$1" --client-id "$CID" \
        --client-secret "$SEC" --rate 0 --connections "$2" --batch 1 > "$3" 2>&1
}
rate() { awk '/^throughput/ {print $6}' "$1"; }
node 1 18301
down_tenant http://127.0.0.1:18301
load 18301 "$CONN" "$TMP/one.out"
echo "one node:    $(rate "$TMP/one.out") accepted/s"
node 2 18302
node 3 18303
sleep 1   # the catalog reaches nodes 2 and 3 within 200 ms
per=$((CONN / 3))
load 18301 $per "$TMP/a.out" & A=$!
load 18302 $per "$TMP/b.out" & B=$!
load 18303 $per "$TMP/c.out" & C=$!
wait $A $B $C
a=$(rate "$TMP/a.out"); b=$(rate "$TMP/b.out"); c=$(rate "$TMP/c.out")
python3 -c "print(f'three nodes: {$a:.0f} + {$b:.0f} + {$c:.0f} = {$a+$b+$c:.0f} accepted/s')"
