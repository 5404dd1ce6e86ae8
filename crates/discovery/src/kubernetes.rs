//! Kubernetes service accounts, from `kubectl get
//! serviceaccounts,roles,clusterroles,rolebindings,clusterrolebindings,secrets -A -o json`
//! (one `List`; several files of it may be read in turn). Each service account is an
//! account keyed `namespace/name`, with:
//!
//! * its permissions from every binding that names it, or a group it is in
//!   (`system:serviceaccounts`, `system:serviceaccounts:<namespace>`): each rule of the
//!   bound role as `verb resource` (`get pods`), scoped to the binding's namespace or the
//!   cluster; a binding of `cluster-admin` across the cluster is an administrator grant, a
//!   role the export does not include is known by name only;
//! * its long-lived token secrets (`kubernetes.io/service-account-token`) as credentials,
//!   their last use from the `kubernetes.io/legacy-token-last-used` label (a day) and, once
//!   the control plane invalidated them, `kubernetes.io/legacy-token-invalid-since`;
//! * its owner, purpose and environment from labels or annotations (`owner`,
//!   `aim.dev/owner`, `purpose`, `environment`).
//!
//! A namespace's `default` service account with no binding and no token is left out: every
//! namespace has one and it can do nothing.

use std::collections::BTreeMap;
use std::io::Read;

use aim_domain::discovery::{
    Account, AccountKind, Credential, CredentialKind, LastUse, Permission,
};
use serde_json::Value;

use crate::ReadError;
use crate::values;

const TOKEN_TYPE: &str = "kubernetes.io/service-account-token";
const LAST_USED: &str = "kubernetes.io/legacy-token-last-used";
const INVALID_SINCE: &str = "kubernetes.io/legacy-token-invalid-since";
const SA_NAME: &str = "kubernetes.io/service-account.name";
/// The scope of a cluster role binding.
const CLUSTER: &str = "cluster";

fn text<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    path.iter()
        .try_fold(v, |v, k| v.get(k))
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn labelled(meta: &Value, keys: &[&str]) -> Option<String> {
    ["labels", "annotations"].iter().find_map(|m| {
        keys.iter().find_map(|k| {
            meta.get(m)
                .and_then(|x| x.get(k))
                .and_then(Value::as_str)
                .filter(|s| !s.trim().is_empty())
                .map(str::to_owned)
        })
    })
}

