//! `aws iam get-account-authorization-details`: every IAM user, group, role and managed
//! policy of an account, as one JSON document (read whole; such exports are megabytes, not
//! gigabytes). Each user and role becomes an account keyed by its ARN (the same key as the
//! credential report, so both are views of one account) with its effective permissions:
//! its inline policies, its attached managed policies (their default version) and, for a
//! user, those of its groups.
//!
//! Policy documents come URL-encoded from the API and already decoded from the CLI; both
//! are read. Each `Allow` statement gives one permission per action and resource;
//! `NotAction` allows everything but the listed actions (a wildcard, named so); a `Deny` of
//! every action on every resource leaves nothing, other denials are counted in the
//! attributes. A managed policy the export does not include is known by name only
//! (`AdministratorAccess` is an administrator grant). A role's last use is reported for
//! the trailing 400 days: an empty `RoleLastUsed` says "not used since then, if ever".
//! Tags `owner`, `purpose` and `environment` (any case, a few spellings) fill those fields.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;

use aim_domain::discovery::{Account, AccountKind, Group, LastUse, Permission};
use aim_domain::time::{DAY_MS, Timestamp};
use serde::Deserialize;
use serde_json::Value;

use crate::ReadError;

/// How far back AWS reports a role's last use.
pub const ROLE_LAST_USED_DAYS: i64 = 400;

