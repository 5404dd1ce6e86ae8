//! SCIM 2.0 `/scim/v2/Groups` (RFC 7643 §4.2, RFC 7644): the groups an identity provider
//! pushes become aim's human groups, which policies (`principal in Aim::Group::"..."`) and
//! approvals (`@approval("group:...")`) name. A group's aim name is made from its display
//! name when it is created (`Claims Leads` → `claims-leads`) and never changes after, so a
//! rename at the IdP does not silently detach the policies that name it. Membership lives
//! on the humans; PATCH speaks both Okta's dialect (`remove` with
//! `members[value eq "..."]`, `replace` without a path) and Entra ID's (`Add`/`Remove`
//! with `path: members` and a value list).

use aim_domain::event::{Actor, AuditAction, Event};
use aim_domain::human::{Human, Role};
use aim_domain::ids::HumanId;
use aim_domain::validate;
use aim_store::{HumanFilter, Membership, ScimGroup};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};
use uuid::Uuid;

use super::wire::{
    LIST_SCHEMA, ListParams, MAX_RESULTS, PatchRequest, ScimBody, ScimError, check_patch_schema,
    parse_filter, scim_error, scim_json,
};
use crate::auth::HumanCaller;
use crate::error::ApiError;
use crate::extract::Query;
use crate::state::AppState;

pub(super) const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";

/// The most members one group may have: a group is read whole with its members.
const MAX_MEMBERS: u32 = 10_000;

fn may_provision(p: &HumanCaller) -> Result<(), ScimError> {
    if p.is(Role::Admin) || p.is(Role::Scim) {
        return Ok(());
    }
    Err(ApiError::forbidden("provisioning groups takes an admin or a scim credential").into())
}

fn not_found(id: &str) -> ScimError {
    scim_error(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("Group {id} not found"),
    )
}

fn invalid(detail: impl Into<String>) -> ScimError {
    scim_error(StatusCode::BAD_REQUEST, "invalidValue", detail)
}

/// The aim group name a display name maps to: lower case, every run of characters a group
/// name cannot hold turned into one `-`.
pub(super) fn group_name(display_name: &str) -> Result<String, ScimError> {
    let mut name = String::new();
    for c in display_name.trim().chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() || "._:/@+".contains(c) {
            name.push(c);
        } else if !name.ends_with('-') {
            name.push('-');
        }
    }
    let name: String = name.trim_matches('-').chars().take(128).collect();
    validate::token("group", &name, 128).map_err(|_| {
        invalid(format!(
            "displayName `{display_name}` gives no usable group name"
        ))
    })
}

async fn group(s: &AppState, id: &str) -> Result<ScimGroup, ScimError> {
    let uuid = Uuid::parse_str(id).map_err(|_| not_found(id))?;
    s.store
        .scim_group(uuid)
        .await
        .map_err(ApiError::from)?
        .ok_or_else(|| not_found(id))
}

async fn members(s: &AppState, g: &ScimGroup) -> Result<Vec<Human>, ScimError> {
    let filter = HumanFilter {
        member_of: Some(g.name.clone()),
        ..HumanFilter::default()
    };
    Ok(s.store
        .list_humans_offset(&filter, 0, MAX_MEMBERS)
        .await
        .map_err(ApiError::from)?
        .0)
}

fn to_scim(g: &ScimGroup, members: Option<&[Human]>) -> Value {
    let mut v = json!({
        "schemas": [GROUP_SCHEMA],
        "id": g.id,
        "displayName": g.display_name,
        "meta": {
            "resourceType": "Group",
            "created": g.created_at,
            "lastModified": g.updated_at,
            "location": format!("/scim/v2/Groups/{}", g.id),
        },
        // aim's own name for it, what policies and approvals name.
        "urn:aim:params:scim:schemas:extension:2.0:Group": { "name": g.name },
    });
    if let Some(x) = &g.external_id {
        v["externalId"] = json!(x);
    }
    if let Some(ms) = members {
        v["members"] = ms
            .iter()
            .map(|h| json!({ "value": h.id, "display": h.user_name, "$ref": format!("/scim/v2/Users/{}", h.id) }))
            .collect();
    }
    v
}