/// A role's rules as permissions, scoped to `scope`; every verb on every resource across
/// the cluster is an administrator grant, whatever the role is called.
fn rules(role: &Value, scope: &str, via: &str) -> Vec<Permission> {
    let mut out = Vec::new();
    let list = role
        .get("rules")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for rule in &list {
        let strs = |k: &str| -> Vec<String> {
            rule.get(k)
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        let verbs = strs("verbs");
        let mut resources = strs("resources");
        resources.extend(strs("nonResourceURLs"));
        for verb in &verbs {
            for resource in &resources {
                let action = if verb == "*" && resource == "*" {
                    "*".to_owned()
                } else {
                    format!("{verb} {resource}")
                };
                out.push(Permission {
                    admin: action == "*" && scope == CLUSTER,
                    action,
                    resource: Some(scope.to_owned()),
                    via: Some(via.to_owned()),
                });
            }
        }
    }
    out
}

/// Reads one `List`.
pub fn read(
    source: impl Read,
) -> Result<std::vec::IntoIter<Result<Account, ReadError>>, ReadError> {
    let list: Value = serde_json::from_reader(source).map_err(|e| {
        ReadError::Format(format!(
            "this is not the JSON output of `kubectl get ... -o json`: {e}"
        ))
    })?;
    let items = list.get("items").and_then(Value::as_array).ok_or_else(|| {
        ReadError::Format("the JSON has no `items`: use `kubectl get ... -o json`".to_owned())
    })?;
    let of = |kind: &'static str| items.iter().filter(move |i| text(i, &["kind"]) == kind);
    let mut roles: BTreeMap<(String, String), &Value> = BTreeMap::new();
    for r in of("Role") {
        roles.insert(
            (
                text(r, &["metadata", "namespace"]).to_owned(),
                text(r, &["metadata", "name"]).to_owned(),
            ),
            r,
        );
    }
    for r in of("ClusterRole") {
        roles.insert(
            (String::new(), text(r, &["metadata", "name"]).to_owned()),
            r,
        );
    }
    let mut out = Vec::new();
    for sa in of("ServiceAccount") {
        let ns = text(sa, &["metadata", "namespace"]);
        let name = text(sa, &["metadata", "name"]);
        let at = format!("ServiceAccount {ns}/{name}");
        out.push(account(sa, items, &roles).map_err(|m| ReadError::record(&at, m)));
    }
    // Leave out the idle `default` accounts.
    out.retain(|a| match a {
        Ok(a) => !(a.name == "default" && a.permissions.is_empty() && a.credentials.is_empty()),
        Err(_) => true,
    });
    Ok(out.into_iter())
}

/// Whether a binding's subject is this service account, or a group it belongs to.
fn names(subject: &Value, ns: &str, name: &str, binding_ns: &str) -> bool {
    match text(subject, &["kind"]) {
        "ServiceAccount" => {
            let sns = match text(subject, &["namespace"]) {
                "" => binding_ns,
                s => s,
            };
            text(subject, &["name"]) == name && sns == ns
        }
        "Group" => {
            let g = text(subject, &["name"]);
            g == "system:serviceaccounts" || g == format!("system:serviceaccounts:{ns}")
        }
        "User" => text(subject, &["name"]) == format!("system:serviceaccount:{ns}:{name}"),
        _ => false,
    }
}

fn account(
    sa: &Value,
    items: &[Value],
    roles: &BTreeMap<(String, String), &Value>,
) -> Result<Account, String> {
    let meta = sa.get("metadata").cloned().unwrap_or(Value::Null);
    let ns = text(&meta, &["namespace"]);
    let name = text(&meta, &["name"]);
    if ns.is_empty() || name.is_empty() {
        return Err("a service account needs a namespace and a name".to_owned());
    }
    let created = values::optional_date(text(&meta, &["creationTimestamp"]))
        .map_err(|e| format!("creationTimestamp: {e}"))?;
    let permissions = bound(items, roles, ns, name);
    let credentials = tokens(items, ns, name)?;
    let mut attributes = BTreeMap::new();
    for m in ["labels", "annotations"] {
        if let Some(v) = meta.get(m) {
            attributes.insert(m.to_owned(), v.clone());
        }
    }
    attributes.insert("namespace".to_owned(), ns.into());
    Ok(Account {
        key: format!("{ns}/{name}"),
        name: name.to_owned(),
        kind: AccountKind::ServiceAccount,
        enabled: true,
        owner: labelled(&meta, &["aim.dev/owner", "owner", "team.owner"]),
        purpose: labelled(&meta, &["aim.dev/purpose", "purpose", "description"]),
        vendor: None,
        environment: labelled(&meta, &["environment", "env"]),
        created,
        last_used: LastUse::Unknown,
        expires: None,
        credentials,
        permissions,
        groups: Vec::new(),
        systems: Vec::new(),
        flags: Vec::new(),
        attributes,
    })
}

/// What every binding naming the service account `ns/name` (or a group it is in) grants.
fn bound(
    items: &[Value],
    roles: &BTreeMap<(String, String), &Value>,
    ns: &str,
    name: &str,
) -> Vec<Permission> {
    let mut permissions = Vec::new();
    let bindings = items
        .iter()
        .filter(|i| matches!(text(i, &["kind"]), "RoleBinding" | "ClusterRoleBinding"));
    for b in bindings {
        let cluster = text(b, &["kind"]) == "ClusterRoleBinding";
        let bns = text(b, &["metadata", "namespace"]);
        let subjects = b
            .get("subjects")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if !subjects.iter().any(|s| names(s, ns, name, bns)) {
            continue;
        }
        let role_kind = text(b, &["roleRef", "kind"]);
        let role_name = text(b, &["roleRef", "name"]);
        let scope = if cluster {
            CLUSTER.to_owned()
        } else {
            format!("namespace/{bns}")
        };
        let binding = if cluster {
            text(b, &["metadata", "name"]).to_owned()
        } else {
            format!("{bns}/{}", text(b, &["metadata", "name"]))
        };
        let via = format!("{} {binding} → {role_kind} {role_name}", text(b, &["kind"]));
        if role_kind == "ClusterRole" && role_name == "cluster-admin" {
            permissions.push(Permission {
                action: "*".to_owned(),
                resource: Some(scope),
                via: Some(via),
                admin: cluster,
            });
            continue;
        }
        let key = if role_kind == "Role" {
            (bns.to_owned(), role_name.to_owned())
        } else {
            (String::new(), role_name.to_owned())
        };
        if let Some(role) = roles.get(&key) {
            permissions.extend(rules(role, &scope, &via));
        }
    }
    permissions.sort();
    permissions.dedup();
    permissions.truncate(aim_domain::discovery::account::MAX_PERMISSIONS);
    permissions
}

/// The long-lived token secrets of the service account `ns/name` (never their values).
fn tokens(items: &[Value], ns: &str, name: &str) -> Result<Vec<Credential>, String> {
    let mut credentials = Vec::new();
    let secrets = items
        .iter()
        .filter(|i| text(i, &["kind"]) == "Secret" && text(i, &["type"]) == TOKEN_TYPE);
    for s in secrets {
        let smeta = s.get("metadata").cloned().unwrap_or(Value::Null);
        if text(&smeta, &["namespace"]) != ns || text(&smeta, &["annotations", SA_NAME]) != name {
            continue;
        }
        let sname = text(&smeta, &["name"]);
        let label = |k: &str| text(&smeta, &["labels", k]).to_owned();
        let last = label(LAST_USED);
        let invalid = values::optional_date(&label(INVALID_SINCE))
            .map_err(|e| format!("secret {sname}: {INVALID_SINCE}: {e}"))?;
        let last_used = if last.is_empty() {
            LastUse::Unknown
        } else {
            let at =
                values::date(&last).map_err(|e| format!("secret {sname}: {LAST_USED}: {e}"))?;
            LastUse::At(at)
        };
        credentials.push(Credential {
            id: sname.to_owned(),
            kind: CredentialKind::Token,
            active: invalid.is_none(),
            created: values::optional_date(text(&smeta, &["creationTimestamp"]))
                .map_err(|e| format!("secret {sname}: {e}"))?,
            last_used,
            expires: invalid,
            rotates_itself: false,
            fingerprint: None,
        });
    }
    Ok(credentials)
}
