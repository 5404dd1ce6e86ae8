//! Findings no single account shows: the same owner, purpose and permissions under
//! different names, one vendor's bot under several identities, one credential on accounts
//! in different environments, and, for an account that is a registry identity, the systems
//! it is registered for and has not used in aim's record. The caller groups accounts by the
//! keys made here and makes a finding for each member of a group of two or more.

use serde_json::json;
use sha2::{Digest, Sha256};

use super::account::{Account, AccountKind};
use super::finding::{Finding, FindingKind, Severity};
use crate::time::Timestamp;

/// The kinds made here, which a per-account assessment never makes.
pub const KINDS: &[FindingKind] = &[
    FindingKind::Duplicate,
    FindingKind::SharedAcrossEnvironments,
    FindingKind::UnusedPermissions,
];

/// How long a registered system may go unused before it is a finding.
pub const UNUSED_DAYS: u32 = 90;

/// The systems `identity` is registered for and has not reached (`used` says when it last
/// did) in the [`UNUSED_DAYS`] before `now`; `None` when it uses them all, or when it has
/// not been in the registry that long (`since`: when it was approved).
pub fn unused(
    identity: &str,
    registered: &[String],
    used: impl Fn(&str) -> Option<Timestamp>,
    since: Timestamp,
    now: Timestamp,
) -> Option<Finding> {
    let from = now.minus_days(UNUSED_DAYS);
    if since > from {
        return None;
    }
    let idle: Vec<&String> = registered
        .iter()
        .filter(|s| used(s).is_none_or(|t| t < from))
        .collect();
    if idle.is_empty() {
        return None;
    }
    let names: Vec<&str> = idle.iter().map(|s| s.as_str()).collect();
    Some(
        Finding::new(
            FindingKind::UnusedPermissions,
            Severity::Medium,
            format!(
                "as `{identity}` it has not used {} in aim's record for {UNUSED_DAYS} days",
                names.join(", ")
            ),
        )
        .evidence(json!({ "identity": identity, "unused_systems": names, "days": UNUSED_DAYS })),
    )
}

fn norm(s: &str) -> String {
    s.trim().to_lowercase()
}

/// What two accounts that do the same job share: the owner, the purpose and the
/// permissions (in any order). `None` unless all three are known, and for a disabled or a
/// person's account.
pub fn duplicate_key(a: &Account) -> Option<String> {
    if !a.enabled || !a.kind.is_machine() || a.permissions.is_empty() {
        return None;
    }
    let owner = norm(a.owner.as_deref()?);
    let purpose = norm(a.purpose.as_deref()?);
    let mut grants: Vec<String> = a
        .permissions
        .iter()
        .map(|p| format!("{}\u{1f}{}", p.action, p.resource.as_deref().unwrap_or("")))
        .collect();
    grants.sort();
    grants.dedup();
    let mut h = Sha256::new();
    for part in [owner.as_str(), purpose.as_str()]
        .into_iter()
        .chain(grants.iter().map(String::as_str))
    {
        h.update(part.as_bytes());
        h.update([0x1e]);
    }
    Some(format!("job:{:x}", h.finalize()))
}

/// One vendor's bot: bots of the same vendor in one source are one integration installed
/// more than once. `None` for anything but an enabled bot with a vendor.
pub fn vendor_key(a: &Account) -> Option<String> {
    (a.enabled && a.kind == AccountKind::Bot)
        .then_some(a.vendor.as_deref())
        .flatten()
        .map(|v| format!("vendor:{}", norm(v)))
}

/// The finding on each member of a group: `key` is what they share, `others` the names of
/// the other members.
pub fn duplicate(key: &str, others: &[String]) -> Finding {
    let (message, reason) = if let Some(vendor) = key.strip_prefix("vendor:") {
        (
            format!(
                "one of {} bots of the vendor `{vendor}`: {}",
                others.len() + 1,
                others.join(", ")
            ),
            "same_vendor",
        )
    } else {
        (
            format!(
                "the same owner, purpose and permissions as {}",
                others.join(", ")
            ),
            "same_job",
        )
    };
    Finding::new(FindingKind::Duplicate, Severity::Low, message)
        .evidence(json!({ "reason": reason, "others": others }))
}

