#!/usr/bin/env bash
# A compliance report from example data, end to end on this machine: aim serve (SQLite),
# people and identities with the faults a real registry has (a departed sponsor, an identity
# allowed bearer tokens), policies applied, and the discovery fixtures imported (an AWS
# credential report and authorization details, a Kubernetes cluster, a SaaS bot inventory).
# The report is written as Markdown, HTML and JSON to OUT_DIR (default ./compliance-report).
#
#   AIM_BIN=target/debug/aim bash examples/compliance/run.sh [OUT_DIR]
#
# Each step checks its outcome; the last checks that the report names the identities and
# accounts behind the controls they fail.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
fixtures=$(cd "$here/../../crates/discovery/tests/fixtures" && pwd)
aim_bin=${AIM_BIN:-aim}
out=${1:-$PWD/compliance-report}
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d)
pid=""
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

aim() { "$aim_bin" "$@"; }
step() { printf '\n== %s\n' "$*"; }
wait_for() { for _ in $(seq 1 600); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done; echo "timed out: $*" >&2; return 1; }
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export AIM_ADDR="http://127.0.0.1:$port"

step "aim serve, checkpointing its audit chain every minute"
printf 'checkpoint_interval_seconds = 60\n' > "$work/aim.toml"
(cd "$work" && exec "$aim_bin" serve --listen "127.0.0.1:$port" --config aim.toml > serve.log 2>&1) &
pid=$!
wait_for test -s "$work/aim-data/bootstrap-admin-token"
export AIM_TOKEN=$(cat "$work/aim-data/bootstrap-admin-token")
wait_for aim identity list

step "people: two sponsors, an approver, an auditor"
aim human add alice@example.com --role sponsor
aim human add carol@example.com --role sponsor
aim human add bob@example.com --role approver
BOB=$(aim human credential create bob@example.com --label laptop)
aim human add dana@example.com --role auditor
DANA=$(aim human credential create dana@example.com --label laptop)

step "identities: an agent, a service account whose sponsor leaves, a bot on bearer tokens"
request() {
    aim identity request "$1" --kind "$2" --autonomy "$3" --team platform --sponsor "$4" \
      --purpose "$5" --system "$6" --sensitivity internal --criticality low --impact low --expires-in 90d
    AIM_TOKEN=$BOB aim identity approve "$1" --reason "reviewed"
}
request agt-claims ai_agent autonomous alice@example.com "Triage insurance claims" claims
request svc-billing-export service_account automation carol@example.com "Nightly billing export" billing
request bot-legacy-reports bot automation alice@example.com "Weekly reports to the old BI server" reporting
aim identity bearer bot-legacy-reports --reason "the BI server's client cannot sign DPoP proofs"
aim human deactivate carol@example.com --reason "left the company"
aim policy apply -f "$here/../mcp-gateway/policies/" --comment "the gateway example's policies"

step "discovery: what already exists outside aim"
aim discover import aws-credential-report --source aws-prod "$fixtures/credential_report.csv"
aim discover import aws-authorization --source aws-prod "$fixtures/authorization_details.json"
aim discover import kubernetes --source k8s-prod "$fixtures/kubernetes.json"
aim discover import csv --source saas-bots --mapping "$fixtures/saas_bots.mapping" "$fixtures/saas_bots.csv"

step "the compliance report, by the auditor, in three formats"
AIM_TOKEN=$DANA aim report compliance --format md --out "$out/report.md"
AIM_TOKEN=$DANA aim report compliance --format json --out "$out/report.json"
AIM_TOKEN=$DANA aim report compliance --format html --out "$out/report.html"
AIM_TOKEN=$DANA aim report list

step "the report names who is behind each control not met"
python3 - "$out/report.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
by_id = {c["id"]: c for c in r["controls"]}
def named(control):
    return {n for k in by_id[control]["checks"] if k["status"] != "met" for n in k.get("names", [])}
assert "svc-billing-export" in named("NHI1"), named("NHI1")
assert "bot-legacy-reports" in named("NHI4"), named("NHI4")
assert any(n.startswith("aws-prod/") for n in named("NHI7")), named("NHI7")
unmet = [c for c in r["controls"] if c["status"] == "not_met"]
for c in unmet:
    failing = [k for k in c["checks"] if k["status"] == "not_met"]
    assert all(k.get("names") or k["count"] == 0 for k in failing), c
print(f"score {r['score']}: {len(unmet)} controls not met, each with the names behind it")
assert len(r["trend"]) == 2, r["trend"]  # the Markdown one, then this one
PY
echo "report written to $out/report.html"
