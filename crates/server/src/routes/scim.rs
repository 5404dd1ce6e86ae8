//! SCIM 2.0 (RFC 7643/7644) `/scim/v2/Users` and `/scim/v2/Groups`, so an identity
//! provider (Okta, Entra ID) can provision the humans who sponsor and approve identities,
//! and the groups policies and approvals name. A user set inactive or deleted
//! departs: every identity they sponsor becomes orphaned.
//!
//! Errors use SCIM's error schema. Attributes aim does not keep are accepted and ignored,
//! as IdPs send many.

use aim_domain::human::{Human, NewHuman};
use aim_domain::ids::HumanId;
use aim_domain::validate;
use aim_store::HumanFilter;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use crate::auth::HumanCaller;
use crate::error::ApiError;
use crate::extract::Query;
use crate::registry::humans as reg;
use crate::state::AppState;

pub(in crate::routes) mod groups;
pub(in crate::routes) mod wire;

pub use wire::ScimError;
use wire::{
    Edit, LIST_SCHEMA, ListParams, MAX_RESULTS, PatchRequest, ScimBody, UserId, parse_filter,
    parse_patch, parse_user, scim_error, scim_json, to_scim,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/scim/v2/Users", get(list).post(create))
        .route(
            "/scim/v2/Users/{id}",
            get(show).put(replace).patch(patch).delete(remove),
        )
        .route("/scim/v2/Groups", get(groups::list).post(groups::create))
        .route(
            "/scim/v2/Groups/{id}",
            get(groups::show)
                .patch(groups::patch)
                .delete(groups::remove),
        )
        .route(
            "/scim/v2/ServiceProviderConfig",
            get(service_provider_config),
        )
}

/// Gives SCIM's shape to every error in aim's shape under this router: the refusals of the
/// auth layer, a body too large, a malformed path. Layered outside the auth layer.
pub async fn shaped(response: Response) -> Response {
    match response.extensions().get::<ApiError>().cloned() {
        Some(e) => ScimError(e).into_response(),
        None => response,
    }
}

#[utoipa::path(post, path = "/scim/v2/Users", tag = "scim",
    request_body(content = Object, content_type = "application/scim+json", description = "A SCIM User (RFC 7643 §4.1)"),
    responses((status = 201, body = Object), (status = 400, body = Object), (status = 409, body = Object)))]
pub(in crate::routes) async fn create(
    State(s): State<AppState>,
    p: HumanCaller,
    ScimBody(v): ScimBody<Value>,
) -> Result<Response, ScimError> {
    let u = parse_user(v)?;
    let Some(user_name) = u.user_name.clone() else {
        return Err(scim_error(
            StatusCode::BAD_REQUEST,
            "invalidValue",
            "`userName` is required",
        ));
    };
    user_name_free(&s, &user_name, None).await?;
    let new = NewHuman {
        user_name,
        display_name: u.display_name(),
        email: u.email(),
        external_id: u.external_id.clone(),
        roles: u.roles()?.unwrap_or_default(),
        groups: Vec::new(),
    };
    let mut human = reg::create(&s, &p, new).await?;
    if u.active()? == Some(false) {
        human = reg::set_active(&s, &p, human.id, false, "provisioned inactive", false)
            .await?
            .0;
    }
    Ok(scim_json(StatusCode::CREATED, to_scim(&human)))
}

/// Refuses a user name another human (not `me`) already has, as SCIM `uniqueness`.
async fn user_name_free(s: &AppState, name: &str, me: Option<HumanId>) -> Result<(), ScimError> {
    match s
        .store
        .human_by_user_name(name)
        .await
        .map_err(ApiError::from)?
    {
        Some(other) if Some(other.id) != me => Err(scim_error(
            StatusCode::CONFLICT,
            "user_name_taken",
            format!("userName `{name}` already exists"),
        )),
        _ => Ok(()),
    }
}

