#!/usr/bin/env bash
# usage: setup.sh BIN DATA PORT  -> prints "CID SEC"
set -euo pipefail
BIN=$1; DATA=$2; PORT=$3
rm -rf "$DATA"
MCMP_ADMIN_TOKEN=adm "$BIN" serve --listen 127.0.0.1:$PORT --data-dir "$DATA" > "$DATA.log" 2>&1 &
echo $! > "$DATA.pid"
U=http://127.0.0.1:$PORT; A="Authorization: Bearer adm"
for i in $(seq 100); do curl -sf $U/readyz >/dev/null && break; sleep 0.1; done
curl -sf -XPUT $U/admin/v1/customers/PERF -H "$A" -d '{"name":"perf","vas":false,"prepaid":false,"balance":0}' >/dev/null
curl -sf -XPUT $U/admin/v1/customers/PERF/services -H "$A" -d '{"channels":{"SMS":{"enabled":true,"tps":0}}}' >/dev/null
curl -sf -XPUT $U/admin/v1/customers/PERF/bill-codes/B1 -H "$A" -d '{"ad":false}' >/dev/null
curl -sf -XPUT $U/admin/v1/customers/PERF/caller-ids/0212345678 -H "$A" >/dev/null
curl -sf -XPUT $U/admin/v1/senders/P_S_SIM01 -H "$A" -d '{"group":"SIM","channels":["SMS"],"carriers":["*"],"transport":{"type":"sim","latency_ms":1,"dlr_delay_ms":5}}' >/dev/null
curl -sf -XPUT $U/admin/v1/routes/PERF/SMS -H "$A" -d '{"carriers":{"*":[{"sender_group":"SIM","ratio":1}]}}' >/dev/null
curl -sf -XPOST $U/admin/v1/customers/PERF/clients -H "$A" -d '{"report_uri":null}' | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["client_id"], d["client_secret"])'
