#!/usr/bin/env bash
# Every DESIGN §9 row in one session (issue 18), one after the other on an
# otherwise idle machine, with the server's CPU per 1,000 messages and a
# flame graph of each headline run. Run from the repository root after
#   cargo build --release -p mcmp-api -p mcmp-loadtest -p mcmp-benches
# usage: R=target/release OUT=docs/perf/session9 bash docs/perf/session9/all.sh [ROW...]
#   ROW: accept e2e-single e2e-batch overload priority recovery memory soak
#        history tls profiles (default: all, in that order)
# Needs curl, python3; for `profiles` perf and inferno (cargo install inferno).
# Writes OUT/<row>*.json (the loadtest summaries), OUT/*.svg and OUT/*.txt.
set -euo pipefail
R=${R:-target/release}; OUT=${OUT:-docs/perf/session9}; HERE=$(dirname "$0")
mkdir -p "$OUT"
ROWS=${*:-accept e2e-single e2e-batch overload priority recovery memory soak history tls profiles}
LT="$R/mcmp-loadtest"
DATA=/tmp/mcmp-perf-data; PORT=18090; U=http://127.0.0.1:$PORT

say() { echo; echo "=== $* ($(date +%T))"; }
# stop_server, drain
. "$HERE/../server.sh"
trap stop_server EXIT

# Single-message accept (closed loop, 64 connections) beside a bare hyper
# server in the same run; p99 at half that rate (open loop); batches of 100.
accept() {
    say "accept"
    read -r CID SEC < <(bash "$HERE/../session2/setup.sh" "$R/mcmp" "$DATA" $PORT)
    local pid; pid=$(cat "$DATA.pid")
    local L=("$LT" --duration 10 run --target $U --client-id "$CID" --client-secret "$SEC" --server-pid "$pid")
    "${L[@]}" --rate 0 --connections 64 --batch 1 --baseline-secs 10 --json "$OUT/accept-single.json" 2>&1 | tail -4
    local rate; rate=$(python3 -c 'import json,sys; print(int(json.load(open(sys.argv[1]))["throughput"]["accepted_per_sec"]/2))' "$OUT/accept-single.json")
    echo "half rate: $rate"
    drain
    "${L[@]}" --rate "$rate" --connections 64 --batch 1 --json "$OUT/accept-half.json" 2>&1 | tail -3
    drain
    "${L[@]}" --rate 0 --connections 16 --batch 100 --json "$OUT/accept-batch.json" 2>&1 | tail -3
    # Recovery: kill -9 the server that took these messages, start it again.
    kill -9 "$pid"; while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
    local t0; t0=$(date +%s.%N)
    MCMP_ADMIN_TOKEN=adm "$R/mcmp" serve --listen 127.0.0.1:$PORT --data-dir "$DATA" > "$DATA.log" 2>&1 &
    echo $! > "$DATA.pid"
    until curl -sf $U/readyz >/dev/null; do sleep 0.02; done
    python3 -c 'import sys,time; print("restart after kill -9: /readyz 200 after %.2f s" % (time.time()-float(sys.argv[1])))' "$t0" | tee "$OUT/recovery.txt"
    grep -E "recovered" "$DATA.log" | tee -a "$OUT/recovery.txt" || true
    curl -sf $U/admin/v1/stats -H "Authorization: Bearer adm" | head -c 600 | tee -a "$OUT/recovery.txt"; echo
    stop_server
}

# 60 s of e2e load (ARGS: the load options), the summary in OUT/NAME.json.
e2e60() {
    local name=$1 settle=$2; shift 2
    "$LT" --duration 60 e2e --mcmp-bin "$R/mcmp" "$@" --settle "$settle" \
        --json "$OUT/$name.json" 2>&1 | grep -vE "^\[e2e " | tail -12
}

# One message per request end to end for 60 s, closed loop: what it sustains.
e2e_single() {
    say "e2e single, 60 s"
    e2e60 e2e-single 120 --rate 0 --connections 64 --batch 1
}

# Batches of 100 end to end for 60 s, open loop at RATE (what it sustains).
e2e_batch() {
    say "e2e batches, 60 s"
    e2e60 e2e-batch 120 --rate "${E2E_BATCH_RATE:-30000}" --connections 32 --batch 100
}