/// The human, unless the IdP deleted them (then 404, as RFC 7644 §3.6 requires).
async fn visible(s: &AppState, id: HumanId) -> Result<Human, ScimError> {
    match s.store.human(id).await.map_err(ApiError::from)? {
        Some(h) if h.deleted_at.is_none() => Ok(h),
        _ => Err(scim_error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("User {id} not found"),
        )),
    }
}

#[utoipa::path(get, path = "/scim/v2/Users/{id}", tag = "scim",
    params(("id" = String, Path)), responses((status = 200, body = Object), (status = 404, body = Object)))]
pub(in crate::routes) async fn show(
    State(s): State<AppState>,
    _: HumanCaller,
    UserId(id): UserId,
) -> Result<Response, ScimError> {
    Ok(scim_json(StatusCode::OK, to_scim(&visible(&s, id).await?)))
}

#[utoipa::path(get, path = "/scim/v2/Users", tag = "scim",
    params(("filter" = Option<String>, Query, description = "`userName`, `externalId` or `id` eq \"value\""),
        ("startIndex" = Option<u64>, Query), ("count" = Option<u32>, Query)),
    responses((status = 200, body = Object), (status = 400, body = Object)))]
pub(in crate::routes) async fn list(
    State(s): State<AppState>,
    _: HumanCaller,
    Query(q): Query<ListParams>,
) -> Result<Response, ScimError> {
    let start = q.start_index.unwrap_or(1).max(1);
    let count = q.count.unwrap_or(100).min(MAX_RESULTS);
    let mut filter = HumanFilter::default();
    let mut only_id = None;
    if let Some(f) = &q.filter {
        let (attr, value) = parse_filter(f, &["userName", "externalId", "id"])?;
        match attr.as_str() {
            "userName" => filter.user_name = Some(value),
            "externalId" => filter.external_id = Some(value),
            _ => only_id = Some(value),
        }
    }
    let (items, total) = match only_id {
        Some(id) => {
            let found = match HumanId::parse(&id) {
                Ok(id) => visible(&s, id).await.ok(),
                Err(_) => None,
            };
            let total = u64::from(found.is_some());
            let items = if start == 1 && count > 0 {
                found.into_iter().collect()
            } else {
                Vec::new()
            };
            (items, total)
        }
        None => s
            .store
            .list_humans_offset(&filter, start - 1, count)
            .await
            .map_err(ApiError::from)?,
    };
    let body = json!({
        "schemas": [LIST_SCHEMA],
        "totalResults": total,
        "startIndex": start,
        "itemsPerPage": items.len(),
        "Resources": items.iter().map(to_scim).collect::<Vec<_>>(),
    });
    Ok(scim_json(StatusCode::OK, body))
}

/// PUT: the IdP's full view of the user. Fields aim keeps are replaced; `active` moves the
/// human between active and departed, in the same write.
#[utoipa::path(put, path = "/scim/v2/Users/{id}", tag = "scim", params(("id" = String, Path)),
    request_body(content = Object, content_type = "application/scim+json"),
    responses((status = 200, body = Object), (status = 404, body = Object), (status = 409, body = Object)))]
pub(in crate::routes) async fn replace(
    State(s): State<AppState>,
    p: HumanCaller,
    UserId(id): UserId,
    ScimBody(v): ScimBody<Value>,
) -> Result<Response, ScimError> {
    visible(&s, id).await?;
    let u = parse_user(v)?;
    let roles = u.roles()?;
    let active = u.active()?;
    let user_name = u
        .user_name
        .as_deref()
        .map(validate::user_name)
        .transpose()
        .map_err(ApiError::from)?;
    if let Some(n) = &user_name {
        user_name_free(&s, n, Some(id)).await?;
    }
    let display =
        validate::optional_text("displayName", u.display_name(), 256).map_err(ApiError::from)?;
    let email = validate::optional_text("emails", u.email(), 320).map_err(ApiError::from)?;
    let external = validate::optional_text("externalId", u.external_id.clone(), 256)
        .map_err(ApiError::from)?;
    let human = reg::provision(&s, &p, id, |h, now| {
        if let Some(n) = &user_name {
            h.user_name = n.clone();
        }
        h.display_name = display.clone();
        h.email = email.clone();
        h.external_id = external.clone();
        if let Some(r) = &roles {
            h.roles = r.clone();
        }
        match active {
            Some(true) => {
                h.reactivate(now);
            }
            Some(false) => {
                h.depart(now);
            }
            None => {}
        }
        Ok(true)
    })
    .await?;
    Ok(scim_json(StatusCode::OK, to_scim(&human)))
}

