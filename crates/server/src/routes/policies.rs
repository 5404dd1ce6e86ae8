//! `/v1/policies`: the versioned Cedar policy set. Admins apply files (validated strictly
//! against the schema before anything is stored) and roll back; every apply and rollback
//! is a new version, so the history is whole.

use aim_domain::event::AuditAction;
use std::collections::HashSet;

use aim_domain::human::Role;
use aim_policy::Problem;
use aim_store::PolicyVersion;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::auth::HumanCaller;
use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::extract::Body;
use crate::state::AppState;
use aim_api::policies::{
    Applied, ApplyBody, Content, PolicySetVersion, RollbackBody, VersionSummary,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/policies", get(show).post(apply))
        .route("/v1/policies/versions", get(versions))
        .route("/v1/policies/versions/{version}", get(version))
        .route("/v1/policies/rollback", post(rollback))
}

pub const MAX_FILES: usize = 10_000;
pub const MAX_NAME: usize = 256;

/// A policy set that does not compile: 422 with every problem.
#[derive(Debug)]
pub struct Rejected(pub Vec<Problem>);

impl IntoResponse for Rejected {
    fn into_response(self) -> Response {
        let mut r = (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({
                "code": "invalid_policy",
                "message": format!(
                    "{} problem(s) in the policy set, listed in `problems`; nothing was applied",
                    self.0.len()
                ),
                "problems": self.0,
            })),
        )
            .into_response();
        r.extensions_mut().insert(ErrorCode("invalid_policy"));
        r
    }
}

/// Either a plain API error or a rejected policy set.
#[derive(Debug)]
pub enum PolicyError {
    Api(ApiError),
    Rejected(Rejected),
}

impl From<ApiError> for PolicyError {
    fn from(e: ApiError) -> Self {
        PolicyError::Api(e)
    }
}

impl From<aim_store::StoreError> for PolicyError {
    fn from(e: aim_store::StoreError) -> Self {
        PolicyError::Api(e.into())
    }
}

impl IntoResponse for PolicyError {
    fn into_response(self) -> Response {
        match self {
            PolicyError::Api(e) => e.into_response(),
            PolicyError::Rejected(r) => r.into_response(),
        }
    }
}

/// Names unique, non-empty and short; not too many files.
pub fn check_content(c: &Content) -> Result<(), ApiError> {
    if c.sources.len() > MAX_FILES {
        return Err(ApiError::bad_request(
            "too_many_files",
            format!("at most {MAX_FILES} policy files"),
        ));
    }
    let mut seen = HashSet::new();
    for s in &c.sources {
        if s.name.trim().is_empty()
            || s.name.len() > MAX_NAME
            || s.name.chars().any(char::is_control)
        {
            return Err(ApiError::bad_request(
                "invalid_file_name",
                format!("a policy file needs a name of 1 to {MAX_NAME} printable characters"),
            ));
        }
        if !seen.insert(s.name.as_str()) {
            return Err(ApiError::bad_request(
                "duplicate_file_name",
                format!("two policy files are named {:?}", s.name),
            ));
        }
    }
    Ok(())
}

fn comment(c: String) -> Result<String, ApiError> {
    if c.len() > 1000 {
        return Err(ApiError::bad_request(
            "comment_too_long",
            "a comment has at most 1000 bytes",
        ));
    }
    Ok(c)
}

/// Compiles, stores as the next version and puts it in force here.
async fn store_version(
    s: &AppState,
    p: &HumanCaller,
    content: Content,
    comment: String,
    expected: Option<i64>,
    rollback_of: Option<i64>,
) -> Result<Applied, PolicyError> {
    let compiled = s
        .policies
        .compile(&content)
        .map_err(|p| PolicyError::Rejected(Rejected(p)))?;
    let policies = compiled.flat.len();
    let templates = compiled.set.templates().count();
    let engine = aim_policy::Engine::new(s.policies.schema().clone(), compiled).map_err(|e| {
        tracing::error!(error = %e, "building the decision engine failed");
        ApiError::internal()
    })?;
    let expected = match expected {
        Some(v) => v,
        None => s.store.latest_policy_version().await?,
    };
    let now = s.clock.now();
    let digest = content.digest();
    let v = PolicyVersion {
        version: 0,
        sources: serde_json::to_value(&content.sources).map_err(|_| ApiError::internal())?,
        links: serde_json::to_value(&content.links).map_err(|_| ApiError::internal())?,
        digest: digest.clone(),
        created_at: now,
        created_by: p.human.user_name.clone(),
        comment: comment.clone(),
        rollback_of,
    };
    let action = if rollback_of.is_some() {
        AuditAction::PolicyRolledBack
    } else {
        AuditAction::PolicyApplied
    };
    let files: Vec<&str> = content.sources.iter().map(|s| s.name.as_str()).collect();
    let event = p
        .event(now, action, "policy_set", "policies")
        .reason(comment)
        .detail(json!({
            "digest": digest,
            "files": files,
            "policies": policies,
            "templates": templates,
            "rollback_of": rollback_of,
        }));
    let version = s.store.insert_policy_version(&v, expected, &event).await?;
    s.policies.install(version, engine);
    Ok(Applied {
        version,
        digest,
        policies,
        templates,
    })
}

