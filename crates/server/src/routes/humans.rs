use aim_domain::human::{
    Credential, DepartureOutcome, Human, HumanPatch, HumanState, IssuedCredential, NewCredential,
    NewHuman,
};
use aim_domain::ids::{CredentialId, HumanId};
use aim_store::HumanFilter;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::auth::HumanCaller;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Body, OptionalBody, PathId, Query};
use crate::paging;
use crate::registry::humans as reg;
use crate::state::AppState;
use aim_api::common::ReasonBody;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/humans", get(list).post(create))
        .route("/v1/humans/{id}", get(show).patch(change))
        .route("/v1/humans/{id}/deactivate", post(deactivate))
        .route("/v1/humans/{id}/reactivate", post(reactivate))
        .route(
            "/v1/humans/{id}/credentials",
            get(credentials).post(create_credential),
        )
        .route(
            "/v1/humans/{id}/credentials/{credential_id}",
            delete(revoke_credential),
        )
        .route("/v1/admin/bootstrap/rotate", post(rotate_bootstrap))
}

/// Replaces the first-start admin credential (admins): the old secret stops working, the
/// new one is shown once and rewritten to `<data-dir>/bootstrap-admin-token`.
#[utoipa::path(post, path = "/v1/admin/bootstrap/rotate", tag = "humans",
    responses((status = 201, body = IssuedCredential), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn rotate_bootstrap(
    State(s): State<AppState>,
    p: HumanCaller,
) -> Result<(StatusCode, Json<IssuedCredential>), ApiError> {
    let (credential, secret) = crate::bootstrap::rotate(&s, &p).await?;
    Ok((
        StatusCode::CREATED,
        Json(IssuedCredential { credential, secret }),
    ))
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HumanPage {
    pub items: Vec<Human>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    limit: Option<u32>,
    cursor: Option<String>,
    /// Exact user name, case-insensitive.
    user_name: Option<String>,
    #[param(value_type = Option<String>)]
    state: Option<HumanState>,
    /// Only members of this group.
    group: Option<String>,
}

#[utoipa::path(get, path = "/v1/humans", tag = "humans", params(ListQuery), responses((status = 200, body = HumanPage)))]
pub async fn list(
    State(s): State<AppState>,
    _: HumanCaller,
    Query(q): Query<ListQuery>,
) -> Result<Json<HumanPage>, ApiError> {
    let limit = paging::limit(q.limit)?;
    let after =
        paging::Cursor::id(paging::Cursor::decode(q.cursor.as_deref())?)?.map(HumanId::from_uuid);
    let filter = HumanFilter {
        user_name: q.user_name,
        external_id: None,
        state: q.state,
        include_deleted: true,
        member_of: q
            .group
            .map(|g| aim_domain::validate::token("group", &g, 128))
            .transpose()?,
    };
    let items = s.store.list_humans(&filter, after, limit + 1).await?;
    let p = paging::page(items, limit, |h| paging::Cursor::Id(h.id.as_uuid()));
    Ok(Json(HumanPage {
        items: p.items,
        next_cursor: p.next_cursor,
    }))
}

#[utoipa::path(post, path = "/v1/humans", tag = "humans", request_body = NewHuman,
    responses((status = 201, body = Human), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(s): State<AppState>,
    p: HumanCaller,
    Body(new): Body<NewHuman>,
) -> Result<(StatusCode, Json<Human>), ApiError> {
    Ok((StatusCode::CREATED, Json(reg::create(&s, &p, new).await?)))
}

#[utoipa::path(get, path = "/v1/humans/{id}", params(("id" = String, Path)), tag = "humans", responses((status = 200, body = Human), (status = 404, body = ErrorBody)))]
pub async fn show(
    State(s): State<AppState>,
    _: HumanCaller,
    PathId(id): PathId<HumanId>,
) -> Result<Json<Human>, ApiError> {
    Ok(Json(reg::get(&s, id).await?))
}

#[utoipa::path(patch, path = "/v1/humans/{id}", params(("id" = String, Path)), tag = "humans", request_body = HumanPatch, responses((status = 200, body = Human)))]
pub async fn change(
    State(s): State<AppState>,
    p: HumanCaller,
    PathId(id): PathId<HumanId>,
    Body(patch): Body<HumanPatch>,
) -> Result<Json<Human>, ApiError> {
    Ok(Json(reg::change(&s, &p, id, patch).await?))
}

#[utoipa::path(post, path = "/v1/humans/{id}/deactivate", params(("id" = String, Path)), tag = "humans", request_body = Option<ReasonBody>,
    responses((status = 200, body = DepartureOutcome)))]
