//! Audit records in the formats SIEMs ingest: OCSF (JSON) and CEF (text). Every string a
//! user or agent supplied is escaped for the format, so no value can forge a field, a record
//! or a line.
//!
//! OCSF classes: 3001 Account Change (identity and human lifecycle), 3002 Authentication
//! (refused credentials, tokens issued and revoked), 3003 Authorize Session (runtime
//! decisions), 6003 API Activity (tool calls and other refused requests), 2004 Detection
//! Finding (dormant, orphaned and anomalous identities). The task, session and token an
//! event belongs to go to `metadata.correlation_uid` and `actor.session`. Each OCSF record keeps the original record
//! under `unmapped.aim`, hashes included, so an export can still be verified.

use aim_domain::event::{AuditAction, Event, Outcome};
use serde_json::{Value, json};

/// The OCSF schema version the records follow.
pub const OCSF_VERSION: &str = "1.3.0";

/// (class_uid, category_uid, activity_id, class name) for one record: one arm per audit
/// action, so a new action cannot reach a SIEM under the wrong class.
fn ocsf_class(e: &Event) -> (u32, u32, u32, &'static str) {
    use AuditAction as A;
    const ACCOUNT: (u32, u32, &str) = (3001, 3, "Account Change");
    const AUTHENTICATION: (u32, u32, &str) = (3002, 3, "Authentication");
    const AUTHORIZE: (u32, u32, &str) = (3003, 3, "Authorize Session");
    const API: (u32, u32, &str) = (6003, 6, "API Activity");
    const FINDING: (u32, u32, &str) = (2004, 2, "Detection Finding");
    const INVENTORY: (u32, u32, &str) = (5001, 5, "Inventory Info");
    const COMPLIANCE: (u32, u32, &str) = (2003, 2, "Compliance Finding");
    let ((class, category, name), activity) = match e.action {
        A::RequestRefused if e.reason == "unauthenticated" => (AUTHENTICATION, 1),
        A::RequestRefused | A::ToolCalled | A::UpstreamSecretRead => (API, 99),
        A::IdentityFlaggedDormant
        | A::IdentityOrphaned
        | A::AnomalyDetected
        | A::ToolDiscovered => (FINDING, 1),
        // The finding's subject changed: the dormant identity is in use again.
        A::IdentityActiveAgain => (FINDING, 2),
        // Collect: what a discovery source holds, read in.
        A::DiscoveryImportStarted
        | A::DiscoveryAccountsImported
        | A::DiscoveryImportFinished
        | A::DiscoveryImportAbandoned
        | A::DiscoveryAccountAdopted
        | A::DiscoveryAccountMarked => (INVENTORY, 2),
        // Update: the finding stays, acknowledged for a while; findings assessed again.
        A::DiscoveryFindingAcknowledged | A::DiscoveryFindingsReassessed => (FINDING, 2),
        // Create: the posture read against the frameworks, its score kept.
        A::ComplianceReported => (COMPLIANCE, 1),
        // Closed: an admin said the anomaly was expected.
        A::AnomalyExpected => (FINDING, 3),
        // Authentication Ticket for an issued token, Logoff for a revoked one.
        A::TokenIssued | A::TokenRefused => (AUTHENTICATION, 3),
        A::TokenRevoked => (AUTHENTICATION, 2),
        // Assign Privileges when allowed; Other for a denial or a hold for approval.
        A::Decision if e.outcome == Outcome::Allow => (AUTHORIZE, 1),
        A::Decision => (AUTHORIZE, 99),
        A::IdentityRequested
        | A::IdentityImported
        | A::HumanCreated
        | A::HumanProvisioned
        | A::CredentialCreated
        | A::AgentKeyAdded
        | A::JoinTokenCreated
        | A::SigningKeyCreated
        | A::CheckpointKeyCreated
        | A::GroupProvisioned
        | A::TaskOpened
        | A::PolicyApplied
        | A::ToolApproved
        | A::UpstreamSecretStored
        | A::ApprovalRequested
        | A::GrantAdded
        | A::GrantRequested
        | A::LeaseAcquired => (ACCOUNT, 1),
        A::IdentityApproved
        | A::IdentityResumed
        | A::IdentityUnlocked
        | A::HumanReactivated
        | A::IdentitySponsorReturned
        | A::ApprovalApproved
        | A::IdentityChangeApproved
        | A::IdentityBearerAllowed
        | A::GrantApproved => (ACCOUNT, 2),
        A::IdentitySuspended
        | A::IdentityExpired
        | A::IdentityRejected
        | A::HumanDeparted
        | A::GroupDeleted
        | A::CredentialRevoked
        | A::AgentKeyRevoked
        | A::SigningKeyRevoked
        | A::SigningKeyRetired
        | A::TaskEnded
        | A::ApprovalDenied
        | A::IdentityChangeRejected
        | A::IdentityBearerWithdrawn
        | A::GrantDenied
        | A::GrantRevoked
        | A::LeaseReleased => (ACCOUNT, 5),
        A::IdentityDecommissioned | A::UpstreamSecretDeleted => (ACCOUNT, 6),
        A::IdentityLocked => (ACCOUNT, 9),
        A::IdentityAttested
        | A::GroupChanged
        | A::IdentityChanged
        | A::HumanChanged
        | A::TaskNarrowed
        | A::PolicyRolledBack
        | A::ApprovalWebhookFailed
        | A::JoinRefused => (ACCOUNT, 99),
    };
    (class, category, activity, name)
}

