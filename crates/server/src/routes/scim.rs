//! SCIM 2.0 (RFC 7643/7644) `/scim/v2/Users`, so an identity provider (Okta, Entra ID) can
//! provision the humans who sponsor and approve identities. A user set inactive or deleted
//! departs: every identity they sponsor becomes orphaned.
//!
//! Errors use SCIM's error schema. Attributes aim does not keep are accepted and ignored,
//! as IdPs send many.

use aim_domain::human::{Human, NewHuman, Role};
use aim_domain::ids::HumanId;
use aim_domain::validate;
use aim_store::HumanFilter;
use axum::extract::{FromRequest, FromRequestParts, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::Principal;
use crate::error::ApiError;
use crate::extract::{Body, PathId, Query};
use crate::registry::humans as reg;
use crate::state::AppState;

const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const LIST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
const PATCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const MAX_RESULTS: u32 = 1000;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/scim/v2/Users", get(list).post(create))
        .route(
            "/scim/v2/Users/{id}",
            get(show).put(replace).patch(patch).delete(remove),
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

/// An error in SCIM's shape (`schemas`, `status` as a string, `scimType`, `detail`).
#[derive(Debug)]
pub struct ScimError(pub ApiError);

impl From<ApiError> for ScimError {
    fn from(e: ApiError) -> Self {
        ScimError(e)
    }
}

fn scim_error(status: StatusCode, scim_type: &'static str, detail: impl Into<String>) -> ScimError {
    ScimError(ApiError::new(status, scim_type, detail))
}

impl ScimError {
    fn scim_type(&self) -> Option<&'static str> {
        Some(match self.0.code {
            "user_name_taken" => "uniqueness",
            "malformed_json" | "invalid_body" => "invalidSyntax",
            "validation_failed" | "invalidValue" => "invalidValue",
            "invalidFilter" => "invalidFilter",
            "invalidPath" => "invalidPath",
            "noTarget" => "noTarget",
            "concurrent_update" => "mutability",
            _ => return None,
        })
    }
}

impl IntoResponse for ScimError {
    fn into_response(self) -> Response {
        let mut body = json!({
            "schemas": [ERROR_SCHEMA],
            "status": self.0.status.as_u16().to_string(),
            "detail": self.0.message,
        });
        if let Some(t) = self.scim_type() {
            body["scimType"] = json!(t);
        }
        let mut r = scim_json(self.0.status, body);
        r.extensions_mut()
            .insert(crate::error::ErrorCode(self.0.code));
        r
    }
}

fn scim_json(status: StatusCode, body: Value) -> Response {
    let mut r = (status, Json(body)).into_response();
    if let Ok(v) = "application/scim+json".parse() {
        r.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    r
}

/// A human as a SCIM User.
fn to_scim(h: &Human) -> Value {
    let mut v = json!({
        "schemas": [USER_SCHEMA],
        "id": h.id,
        "userName": h.user_name,
        "active": h.is_active(),
        "roles": h.roles.iter().map(|r| json!({ "value": r.as_str() })).collect::<Vec<_>>(),
        "meta": {
            "resourceType": "User",
            "created": h.created_at,
            "lastModified": h.updated_at,
            "location": format!("/scim/v2/Users/{}", h.id),
            "version": format!("W/\"{}\"", h.version),
        },
    });
    if let Some(x) = &h.external_id {
        v["externalId"] = json!(x);
    }
    if let Some(d) = &h.display_name {
        v["displayName"] = json!(d);
        v["name"] = json!({ "formatted": d });
    }
    if let Some(e) = &h.email {
        v["emails"] = json!([{ "value": e, "primary": true }]);
    }
    v
}

/// The User attributes aim keeps, as an IdP sends them.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ScimUser {
    user_name: Option<String>,
    external_id: Option<String>,
    display_name: Option<String>,
    name: Option<ScimName>,
    #[serde(default)]
    emails: Vec<ScimEmail>,
    active: Option<Value>,
    roles: Option<Vec<ScimRole>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ScimName {
    formatted: Option<String>,
    given_name: Option<String>,
    family_name: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ScimEmail {
    value: String,
    #[serde(default)]
    primary: bool,
}

#[derive(Debug, Deserialize)]
struct ScimRole {
    value: String,
}

impl ScimUser {
    fn display_name(&self) -> Option<String> {
        self.display_name.clone().or_else(|| {
            let n = self.name.as_ref()?;
            n.formatted.clone().or_else(|| {
                let parts: Vec<&str> = [n.given_name.as_deref(), n.family_name.as_deref()]
                    .into_iter()
                    .flatten()
                    .collect();
                (!parts.is_empty()).then(|| parts.join(" "))
            })
        })
    }

    fn email(&self) -> Option<String> {
        self.emails
            .iter()
            .find(|e| e.primary)
            .or(self.emails.first())
            .map(|e| e.value.clone())
    }

    fn roles(&self) -> Result<Option<Vec<Role>>, ScimError> {
        let Some(roles) = &self.roles else {
            return Ok(None);
        };
        roles
            .iter()
            .map(|r| {
                Role::parse(&r.value)
                    .map_err(|e| scim_error(StatusCode::BAD_REQUEST, "invalidValue", e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    fn active(&self) -> Result<Option<bool>, ScimError> {
        self.active.as_ref().map(parse_bool).transpose()
    }
}

/// `true`/`false`, or the strings `"True"`/`"False"` that Entra ID sends.
fn parse_bool(v: &Value) -> Result<bool, ScimError> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(false),
        _ => Err(scim_error(
            StatusCode::BAD_REQUEST,
            "invalidValue",
            "`active` must be true or false",
        )),
    }
}

fn parse_user(v: Value) -> Result<ScimUser, ScimError> {
    serde_json::from_value(v).map_err(|e| {
        scim_error(
            StatusCode::BAD_REQUEST,
            "invalidSyntax",
            format!("not a SCIM User: {e}"),
        )
    })
}

async fn create(
    State(s): State<AppState>,
    p: Principal,
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

async fn show(
    State(s): State<AppState>,
    _: Principal,
    UserId(id): UserId,
) -> Result<Response, ScimError> {
    Ok(scim_json(StatusCode::OK, to_scim(&visible(&s, id).await?)))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListParams {
    filter: Option<String>,
    start_index: Option<u64>,
    count: Option<u32>,
    // Accepted and ignored: aim returns every attribute.
    #[allow(dead_code)]
    attributes: Option<String>,
    #[allow(dead_code)]
    excluded_attributes: Option<String>,
}

/// Parses the filters IdPs use to look a user up: `userName eq "..."`, `externalId eq
/// "..."`, `id eq "..."`. Anything else is `invalidFilter`.
fn parse_filter(f: &str) -> Result<(String, String), ScimError> {
    let bad = || {
        scim_error(
            StatusCode::BAD_REQUEST,
            "invalidFilter",
            "supported filters: userName, externalId or id eq \"value\"",
        )
    };
    let f = f.trim();
    let (attr, rest) = f.split_once(char::is_whitespace).ok_or_else(bad)?;
    let rest = rest.trim_start();
    let (op, value) = rest.split_once(char::is_whitespace).ok_or_else(bad)?;
    if !op.eq_ignore_ascii_case("eq") {
        return Err(bad());
    }
    let value: String = serde_json::from_str(value.trim()).map_err(|_| bad())?;
    let attr = match attr.to_ascii_lowercase().as_str() {
        "username" => "userName",
        "externalid" => "externalId",
        "id" => "id",
        _ => return Err(bad()),
    };
    Ok((attr.to_owned(), value))
}

async fn list(
    State(s): State<AppState>,
    _: Principal,
    Query(q): Query<ListParams>,
) -> Result<Response, ScimError> {
    let start = q.start_index.unwrap_or(1).max(1);
    let count = q.count.unwrap_or(100).min(MAX_RESULTS);
    let mut filter = HumanFilter::default();
    let mut only_id = None;
    if let Some(f) = &q.filter {
        let (attr, value) = parse_filter(f)?;
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
async fn replace(
    State(s): State<AppState>,
    p: Principal,
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

#[derive(Debug, Deserialize)]
struct PatchRequest {
    #[serde(default)]
    schemas: Vec<String>,
    #[serde(rename = "Operations", alias = "operations")]
    operations: Vec<PatchOp>,
}

#[derive(Debug, Deserialize)]
struct PatchOp {
    op: String,
    path: Option<String>,
    value: Option<Value>,
}

/// One attribute change, checked before anything is written.
#[derive(Debug, Clone)]
enum Edit {
    Active(bool),
    UserName(String),
    DisplayName(Option<String>),
    ExternalId(Option<String>),
    Email(Option<String>),
}

fn edits_for(path: &str, value: Option<&Value>, remove: bool) -> Result<Vec<Edit>, ScimError> {
    let text = |v: Option<&Value>| -> Result<Option<String>, ScimError> {
        match v {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(scim_error(
                StatusCode::BAD_REQUEST,
                "invalidValue",
                format!("`{path}` must be a string"),
            )),
        }
    };
    let value = if remove { None } else { value };
    let edit = match path.to_ascii_lowercase().as_str() {
        "active" => Edit::Active(parse_bool(value.ok_or_else(|| {
            scim_error(
                StatusCode::BAD_REQUEST,
                "invalidValue",
                "`active` needs a value",
            )
        })?)?),
        "username" => Edit::UserName(text(value)?.ok_or_else(|| {
            scim_error(
                StatusCode::BAD_REQUEST,
                "invalidValue",
                "`userName` cannot be removed",
            )
        })?),
        "displayname" | "name.formatted" => Edit::DisplayName(text(value)?),
        "externalid" => Edit::ExternalId(text(value)?),
        "emails" | "emails[type eq \"work\"].value" | "emails[primary eq true].value" => {
            let email = match value {
                Some(Value::Array(list)) => list
                    .iter()
                    .find_map(|e| e.get("value").and_then(Value::as_str))
                    .map(str::to_owned),
                other => text(other)?,
            };
            Edit::Email(email)
        }
        // Attributes aim does not keep: accepted and ignored, as for POST.
        p if p.starts_with("name.")
            || p.starts_with("urn:")
            || p == "title"
            || p == "locale"
            || p == "preferredlanguage" =>
        {
            return Ok(Vec::new());
        }
        _ => {
            return Err(scim_error(
                StatusCode::BAD_REQUEST,
                "invalidPath",
                format!("unsupported path `{path}`"),
            ));
        }
    };
    Ok(vec![edit])
}

fn parse_patch(req: PatchRequest) -> Result<Vec<Edit>, ScimError> {
    if !req.schemas.is_empty() && !req.schemas.iter().any(|s| s == PATCH_SCHEMA) {
        return Err(scim_error(
            StatusCode::BAD_REQUEST,
            "invalidSyntax",
            format!("expected schema {PATCH_SCHEMA}"),
        ));
    }
    let mut edits = Vec::new();
    for op in req.operations {
        let kind = op.op.to_ascii_lowercase();
        let remove = match kind.as_str() {
            "add" | "replace" => false,
            "remove" => true,
            _ => {
                return Err(scim_error(
                    StatusCode::BAD_REQUEST,
                    "invalidSyntax",
                    format!("unknown op `{}`", op.op),
                ));
            }
        };
        match (&op.path, &op.value) {
            (Some(path), value) => edits.extend(edits_for(path, value.as_ref(), remove)?),
            (None, Some(Value::Object(map))) if !remove => {
                for (k, v) in map {
                    edits.extend(edits_for(k, Some(v), false)?);
                }
            }
            _ => {
                return Err(scim_error(
                    StatusCode::BAD_REQUEST,
                    "noTarget",
                    "an operation needs a path or an object value",
                ));
            }
        }
    }
    Ok(edits)
}

/// PATCH: what Entra ID and Okta send to deactivate, reactivate or rename a user.
async fn patch(
    State(s): State<AppState>,
    p: Principal,
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
async fn remove(
    State(s): State<AppState>,
    p: Principal,
    UserId(id): UserId,
) -> Result<StatusCode, ScimError> {
    visible(&s, id).await?;
    reg::set_active(&s, &p, id, false, "deleted by the identity provider", true).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn service_provider_config(_: Principal) -> Response {
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

/// A JSON body whose rejections are SCIM errors.
#[derive(Debug)]
struct ScimBody<T>(T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for ScimBody<T> {
    type Rejection = ScimError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        let Body(v) = Body::<T>::from_request(req, state).await?;
        Ok(ScimBody(v))
    }
}

/// The user id in the path; a malformed one is simply not found.
#[derive(Debug)]
struct UserId(HumanId);

impl<S: Send + Sync> FromRequestParts<S> for UserId {
    type Rejection = ScimError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        match PathId::<HumanId>::from_request_parts(parts, state).await {
            Ok(PathId(id)) => Ok(UserId(id)),
            Err(_) => Err(scim_error(
                StatusCode::NOT_FOUND,
                "not_found",
                "User not found",
            )),
        }
    }
}