/// PATCH: what Entra ID and Okta send to deactivate, reactivate or rename a user.
#[utoipa::path(patch, path = "/scim/v2/Users/{id}", tag = "scim", params(("id" = String, Path)),
    request_body(content = Object, content_type = "application/scim+json", description = "A PatchOp (RFC 7644 §3.5.2)"),
    responses((status = 200, body = Object), (status = 400, body = Object), (status = 404, body = Object)))]
pub(in crate::routes) async fn patch(
    State(s): State<AppState>,
    p: HumanCaller,
    UserId(id): UserId,
    ScimBody(req): ScimBody<PatchRequest>,
) -> Result<Response, ScimError> {
    visible(&s, id).await?;
    let edits = parse_patch(req)?;
    for e in &edits {
        match e {
            Edit::UserName(n) => {
                let n = validate::user_name(n).map_err(ApiError::from)?;
                user_name_free(&s, &n, Some(id)).await?;
            }
            Edit::DisplayName(v) | Edit::ExternalId(v) | Edit::Email(v) => {
                validate::optional_text("value", v.clone(), 320).map_err(ApiError::from)?;
            }
            Edit::Active(_) => {}
        }
    }
    let human = reg::provision(&s, &p, id, |h, now| {
        let before = h.clone();
        for e in &edits {
            match e {
                Edit::Active(true) => {
                    h.reactivate(now);
                }
                Edit::Active(false) => {
                    h.depart(now);
                }
                Edit::UserName(n) => h.user_name = n.trim().to_owned(),
                Edit::DisplayName(v) => h.display_name = v.clone().filter(|x| !x.trim().is_empty()),
                Edit::ExternalId(v) => h.external_id = v.clone().filter(|x| !x.trim().is_empty()),
                Edit::Email(v) => h.email = v.clone().filter(|x| !x.trim().is_empty()),
            }
        }
        Ok(*h != before)
    })
    .await?;
    Ok(scim_json(StatusCode::OK, to_scim(&human)))
}

/// DELETE: the human departs (their identities are orphaned) and disappears from SCIM; the
/// record stays for the audit trail.
#[utoipa::path(delete, path = "/scim/v2/Users/{id}", tag = "scim", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = Object), (status = 409, body = Object)))]
pub(in crate::routes) async fn remove(
    State(s): State<AppState>,
    p: HumanCaller,
    UserId(id): UserId,
) -> Result<StatusCode, ScimError> {
    visible(&s, id).await?;
    reg::set_active(&s, &p, id, false, "deleted by the identity provider", true).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/scim/v2/ServiceProviderConfig", tag = "scim",
    responses((status = 200, body = Object)))]
pub(in crate::routes) async fn service_provider_config(_: HumanCaller) -> Response {
    scim_json(
        StatusCode::OK,
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
            "patch": { "supported": true },
            "bulk": { "supported": false, "maxOperations": 0, "maxPayloadSize": 0 },
            "filter": { "supported": true, "maxResults": MAX_RESULTS },
            "changePassword": { "supported": false },
            "sort": { "supported": false },
            "etag": { "supported": false },
            "authenticationSchemes": [{
                "type": "oauthbearertoken",
                "name": "Bearer credential",
                "description": "An aim API credential of an admin, sent as `Authorization: Bearer <credential>`",
            }],
        }),
    )
}