/// One record as an OCSF event.
pub fn ocsf(e: &Event) -> Value {
    let (class_uid, category_uid, activity_id, class_name) = ocsf_class(e);
    let failed = matches!(e.outcome, Outcome::Denied | Outcome::Deny);
    let (status_id, status) = match e.outcome {
        Outcome::Success | Outcome::Allow => (1, "Success"),
        Outcome::Denied | Outcome::Deny => (2, "Failure"),
        Outcome::ApprovalRequired => (99, "Approval required"),
    };
    let t = &e.trail;
    let correlation = if t.task_id.is_empty() {
        &e.request_id
    } else {
        &t.task_id
    };
    let mut v = json!({
        "class_uid": class_uid,
        "class_name": class_name,
        "category_uid": category_uid,
        "activity_id": activity_id,
        "type_uid": class_uid * 100 + activity_id,
        "time": e.at.as_millis(),
        "severity_id": if failed { 3 } else { 1 },
        "status_id": status_id,
        "status": status,
        "message": e.reason,
        "metadata": {
            "version": OCSF_VERSION,
            "product": { "name": "aim", "vendor_name": "aim", "version": env!("CARGO_PKG_VERSION") },
            "uid": e.seq.to_string(),
            "correlation_uid": correlation,
            "event_code": e.action,
        },
        "actor": { "user": { "uid": e.actor.id, "type": e.actor.kind.as_str() } },
        "unmapped": { "aim": e },
    });
    if !e.source.is_empty() {
        v["src_endpoint"] = json!({ "ip": e.source });
    }
    if !t.session_id.is_empty() || !t.jti.is_empty() {
        v["actor"]["session"] = json!({ "uid": t.session_id, "credential_uid": t.jti });
    }
    if !t.act.is_empty() {
        v["actor"]["invoked_by"] = json!(t.act.join(","));
    }
    if !t.policies.is_empty() {
        v["policies"] = json!(
            t.policies
                .iter()
                .map(|p| json!({ "uid": p }))
                .collect::<Vec<_>>()
        );
    }
    match class_uid {
        3001 => v["user"] = json!({ "uid": e.target_id, "type": e.target_type }),
        2004 => {
            v["finding_info"] =
                json!({ "uid": format!("aim-{}", e.seq), "title": e.action, "desc": e.reason });
            v["resources"] = json!([{ "uid": e.target_id, "type": e.target_type }]);
            if e.action == AuditAction::AnomalyDetected {
                behavioural(e, &mut v);
            }
        }
        3002 => v["user"] = json!({ "uid": e.target_id, "type": e.target_type }),
        3003 => {
            v["user"] = json!({ "uid": e.actor.id, "type": e.actor.kind.as_str() });
            v["resources"] = json!([{ "uid": e.target_id, "type": e.target_type }]);
        }
        _ => v["api"] = json!({ "operation": e.target_id }),
    }
    v
}