pub async fn deactivate(
    State(s): State<AppState>,
    p: HumanCaller,
    PathId(id): PathId<HumanId>,
    OptionalBody(b): OptionalBody<ReasonBody>,
) -> Result<Json<DepartureOutcome>, ApiError> {
    let (human, n) = reg::set_active(&s, &p, id, false, &b.checked()?, false).await?;
    Ok(Json(DepartureOutcome {
        human,
        identities_affected: n,
    }))
}

#[utoipa::path(post, path = "/v1/humans/{id}/reactivate", params(("id" = String, Path)), tag = "humans", request_body = Option<ReasonBody>,
    responses((status = 200, body = DepartureOutcome)))]
pub async fn reactivate(
    State(s): State<AppState>,
    p: HumanCaller,
    PathId(id): PathId<HumanId>,
    OptionalBody(b): OptionalBody<ReasonBody>,
) -> Result<Json<DepartureOutcome>, ApiError> {
    let (human, n) = reg::set_active(&s, &p, id, true, &b.checked()?, false).await?;
    Ok(Json(DepartureOutcome {
        human,
        identities_affected: n,
    }))
}

#[utoipa::path(post, path = "/v1/humans/{id}/credentials", params(("id" = String, Path)), tag = "humans", request_body = Option<NewCredential>,
    responses((status = 201, body = IssuedCredential)))]
pub async fn create_credential(
    State(s): State<AppState>,
    p: HumanCaller,
    PathId(id): PathId<HumanId>,
    OptionalBody(b): OptionalBody<NewCredential>,
) -> Result<(StatusCode, Json<IssuedCredential>), ApiError> {
    let (credential, secret) = reg::create_credential(&s, &p, id, &b.label).await?;
    Ok((
        StatusCode::CREATED,
        Json(IssuedCredential { credential, secret }),
    ))
}

#[utoipa::path(get, path = "/v1/humans/{id}/credentials", params(("id" = String, Path)), tag = "humans", responses((status = 200, body = Vec<Credential>)))]
pub async fn credentials(
    State(s): State<AppState>,
    p: HumanCaller,
    PathId(id): PathId<HumanId>,
) -> Result<Json<Vec<Credential>>, ApiError> {
    Ok(Json(reg::credentials(&s, &p, id).await?))
}

#[utoipa::path(delete, path = "/v1/humans/{id}/credentials/{credential_id}", params(("id" = String, Path), ("credential_id" = String, Path)), tag = "humans",
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn revoke_credential(
    State(s): State<AppState>,
    p: HumanCaller,
    Path((human, credential)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let bad = |v: &str| {
        ApiError::bad_request(
            "invalid_id",
            format!(
                "`{}` is not a valid id",
                v.chars().take(64).collect::<String>()
            ),
        )
    };
    let human = HumanId::parse(&human).map_err(|_| bad(&human))?;
    let credential = CredentialId::parse(&credential).map_err(|_| bad(&credential))?;
    // Revoking the credential this very request is made with would lock its holder out
    // mid-operation (the last admin's, for one); revoke it with another.
    if credential == p.credential {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "cannot_revoke_own_credential",
            "this request is made with that credential; create another, then revoke this one with it",
        ));
    }
    reg::revoke_credential(&s, &p, human, credential).await?;
    Ok(StatusCode::NO_CONTENT)
}
