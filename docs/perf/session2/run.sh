#!/usr/bin/env bash
set -euo pipefail
# Run from the repository root after a release build; writes JSON/SVG here.
R=${R:-target/release}; OUT=${OUT:-.}; HERE=$(dirname "$0")
read CID SEC < <("$HERE/setup.sh" $R/mcmp /tmp/mcmp-perf-data 18090)
L="$R/mcmp-loadtest --duration 10 run --target http://127.0.0.1:18090 --client-id $CID --client-secret $SEC"
$L --rate 0 --connections 64 --batch 1 --baseline-secs 10 --json $OUT/single.json --svg $OUT/single.svg 2>&1 | tail -3
RATE=$(python3 -c 'import json; d=json.load(open("'"$OUT"'/single.json")); print(int(d["throughput"]["accepted_per_sec"]/2))' 2>/dev/null || echo 0)
echo "half rate: $RATE"
$L --rate $RATE --connections 64 --batch 1 --json $OUT/half.json 2>&1 | tail -2
$L --rate 0 --connections 16 --batch 100 --json $OUT/batch.json --svg $OUT/batch.svg 2>&1 | tail -2
kill $(cat /tmp/mcmp-perf-data.pid)
