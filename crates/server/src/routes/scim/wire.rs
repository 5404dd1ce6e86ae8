//! SCIM's wire: its schemas, its error shape, Users as IdPs send them, filters and PATCH
//! operations, and extractors whose rejections are SCIM errors.

use aim_domain::human::{Human, Role};
use aim_domain::ids::HumanId;
use axum::Json;
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::extract::{Body, PathId};

pub(super) const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub(super) const LIST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
pub(super) const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
pub(super) const PATCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
pub(super) const MAX_RESULTS: u32 = 1000;

/// An error in SCIM's shape (`schemas`, `status` as a string, `scimType`, `detail`).
#[derive(Debug)]
pub struct ScimError(pub ApiError);

impl From<ApiError> for ScimError {
    fn from(e: ApiError) -> Self {
        ScimError(e)
    }
}

pub(super) fn scim_error(
    status: StatusCode,
    scim_type: &'static str,
    detail: impl Into<String>,
) -> ScimError {
    ScimError(ApiError::new(status, scim_type, detail))
}

impl ScimError {
    fn scim_type(&self) -> Option<&'static str> {
        Some(match self.0.code {
            "user_name_taken" | "uniqueness" => "uniqueness",
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

pub(super) fn scim_json(status: StatusCode, body: Value) -> Response {
    let mut r = (status, Json(body)).into_response();
    if let Ok(v) = "application/scim+json".parse() {
        r.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    r
}

/// A human as a SCIM User.
pub(super) fn to_scim(h: &Human) -> Value {
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
pub(super) struct ScimUser {
    pub(super) user_name: Option<String>,
    pub(super) external_id: Option<String>,
    pub(super) display_name: Option<String>,
    pub(super) name: Option<ScimName>,
    #[serde(default)]
    pub(super) emails: Vec<ScimEmail>,
    pub(super) active: Option<Value>,
    pub(super) roles: Option<Vec<ScimRole>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ScimName {
    pub(super) formatted: Option<String>,
    pub(super) given_name: Option<String>,
    pub(super) family_name: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct ScimEmail {
    pub(super) value: String,
    #[serde(default)]
    pub(super) primary: bool,
}

#[derive(Debug, Deserialize)]
pub(super) struct ScimRole {
    pub(super) value: String,
}

impl ScimUser {
    pub(super) fn display_name(&self) -> Option<String> {
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

    pub(super) fn email(&self) -> Option<String> {
        self.emails
            .iter()
            .find(|e| e.primary)
            .or(self.emails.first())
            .map(|e| e.value.clone())
    }

    pub(super) fn roles(&self) -> Result<Option<Vec<Role>>, ScimError> {
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

    pub(super) fn active(&self) -> Result<Option<bool>, ScimError> {
        self.active.as_ref().map(parse_bool).transpose()
    }
}

/// `true`/`false`, or the strings `"True"`/`"False"` that Entra ID sends.
pub(super) fn parse_bool(v: &Value) -> Result<bool, ScimError> {
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

pub(super) fn parse_user(v: Value) -> Result<ScimUser, ScimError> {
    serde_json::from_value(v).map_err(|e| {
        scim_error(
            StatusCode::BAD_REQUEST,
            "invalidSyntax",
            format!("not a SCIM User: {e}"),
        )
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(in crate::routes) struct ListParams {
    pub(super) filter: Option<String>,
    pub(super) start_index: Option<u64>,
    pub(super) count: Option<u32>,
    // Accepted and ignored: aim returns every attribute.
    #[allow(dead_code)]
    pub(super) attributes: Option<String>,
    #[allow(dead_code)]
    pub(super) excluded_attributes: Option<String>,
}

/// Parses the filters IdPs use to look a resource up: `<attr> eq "<value>"`, for one of
/// `allowed` (matched without regard to case; returned as spelled there). Anything else is
/// `invalidFilter`.
pub(super) fn parse_filter(f: &str, allowed: &[&str]) -> Result<(String, String), ScimError> {
    let bad = || {
        scim_error(
            StatusCode::BAD_REQUEST,
            "invalidFilter",
            format!("supported filters: {} eq \"value\"", allowed.join(", ")),
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
    let attr = allowed
        .iter()
        .find(|a| a.eq_ignore_ascii_case(attr))
        .ok_or_else(bad)?;
    Ok(((*attr).to_owned(), value))
}

#[derive(Debug, Deserialize)]
pub(in crate::routes) struct PatchRequest {
    #[serde(default)]
    pub(super) schemas: Vec<String>,
    #[serde(rename = "Operations", alias = "operations")]
    pub(super) operations: Vec<PatchOp>,
}

#[derive(Debug, Deserialize)]
pub(in crate::routes) struct PatchOp {
    pub(super) op: String,
    pub(super) path: Option<String>,
    pub(super) value: Option<Value>,
}

/// One attribute change, checked before anything is written.
#[derive(Debug, Clone)]
pub(super) enum Edit {
    Active(bool),
    UserName(String),
    DisplayName(Option<String>),
    ExternalId(Option<String>),
    Email(Option<String>),
}

pub(super) fn edits_for(
    path: &str,
    value: Option<&Value>,
    remove: bool,
) -> Result<Vec<Edit>, ScimError> {
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

/// A PATCH names the PatchOp schema, or no schema at all (as some IdPs send it).
pub(super) fn check_patch_schema(req: &PatchRequest) -> Result<(), ScimError> {
    if !req.schemas.is_empty() && !req.schemas.iter().any(|s| s == PATCH_SCHEMA) {
        return Err(scim_error(
            StatusCode::BAD_REQUEST,
            "invalidSyntax",
            format!("expected schema {PATCH_SCHEMA}"),
        ));
    }
    Ok(())
}

pub(super) fn parse_patch(req: PatchRequest) -> Result<Vec<Edit>, ScimError> {
    check_patch_schema(&req)?;
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

/// A JSON body whose rejections are SCIM errors.
#[derive(Debug)]
pub(in crate::routes) struct ScimBody<T>(pub(super) T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for ScimBody<T> {
    type Rejection = ScimError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        let Body(v) = Body::<T>::from_request(req, state).await?;
        Ok(ScimBody(v))
    }
}

/// The user id in the path; a malformed one is simply not found.
#[derive(Debug)]
pub(in crate::routes) struct UserId(pub(super) HumanId);

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
