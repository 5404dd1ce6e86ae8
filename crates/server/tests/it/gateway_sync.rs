//! What a gateway that decides by itself reads from aim, and how its decisions reach the
//! record: only a gateway reads them, a record is a decision and spends a proof once, and
//! every refusal says why.

use aim_api::gateway::{GatewayLive, GatewayRecord};
use aim_domain::event::{Actor, AuditAction, Event};
use aim_domain::human::Role;
use aim_domain::ids::{IdentityId, TaskId};
use aim_domain::single_use::Claim;
use aim_testkit::TestServer;
use serde_json::json;

use crate::fixtures::{ClockExt, code};

crate::api_tests!(
    a_gateway_reads_the_policy_set_and_grants_and_nobody_else_does,
    a_gateways_decision_is_recorded_with_its_proof_spent_once,
    a_gateway_records_decisions_only,
    live_state_for_an_unknown_identity_is_none_and_a_flood_of_names_is_refused,
);

fn record(s: &TestServer, claim: &str) -> GatewayRecord {
    let event = Event::new(
        s.clock_now(),
        Actor::identity(IdentityId::new()),
        AuditAction::Decision,
        "Resource",
        "crm/customers/1",
    )
    .detail(json!({ "action": "read", "policy_version": 1 }));
    GatewayRecord {
        event,
        claims: vec![Claim {
            id: claim.to_owned(),
            expires_at: s.clock_now().plus_seconds(60),
        }],
    }
}

mod cases {
    use super::*;

    pub async fn a_gateway_reads_the_policy_set_and_grants_and_nobody_else_does(s: &TestServer) {
        let (_, gateway) = s.human("gw", &[Role::Gateway]).await;
        let before = gateway.gateway_state().await.unwrap();
        let policies: aim_api::policies::ApplyBody = serde_json::from_value(json!({
            "sources": [{ "name": "p.cedar", "text": "@id(\"all\")\npermit(principal, action, resource);" }],
        }))
        .unwrap();
        s.admin.apply_policies(&policies).await.unwrap();
        let after = gateway.gateway_state().await.unwrap();
        assert_eq!(after.policy_version, before.policy_version + 1);
        assert_eq!(after.policies.sources[0].name, "p.cedar");
        assert!(!after.issuer.is_empty());
        aim_enforce::policies::compile(&after.schema, &after.policies)
            .expect("what aim serves compiles where it is enforced");
        let (_, sponsor) = s.human("sam", &[Role::Sponsor]).await;
        assert_eq!(code(sponsor.gateway_state().await), "forbidden");
        assert_eq!(
            code(sponsor.gateway_record(&record(s, "dpop:k:1"), "r").await),
            "forbidden"
        );
    }

    pub async fn a_gateways_decision_is_recorded_with_its_proof_spent_once(s: &TestServer) {
        let (_, gateway) = s.human("gw", &[Role::Gateway]).await;
        let first = gateway
            .gateway_record(&record(s, "dpop:k:once"), "r-1")
            .await
            .unwrap();
        assert_eq!(first.seqs.len(), 1);
        let stored = s.admin.audit_record(first.seqs[0]).await.unwrap();
        assert_eq!(
            stored.detail["gateway"], "gw",
            "the record names its gateway"
        );
        assert_eq!(stored.action, AuditAction::Decision);
        // The same proof again: refused.
        let head = s.admin.audit_head().await.unwrap();
        assert_eq!(
            code(
                gateway
                    .gateway_record(&record(s, "dpop:k:once"), "r-2")
                    .await
            ),
            "dpop_replayed"
        );
        // What is written is the refusal, not the decision.
        let now = s.admin.audit_head().await.unwrap().seq;
        for seq in head.seq + 1..=now {
            let e = s.admin.audit_record(seq).await.unwrap();
            assert_ne!(e.action, AuditAction::Decision, "{e:?}");
        }
        // Batched records were acted on already: a replayed one is kept, marked.
        let batch = [record(s, "dpop:k:two"), record(s, "dpop:k:once")];
        let recorded = gateway.gateway_records(&batch, "r-3").await.unwrap();
        assert_eq!(recorded.seqs.len(), 2);
        assert_eq!(recorded.replayed, [1]);
        let replayed = s.admin.audit_record(recorded.seqs[1]).await.unwrap();
        assert_eq!(replayed.detail["replayed"], true);
    }

    pub async fn a_gateway_records_decisions_only(s: &TestServer) {
        let (_, gateway) = s.human("gw", &[Role::Gateway]).await;
        let mut forged = record(s, "dpop:k:1");
        forged.event.action = AuditAction::IdentityApproved;
        assert_eq!(
            code(gateway.gateway_record(&forged, "r").await),
            "invalid_records"
        );
        // Only DPoP proofs are spent through a gateway, one per decision.
        let other = record(s, "assertion:someone:1");
        assert_eq!(
            code(gateway.gateway_record(&other, "r").await),
            "invalid_records"
        );
        let mut two = record(s, "dpop:k:2");
        two.claims.push(two.claims[0].clone());
        assert_eq!(
            code(gateway.gateway_record(&two, "r").await),
            "invalid_records"
        );
        let mut flat = record(s, "dpop:k:3");
        flat.event.detail = json!("not an object");
        assert_eq!(
            code(gateway.gateway_record(&flat, "r").await),
            "invalid_records"
        );
        assert_eq!(
            code(gateway.gateway_records(&[], "r").await),
            "invalid_records"
        );
    }

    pub async fn live_state_for_an_unknown_identity_is_none_and_a_flood_of_names_is_refused(
        s: &TestServer,
    ) {
        let (_, gateway) = s.human("gw", &[Role::Gateway]).await;
        let mut asked = GatewayLive {
            identity: IdentityId::new(),
            task: TaskId::new(),
            always: vec![],
            earlier: vec![],
            delegators: vec![],
        };
        let live = gateway.gateway_live(&asked, "r").await.unwrap();
        assert!(live.context.is_none() && live.sponsor.is_none());
        asked.always = (0..65)
            .map(|i| {
                (
                    aim_domain::agent_key::RevocationKind::Token,
                    format!("t{i}"),
                )
            })
            .collect();
        assert_eq!(
            code(gateway.gateway_live(&asked, "r").await),
            "too_many_names"
        );
    }
}
