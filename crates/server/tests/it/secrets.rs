//! Credentials for upstreams kept in aim: sealed at rest, never listed or recorded, read
//! back only by a gateway account (named after the attack or the mistake).

use aim_api::secrets::PutUpstreamSecret;
use aim_domain::human::Role;
use aim_testkit::TestServer;

use crate::fixtures::code;

crate::api_tests!(
    only_a_gateway_reads_a_value_and_nothing_else_shows_it,
    a_secret_for_named_gateways_is_refused_to_the_others,
    bad_names_and_values_are_refused_and_nothing_is_half_written,
);

const VALUE: &str = "sk_live_51HxRealLookingKey0000000000";

fn put(value: &str) -> PutUpstreamSecret {
    PutUpstreamSecret {
        value: value.to_owned(),
        description: "CRM API key".into(),
        gateways: Vec::new(),
    }
}

mod cases {
    use super::*;

    pub async fn only_a_gateway_reads_a_value_and_nothing_else_shows_it(s: &TestServer) {
        let (_, gateway) = s.human("gw", &[Role::Gateway]).await;
        let (_, auditor) = s.human("audrey", &[Role::Auditor]).await;
        let stored = s
            .admin
            .put_upstream_secret("crm-key", &put(VALUE))
            .await
            .unwrap();
        assert_eq!(stored.version, 1);
        // Sealed at rest: the stored bytes are not the value.
        let (_, sealed) =
            s.db.store
                .upstream_secret("crm-key")
                .await
                .unwrap()
                .unwrap();
        assert!(!sealed.windows(VALUE.len()).any(|w| w == VALUE.as_bytes()));
        let read = gateway.gateway_upstream_secret("crm-key").await.unwrap();
        assert_eq!((read.value.as_str(), read.version), (VALUE, 1));
        // Not even an admin reads it back; an auditor sees the metadata only.
        assert_eq!(
            code(s.admin.gateway_upstream_secret("crm-key").await),
            "forbidden"
        );
        assert_eq!(
            code(auditor.gateway_upstream_secret("crm-key").await),
            "forbidden"
        );
        let listed = serde_json::to_string(&auditor.upstream_secrets().await.unwrap()).unwrap();
        assert!(
            listed.contains("crm-key") && !listed.contains(VALUE),
            "{listed}"
        );
        assert_eq!(code(gateway.upstream_secrets().await), "forbidden");
        assert_eq!(
            code(gateway.put_upstream_secret("crm-key", &put("x")).await),
            "forbidden"
        );
        // Replaced: a new version, read as such.
        let again = s
            .admin
            .put_upstream_secret("crm-key", &put("rotated-value"))
            .await
            .unwrap();
        assert_eq!(again.version, 2);
        let read = gateway.gateway_upstream_secret("crm-key").await.unwrap();
        assert_eq!((read.value.as_str(), read.version), ("rotated-value", 2));
        // On the record: stored twice, read twice, and never the value.
        let events = s
            .admin
            .audit(&vec![("limit", "1000".into())])
            .await
            .unwrap()
            .items;
        let actions: Vec<&str> = events
            .iter()
            .map(|e| e.action.as_str())
            .filter(|a| a.starts_with("upstream_secret."))
            .collect();
        assert_eq!(
            actions
                .iter()
                .filter(|a| **a == "upstream_secret.stored")
                .count(),
            2
        );
        assert_eq!(
            actions
                .iter()
                .filter(|a| **a == "upstream_secret.read")
                .count(),
            2
        );
        let record = serde_json::to_string(&events).unwrap();
        assert!(!record.contains(VALUE) && !record.contains("rotated-value"));
        s.admin.delete_upstream_secret("crm-key").await.unwrap();
        assert_eq!(
            code(gateway.gateway_upstream_secret("crm-key").await),
            "not_found"
        );
        assert_eq!(
            code(s.admin.delete_upstream_secret("crm-key").await),
            "not_found"
        );
    }

    pub async fn bad_names_and_values_are_refused_and_nothing_is_half_written(s: &TestServer) {
        assert_eq!(
            code(s.admin.put_upstream_secret("a b", &put(VALUE)).await),
            "invalid_secret_name"
        );
        for bad in ["", "line\r\nX-Injected: 1", "ünïcode"] {
            assert_eq!(
                code(s.admin.put_upstream_secret("crm-key", &put(bad)).await),
                "invalid_secret",
                "{bad:?}"
            );
        }
        assert!(s.admin.upstream_secrets().await.unwrap().is_empty());
    }

    pub async fn a_secret_for_named_gateways_is_refused_to_the_others(s: &TestServer) {
        let (_, eu) = s.human("gw-eu-1", &[Role::Gateway]).await;
        let (_, us) = s.human("gw-us-1", &[Role::Gateway]).await;
        let mut body = put(VALUE);
        body.gateways = vec!["gw-eu-1".into()];
        s.admin.put_upstream_secret("eu-key", &body).await.unwrap();
        assert_eq!(
            eu.gateway_upstream_secret("eu-key").await.unwrap().value,
            VALUE
        );
        assert_eq!(
            code(us.gateway_upstream_secret("eu-key").await),
            "forbidden"
        );
        let listed = s.admin.upstream_secrets().await.unwrap();
        assert_eq!(listed[0].gateways, ["gw-eu-1"]);
    }
}
