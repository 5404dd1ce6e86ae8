//! The findings about one account at one instant. Each rule reads only the account, the
//! account as the previous import saw it, what aim knows of its owner, and the thresholds; a
//! rule that needs every account of a source (duplicates, one credential shared across
//! environments) is the caller's, over the keys this module derives.

use serde_json::json;

use super::account::{Account, AccountKind, Credential, CredentialKind, Flag, LastUse};
use super::finding::{Finding, FindingKind as K, Severity, Thresholds};
use crate::time::{DAY_MS, Timestamp};

/// What aim knows of the human an account names as its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// No owner named.
    None,
    /// A human aim knows, still with the company.
    Active(String),
    /// A human aim knows, departed.
    Departed(String),
    /// A name aim does not know among its humans.
    Unknown(String),
}

/// One account to assess, with everything its rules read.
#[derive(Debug, Clone)]
pub struct Subject<'a> {
    pub account: &'a Account,
    /// The account as the previous import of its source saw it.
    pub previous: Option<&'a Account>,
    pub owner: Owner,
    pub thresholds: Thresholds,
    pub now: Timestamp,
}

/// Every finding about the account, in a stable order. A disabled account, or one a person
/// uses as their own, has none.
pub fn assess(s: &Subject<'_>) -> Vec<Finding> {
    let a = s.account;
    let mut out = Vec::new();
    if !a.enabled || !a.kind.is_machine() {
        return out;
    }
    orphaned(s, &mut out);
    expired(s, &mut out);
    usage(s, &mut out);
    rotation(s, &mut out);
    privilege(s, &mut out);
    authentication(a, &mut out);
    human_use(a, &mut out);
    out
}

/// The account's findings assessed again without a new import (the clock moved on, an
/// owner left aim's humans): as [`assess`], keeping the `privilege_added` finding of its last
/// import, which only an import can tell (it compares two imports). Equal to what that
/// import gave when nothing else changed.
pub fn reassess(s: &Subject<'_>, kept: &[Finding]) -> Vec<Finding> {
    let mut out = assess(&Subject {
        previous: None,
        ..s.clone()
    });
    let added = kept.iter().find(|f| f.kind == K::PrivilegeAdded);
    let after = out.iter().position(|f| f.kind == K::OverPrivileged);
    if let (Some(added), Some(i)) = (added, after) {
        out.insert(i + 1, added.clone());
    }
    out
}

fn days(ms: i64) -> i64 {
    ms / DAY_MS
}

fn older_than(now: Timestamp, t: Timestamp, days: u32) -> bool {
    now.as_millis().saturating_sub(t.as_millis()) > i64::from(days) * DAY_MS
}

fn orphaned(s: &Subject<'_>, out: &mut Vec<Finding>) {
    if s.account.kind == AccountKind::Root {
        return;
    }
    let (message, evidence) = match &s.owner {
        Owner::Active(_) => return,
        Owner::None => (
            "has no owner".to_owned(),
            json!({ "owner": null, "reason": "no_owner" }),
        ),
        Owner::Departed(who) => (
            format!("its owner `{who}` has left"),
            json!({ "owner": who, "reason": "owner_departed" }),
        ),
        Owner::Unknown(who) => (
            format!("its owner `{who}` is not a human aim knows"),
            json!({ "owner": who, "reason": "owner_unknown" }),
        ),
    };
    out.push(Finding::new(K::Orphaned, Severity::Medium, message).evidence(evidence));
}

fn expired(s: &Subject<'_>, out: &mut Vec<Finding>) {
    if let Some(at) = s.account.expires
        && at < s.now
    {
        out.push(
            Finding::new(
                K::ExpiredEnabled,
                Severity::High,
                format!("expired {at} and is still enabled"),
            )
            .evidence(json!({ "expires": at, "enabled": true })),
        );
    }
    for c in s.account.active() {
        if let Some(at) = c.expires
            && at < s.now
        {
            out.push(
                Finding::new(
                    K::ExpiredEnabled,
                    Severity::High,
                    format!("{} `{}` expired {at} and is still active", c.kind, c.id),
                )
                .on(&c.id)
                .evidence(json!({ "expires": at, "active": true })),
            );
        }
    }
}

