#!/usr/bin/env bash
# The server's CPU per 1,000 single messages against the offered rate, and
# its syscalls and context switches per message (issue 18, session 10):
# open loop, 64 connections, 10 s a rate, one server (the accept setup of
# session 2: the sim carrier in process, no report URI).
# usage: R=target/release bash docs/perf/session10/curve.sh [RATE...]
set -euo pipefail
R=${R:-target/release}; HERE=$(dirname "$0"); DATA=/tmp/mcmp-curve; PORT=18092
read -r CID SEC < <(bash "$HERE/../session2/setup.sh" "$R/mcmp" "$DATA" $PORT)
pid=$(cat "$DATA.pid")
trap 'kill $pid; rm -rf $DATA $DATA.pid $DATA.log' EXIT
fsyncs() { curl -sf http://127.0.0.1:$PORT/metrics | awk '/^mcmp_wal_fsync_seconds_count/ {s += $2} END {print s + 0}'; }
for rate in ${*:-1000 2000 4000 8000}; do
    f0=$(fsyncs)
    perf stat -x, -e raw_syscalls:sys_enter,context-switches -p "$pid" -o /tmp/curve.stat -- sleep 9 &
    stat=$!
    out=$("$R/mcmp-loadtest" --duration 10 run --target http://127.0.0.1:$PORT --client-id "$CID" \
        --client-secret "$SEC" --server-pid "$pid" --rate "$rate" --connections 64 --batch 1 2>&1)
    wait $stat
    f1=$(fsyncs)
    python3 - "$rate" "$((f1 - f0))" /tmp/curve.stat "$out" <<'PY'
import re, sys
rate, fsyncs, stat, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
cpu = re.search(r"= ([0-9.]+) ms per 1,000", out).group(1)
p99 = re.search(r"p99 ([0-9.]+)", out).group(1)
n = {}
for line in open(stat):
    f = line.split(",")
    if len(f) > 2 and f[0].strip().isdigit():
        n[f[2]] = int(f[0])
per = lambda k: n.get(k, 0) / (9 * rate)
print(f"{rate:>6}/s: {cpu:>6} ms CPU per 1,000, p99 {p99} ms, {fsyncs / (10 * rate):.2f} fdatasyncs, "
      f"{per('raw_syscalls:sys_enter'):.1f} syscalls and {per('context-switches'):.1f} context switches a message")
PY
done
rm -f /tmp/curve.stat
