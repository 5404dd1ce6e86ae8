//! `/v1/audit`: filters, paging, single records, and the chain visible to auditors.

use aim_domain::human::Role;

use crate::api_tests;
use crate::fixtures::{ClockExt, active_identity, cast, code};

api_tests!(
    filters_select_the_right_records,
    records_link_into_one_chain,
    events_carry_the_request_behind_them,
    two_replicas_write_one_chain,
    a_task_traces_from_request_to_tool_call,
);

mod cases {
    use super::*;
    use aim_testkit::TestServer;

    /// The events issue 4 and 5 write for a task (its creation, a token, a decision under
    /// it, a sub-agent's token exchanged from it and a tool call under that), appended
    /// straight into the store; the trace must put them back in causal order.
    pub async fn a_task_traces_from_request_to_tool_call(s: &TestServer) {
        use aim_domain::event::{Actor, Event, ModelDecision, Outcome, Trail};
        use aim_domain::ids::TaskId;
        let task = TaskId::new();
        let t = task.to_string();
        let trail = |jti: &str, act: &[&str]| Trail {
            act: act.iter().map(|a| a.to_string()).collect(),
            task_id: t.clone(),
            jti: jti.into(),
            triggered_by: "TICKET-42".into(),
            ..Trail::default()
        };
        let at = s.clock_now();
        let ev = |actor: Actor, action: &str, target: &str| {
            Event::new(
                at,
                actor,
                aim_domain::event::AuditAction::parse(action).unwrap(),
                "identity",
                target,
            )
        };
        let records = [
            ev(
                Actor::human(aim_domain::ids::HumanId::new()),
                "task.opened",
                "agent-a",
            )
            .trail(trail("", &[])),
            ev(Actor::system("issuer"), "token.issued", "agent-a").trail(trail("j-a", &[])),
            ev(Actor::system("issuer"), "token.issued", "agent-b")
                .detail(serde_json::json!({ "parent_jti": "j-a" }))
                .trail(trail("j-b", &["agent-a"])),
            ev(Actor::system("pdp"), "decision", "crm")
                .outcome(Outcome::Allow)
                .trail(Trail {
                    policies: vec!["crm-read".into()],
                    model_decision: Some(ModelDecision {
                        rationale: "need the customer's address".into(),
                        tool_call_id: "call_1".into(),
                    }),
                    ..trail("j-b", &["agent-a"])
                }),
            ev(Actor::system("gateway"), "tool.called", "crm").trail(trail("j-b", &["agent-a"])),
            ev(Actor::system("issuer"), "token.revoked", "agent-a").trail(trail("j-a", &[])),
        ];
        for r in &records {
            s.db.store.append_event(r).await.unwrap();
        }
        // Another task's record stays out.
        s.db.store
            .append_event(
                &ev(Actor::system("issuer"), "token.issued", "x").trail(Trail {
                    task_id: TaskId::new().to_string(),
                    jti: "j-other".into(),
                    ..Trail::default()
                }),
            )
            .await
            .unwrap();

        let (_, auditor) = s.human("trace-aud", &[Role::Auditor]).await;
        let page = auditor.audit(&vec![("task", t.clone())]).await.unwrap();
        assert_eq!(page.items.len(), records.len());
        let by_token = auditor
            .audit(&vec![("jti", "j-b".to_owned())])
            .await
            .unwrap();
        assert_eq!(by_token.items.len(), 3);

        let trace = auditor.audit_trace(task).await.unwrap();
        assert_eq!(trace.triggered_by, vec!["TICKET-42".to_owned()]);
        assert_eq!(trace.events.len(), 1);
        assert_eq!(trace.events[0].action.as_str(), "task.opened");
        assert_eq!(trace.tokens.len(), 1);
        let a = &trace.tokens[0];
        assert_eq!(a.jti, "j-a");
        let actions = |es: &[Event]| es.iter().map(|e| e.action.as_str()).collect::<Vec<_>>();
        assert_eq!(actions(&a.events), ["token.issued", "token.revoked"]);
        let b = &a.tokens[0];
        assert_eq!(b.jti, "j-b");
        assert_eq!(
            actions(&b.events),
            ["token.issued", "decision", "tool.called"]
        );
        assert_eq!(b.events[1].trail.policies, ["crm-read"]);

        let unknown = auditor.audit_trace(TaskId::new()).await;
        assert_eq!(code(unknown), "not_found");
        let bad = s
            .client(Some(&s.admin_token))
            .audit(&vec![("jti", "a b\n".to_owned())])
            .await;
        assert_eq!(code(bad), "validation_failed");
    }