/// Dormant and never used, per credential where the source dates each credential's use,
/// else for the account.
fn usage(s: &Subject<'_>, out: &mut Vec<Finding>) {
    let a = s.account;
    // The root user should not be used at all: its quiet is the goal, not a finding.
    if a.kind == AccountKind::Root {
        return;
    }
    let dated: Vec<&Credential> = a
        .active()
        .filter(|c| c.last_used != LastUse::Unknown)
        .collect();
    if dated.is_empty() {
        if let Some(f) = unused(s, a.last_used, a.created, "the account") {
            out.push(f);
        }
        return;
    }
    for c in dated {
        let what = format!("{} `{}`", c.kind, c.id);
        let created = c.created.or(a.created);
        if let Some(f) = unused(s, c.last_used, created, &what) {
            out.push(f.on(&c.id));
        }
    }
}

fn unused(
    s: &Subject<'_>,
    last: LastUse,
    created: Option<Timestamp>,
    what: &str,
) -> Option<Finding> {
    let limit = s.thresholds.dormant_days;
    match last {
        LastUse::Unknown => None,
        LastUse::Before(t) if older_than(s.now, t, limit) => Some(
            Finding::new(
                K::Dormant,
                Severity::Medium,
                format!(
                    "{what} has not been used since {t}, if ever (the source looks back no \
                     further; dormant after {limit} days)"
                ),
            )
            .evidence(json!({ "last_used_before": t, "dormant_days": limit })),
        ),
        LastUse::At(t) if older_than(s.now, t, limit) => Some(
            Finding::new(
                K::Dormant,
                Severity::Medium,
                format!(
                    "{what} was last used {t}, {} days ago (dormant after {limit})",
                    days(s.now.as_millis() - t.as_millis())
                ),
            )
            .evidence(json!({ "last_used": t, "dormant_days": limit })),
        ),
        LastUse::At(_) | LastUse::Before(_) => None,
        LastUse::Never => {
            // A new account has not had the time to be used.
            if created.is_some_and(|c| !older_than(s.now, c, limit)) {
                return None;
            }
            Some(
                Finding::new(
                    K::NeverUsed,
                    Severity::Medium,
                    match created {
                        Some(c) => format!("{what} was created {c} and has never been used"),
                        None => format!("{what} has never been used"),
                    },
                )
                .evidence(
                    json!({ "last_used": "never", "created": created, "dormant_days": limit }),
                ),
            )
        }
    }
}

fn rotation(s: &Subject<'_>, out: &mut Vec<Finding>) {
    let a = s.account;
    let limit = s.thresholds.rotation_days;
    let managed = a.kind == AccountKind::ManagedServiceAccount;
    for c in a.active() {
        if managed || c.rotates_itself || c.kind == CredentialKind::ConsolePassword {
            continue;
        }
        let Some(created) = c.created else { continue };
        if !older_than(s.now, created, limit) {
            continue;
        }
        let age = days(s.now.as_millis() - created.as_millis());
        // In place since the account was made (within a day of it): never rotated.
        let original = a
            .created
            .is_some_and(|made| (created.as_millis() - made.as_millis()).abs() <= DAY_MS);
        let (kind, message) = if original {
            (
                K::NeverRotated,
                format!(
                    "{} `{}` has not changed since the account was created, {age} days ago",
                    c.kind, c.id
                ),
            )
        } else {
            (
                K::StaleCredential,
                format!(
                    "{} `{}` was last rotated {created}, {age} days ago (rotate within {limit})",
                    c.kind, c.id
                ),
            )
        };
        out.push(
            Finding::new(kind, Severity::Medium, message)
                .on(&c.id)
                .evidence(json!({ "created": created, "account_created": a.created, "age_days": age, "rotation_days": limit })),
        );
    }
    let keys: Vec<&str> = a
        .active()
        .filter(|c| c.kind == CredentialKind::AccessKey)
        .map(|c| c.id.as_str())
        .collect();
    if keys.len() >= 2 {
        out.push(
            Finding::new(
                K::TwoActiveKeys,
                Severity::Low,
                format!("{} access keys are active at once", keys.len()),
            )
            .evidence(json!({ "access_keys": keys })),
        );
    }
    if a.has(Flag::PasswordNeverExpires) && !managed {
        out.push(
            Finding::new(
                K::PasswordNeverExpires,
                Severity::Medium,
                "its password never expires and the directory does not rotate it".to_owned(),
            )
            .evidence(json!({ "flags": [Flag::PasswordNeverExpires] })),
        );
    }
}

