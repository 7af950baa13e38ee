#!/usr/bin/env bash
# The accept row's half-rate run, broken down (issue 18): a closed-loop
# single-message run as in all.sh, the drain, then the open loop at half
# its rate for 25 s, with the server's CPU per thread over the run and a
# flame graph of 12 s of it. Run from the repository root after
#   cargo build --release -p mcmp-api -p mcmp-loadtest
# usage: R=target/release OUT=docs/perf/session10 bash docs/perf/session10/half.sh [RATE]
#   RATE: the half rate (default: half of what the closed loop reached)
# NOPERF=1: no flame graph. Needs curl, python3, perf and inferno
# (cargo install inferno).
set -euo pipefail
R=${R:-target/release}; OUT=${OUT:-docs/perf/session10}; HERE=$(dirname "$0")
LT="$R/mcmp-loadtest"; DATA=/tmp/mcmp-perf-data; PORT=18090; U=http://127.0.0.1:$PORT
mkdir -p "$OUT"
# stop_server, drain
. "$HERE/../server.sh"
trap stop_server EXIT
# user+system ticks of every thread of PID, as "tid name ticks" lines.
threads() {
    for t in /proc/"$1"/task/*; do
        python3 - "$t" <<'PY'
import sys
t = sys.argv[1]
stat = open(t + "/stat").read()
name = stat[stat.index("(") + 1:stat.rindex(")")]
f = stat[stat.rindex(")") + 2:].split()
print(t.rsplit("/", 1)[1], name.replace(" ", "_"), int(f[11]) + int(f[12]))
PY
    done
}
read -r CID SEC < <(bash "$HERE/../session2/setup.sh" "$R/mcmp" "$DATA" $PORT)
pid=$(cat "$DATA.pid"); tmp=$(mktemp -d /tmp/mcmp-prof.XXXX)
L=("$LT" --duration 10 run --target $U --client-id "$CID" --client-secret "$SEC" --server-pid "$pid")
"${L[@]}" --rate 0 --connections 64 --batch 1 --json "$OUT/closed.json" 2>&1 | tail -3
rate=${1:-$(python3 -c 'import json,sys; print(int(json.load(open(sys.argv[1]))["throughput"]["accepted_per_sec"]/2))' "$OUT/closed.json")}
# The server's user + system CPU seconds so far.
cpu() { python3 -c 'import os,sys; f=open("/proc/%s/stat" % sys.argv[1]).read().rsplit(")",1)[1].split(); print((int(f[11])+int(f[12]))/os.sysconf("SC_CLK_TCK"))' "$1"; }
c0=$(cpu "$pid"); t0=$(date +%s.%N)
drain
python3 - "$c0" "$(cpu "$pid")" "$t0" "$OUT/closed.json" <<'PY' | tee "$OUT/drain.txt"
import json, sys, time
c0, c1, t0 = float(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
run = json.load(open(sys.argv[4]))
n, during = run["messages"]["accepted"], run["server_cpu"]["seconds"]
print(f"drained in {time.time() - t0:.1f} s, {c1 - c0:.2f} s of server CPU; the closed loop's "
      f"{n} messages took {during:.2f} s while accepted and {c1 - c0:.2f} s after: "
      f"{1000 * (during + c1 - c0) / n:.1f} ms per 1,000 in all")
PY
echo "half rate $rate"
threads "$pid" > "$tmp/before"
fsyncs() { curl -sf $U/metrics | grep -E "^mcmp_wal_fsync_seconds_(bucket|count|sum)"; }
fsyncs > "$tmp/fsync-before"
L[2]=25
"${L[@]}" --rate "$rate" --connections 64 --batch 1 --json "$OUT/half.json" > "$tmp/run.log" 2>&1 &
run=$!
if [ -z "${NOPERF:-}" ]; then
    sleep 6
    perf record -F 199 -g --call-graph dwarf,8192 -p "$pid" -o "$tmp/perf.data" -- sleep 12 >/dev/null 2>&1
fi
wait $run
threads "$pid" > "$tmp/after"
fsyncs > "$tmp/fsync-after"
grep -E "throughput|latency|server CPU" "$tmp/run.log" | tee "$OUT/half.txt"
echo "CPU seconds per thread over the 25 s run:" | tee -a "$OUT/half.txt"
python3 - "$tmp/before" "$tmp/after" <<'PY' | tee -a "$OUT/half.txt"
import sys, os
hz = os.sysconf("SC_CLK_TCK")
before = {l.split()[0]: int(l.split()[2]) for l in open(sys.argv[1])}
rows = []
for l in open(sys.argv[2]):
    tid, name, ticks = l.split()
    rows.append((int(ticks) - before.get(tid, 0), name, tid))
by_name = {}
for d, name, _ in rows:
    by_name[name] = by_name.get(name, 0) + d
total = sum(by_name.values())
for name, d in sorted(by_name.items(), key=lambda kv: -kv[1]):
    if d:
        print(f"  {name:24} {d / hz:6.2f} s  {100 * d / max(total, 1):5.1f} %")
print(f"  {'all':24} {total / hz:6.2f} s")
PY
echo "WAL fdatasyncs over the run (both shards), by latency:" | tee -a "$OUT/half.txt"
python3 - "$tmp/fsync-before" "$tmp/fsync-after" "$OUT/half.json" <<'PY' | tee -a "$OUT/half.txt"
import json, re, sys
def read(path):
    out = {}
    for l in open(path):
        name, value = l.rsplit(" ", 1)
        le = re.search(r'le="([^"]+)"', name)
        key = le.group(1) if le else name.split("{")[0]
        out[key] = out.get(key, 0) + float(value)
    return out
a, b = read(sys.argv[1]), read(sys.argv[2])
d = {k: b[k] - a.get(k, 0) for k in b}
n = d.pop("mcmp_wal_fsync_seconds_count"); s = d.pop("mcmp_wal_fsync_seconds_sum")
msgs = json.load(open(sys.argv[3]))["messages"]["accepted"]
print(f"  {int(n)} fdatasyncs, {msgs / max(n, 1):.2f} messages each, mean {1e3 * s / max(n, 1):.3f} ms")
prev = 0
for le, c in sorted(d.items(), key=lambda kv: float(kv[0])):
    if c - prev:
        print(f"  <= {le:>8} s: {int(c - prev)}")
    prev = c
PY
[ -n "${NOPERF:-}" ] && { rm -rf "$tmp"; exit 0; }
perf script -i "$tmp/perf.data" 2>/dev/null | inferno-collapse-perf > "$tmp/folded"
inferno-flamegraph --minwidth 0.2 --title "mcmp accept, open loop at $rate/s, 1 per request" < "$tmp/folded" > "$OUT/profile-accept-half.svg"
cp "$tmp/folded" "$OUT/profile-accept-half.folded"
rm -rf "$tmp"
