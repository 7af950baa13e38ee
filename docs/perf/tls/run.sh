#!/usr/bin/env bash
# TLS accept bench (issue 14, DESIGN §9 "TLS"): single-message accept over
# HTTPS (keep-alive) as a ratio of plain HTTP, alternated plain/TLS in the
# same session on the same build; then the cost of a full handshake per
# connection (openssl s_time, new session each time).
# Run from the repository root after a release build; writes JSON here.
set -euo pipefail
R=${R:-target/release}; OUT=${OUT:-$(dirname "$0")}; SECS=${SECS:-10}; ROUNDS=${ROUNDS:-2}
DATA=/tmp/mcmp-tls-perf; PORT=18095; A="Authorization: Bearer adm"
TLSDIR=$DATA-certs; rm -rf "$TLSDIR"
# A CA and a server certificate for 127.0.0.1 (ECDSA P-256), as the simulators make them.
"$R/mcmp-loadtest" --duration 1 sink --secret x --tls --tls-dir "$TLSDIR" >/dev/null
printf '[server.tls]\ncert = "%s/cert.pem"\nkey = "%s/key.pem"\n' "$TLSDIR" "$TLSDIR" > "$TLSDIR/mcmp.toml"

# start MODE (plain|tls): a fresh server with one customer on the sim carrier; prints "CID SEC"
start() {
    rm -rf "$DATA"; local extra=() scheme=http curl=(curl -sf)
    if [ "$1" = tls ]; then extra=(--config "$TLSDIR/mcmp.toml"); scheme=https; curl=(curl -sf --cacert "$TLSDIR/ca.pem"); fi
    MCMP_ADMIN_TOKEN=adm "$R/mcmp" serve --listen 127.0.0.1:$PORT --data-dir "$DATA" "${extra[@]}" > "$DATA.log" 2>&1 &
    echo $! > "$DATA.pid"
    local U=$scheme://127.0.0.1:$PORT
    local ready=""
    for _ in $(seq 300); do "${curl[@]}" $U/readyz >/dev/null && { ready=1; break; }; sleep 0.1; done
    [ -n "$ready" ] || { echo "the $1 server did not answer /readyz in 30 s (log: $DATA.log)" >&2; return 1; }
    "${curl[@]}" -XPUT $U/admin/v1/customers/PERF -H "$A" -d '{"name":"perf"}' >/dev/null
    "${curl[@]}" -XPUT $U/admin/v1/customers/PERF/services -H "$A" -d '{"channels":{"SMS":{"enabled":true,"tps":0}}}' >/dev/null
    "${curl[@]}" -XPUT $U/admin/v1/customers/PERF/bill-codes/B1 -H "$A" -d '{"ad":false}' >/dev/null
    "${curl[@]}" -XPUT $U/admin/v1/customers/PERF/caller-ids/0212345678 -H "$A" >/dev/null
    "${curl[@]}" -XPUT $U/admin/v1/senders/P_S_SIM01 -H "$A" -d '{"group":"SIM","channels":["SMS"],"carriers":["*"],"transport":{"type":"sim","latency_ms":1,"dlr_delay_ms":5}}' >/dev/null
    "${curl[@]}" -XPUT $U/admin/v1/routes/PERF/SMS -H "$A" -d '{"carriers":{"*":[{"sender_group":"SIM","ratio":1}]}}' >/dev/null
    "${curl[@]}" -XPOST $U/admin/v1/customers/PERF/clients -H "$A" -d '{}' | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["client_id"], d["client_secret"])'
}
# The server is not this shell's child (started in a process substitution): poll until it is gone.
stop() {
    [ -f $DATA.pid ] || return 0
    local pid; pid=$(cat $DATA.pid); kill "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    rm -f $DATA.pid
}
# A round that fails (its server did not start, the load failed) leaves no server behind.
trap stop EXIT
rate() { python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["throughput"]["accepted_per_sec"]))' "$1"; }

for round in $(seq "$ROUNDS"); do
    for mode in plain tls; do
        read -r CID SEC < <(start $mode) || true
        [ -n "${SEC:-}" ] || { echo "round $round $mode: the server could not be set up" >&2; exit 1; }
        scheme=http; ca=(); [ $mode = tls ] && { scheme=https; ca=(--tls-ca "$TLSDIR/ca.pem"); }
        "$R/mcmp-loadtest" --duration "$SECS" run --target $scheme://127.0.0.1:$PORT "${ca[@]}" \
            --client-id "$CID" --client-secret "$SEC" --rate 0 --connections 64 --batch 1 \
            --json "$OUT/single-$mode-$round.json" >/dev/null 2>&1
        echo "round $round $mode: $(rate "$OUT/single-$mode-$round.json") accepted/s"
        if [ $mode = tls ] && [ "$round" = 1 ]; then
            # Full handshakes: a new TCP connection and TLS session each time, no request.
            openssl s_time -connect 127.0.0.1:$PORT -new -time "$SECS" -CAfile "$TLSDIR/ca.pem" 2>/dev/null \
                | grep -E "connections in|connections/user" | tee "$OUT/handshake.txt"
        fi
        stop
    done
done