    pub async fn filters_select_the_right_records(s: &TestServer) {
        let c = cast(s).await;
        let a = active_identity(s, &c, "agt-audit-a").await;
        let start_b = s.clock_now().plus_days(1);
        s.clock.advance_days(1);
        let b = active_identity(s, &c, "agt-audit-b").await;
        c.sponsor_client
            .identity_action(b.id, "suspend", "paused")
            .await
            .unwrap();
        let refused = c.sponsor_client.identity_action(b.id, "unlock", "no").await;
        assert_eq!(code(refused), "forbidden");

        let (_, auditor) = s.human("aud", &[Role::Auditor]).await;
        let actions = |items: Vec<aim_domain::event::Event>| {
            items
                .into_iter()
                .map(|e| e.action.as_str())
                .collect::<Vec<_>>()
        };
        let about_a = auditor
            .audit(&vec![("identity", a.id.to_string())])
            .await
            .unwrap();
        assert_eq!(
            actions(about_a.items),
            ["identity.requested", "identity.approved"]
        );
        let about_b = auditor
            .audit(&vec![("identity", b.id.to_string())])
            .await
            .unwrap();
        assert_eq!(
            actions(about_b.items),
            [
                "identity.requested",
                "identity.approved",
                "identity.suspended"
            ]
        );
        // By a human: what they did and what was done to them.
        let by_sponsor = auditor
            .audit(&vec![("human", c.sponsor.id.to_string())])
            .await
            .unwrap()
            .items;
        assert!(by_sponsor.iter().any(
            |e| e.action.as_str() == "human.created" && e.target_id == c.sponsor.id.to_string()
        ));
        assert!(
            by_sponsor
                .iter()
                .any(|e| e.action.as_str() == "identity.suspended")
        );
        assert!(
            by_sponsor
                .iter()
                .any(|e| e.action.as_str() == "request.refused"),
            "their refused attempt too"
        );
        assert!(
            !by_sponsor
                .iter()
                .any(|e| e.action.as_str() == "identity.approved"),
            "approvals were the approver's"
        );
        let denied = auditor
            .audit(&vec![("outcome", "denied".into())])
            .await
            .unwrap()
            .items;
        assert!(
            denied
                .iter()
                .all(|e| e.action.as_str() == "request.refused")
                && !denied.is_empty()
        );
        let approvals = auditor
            .audit(&vec![("action", "identity.approved".into())])
            .await
            .unwrap()
            .items;
        assert_eq!(approvals.len(), 2);
        let since = auditor
            .audit(&vec![
                ("since", start_b.to_string()),
                ("action", "identity.approved".into()),
            ])
            .await
            .unwrap();
        assert_eq!(
            since
                .items
                .iter()
                .map(|e| e.target_id.clone())
                .collect::<Vec<_>>(),
            [b.id.to_string()]
        );
        let until = auditor
            .audit(&vec![
                ("until", start_b.to_string()),
                ("action", "identity.approved".into()),
            ])
            .await
            .unwrap();
        assert_eq!(
            until
                .items
                .iter()
                .map(|e| e.target_id.clone())
                .collect::<Vec<_>>(),
            [a.id.to_string()]
        );
        // Paging by sequence number, and one record by its number.
        let first = auditor.audit(&vec![("limit", "2".into())]).await.unwrap();
        let next = first.next_cursor.clone().unwrap();
        let second = auditor
            .audit(&vec![("limit", "2".into()), ("cursor", next)])
            .await
            .unwrap();
        assert_eq!(second.items[0].seq, first.items[1].seq + 1);
        let one = auditor.audit_record(first.items[0].seq).await.unwrap();
        assert_eq!(one, first.items[0]);
        assert_eq!(code(auditor.audit_record(1_000_000).await), "not_found");
        assert_eq!(
            code(auditor.audit(&vec![("cursor", "-3".into())]).await),
            "invalid_cursor"
        );
        assert_eq!(
            code(auditor.audit(&vec![("outcome", "maybe".into())]).await),
            "invalid_query"
        );
        // An action aim never writes is a mistake, not an empty answer.
        for wrong in ["a b", "decision.evaluated"] {
            assert_eq!(
                code(auditor.audit(&vec![("action", wrong.into())]).await),
                "invalid_action"
            );
        }
        assert_eq!(code(c.sponsor_client.audit(&vec![]).await), "forbidden");
    }