/// The user ids of a `members` value: `[{"value": "<id>"}, ...]`.
fn member_ids(value: Option<&Value>) -> Result<Vec<HumanId>, ScimError> {
    let Some(Value::Array(items)) = value else {
        return Err(invalid(
            "`members` must be a list of {\"value\": \"<user id>\"}",
        ));
    };
    items
        .iter()
        .map(|m| {
            let id = m["value"].as_str().unwrap_or_default();
            HumanId::parse(id).map_err(|_| invalid(format!("`{id}` is not a user id")))
        })
        .collect()
}

fn event(p: &HumanCaller, action: AuditAction, g: &ScimGroup, detail: Value) -> Event {
    Event::new(
        g.updated_at,
        Actor::human(p.human.id),
        action,
        "group",
        &g.name,
    )
    .detail(detail)
    .from_request(&p.request.id, &p.request.source)
}

#[utoipa::path(post, path = "/scim/v2/Groups", tag = "scim",
    request_body(content = Object, content_type = "application/scim+json", description = "A SCIM Group (RFC 7643 §4.2)"),
    responses((status = 201, body = Object), (status = 400, body = Object), (status = 409, body = Object)))]
pub(in crate::routes) async fn create(
    State(s): State<AppState>,
    p: HumanCaller,
    ScimBody(v): ScimBody<Value>,
) -> Result<Response, ScimError> {
    may_provision(&p)?;
    let display_name = v["displayName"]
        .as_str()
        .ok_or_else(|| invalid("`displayName` is required"))?;
    let display_name = validate::optional_text("displayName", Some(display_name.to_owned()), 256)
        .map_err(ApiError::from)?
        .ok_or_else(|| invalid("`displayName` is required"))?;
    let external_id = validate::optional_text(
        "externalId",
        v["externalId"].as_str().map(str::to_owned),
        256,
    )
    .map_err(ApiError::from)?;
    let add = match v.get("members") {
        None | Some(Value::Null) => Vec::new(),
        m => member_ids(m)?,
    };
    let now = s.clock.now();
    let g = ScimGroup {
        id: Uuid::now_v7(),
        name: group_name(&display_name)?,
        display_name,
        external_id,
        created_at: now,
        updated_at: now,
    };
    let e = event(
        &p,
        AuditAction::GroupProvisioned,
        &g,
        json!({ "display_name": g.display_name, "members_added": add }),
    );
    s.store
        .insert_scim_group(&g, &add, &e)
        .await
        .map_err(|e| match e {
            aim_store::StoreError::Conflict(r) => {
                scim_error(StatusCode::CONFLICT, "uniqueness", r.to_string())
            }
            other => ApiError::from(other).into(),
        })?;
    let ms = members(&s, &g).await?;
    Ok(scim_json(StatusCode::CREATED, to_scim(&g, Some(&ms))))
}

#[utoipa::path(get, path = "/scim/v2/Groups/{id}", tag = "scim",
    params(("id" = String, Path), ("excludedAttributes" = Option<String>, Query)),
    responses((status = 200, body = Object), (status = 404, body = Object)))]
pub(in crate::routes) async fn show(
    State(s): State<AppState>,
    p: HumanCaller,
    Path(id): Path<String>,
    Query(q): Query<ListParams>,
) -> Result<Response, ScimError> {
    may_provision(&p)?;
    let g = group(&s, &id).await?;
    let ms = if excludes_members(&q) {
        None
    } else {
        Some(members(&s, &g).await?)
    };
    Ok(scim_json(StatusCode::OK, to_scim(&g, ms.as_deref())))
}

fn excludes_members(q: &ListParams) -> bool {
    q.excluded_attributes.as_deref().is_some_and(|x| {
        x.split(',')
            .any(|a| a.trim().eq_ignore_ascii_case("members"))
    })
}

#[utoipa::path(get, path = "/scim/v2/Groups", tag = "scim",
    params(("filter" = Option<String>, Query, description = "`displayName`, `externalId` or `id` eq \"value\""),
        ("startIndex" = Option<u64>, Query), ("count" = Option<u32>, Query), ("excludedAttributes" = Option<String>, Query)),
    responses((status = 200, body = Object), (status = 400, body = Object)))]