/// A behavioural finding's detail: which detectors found what against which baseline (a
/// Behavioral analytic), its severity (the highest of its anomalies) and the response.
fn behavioural(e: &Event, v: &mut Value) {
    let anomalies = e.detail["anomalies"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let rank = |s: &str| match s {
        "high" => 4,
        "medium" => 3,
        _ => 2,
    };
    let severity = anomalies
        .iter()
        .filter_map(|a| a["severity"].as_str())
        .map(rank)
        .max()
        .unwrap_or(1);
    v["severity_id"] = json!(severity);
    v["finding_info"]["types"] = json!(
        anomalies
            .iter()
            .filter_map(|a| a["detector"].as_str())
            .collect::<Vec<_>>()
    );
    v["finding_info"]["analytic"] =
        json!({ "name": "aim behavioural baseline", "type_id": 2, "type": "Behavioral" });
    v["observables"] = json!(
        anomalies
            .iter()
            .map(|a| json!({ "name": a["detector"], "type_id": 99, "type": "Other", "value": a["observed"] }))
            .collect::<Vec<_>>()
    );
    v["action"] = e.detail["response"].clone();
}

/// Escapes a CEF header field: `\` and `|`, and no line breaks.
fn cef_header(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '|' => out.push_str("\\|"),
            '\n' | '\r' => out.push(' '),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Escapes a CEF extension value: `\`, `=`, and line breaks as `\n` / `\r`.
fn cef_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '=' => out.push_str("\\="),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// One record as one CEF line (without the trailing newline).
pub fn cef(e: &Event) -> String {
    let severity = match e.outcome {
        Outcome::Denied | Outcome::Deny => 6,
        Outcome::ApprovalRequired => 5,
        Outcome::Success | Outcome::Allow => 3,
    };
    let mut ext = vec![
        ("rt", e.at.as_millis().to_string()),
        ("externalId", e.seq.to_string()),
        ("suser", format!("{}:{}", e.actor.kind, e.actor.id)),
        ("act", e.action.as_str().to_owned()),
        ("outcome", e.outcome.as_str().to_owned()),
        ("cs1Label", "target".to_owned()),
        ("cs1", format!("{}:{}", e.target_type, e.target_id)),
        ("cs2Label", "hash".to_owned()),
        ("cs2", e.hash.clone()),
        ("msg", e.reason.clone()),
    ];
    if !e.source.is_empty() {
        ext.push(("src", e.source.clone()));
    }
    let t = &e.trail;
    for (label, key, value) in [
        ("cs3Label", "cs3", ("request_id", &e.request_id)),
        ("cs4Label", "cs4", ("task_id", &t.task_id)),
        ("cs5Label", "cs5", ("jti", &t.jti)),
        ("cs6Label", "cs6", ("triggered_by", &t.triggered_by)),
    ] {
        if !value.1.is_empty() {
            ext.push((label, value.0.to_owned()));
            ext.push((key, value.1.clone()));
        }
    }
    if !t.policies.is_empty() {
        ext.push(("flexString1Label", "policies".to_owned()));
        ext.push(("flexString1", t.policies.join(",")));
    }
    let ext: Vec<String> = ext
        .into_iter()
        .map(|(k, v)| format!("{k}={}", cef_value(&v)))
        .collect();
    format!(
        "CEF:0|aim|aim|{}|{}|{}|{severity}|{}",
        cef_header(env!("CARGO_PKG_VERSION")),
        cef_header(e.action.as_str()),
        cef_header(&e.action.as_str().replace('.', " ")),
        ext.join(" ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use aim_domain::event::Actor;
    use aim_domain::time::Timestamp;

    fn event(action: &str, reason: &str) -> Event {
        let mut e = Event::new(
            Timestamp::from_millis(1_000),
            Actor::system("sweep"),
            AuditAction::parse(action).unwrap(),
            "identity",
            "id-1",
        )
        .reason(reason)
        .from_request("req-1", "10.0.0.7");
        e.seq = 7;
        e
    }

    #[test]
    fn a_behavioural_finding_carries_its_anomalies() {
        let mut e = event("anomaly.detected", "first access to system `hr-payroll`");
        e.detail = json!({
            "response": "lock",
            "anomalies": [
                { "detector": "new_system", "severity": "high", "observed": "hr-payroll", "baseline": "sensors", "explanation": "x" },
                { "detector": "off_hours", "severity": "low", "observed": "Sunday 03:00", "baseline": "weekdays", "explanation": "y" },
            ],
        });
        let v = ocsf(&e);
        assert_eq!(
            (v["class_uid"].as_u64(), v["severity_id"].as_u64()),
            (Some(2004), Some(4))
        );
        assert_eq!(
            v["finding_info"]["types"],
            json!(["new_system", "off_hours"])
        );
        assert_eq!(v["finding_info"]["analytic"]["type"], "Behavioral");
        assert_eq!(v["observables"][0]["value"], "hr-payroll");
        assert_eq!(v["action"], "lock");
        assert_eq!(
            v["finding_info"]["desc"],
            "first access to system `hr-payroll`"
        );
    }

    #[test]
    fn ocsf_classes() {
        let cases = [
            ("identity.requested", "", 3001, 1),
            ("identity.approved", "", 3001, 2),
            ("identity.suspended", "", 3001, 5),
            ("identity.locked", "", 3001, 9),
            ("identity.decommissioned", "", 3001, 6),
            ("identity.changed", "", 3001, 99),
            ("identity.flagged_dormant", "", 2004, 1),
            ("request.refused", "unauthenticated", 3002, 1),
            ("request.refused", "forbidden", 6003, 99),
            ("token.issued", "", 3002, 3),
            ("token.revoked", "", 3002, 2),
            ("tool.called", "", 6003, 99),
            ("anomaly.detected", "", 2004, 1),
            ("tool.discovered", "", 2004, 1),
            ("tool.approved", "", 3001, 1),
            // What `POST /v1/authorize` writes: an Authorize Session, not an Account Change.
            ("decision", "", 3003, 99),
        ];
        for (action, reason, class, activity) in cases {
            let v = ocsf(&event(action, reason));
            assert_eq!(
                (v["class_uid"].as_u64(), v["activity_id"].as_u64()),
                (Some(class), Some(activity)),
                "{action}"
            );
            assert_eq!(v["type_uid"].as_u64(), Some(class * 100 + activity));
            assert_eq!(
                v["unmapped"]["aim"]["seq"], 7,
                "the original record rides along"
            );
            assert_eq!(v["src_endpoint"]["ip"], "10.0.0.7");
        }
    }

    #[test]
    fn decisions_and_their_trail() {
        let mut e = event("decision", "").outcome(Outcome::Deny);
        e.trail = aim_domain::event::Trail {
            act: vec!["agent-a".into()],
            task_id: "task-1".into(),
            session_id: "s-1".into(),
            jti: "j-1".into(),
            triggered_by: "TICKET-7".into(),
            policies: vec!["p-1".into(), "p-2".into()],
            model_decision: None,
        };
        let v = ocsf(&e);
        assert_eq!(
            (v["class_uid"].as_u64(), v["activity_id"].as_u64()),
            (Some(3003), Some(99))
        );
        assert_eq!(v["status"], "Failure");
        assert_eq!(v["metadata"]["correlation_uid"], "task-1");
        assert_eq!(v["actor"]["session"]["credential_uid"], "j-1");
        assert_eq!(v["actor"]["invoked_by"], "agent-a");
        assert_eq!(v["policies"][1]["uid"], "p-2");
        let allowed = ocsf(&e.clone().outcome(Outcome::Allow));
        assert_eq!(
            (
                allowed["activity_id"].as_u64(),
                allowed["status_id"].as_u64()
            ),
            (Some(1), Some(1))
        );
        let held = ocsf(&e.clone().outcome(Outcome::ApprovalRequired));
        assert_eq!(held["status_id"].as_u64(), Some(99));
        let line = cef(&e);
        for part in [
            "cs4=task-1",
            "cs5=j-1",
            "cs6=TICKET-7",
            "flexString1=p-1,p-2",
            "|6|",
        ] {
            assert!(line.contains(part), "{part} in {line}");
        }
    }

    #[test]
    fn cef_escapes_what_would_forge_fields_or_lines() {
        let e = event(
            "identity.suspended",
            "bad|guy\\ said a=b\nCEF:0|fake|record",
        );
        let line = cef(&e);
        assert_eq!(line.lines().count(), 1, "{line}");
        assert!(line.starts_with("CEF:0|aim|aim|"), "{line}");
        assert!(
            line.contains(r"msg=bad|guy\\ said a\=b\nCEF:0|fake|record"),
            "{line}"
        );
        // The header has exactly 7 unescaped pipes.
        let header_end = line.find("|rt=").unwrap();
        assert_eq!(line[..=header_end].matches('|').count(), 7);
        // Header fields are escaped too, though actions come from a closed list.
        assert_eq!(cef_header("x|y\\z"), r"x\|y\\z");
    }
}
