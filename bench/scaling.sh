#!/usr/bin/env bash
# How the hot paths' cost grows with what they sit on: `POST /v1/authorize` and
# `POST /oauth/token` at concurrency 1 and 32 on stores filled by `scale-fill` with 10k or
# 1M audit records, 10k or 1M identities, 10k or 1M single-use ids, 1 or 10,000 open
# tasks. Fills are made once under $AIM_SCALE_DIR (default /tmp/aim-scale) and reused.
#
#   bench/scaling.sh                       # RUN_SECONDS=5
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${RUN_SECONDS:-5}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/aim-target}
DIR=${AIM_SCALE_DIR:-/tmp/aim-scale}
command -v wrk >/dev/null || apt-get install -y -q wrk >/dev/null
cargo build --release --locked --bin aim --bin authorize-load --bin token-load --bin scale-fill >&2
T=$CARGO_TARGET_DIR/release

scenario() { # name, scale-fill arguments
  local name=$1; shift
  [ -f "$DIR/$name/aim.db" ] || "$T/scale-fill" --aim "$T/aim" --data-dir "$DIR/$name" "$@" >&2
  local a t
  a=$("$T/authorize-load" --aim "$T/aim" --from "$DIR/$name" --seconds "$SECS" --concurrency 1,32 | grep '^POST')
  t=$("$T/token-load" --aim "$T/aim" --from "$DIR/$name" --seconds "$SECS" --concurrency 1,32 --verifications 1 | grep '^POST')
  paste <(printf '%s\n' "$a" "$t") | while read -r line; do
    path=$(sed -E 's/^POST ([^ ]+) .*c=([0-9]+):.*/\1 c=\2/' <<<"$line")
    rps=$(sed -E 's/.*rps=([0-9.]+).*/\1/' <<<"$line")
    p50=$(sed -E 's/.*p50_ms=([0-9.]+).*/\1/' <<<"$line")
    p99=$(sed -E 's/.*p99_ms=([0-9.]+).*/\1/' <<<"$line")
    printf '%-22s %-18s %8.0f/s  p50 %5s ms  p99 %6s ms\n' "$name" "$path" "$rps" "$p50" "$p99"
  done
}

scenario small            --events 10000 --identities 10000 --used-ids 10000 --open-tasks 1
scenario events-1m        --events 1000000 --identities 10000 --used-ids 10000 --open-tasks 1
scenario identities-1m    --events 10000 --identities 1000000 --used-ids 10000 --open-tasks 1
scenario used-ids-1m      --events 10000 --identities 10000 --used-ids 1000000 --open-tasks 1
scenario open-tasks-10k   --events 10000 --identities 10000 --used-ids 10000 --open-tasks 10000
echo "($(date -u +%Y-%m-%dT%H:%MZ), $SECS s per run)"
