#!/usr/bin/env bash
# Schemathesis (PyPI, pinned) against a live mcmp: every operation of the
# customer API in docs/openapi.json (the token flow included) with
# generated requests; fails on a 5xx, an undocumented status code or
# content type, or an answer that violates its schema (issue 17).
# usage: .ci/schemathesis.sh [MCMP_BINARY]   (default target/debug/mcmp)
set -euo pipefail
cd "$(dirname "$0")/.."
MCMP="${1:-${CARGO_TARGET_DIR:-target}/debug/mcmp}"
MAX_EXAMPLES="${SCHEMATHESIS_MAX_EXAMPLES:-200}"
work="$(mktemp -d)"
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
python3 -m venv "$work/venv" 2>/dev/null || {
    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3-venv
    python3 -m venv "$work/venv"
}
"$work/venv/bin/pip" install --quiet --disable-pip-version-check -r .ci/schemathesis-requirements.txt
port=$((20000 + RANDOM % 20000))
url="http://127.0.0.1:$port"
MCMP_ADMIN_TOKEN=schemathesis-admin "$MCMP" serve --demo --listen "127.0.0.1:$port" \
    --data-dir "$work/data" > "$work/mcmp.out" 2>&1 &
pid=$!
for _ in $(seq 300); do curl -sf "$url/readyz" >/dev/null && break; sleep 0.1; done
curl -sf "$url/readyz" >/dev/null || { cat "$work/mcmp.out"; exit 1; }
id=$(sed -n 's/^client_id: //p' "$work/mcmp.out")
secret=$(sed -n 's/^client_secret: //p' "$work/mcmp.out")
token=$(curl -sf -u "$id:$secret" -d grant_type=client_credentials "$url/oauth/token" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
# The served document must be the repository's.
curl -sf "$url/openapi.json" | cmp - docs/openapi.json
# schemathesis keeps a cache in its working directory: run it in $work.
(cd "$work" && "$work/venv/bin/schemathesis" run "$url/openapi.json" \
    --url "$url" \
    --include-path-regex '^/(v1/|oauth/token)' \
    --header "Authorization: Bearer $token" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
    --max-examples "$MAX_EXAMPLES" \
    --workers 2 \
    --seed 1 \
    --report-dir "$work/report") 2>&1 | tee "$work/schemathesis.out"
grep -qE "^ *API Links: +[1-9]" "$work/schemathesis.out" ||
    { echo "schemathesis followed no link: no message was accepted"; exit 1; }
kill "$pid"; wait "$pid" || true; pid=""
