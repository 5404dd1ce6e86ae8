#!/usr/bin/env bash
# aim in front of an MCP server, end to end, on this machine: aim serve (SQLite), a CRM MCP
# server (the official Python SDK), aim gateway between them, and an agent whose calls are
# allowed, denied, held for a human's approval, and cut off by the kill switch.
#
#   AIM_BIN=target/debug/aim PYTHON=.venv/bin/python bash examples/mcp-gateway/run.sh
#
# PYTHON needs `mcp` and `PyJWT[crypto]` (tests/python/requirements.txt). Each step checks
# its outcome, so the script fails if anything does not happen as shown.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
aim_bin=${AIM_BIN:-aim}
py=${PYTHON:-python3}
work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

aim() { "$aim_bin" "$@"; }
step() { printf '\n== %s\n' "$*"; }
port() { "$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_for() { for _ in $(seq 1 600); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done; echo "timed out: $*" >&2; return 1; }

AIM_PORT=$(port) GW_PORT=$(port) ADMIN_PORT=$(port) MCP_PORT=$(port)
GW="http://127.0.0.1:$GW_PORT"
export AIM_ADDR="http://127.0.0.1:$AIM_PORT"

step "aim serve, whose tokens may name the gateway as their audience"
printf '[tokens]\nresources = ["%s"]\n' "$GW" > "$work/aim.toml"
(cd "$work" && exec "$aim_bin" serve --listen "127.0.0.1:$AIM_PORT" --config aim.toml > serve.log 2>&1) &
pids+=($!)
wait_for test -s "$work/aim-data/bootstrap-admin-token"
export AIM_TOKEN=$(cat "$work/aim-data/bootstrap-admin-token")
wait_for aim identity list

step "people: a sponsor, an approver, and the gateway's own account"
aim human add alice@example.com --role sponsor
ALICE=$(aim human credential create alice@example.com --label laptop)
aim human add bob@example.com --role approver
BOB=$(aim human credential create bob@example.com --label laptop)
aim human add gw-1 --role gateway
aim human credential create gw-1 --label gateway > "$work/gateway-credential"

step "the agent: requested, approved, with its own key"
aim identity request agt-crm --kind ai_agent --autonomy autonomous --team claims \
  --sponsor alice@example.com --purpose "Keep CRM records up to date" \
  --system crm --sensitivity internal --criticality low --impact low --expires-in 30d
AIM_TOKEN=$BOB aim identity approve agt-crm --reason "reviewed with security"
aim identity key generate --out "$work/agent.pem" > /dev/null
aim identity key add agt-crm --key-file "$work/agent.pem" --label "crm worker"
aim policy apply -f "$here/policies/" --comment "CRM tools through the gateway"

step "the CRM's MCP server, and aim gateway in front of it"
echo "crm-$RANDOM$RANDOM" > "$work/crm-api-key"
CRM_API_KEY=$(cat "$work/crm-api-key") "$py" "$here/crm_server.py" "$MCP_PORT" "$work/crm-headers.jsonl" \
  > "$work/crm.log" 2>&1 &
pids+=($!)
sed -e "s|@GW_PORT@|$GW_PORT|g" -e "s|@ADMIN_PORT@|$ADMIN_PORT|g" -e "s|@MCP_PORT@|$MCP_PORT|g" \
    -e "s|@AIM_URL@|$AIM_ADDR|g" -e "s|@WORK@|$work|g" "$here/gateway.toml.in" > "$work/gateway.toml"
"$aim_bin" gateway --config "$work/gateway.toml" > "$work/gateway.log" 2>&1 &
pids+=($!)
wait_for "$py" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$ADMIN_PORT/readyz')"
wait_for "$py" -c "import socket; socket.create_connection(('127.0.0.1', $MCP_PORT))"

step "a task and its token, for the gateway"
issued=$(aim token issue --identity agt-crm --key-file "$work/agent.pem" --write-token "$work/token.jwt" \
  --purpose "Update customer 42" --system crm --triggered-by "alice: TICKET-42" --resource "$GW" -o json)
echo "$issued"
task=$(echo "$issued" | "$py" -c 'import json, sys; print(json.load(sys.stdin)["task_id"])')
agent() { "$py" "$here/agent.py" --gateway "$GW/mcp/crm" --token-file "$work/token.jwt" --key-file "$work/agent.pem" "$@"; }

step "no tool is listed before an admin has reviewed its definition"
agent list
aim tool list
for t in read_record update_record pay purge; do aim tool approve "crm/$t"; done
agent list

step "calls: allowed, denied, and held for the sponsor's approval"
agent call read_record '{"id": "42"}' --expect allowed
agent call update_record '{"id": "42", "field": "status", "value": "vip"}' --expect allowed
agent --era 2026-07-28 call read_record '{"id": "42"}' --expect allowed
agent call purge --expect denied
held=$(agent call pay '{"invoice": "INV-7", "amount": 120}' --expect approval_required)
echo "$held"
approval=$(echo "$held" | sed -n 's/^approval_id=//p')
AIM_TOKEN=$ALICE aim approval approve "$approval" --reason "invoice INV-7 checked"
agent call pay '{"invoice": "INV-7", "amount": 120}' --expect allowed
agent call pay '{"invoice": "INV-7", "amount": 120}' --expect approval_required > /dev/null

step "the kill switch: the lock reaches the gateway, the next call is refused"
aim lock agt-crm --reason "incident 7: unexpected payments"
agent call read_record '{"id": "42"}' --expect refused

step "what aim recorded for the task"
aim audit trace "$task"

if grep -q "$(cat "$work/token.jwt")" "$work/crm-headers.jsonl"; then
    echo "the agent's token reached the MCP server" >&2
    exit 1
fi
echo
echo "done: the MCP server never saw the agent's token; every call above is on the record"
