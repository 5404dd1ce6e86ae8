//! The OpenAPI document of aim's own API, generated from the handlers and types.

use axum::Json;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

use crate::routes::{
    agent_keys, approvals, audit, authorize, behaviour, discovery, discovery_remedy, gateway,
    gateway_sync, grants, humans, identities, join, leases, oauth, policies, reports, scim,
    signing_keys, system, tasks, tools, upstream_secrets,
};

#[derive(Debug, OpenApi)]
#[openapi(
    info(title = "aim", description = "Control plane for the identities of AI agents and other non-human identities"),
    paths(
        identities::list, identities::request, identities::show, identities::change,
        identities::approve, identities::reject, identities::approve_change, identities::bearer,
        identities::reject_change, identities::suspend, identities::resume,
        identities::lock, identities::lock_all, identities::unlock, identities::decommission, identities::attest,
        humans::rotate_bootstrap, humans::list, humans::create, humans::show, humans::change, humans::deactivate,
        humans::reactivate, humans::create_credential, humans::credentials, humans::revoke_credential,
        system::healthz, system::readyz, system::run_sweep,
        agent_keys::add, agent_keys::list, agent_keys::revoke, join::create, join::join,
        tasks::list, tasks::show, tasks::end, oauth::revocations, oauth::stream,
        signing_keys::list, signing_keys::rotate, signing_keys::revoke,
        audit::list, audit::show, audit::trace, audit::head, audit::create_checkpoint, audit::latest_checkpoint,
        audit::checkpoint_keys, audit::rotate_checkpoint_key,
        policies::apply, policies::show, policies::versions, policies::version, policies::rollback,
        discovery::open, discovery::batch, discovery::finish, discovery::abandon, discovery::import, discovery::imports,
        discovery::accounts, discovery::account, discovery::findings,
        discovery_remedy::adopt, discovery_remedy::decommission, discovery_remedy::acknowledge,
        discovery_remedy::list, discovery_remedy::reassess,
        reports::generate, reports::list, reports::show,
        authorize::authorize, authorize::explain, behaviour::backtest, behaviour::why, behaviour::expected, gateway::authorize, gateway::refusal, gateway::feed, gateway::ack, gateway::call,
        gateway_sync::state, gateway_sync::live, gateway_sync::decisions,
        tools::seen, tools::verify, tools::permitted, tools::list, tools::show, tools::approve,
        upstream_secrets::put, upstream_secrets::list, upstream_secrets::delete, upstream_secrets::read,
        approvals::list, approvals::show, approvals::approve, approvals::deny,
        grants::add, grants::list, grants::show, grants::request, grants::approve, grants::deny, grants::revoke,
        leases::acquire, leases::show, leases::release,
        oauth::introspect, oauth::revoke, document,
        crate::tokens::endpoint::token, crate::tokens::discovery::jwks,
        crate::tokens::discovery::authorization_server, crate::tokens::discovery::openid_configuration,
        scim::list, scim::create, scim::show, scim::replace, scim::patch, scim::remove,
        scim::service_provider_config,
        scim::groups::list, scim::groups::create, scim::groups::show, scim::groups::patch,
        scim::groups::remove,
    ),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags(
        (name = "identities", description = "The registry of non-human identities"),
        (name = "humans", description = "Sponsors, approvers, admins and auditors"),
        (name = "system", description = "Health, readiness and sweeps"),
        (name = "audit", description = "The hash-chained event log"),
        (name = "tasks", description = "Units of work agents hold tokens for"),
        (name = "policies", description = "Cedar policies and runtime decisions"),
        (name = "approvals", description = "Human approval of exact high-risk actions"),
        (name = "discovery", description = "Machine identities found outside aim: imports, accounts, findings"),
        (name = "reports", description = "Compliance reports against OWASP, NIST and CSA frameworks, from live data"),
        (name = "grants", description = "Grants and just-in-time elevation"),
        (name = "leases", description = "Exclusive write on one record"),
        (name = "tools", description = "MCP tools seen through gateways, and their pinned definitions"),
        (name = "secrets", description = "Credentials for upstreams, sealed, read only by gateways"),
        (name = "oauth", description = "Tokens for agents (RFC 6749, 7523, 8693, 9449), their discovery, introspection and revocation"),
        (name = "scim", description = "SCIM 2.0 provisioning of users and groups by an identity provider (application/scim+json)"),
    )
)]
pub struct ApiDoc;

#[derive(Debug)]
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// `GET /v1/openapi.json`, public so tools can discover the API before holding a credential.
#[utoipa::path(get, path = "/v1/openapi.json", tag = "system", security(()),
    responses((status = 200, description = "This document (OpenAPI 3.1)", body = Object)))]
pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    use utoipa::OpenApi;

    /// Every path a `.route("...")` in the server's source serves.
    fn served_paths() -> BTreeSet<String> {
        fn walk(dir: &Path, out: &mut BTreeSet<String>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(&path, out);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    let text = text.split("#[cfg(test)]").next().unwrap_or_default();
                    for (i, _) in text.match_indices(".route(") {
                        let rest = text[i + ".route(".len()..].trim_start();
                        if let Some(quoted) = rest.strip_prefix('"') {
                            out.insert(quoted[..quoted.find('"').unwrap()].to_owned());
                        }
                    }
                }
            }
        }
        let mut out = BTreeSet::new();
        walk(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut out);
        out
    }

    /// The document describes the whole API: every route the router serves is in it.
    #[test]
    fn every_served_route_is_documented() {
        let doc = super::ApiDoc::openapi();
        let documented: BTreeSet<String> = doc.paths.paths.keys().cloned().collect();
        let served = served_paths();
        assert!(served.len() > 60, "the scan found the routes: {served:?}");
        // Served on the admin listener only, not on the API's port.
        let admin_only = ["/metrics".to_owned()];
        let missing: Vec<&String> = served
            .difference(&documented)
            .filter(|p| !admin_only.contains(p))
            .collect();
        assert!(
            missing.is_empty(),
            "served but not in /v1/openapi.json: {missing:#?}"
        );
        let stale: Vec<&String> = documented.difference(&served).collect();
        assert!(stale.is_empty(), "documented but not served: {stale:#?}");
        // Every `{param}` of a path is declared, so a client (or a fuzzer) can fill it.
        let json = serde_json::to_value(&doc).unwrap();
        let mut undeclared = Vec::new();
        for (path, item) in json["paths"].as_object().unwrap() {
            let names: Vec<&str> = path
                .split('{')
                .skip(1)
                .filter_map(|p| p.split('}').next())
                .collect();
            for (method, op) in item.as_object().unwrap() {
                for name in &names {
                    let declared = op["parameters"].as_array().is_some_and(|ps| {
                        ps.iter().any(|p| p["in"] == "path" && p["name"] == *name)
                    });
                    if !declared {
                        undeclared.push(format!("{method} {path}: {name}"));
                    }
                }
            }
        }
        assert!(
            undeclared.is_empty(),
            "path parameters not declared: {undeclared:#?}"
        );
    }
}