fn privilege(s: &Subject<'_>, out: &mut Vec<Finding>) {
    let a = s.account;
    let admin: Vec<_> = a.permissions.iter().filter(|p| p.is_admin()).collect();
    let wildcard: Vec<_> = a
        .permissions
        .iter()
        .filter(|p| !p.is_admin() && p.is_wildcard())
        .collect();
    let groups: Vec<&str> = a
        .groups
        .iter()
        .filter(|g| g.privileged)
        .map(|g| g.name.as_str())
        .collect();
    let delegation = a.has(Flag::TrustedForDelegation);
    let root_keys: Vec<&str> = if a.kind == AccountKind::Root {
        a.active()
            .filter(|c| c.kind == CredentialKind::AccessKey)
            .map(|c| c.id.as_str())
            .collect()
    } else {
        Vec::new()
    };
    let mut why = Vec::new();
    if !admin.is_empty() {
        why.push(format!("{} administrator grant(s)", admin.len()));
    }
    if !wildcard.is_empty() {
        why.push(format!("{} wildcard grant(s)", wildcard.len()));
    }
    if !groups.is_empty() {
        why.push(format!("member of {}", groups.join(", ")));
    }
    if delegation {
        why.push("trusted for unconstrained delegation".to_owned());
    }
    if !root_keys.is_empty() {
        why.push("the root user has an active access key".to_owned());
    }
    if !why.is_empty() {
        let severity = if !root_keys.is_empty() {
            Severity::Critical
        } else if !admin.is_empty() || !groups.is_empty() || delegation {
            Severity::High
        } else {
            Severity::Medium
        };
        out.push(
            Finding::new(K::OverPrivileged, severity, why.join("; ")).evidence(json!({
                "admin": admin, "wildcard": wildcard, "privileged_groups": groups,
                "trusted_for_delegation": delegation, "root_access_keys": root_keys,
            })),
        );
    }
    if let Some(before) = s.previous {
        let added: Vec<&str> = groups
            .iter()
            .copied()
            .filter(|g| !before.groups.iter().any(|b| b.privileged && b.name == *g))
            .collect();
        if !added.is_empty() {
            out.push(
                Finding::new(
                    K::PrivilegeAdded,
                    Severity::High,
                    format!("joined {} since the previous import", added.join(", ")),
                )
                .evidence(json!({ "added": added })),
            );
        }
    }
}

fn authentication(a: &Account, out: &mut Vec<Finding>) {
    let managed = a.kind == AccountKind::ManagedServiceAccount;
    let mut flags = Vec::new();
    let mut why = Vec::new();
    if a.has(Flag::PasswordNotRequired) {
        flags.push(Flag::PasswordNotRequired);
        why.push("may have an empty password (PASSWD_NOTREQD)");
    }
    if a.has(Flag::NoPreauthentication) {
        flags.push(Flag::NoPreauthentication);
        why.push("does not require Kerberos pre-authentication (AS-REP roastable)");
    }
    // A managed account's password is long, random and rotated: its SPN cannot be cracked.
    if a.has(Flag::ServicePrincipalName) && !managed {
        flags.push(Flag::ServicePrincipalName);
        why.push("has a service principal name on a password account (Kerberoastable)");
    }
    if flags.is_empty() {
        return;
    }
    let severity = if flags == [Flag::ServicePrincipalName] {
        Severity::Medium
    } else {
        Severity::High
    };
    out.push(
        Finding::new(K::WeakAuthentication, severity, why.join("; "))
            .evidence(json!({ "flags": flags, "service_principal_names": a.attributes.get("servicePrincipalName") })),
    );
}

fn human_use(a: &Account, out: &mut Vec<Finding>) {
    let console: Vec<&str> = a
        .active()
        .filter(|c| c.kind == CredentialKind::ConsolePassword)
        .map(|c| c.id.as_str())
        .collect();
    let interactive = a.has(Flag::InteractiveLogon);
    if console.is_empty() && !interactive {
        return;
    }
    let mut why = Vec::new();
    if !console.is_empty() {
        why.push("has a console password");
    }
    if interactive {
        why.push("is used for interactive logons");
    }
    out.push(
        Finding::new(
            K::HumanUse,
            Severity::Medium,
            format!("a machine identity that {}", why.join(" and ")),
        )
        .evidence(
            json!({ "console_password": !console.is_empty(), "interactive_logon": interactive }),
        ),
    );
}
