//! The OpenAPI document of aim's own API, generated from the handlers and types.

use axum::Json;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

use crate::routes::{
    agent_keys, approvals, audit, authorize, grants, humans, identities, join, leases, oauth,
    policies, signing_keys, system, tasks,
};

#[derive(Debug, OpenApi)]
#[openapi(
    info(title = "aim", description = "Control plane for the identities of AI agents and other non-human identities"),
    paths(
        identities::list, identities::request, identities::show, identities::change,
        identities::approve, identities::reject, identities::approve_change, identities::bearer,
        identities::reject_change, identities::suspend, identities::resume,
        identities::lock, identities::unlock, identities::decommission, identities::attest,
        humans::rotate_bootstrap, humans::list, humans::create, humans::show, humans::change, humans::deactivate,
        humans::reactivate, humans::create_credential, humans::credentials, humans::revoke_credential,
        system::healthz, system::readyz, system::run_sweep,
        agent_keys::add, agent_keys::list, agent_keys::revoke, join::create, join::join,
        tasks::list, tasks::show, tasks::end, oauth::revocations, oauth::stream,
        signing_keys::list, signing_keys::rotate, signing_keys::revoke,
        audit::list, audit::show, audit::trace, audit::head, audit::create_checkpoint, audit::latest_checkpoint,
        audit::checkpoint_keys, audit::rotate_checkpoint_key,
        policies::apply, policies::show, policies::versions, policies::version, policies::rollback,
        authorize::authorize, authorize::explain,
        approvals::list, approvals::show, approvals::approve, approvals::deny,
        grants::add, grants::list, grants::show, grants::request, grants::approve, grants::deny, grants::revoke,
        leases::acquire, leases::show, leases::release,
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
        (name = "grants", description = "Grants and just-in-time elevation"),
        (name = "leases", description = "Exclusive write on one record"),
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
pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