pub(in crate::routes) async fn list(
    State(s): State<AppState>,
    p: HumanCaller,
    Query(q): Query<ListParams>,
) -> Result<Response, ScimError> {
    may_provision(&p)?;
    let start = q.start_index.unwrap_or(1).max(1);
    let count = q.count.unwrap_or(100).min(MAX_RESULTS);
    let (mut display_name, mut external_id, mut only_id) = (None, None, None);
    if let Some(f) = &q.filter {
        let (attr, value) = parse_filter(f, &["displayName", "externalId", "id"])?;
        match attr.as_str() {
            "displayName" => display_name = Some(value),
            "externalId" => external_id = Some(value),
            _ => only_id = Some(value),
        }
    }
    let (groups, total) = match only_id {
        Some(id) => {
            let found = group(&s, &id).await.ok();
            let total = u64::from(found.is_some());
            (
                found
                    .into_iter()
                    .filter(|_| start == 1 && count > 0)
                    .collect(),
                total,
            )
        }
        None => s
            .store
            .list_scim_groups(
                display_name.as_deref(),
                external_id.as_deref(),
                start - 1,
                count,
            )
            .await
            .map_err(ApiError::from)?,
    };
    let mut resources = Vec::new();
    for g in &groups {
        let ms = if excludes_members(&q) {
            None
        } else {
            Some(members(&s, g).await?)
        };
        resources.push(to_scim(g, ms.as_deref()));
    }
    Ok(scim_json(
        StatusCode::OK,
        json!({
            "schemas": [LIST_SCHEMA],
            "totalResults": total,
            "startIndex": start,
            "itemsPerPage": resources.len(),
            "Resources": resources,
        }),
    ))
}

/// What one PATCH does to a group: a new display name or external id, and who joins and
/// leaves (`None` for members: unchanged; `Some` after a `replace`: exactly these).
#[derive(Debug, Default)]
struct GroupEdit {
    display_name: Option<String>,
    external_id: Option<Option<String>>,
    replace_members: Option<Vec<HumanId>>,
    add: Vec<HumanId>,
    remove: Vec<HumanId>,
    remove_all: bool,
}

/// `members[value eq "<id>"]`, as Okta removes one member.
fn filtered_member(path: &str) -> Option<Result<HumanId, ScimError>> {
    let inner = path.strip_prefix("members[")?.strip_suffix(']')?;
    Some(parse_filter(inner, &["value"]).and_then(|(_, id)| {
        HumanId::parse(&id).map_err(|_| invalid(format!("`{id}` is not a user id")))
    }))
}

fn parse_group_patch(req: PatchRequest) -> Result<GroupEdit, ScimError> {
    check_patch_schema(&req)?;
    let mut edit = GroupEdit::default();
    for op in req.operations {
        let kind = op.op.to_ascii_lowercase();
        let path = op.path.as_deref().map(str::trim);
        match (kind.as_str(), path) {
            ("add", Some(p)) if p.eq_ignore_ascii_case("members") => {
                edit.add.extend(member_ids(op.value.as_ref())?);
            }
            ("remove", Some(p)) if p.eq_ignore_ascii_case("members") => match &op.value {
                None | Some(Value::Null) => edit.remove_all = true,
                v => edit.remove.extend(member_ids(v.as_ref())?),
            },
            ("remove", Some(p)) if p.starts_with("members[") => {
                let member = filtered_member(p).unwrap_or_else(|| {
                    Err(invalid(format!(
                        "`{p}`: remove one member with members[value eq \"<id>\"]"
                    )))
                })?;
                edit.remove.push(member);
            }
            ("replace", Some(p)) if p.eq_ignore_ascii_case("members") => {
                edit.replace_members = Some(member_ids(op.value.as_ref())?);
            }
            ("replace" | "add", Some(p)) if p.eq_ignore_ascii_case("displayName") => {
                edit.display_name = Some(text(op.value.as_ref(), "displayName")?);
            }
            ("replace" | "add", Some(p)) if p.eq_ignore_ascii_case("externalId") => {
                edit.external_id = Some(Some(text(op.value.as_ref(), "externalId")?));
            }
            ("replace" | "add", None) => {
                let Some(Value::Object(map)) = &op.value else {
                    return Err(invalid("a patch without a path needs an object value"));
                };
                for (k, v) in map {
                    match k.to_ascii_lowercase().as_str() {
                        "displayname" => edit.display_name = Some(text(Some(v), "displayName")?),
                        "externalid" => edit.external_id = Some(Some(text(Some(v), "externalId")?)),
                        "members" if kind == "add" => edit.add.extend(member_ids(Some(v))?),
                        "members" => edit.replace_members = Some(member_ids(Some(v))?),
                        // `id`, `schemas`, `meta`: Okta repeats them; nothing to change.
                        _ => {}
                    }
                }
            }
            _ => {
                return Err(scim_error(
                    StatusCode::BAD_REQUEST,
                    "invalidPath",
                    format!(
                        "unsupported operation `{}` on `{}`",
                        op.op,
                        path.unwrap_or("")
                    ),
                ));
            }
        }
    }
    Ok(edit)
}

