# Sourced by the backlog scripts (queued.sh, session6/checkpoint_stall.sh):
# `down_tenant URL` waits for the server at URL (admin token `adm`) and
# registers customer Q1 whose only SMS route goes to an smpp sender whose
# SMSC refuses connections (127.0.0.1:9), so every message is held; it sets
# CID and SEC to a new client's credentials.
down_tenant() {
    local U=$1 A="Authorization: Bearer adm"
    for _ in $(seq 100); do curl -sf "$U/readyz" >/dev/null && break; sleep 0.1; done
    curl -sf -XPUT "$U/admin/v1/customers/Q1" -H "$A" -d '{"name":"queued","vas":false,"prepaid":false,"balance":0}' >/dev/null
    curl -sf -XPUT "$U/admin/v1/customers/Q1/services" -H "$A" -d '{"channels":{"SMS":{"enabled":true,"tps":0}}}' >/dev/null
    curl -sf -XPUT "$U/admin/v1/customers/Q1/bill-codes/B1" -H "$A" -d '{"ad":false}' >/dev/null
    curl -sf -XPUT "$U/admin/v1/customers/Q1/caller-ids/0212345678" -H "$A" >/dev/null
    curl -sf -XPUT "$U/admin/v1/senders/DOWN01" -H "$A" -d '{"group":"DOWN","channels":["SMS"],"carriers":["*"],"transport":{"type":"smpp","host":"127.0.0.1","port":9,"system_id":"x","password":"y"}}' >/dev/null
    curl -sf -XPUT "$U/admin/v1/routes/Q1/SMS" -H "$A" -d '{"carriers":{"*":[{"sender_group":"DOWN","ratio":1}]}}' >/dev/null
    read -r CID SEC < <(curl -sf -XPOST "$U/admin/v1/customers/Q1/clients" -H "$A" -d '{"report_uri":null}' | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["client_id"], d["client_secret"])')
}