    pub async fn events_carry_the_request_behind_them(s: &TestServer) {
        let http = reqwest::Client::new();
        let post = |id: &'static str, body: serde_json::Value| {
            http.post(format!("{}/v1/humans", s.base))
                .bearer_auth(&s.admin_token)
                .header("x-request-id", id)
                .json(&body)
                .send()
        };
        let resp = post(
            "ticket-4711",
            serde_json::json!({ "user_name": "req@example.com" }),
        )
        .await
        .unwrap();
        assert_eq!(resp.status(), 201);
        assert_eq!(resp.headers()["x-request-id"], "ticket-4711", "echoed");
        let refused = post("ticket-4712", serde_json::json!({ "user_name": "" }))
            .await
            .unwrap();
        assert_eq!(refused.status(), 422);
        // An id that is not short and plain is replaced by one aim makes.
        let odd = post(
            "has spaces in it",
            serde_json::json!({ "user_name": "odd@example.com" }),
        )
        .await
        .unwrap();
        assert_eq!(odd.status(), 201);
        let all = crate::fixtures::all_events(s).await;
        let created = all
            .iter()
            .find(|e| {
                e.action.as_str() == "human.created" && e.detail["user_name"] == "req@example.com"
            })
            .unwrap();
        assert_eq!(
            (created.request_id.as_str(), created.source.as_str()),
            ("ticket-4711", "127.0.0.1")
        );
        let refusal = all
            .iter()
            .find(|e| e.action.as_str() == "request.refused")
            .unwrap();
        assert_eq!(
            (refusal.request_id.as_str(), refusal.source.as_str()),
            ("ticket-4712", "127.0.0.1")
        );
        let odd = all
            .iter()
            .find(|e| e.detail["user_name"] == "odd@example.com")
            .unwrap();
        assert!(
            aim_domain::ids::IdentityId::parse(&odd.request_id).is_ok(),
            "{}",
            odd.request_id
        );
        // Requests without an id get one too, and sweeps (no request) have none.
        let (_, client) = s.human("plain", &[Role::Sponsor]).await;
        client.identities(&vec![]).await.unwrap();
        let plain = crate::fixtures::all_events(s).await;
        assert!(
            plain
                .iter()
                .filter(|e| e.actor.kind.as_str() == "human")
                .all(|e| !e.request_id.is_empty())
        );
    }

    /// Two `aim serve` replicas on one database take writes at the same time: one chain, no
    /// forks, every acknowledged write and its event present.
    pub async fn two_replicas_write_one_chain(s: &TestServer) {
        let second = aim_client::Client::new(&s.replica().await, Some(s.admin_token.clone()));
        let before = crate::fixtures::all_events(s).await.len() as i64;
        let mut tasks = Vec::new();
        for (r, client) in [s.admin.clone(), second].into_iter().enumerate() {
            for w in 0..3 {
                let client = client.clone();
                tasks.push(tokio::spawn(async move {
                    let mut made = Vec::new();
                    for n in 0..15 {
                        let user = format!("r{r}-w{w}-{n}@example.com");
                        let new = aim_domain::human::NewHuman {
                            user_name: user.clone(),
                            display_name: None,
                            email: None,
                            external_id: None,
                            roles: vec![],
                            groups: Vec::new(),
                        };
                        client.create_human(&new).await.unwrap();
                        made.push(user);
                    }
                    made
                }));
            }
        }
        let mut made = Vec::new();
        for t in tasks {
            made.extend(t.await.unwrap());
        }
        assert_eq!(made.len(), 90);
        let verdict = aim_store::verify_chain(s.db.store.as_ref(), None)
            .await
            .unwrap();
        assert_eq!(
            verdict,
            Ok(before + 90),
            "one intact chain with every write"
        );
        let all = crate::fixtures::all_events(s).await;
        for user in &made {
            assert!(
                all.iter().any(|e| e.action.as_str() == "human.created"
                    && e.detail["user_name"] == user.as_str()),
                "{user}"
            );
        }
    }

    pub async fn records_link_into_one_chain(s: &TestServer) {
        let c = cast(s).await;
        active_identity(s, &c, "agt-linked").await;
        let all = crate::fixtures::all_events(s).await;
        assert!(all.len() >= 5);
        assert_eq!(all[0].prev_hash, "0".repeat(64));
        for pair in all.windows(2) {
            assert_eq!(
                pair[1].prev_hash, pair[0].hash,
                "record {} links to {}",
                pair[1].seq, pair[0].seq
            );
            assert_eq!(pair[1].seq, pair[0].seq + 1);
        }
        let head = s.admin.audit_head().await.unwrap();
        let last = all.last().unwrap();
        assert_eq!(
            (head.seq, head.hash.as_str()),
            (last.seq, last.hash.as_str())
        );
        // A signed checkpoint of the head; a second request without new records returns it.
        let cp = s.admin.create_checkpoint().await.unwrap();
        assert_eq!((cp.seq, cp.hash.as_str()), (last.seq, last.hash.as_str()));
        assert_eq!(aim_token::checkpoint::verify(&cp, None), Ok(()));
        assert_eq!(s.admin.create_checkpoint().await.unwrap(), cp);
        assert_eq!(
            code(c.sponsor_client.create_checkpoint().await),
            "forbidden"
        );
        // Anyone holding the records can recompute every hash.
        for e in &all {
            let prev = aim_domain::audit::from_hex(&e.prev_hash).unwrap();
            let hash = aim_domain::audit::chain_hash(&prev, e);
            assert_eq!(aim_domain::audit::to_hex(&hash), e.hash);
        }
    }
}