/// The finding on a credential whose fingerprint is on accounts in several environments.
pub fn shared(credential: &str, environments: &[String], others: &[String]) -> Finding {
    Finding::new(
        FindingKind::SharedAcrossEnvironments,
        Severity::High,
        format!(
            "`{credential}` is the same secret in {}: also on {}",
            environments.join(", "),
            others.join(", ")
        ),
    )
    .on(credential)
    .evidence(json!({ "environments": environments, "others": others }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::{LastUse, Permission};

    fn bot(name: &str) -> Account {
        Account {
            key: name.to_owned(),
            name: name.to_owned(),
            kind: AccountKind::Bot,
            enabled: true,
            owner: Some("Alice@Example.com".to_owned()),
            purpose: Some("post deploy notices".to_owned()),
            vendor: Some("Slack".to_owned()),
            environment: Some("prod".to_owned()),
            created: None,
            last_used: LastUse::Unknown,
            expires: None,
            credentials: Vec::new(),
            permissions: vec![
                Permission {
                    action: "chat:write".to_owned(),
                    resource: None,
                    via: None,
                    admin: false,
                },
                Permission {
                    action: "channels:read".to_owned(),
                    resource: None,
                    via: Some("scope".to_owned()),
                    admin: false,
                },
            ],
            groups: Vec::new(),
            systems: Vec::new(),
            flags: Vec::new(),
            attributes: Default::default(),
        }
    }

    #[test]
    fn the_same_job_under_two_names_shares_a_key_and_one_grant_more_does_not() {
        let a = bot("bot-a");
        let mut b = bot("bot-b");
        b.owner = Some("alice@example.com ".to_owned());
        b.permissions.reverse();
        assert_eq!(
            duplicate_key(&a),
            duplicate_key(&b),
            "case, spacing and order aside"
        );
        let mut c = bot("bot-c");
        c.permissions[0].action = "chat:write.public".to_owned();
        assert_ne!(duplicate_key(&a), duplicate_key(&c));
        let mut d = bot("bot-d");
        d.purpose = None;
        assert_eq!(
            duplicate_key(&d),
            None,
            "nothing to compare without a purpose"
        );
        let mut e = bot("bot-e");
        e.enabled = false;
        assert_eq!(duplicate_key(&e), None);
    }

    #[test]
    fn a_vendor_key_only_for_enabled_bots() {
        assert_eq!(vendor_key(&bot("x")).as_deref(), Some("vendor:slack"));
        let mut k = bot("x");
        k.kind = AccountKind::ApiKey;
        assert_eq!(vendor_key(&k), None);
    }

    #[test]
    fn a_registered_system_unused_for_ninety_days_and_not_eighty_nine() {
        use crate::baseline::profile::LastSeen;
        let now = Timestamp::from_millis(1_800_000_000_000);
        let systems = vec!["crm".to_owned(), "billing".to_owned()];
        let mut seen = LastSeen::default();
        seen.touch("crm", now.minus_days(10), 32);
        seen.touch("billing", now.minus_days(91), 32);
        let approved = now.minus_days(200);
        let f = unused("agt-x", &systems, |s| seen.get(s), approved, now).unwrap();
        assert_eq!(f.evidence["unused_systems"], json!(["billing"]));
        assert_eq!(f.nhi, crate::discovery::Nhi::Nhi5);
        seen.touch("billing", now.minus_days(89), 32);
        assert_eq!(
            unused("agt-x", &systems, |s| seen.get(s), approved, now),
            None
        );
        // Never used, but in the registry for 89 days only: too soon to say.
        let fresh = LastSeen::default();
        assert_eq!(
            unused("agt-x", &systems, |s| fresh.get(s), now.minus_days(89), now),
            None
        );
        assert!(unused("agt-x", &systems, |s| fresh.get(s), now.minus_days(91), now).is_some());
    }

    #[test]
    fn the_findings_name_the_others() {
        let f = duplicate("vendor:slack", &["bot-b".to_owned()]);
        assert_eq!(f.evidence["reason"], "same_vendor");
        assert!(f.message.contains("bot-b"));
        let f = shared(
            "B-1",
            &["prod".to_owned(), "staging".to_owned()],
            &["bot-c".to_owned()],
        );
        assert_eq!(f.credential.as_deref(), Some("B-1"));
        assert_eq!(f.severity, Severity::High);
        assert_eq!(f.nhi, crate::discovery::Nhi::Nhi8);
    }
}