fn text(v: Option<&Value>, field: &str) -> Result<String, ScimError> {
    let s = v
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(format!("`{field}` must be a string")))?;
    validate::optional_text(field, Some(s.to_owned()), 256)
        .map_err(ApiError::from)?
        .ok_or_else(|| invalid(format!("`{field}` must not be empty")))
}

#[utoipa::path(patch, path = "/scim/v2/Groups/{id}", tag = "scim", params(("id" = String, Path)),
    request_body(content = Object, content_type = "application/scim+json", description = "A PatchOp (RFC 7644 §3.5.2), Okta's or Entra ID's"),
    responses((status = 200, body = Object), (status = 400, body = Object), (status = 404, body = Object)))]
pub(in crate::routes) async fn patch(
    State(s): State<AppState>,
    p: HumanCaller,
    Path(id): Path<String>,
    ScimBody(req): ScimBody<PatchRequest>,
) -> Result<Response, ScimError> {
    may_provision(&p)?;
    let mut g = group(&s, &id).await?;
    let edit = parse_group_patch(req)?;
    let current: Vec<HumanId> = members(&s, &g).await?.iter().map(|h| h.id).collect();
    let mut change = Membership::default();
    if edit.remove_all {
        change.remove.extend(current.iter().copied());
    }
    if let Some(wanted) = &edit.replace_members {
        change
            .remove
            .extend(current.iter().filter(|m| !wanted.contains(m)).copied());
        change
            .add
            .extend(wanted.iter().filter(|m| !current.contains(m)).copied());
    }
    change
        .add
        .extend(edit.add.iter().filter(|m| !current.contains(m)).copied());
    change
        .remove
        .extend(edit.remove.iter().filter(|m| current.contains(m)).copied());
    change.add.sort_unstable();
    change.add.dedup();
    change.remove.sort_unstable();
    change.remove.dedup();
    if let Some(d) = edit.display_name {
        g.display_name = d;
    }
    if let Some(x) = edit.external_id {
        g.external_id = x;
    }
    g.updated_at = s.clock.now();
    let e = event(
        &p,
        AuditAction::GroupChanged,
        &g,
        json!({ "display_name": g.display_name, "members_added": change.add, "members_removed": change.remove }),
    );
    s.store
        .change_scim_group(&g, &change, &e)
        .await
        .map_err(|e| match e {
            aim_store::StoreError::Conflict(r) => invalid(r.to_string()),
            other => ApiError::from(other).into(),
        })?;
    let ms = members(&s, &g).await?;
    Ok(scim_json(StatusCode::OK, to_scim(&g, Some(&ms))))
}

#[utoipa::path(delete, path = "/scim/v2/Groups/{id}", tag = "scim", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = Object)))]
pub(in crate::routes) async fn remove(
    State(s): State<AppState>,
    p: HumanCaller,
    Path(id): Path<String>,
) -> Result<StatusCode, ScimError> {
    may_provision(&p)?;
    let mut g = group(&s, &id).await?;
    g.updated_at = s.clock.now();
    let e = event(
        &p,
        AuditAction::GroupDeleted,
        &g,
        json!({ "display_name": g.display_name }),
    );
    if !s
        .store
        .delete_scim_group(g.id, &e)
        .await
        .map_err(ApiError::from)?
    {
        return Err(not_found(&id));
    }
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    #[test]
    fn display_names_become_group_names() {
        let name = |d: &str| super::group_name(d).ok();
        assert_eq!(name("Claims Leads").as_deref(), Some("claims-leads"));
        assert_eq!(
            name("  Finance / Approvers  ").as_deref(),
            Some("finance-/-approvers")
        );
        assert_eq!(name("R&D — EU").as_deref(), Some("r-d-eu"));
        assert_eq!(name("***"), None);
    }
}
