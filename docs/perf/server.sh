# Helpers for the perf scripts that start a server with session2/setup.sh
# (sourced; they use DATA, the server's data dir, and U, its base URL).

# Stops the server started on DATA and waits until it is gone.
stop_server() {
    [ -f "$DATA.pid" ] || return 0
    kill "$(cat "$DATA.pid")" 2>/dev/null || true
    while kill -0 "$(cat "$DATA.pid")" 2>/dev/null; do sleep 0.1; done
    rm -f "$DATA.pid"
}

# Waits (at most 120 s) until the server has delivered what the last run
# left behind and written it to the history store, so that the next run
# measures its own load.
drain() {
    for _ in $(seq 1200); do
        local left
        left=$(curl -sf $U/admin/v1/stats -H "Authorization: Bearer adm" |
            python3 -c 'import json,sys; d=json.load(sys.stdin); print(max(d["live_messages"], d["memory_messages"]))')
        [ "$left" -lt 1000 ] && { echo "drained ($left left in memory)"; return; }
        sleep 0.1
    done
    echo "not drained after 120 s"
}