# Overload: closed loop above capacity for 60 s, then every report once.
overload() {
    say "overload, closed loop 60 s"
    e2e60 overload 600 --rate 0 --connections 32 --batch 100
}

# otp under a bulk backlog of 100,000 draining through a slow sender.
priority() {
    say "priority"
    "$LT" priority --mcmp-bin "$R/mcmp" --json "$OUT/priority.json" 2>&1 | tail -12
}

# Replay speed of the WAL (the micro-benchmark's recovery lines).
recovery() {
    say "recovery (WAL replay)"
    local d; d=$(mktemp -d /tmp/wal-bench.XXXX)
    "$R/wal_append" --seconds 2 --dir "$d" 2>&1 | tee "$OUT/wal_append.txt"
    rm -rf "$d"
}

# 1 M messages held behind a carrier that is down; bytes per dedup key.
memory() {
    say "memory, 1 M held"
    SAMPLE=40 R=$R bash "$HERE/../session4/queued.sh" 100000 10 2>&1 | tee "$OUT/queued.txt" | tail -4
    cargo test -q -p mcmp-engine --lib -- a_key_costs_at_most_16_bytes \
        a_window_that_starts --nocapture 2>&1 | grep -E "bytes per key|tables," | tee "$OUT/dedup.txt"
}

# RSS and data dir over 10 minutes at 20,000/s with 2-minute retentions.
soak() {
    say "soak, 10 min"
    "$LT" --duration 600 soak --mcmp-bin "$R/mcmp" --retention 2m --rate 20000 --connections 16 \
        --batch 50 --json "$OUT/soak.json" --svg "$OUT/soak.svg" 2>&1 | tail -8
}

# GET by id on a 10 M-message history; bytes per message on disk.
history() {
    say "history, 10 M"
    "$R/history_get" 2>&1 | tee "$OUT/history_get.txt" | tail -6
}

# Single-message accept over TLS against plain, alternated.
tls() {
    say "tls"
    OUT="$OUT" SECS=10 ROUNDS=2 R=$R bash "$HERE/../tls/run.sh" 2>&1 | tail -12
}

# A flame graph of the server during 12 s of a 25 s accept run (ARGS: the
# loadtest's load options).
profile_accept() {
    local out=$1; shift
    read -r CID SEC < <(bash "$HERE/../session2/setup.sh" "$R/mcmp" "$DATA" $PORT)
    local pid tmp
    pid=$(cat "$DATA.pid"); tmp=$(mktemp -d /tmp/mcmp-prof.XXXX)
    "$LT" --duration 25 run --target $U --client-id "$CID" --client-secret "$SEC" --server-pid "$pid" \
        "$@" --json "$out.json" > "$tmp/run.log" 2>&1 &
    local run=$!
    sleep 6
    perf record -F 199 -g --call-graph dwarf,8192 -p "$pid" -o "$tmp/perf.data" -- sleep 12 >/dev/null 2>&1
    wait $run
    grep -E "throughput|server CPU" "$tmp/run.log"
    perf script -i "$tmp/perf.data" 2>/dev/null | inferno-collapse-perf > "$tmp/folded"
    inferno-flamegraph --minwidth 0.2 --title "mcmp accept $*" < "$tmp/folded" > "$out.svg"
    rm -rf "$tmp"
    stop_server
}

# Flame graphs of the headline runs (25 s each, the server sampled 12 s).
profiles() {
    say "profiles"
    profile_accept "$OUT/profile-accept-single" --rate 0 --connections 64 --batch 1
    profile_accept "$OUT/profile-accept-batch" --rate 0 --connections 16 --batch 100
    R=$R bash "$HERE/../session6/profile_e2e.sh" "${PROFILE_SINGLE_RATE:-12000}" 1 "$OUT/profile-e2e-single"
    R=$R bash "$HERE/../session6/profile_e2e.sh" "${E2E_BATCH_RATE:-30000}" 100 "$OUT/profile-e2e-batch"
}

failed=""
for row in $ROWS; do
    case $row in
        accept | e2e-single | e2e-batch | overload | priority | recovery | memory | soak | history | tls | profiles) ;;
        *) echo "unknown row $row" >&2; exit 2 ;;
    esac
    # A row that fails (a verdict, a crash) is said and the next one runs.
    "${row//-/_}" || { failed="$failed $row"; echo "!!! $row FAILED"; }
done
[ -z "$failed" ] || echo "failed rows:$failed"
say "done"