/// Managed policies that grant everything, when the export does not include their text.
const ADMIN_POLICIES: &[&str] = &["AdministratorAccess"];

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct Export {
    user_detail_list: Vec<User>,
    group_detail_list: Vec<IamGroup>,
    role_detail_list: Vec<Role>,
    policies: Vec<ManagedPolicy>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct User {
    user_name: String,
    arn: String,
    create_date: Option<String>,
    user_policy_list: Vec<Inline>,
    group_list: Vec<String>,
    attached_managed_policies: Vec<Attached>,
    tags: Vec<Tag>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct IamGroup {
    group_name: String,
    group_policy_list: Vec<Inline>,
    attached_managed_policies: Vec<Attached>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct Role {
    role_name: String,
    arn: String,
    create_date: Option<String>,
    assume_role_policy_document: Value,
    role_policy_list: Vec<Inline>,
    attached_managed_policies: Vec<Attached>,
    tags: Vec<Tag>,
    role_last_used: Option<RoleLastUsed>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct RoleLastUsed {
    last_used_date: Option<String>,
    region: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct Inline {
    policy_name: String,
    policy_document: Value,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct Attached {
    policy_name: String,
    policy_arn: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct Tag {
    key: String,
    value: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct ManagedPolicy {
    arn: String,
    default_version_id: String,
    policy_version_list: Vec<PolicyVersion>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct PolicyVersion {
    document: Value,
    version_id: String,
    is_default_version: bool,
}

/// What a set of policies allows, and what it says besides.
#[derive(Debug, Default)]
struct Grants {
    permissions: Vec<Permission>,
    denies: usize,
    deny_all: bool,
}

/// Reads an export; `as_of` is when it was taken (for roles' 400-day window).
pub fn read(
    source: impl Read,
    as_of: Timestamp,
) -> Result<std::vec::IntoIter<Result<Account, ReadError>>, ReadError> {
    let export: Export = serde_json::from_reader(source).map_err(|e| {
        ReadError::Format(format!(
            "this is not the output of `aws iam get-account-authorization-details`: {e}"
        ))
    })?;
    let mut policies = HashMap::new();
    for p in &export.policies {
        let default = p
            .policy_version_list
            .iter()
            .find(|v| v.is_default_version || v.version_id == p.default_version_id);
        if let Some(v) = default {
            let at = format!("policy {}", p.arn);
            policies.insert(
                p.arn.clone(),
                document(&v.document).map_err(|m| ReadError::record(&at, m))?,
            );
        }
    }
    let groups: HashMap<&str, &IamGroup> = export
        .group_detail_list
        .iter()
        .map(|g| (g.group_name.as_str(), g))
        .collect();
    let mut out = Vec::new();
    for u in &export.user_detail_list {
        out.push(
            user(u, &groups, &policies)
                .map_err(|m| ReadError::record(format!("user {}", u.arn), m)),
        );
    }
    for r in &export.role_detail_list {
        out.push(
            role(r, &policies, as_of).map_err(|m| ReadError::record(format!("role {}", r.arn), m)),
        );
    }
    Ok(out.into_iter())
}

/// A policy document as JSON, decoding the API's URL-encoding when it is a string.
fn document(v: &Value) -> Result<Value, String> {
    match v {
        Value::String(s) => {
            let decoded = percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .map_err(|e| format!("the policy document is not UTF-8 once decoded: {e}"))?;
            serde_json::from_str(&decoded)
                .map_err(|e| format!("the policy document is not JSON: {e}"))
        }
        other => Ok(other.clone()),
    }
}

/// A string or a list of strings.
fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

/// Adds what one policy document allows to `into`.
fn statements(doc: &Value, via: &str, into: &mut Grants) -> Result<(), String> {
    let list = match doc.get("Statement") {
        Some(Value::Array(a)) => a.iter().collect(),
        Some(one @ Value::Object(_)) => vec![one],
        _ => return Err(format!("`{via}` has no Statement")),
    };
    for st in list {
        let effect = st.get("Effect").and_then(Value::as_str).unwrap_or("");
        let actions = strings(st.get("Action"));
        let not_actions = strings(st.get("NotAction"));
        let mut resources = strings(st.get("Resource"));
        if resources.is_empty() && st.get("NotResource").is_some() {
            resources.push("*".to_owned());
        }
        let conditional = st.get("Condition").is_some();
        let via = if conditional {
            format!("{via} (with conditions)")
        } else {
            via.to_owned()
        };
        match effect {
            "Deny" => {
                into.denies += 1;
                if actions.iter().any(|a| a == "*")
                    && resources.iter().any(|r| r == "*")
                    && !conditional
                {
                    into.deny_all = true;
                }
            }
            "Allow" => {
                let mut acts = actions;
                if !not_actions.is_empty() {
                    acts.push(format!("* except {}", not_actions.join(", ")));
                }
                for a in &acts {
                    for r in &resources {
                        into.permissions.push(Permission {
                            action: a.clone(),
                            resource: Some(r.clone()),
                            via: Some(via.clone()),
                            admin: false,
                        });
                    }
                }
            }
            other => return Err(format!("`{via}` has a statement with Effect `{other}`")),
        }
    }
    Ok(())
}

fn inline(list: &[Inline], prefix: &str, into: &mut Grants) -> Result<(), String> {
    for p in list {
        let via = format!("{prefix}inline policy {}", p.policy_name);
        statements(&document(&p.policy_document)?, &via, into)?;
    }
    Ok(())
}

fn attached(
    list: &[Attached],
    prefix: &str,
    policies: &HashMap<String, Value>,
    into: &mut Grants,
) -> Result<(), String> {
    for a in list {
        let via = format!("{prefix}{}", a.policy_arn);
        match policies.get(&a.policy_arn) {
            Some(doc) => statements(doc, &via, into)?,
            None if ADMIN_POLICIES.contains(&a.policy_name.as_str()) => {
                into.permissions.push(Permission {
                    action: "*".to_owned(),
                    resource: Some("*".to_owned()),
                    via: Some(via),
                    admin: true,
                });
            }
            // Known by name only: listed in the attributes, no permission made up.
            None => {}
        }
    }
    Ok(())
}

/// The permissions, deduplicated, administrator and wildcard grants first, within bounds.
fn finish(mut g: Grants, attributes: &mut BTreeMap<String, Value>) -> Vec<Permission> {
    if g.deny_all {
        attributes.insert("deny_all".to_owned(), true.into());
        return Vec::new();
    }
    if g.denies > 0 {
        attributes.insert("deny_statements".to_owned(), g.denies.into());
    }
    g.permissions
        .sort_by_key(|p| (!p.is_admin(), !p.is_wildcard(), p.action.clone()));
    g.permissions.dedup();
    let max = aim_domain::discovery::account::MAX_PERMISSIONS;
    if g.permissions.len() > max {
        attributes.insert(
            "permissions_left_out".to_owned(),
            (g.permissions.len() - max).into(),
        );
        g.permissions.truncate(max);
    }
    g.permissions
}

/// The account with its permissions, and the names of its attached managed policies kept
/// (those the export did not include make no permission, but are on the record).
fn with_grants(mut a: Account, g: Grants, attached: &[Attached]) -> Account {
    let names: Vec<Value> = attached
        .iter()
        .map(|p| p.policy_name.clone().into())
        .collect();
    a.attributes
        .insert("attached_policies".to_owned(), names.into());
    a.permissions = finish(g, &mut a.attributes);
    a
}

/// `owner`, `purpose` and `environment` from tags.
fn tagged(tags: &[Tag], names: &[&str]) -> Option<String> {
    tags.iter()
        .find(|t| names.iter().any(|n| t.key.eq_ignore_ascii_case(n)))
        .map(|t| t.value.clone())
        .filter(|v| !v.trim().is_empty())
}

fn base(
    key: &str,
    name: &str,
    kind: AccountKind,
    created: Option<&String>,
    tags: &[Tag],
) -> Result<Account, String> {
    let created = created
        .map(|c| crate::values::date(c))
        .transpose()
        .map_err(|e| format!("CreateDate: {e}"))?;
    let attributes: BTreeMap<String, Value> = tags
        .iter()
        .map(|t| (format!("tag:{}", t.key), Value::from(t.value.clone())))
        .collect();
    Ok(Account {
        key: key.to_owned(),
        name: name.to_owned(),
        kind,
        enabled: true,
        owner: tagged(tags, &["owner", "owner_email", "owner-email", "contact"]),
        purpose: tagged(tags, &["purpose", "description"]),
        vendor: None,
        environment: tagged(tags, &["environment", "env", "stage"]),
        created,
        last_used: LastUse::Unknown,
        expires: None,
        credentials: Vec::new(),
        permissions: Vec::new(),
        groups: Vec::new(),
        systems: Vec::new(),
        flags: Vec::new(),
        attributes,
    })
}

fn user(
    u: &User,
    groups: &HashMap<&str, &IamGroup>,
    policies: &HashMap<String, Value>,
) -> Result<Account, String> {
    let mut a = base(
        &u.arn,
        &u.user_name,
        AccountKind::ServiceUser,
        u.create_date.as_ref(),
        &u.tags,
    )?;
    let mut g = Grants::default();
    inline(&u.user_policy_list, "", &mut g)?;
    attached(&u.attached_managed_policies, "", policies, &mut g)?;
    for name in &u.group_list {
        a.groups.push(Group {
            name: name.clone(),
            privileged: false,
        });
        if let Some(group) = groups.get(name.as_str()) {
            let prefix = format!("group {name}: ");
            inline(&group.group_policy_list, &prefix, &mut g)?;
            attached(&group.attached_managed_policies, &prefix, policies, &mut g)?;
        }
    }
    Ok(with_grants(a, g, &u.attached_managed_policies))
}

fn role(r: &Role, policies: &HashMap<String, Value>, as_of: Timestamp) -> Result<Account, String> {
    let mut a = base(
        &r.arn,
        &r.role_name,
        AccountKind::Role,
        r.create_date.as_ref(),
        &r.tags,
    )?;
    let mut g = Grants::default();
    inline(&r.role_policy_list, "", &mut g)?;
    attached(&r.attached_managed_policies, "", policies, &mut g)?;
    let window = Timestamp::from_millis(as_of.as_millis() - ROLE_LAST_USED_DAYS * DAY_MS);
    let used = r
        .role_last_used
        .as_ref()
        .and_then(|u| u.last_used_date.as_ref());
    a.last_used = match used {
        Some(d) => LastUse::At(crate::values::date(d).map_err(|e| format!("RoleLastUsed: {e}"))?),
        // Created inside the window and not used in it: never.
        None if a.created.is_some_and(|c| c >= window) => LastUse::Never,
        None => LastUse::Before(window),
    };
    if let Some(region) = r.role_last_used.as_ref().and_then(|u| u.region.clone()) {
        a.attributes
            .insert("last_used_region".to_owned(), region.into());
    }
    let trust = document(&r.assume_role_policy_document)?;
    a.attributes.insert("trust_policy".to_owned(), trust);
    Ok(with_grants(a, g, &r.attached_managed_policies))
}