/// Applies a new policy set: every file and link replaces the set in force.
#[utoipa::path(post, path = "/v1/policies", tag = "policies", request_body = ApplyBody,
    responses((status = 201, body = Applied), (status = 422, description = "invalid_policy, with every problem located"), (status = 409, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn apply(
    State(s): State<AppState>,
    p: HumanCaller,
    Body(body): Body<ApplyBody>,
) -> Result<(StatusCode, Json<Applied>), PolicyError> {
    p.require_any(&[Role::Admin], "applying policies")?;
    check_content(&body.content)?;
    let comment = comment(body.comment)?;
    let applied = store_version(&s, &p, body.content, comment, body.expected_version, None).await?;
    Ok((StatusCode::CREATED, Json(applied)))
}

/// Brings an earlier version's content back as a new version.
#[utoipa::path(post, path = "/v1/policies/rollback", tag = "policies", request_body = RollbackBody,
    responses((status = 201, body = Applied), (status = 404, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn rollback(
    State(s): State<AppState>,
    p: HumanCaller,
    Body(body): Body<RollbackBody>,
) -> Result<(StatusCode, Json<Applied>), PolicyError> {
    p.require_any(&[Role::Admin], "rolling back policies")?;
    let comment = comment(body.comment)?;
    let old = s
        .store
        .policy_version(Some(body.version))
        .await?
        .ok_or_else(|| ApiError::not_found("policy version"))?;
    let content = crate::policy::content_of(&old).map_err(|e| {
        tracing::error!(error = %e, version = old.version, "stored policy version is unreadable");
        ApiError::internal()
    })?;
    let comment = if comment.is_empty() {
        format!("rollback to version {}", old.version)
    } else {
        comment
    };
    let applied = store_version(&s, &p, content, comment, None, Some(old.version)).await?;
    Ok((StatusCode::CREATED, Json(applied)))
}

/// A stored version as the API shows it.
fn shown(v: PolicyVersion) -> Result<PolicySetVersion, ApiError> {
    let content = crate::policy::content_of(&v).map_err(|e| {
        tracing::error!(version = v.version, error = %e, "a stored policy version is unreadable");
        ApiError::internal()
    })?;
    Ok(PolicySetVersion {
        version: v.version,
        content,
        digest: v.digest,
        created_at: v.created_at,
        created_by: v.created_by,
        comment: v.comment,
        rollback_of: v.rollback_of,
    })
}

/// The version in force (version 0, empty, before any apply: nothing is permitted):
/// `version`, `sources`, `links`, `digest`, `created_at`, `created_by`, `comment`,
/// `rollback_of`.
#[utoipa::path(get, path = "/v1/policies", tag = "policies",
    responses((status = 200, body = PolicySetVersion), (status = 403, body = ErrorBody)))]
pub async fn show(
    State(s): State<AppState>,
    p: HumanCaller,
) -> Result<Json<PolicySetVersion>, ApiError> {
    p.require_any(&[Role::Admin, Role::Auditor], "reading policies")?;
    match s.store.policy_version(None).await? {
        Some(v) => Ok(Json(shown(v)?)),
        None => Ok(Json(PolicySetVersion {
            version: 0,
            digest: Content::default().digest(),
            content: Content::default(),
            created_at: aim_domain::time::Timestamp::from_millis(0),
            created_by: String::new(),
            comment: "no policy applied yet: everything is denied".into(),
            rollback_of: None,
        })),
    }
}

#[utoipa::path(get, path = "/v1/policies/versions/{version}", tag = "policies",
    params(("version" = i64, Path, description = "a version number")),
    responses((status = 200, body = PolicySetVersion), (status = 404, body = ErrorBody)))]
pub async fn version(
    State(s): State<AppState>,
    p: HumanCaller,
    Path(version): Path<i64>,
) -> Result<Json<PolicySetVersion>, ApiError> {
    p.require_any(&[Role::Admin, Role::Auditor], "reading policies")?;
    let v = s
        .store
        .policy_version(Some(version))
        .await?
        .ok_or_else(|| ApiError::not_found("policy version"))?;
    Ok(Json(shown(v)?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct VersionsQuery {
    #[serde(default)]
    pub before: Option<i64>,
    #[serde(default)]
    pub limit: Option<u32>,
}

#[utoipa::path(get, path = "/v1/policies/versions", tag = "policies", params(VersionsQuery),
    responses((status = 200, body = Vec<VersionSummary>), (status = 403, body = ErrorBody)))]
pub async fn versions(
    State(s): State<AppState>,
    p: HumanCaller,
    Query(q): Query<VersionsQuery>,
) -> Result<Json<Vec<VersionSummary>>, ApiError> {
    p.require_any(&[Role::Admin, Role::Auditor], "reading policies")?;
    let limit = q.limit.unwrap_or(50).clamp(1, 500);
    let list = s.store.policy_versions(q.before, limit).await?;
    Ok(Json(
        list.into_iter()
            .map(|v| VersionSummary {
                files: v
                    .sources
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|f| f["name"].as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default(),
                version: v.version,
                digest: v.digest,
                created_at: v.created_at,
                created_by: v.created_by,
                comment: v.comment,
                rollback_of: v.rollback_of,
            })
            .collect(),
    ))
}
