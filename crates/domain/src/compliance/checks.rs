//! The questions the catalog asks of a [`Posture`], each answered as a [`Check`]: met, or not
//! met with the identities or accounts that fail it, or partial with the reason.

use crate::discovery::FindingKind;

use super::posture::Named;
use super::{Check, Posture, Status};

/// The longest token lifetime counted as short-lived (an automation's default hour); a day
/// at most counts as partly.
pub const SHORT_TOKEN_SECONDS: i64 = 3600;
const DAY_SECONDS: i64 = 86_400;

fn check(status: Status, label: &str, detail: String) -> Check {
    Check {
        status,
        label: label.to_owned(),
        detail,
        count: 0,
        names: Vec::new(),
    }
}

/// Met when nobody is named; otherwise not met, naming them.
fn none_of(label: &str, named: &Named, of: u64, noun: &str) -> Check {
    if named.is_empty() {
        return check(Status::Met, label, format!("none of {of} {noun}"));
    }
    Check {
        status: Status::NotMet,
        label: label.to_owned(),
        detail: format!("{} of {of} {noun}", named.count),
        count: named.count,
        names: named.names.clone(),
    }
}

/// An entry aim covers only part of: what it does, and what it leaves to others.
pub fn scope(label: &str, detail: &str) -> Check {
    check(Status::Partial, label, detail.to_owned())
}

pub fn not_applicable(label: &str, detail: &str) -> Check {
    check(Status::NotApplicable, label, detail.to_owned())
}

pub fn orphaned(p: &Posture) -> Check {
    let r = &p.registry;
    none_of(
        "live identities whose sponsor departed",
        &r.orphaned,
        r.live,
        "live identities",
    )
}

pub fn past_end_of_life(p: &Posture) -> Check {
    let r = &p.registry;
    none_of(
        "live identities past their end-of-life",
        &r.past_end_of_life,
        r.live,
        "live identities",
    )
}

pub fn attestation(p: &Posture) -> Check {
    let r = &p.registry;
    none_of(
        "identities whose sponsor has not attested on time",
        &r.attestation_overdue,
        r.live,
        "live identities",
    )
}

pub fn dormant(p: &Posture) -> Check {
    let r = &p.registry;
    none_of(
        "dormant identities still live",
        &r.dormant,
        r.live,
        "live identities",
    )
}

pub fn duplicates(p: &Posture) -> Check {
    let r = &p.registry;
    none_of(
        "identities with the same sponsor, purpose and systems as another",
        &r.possible_duplicates,
        r.live,
        "live identities",
    )
}

pub fn bearer(p: &Posture) -> Check {
    let r = &p.registry;
    none_of(
        "identities allowed bearer tokens (not bound to a key they hold)",
        &r.bearer,
        r.live,
        "live identities",
    )
}

pub fn unreviewed(p: &Posture) -> Check {
    let r = &p.registry;
    none_of(
        "identities live without a human's approval (auto-approved)",
        &r.unreviewed,
        r.live,
        "live identities",
    )
}

pub fn behaviour_locks(p: &Posture) -> Check {
    let r = &p.registry;
    none_of(
        "identities locked for acting out of character, awaiting review",
        &r.behaviour_locked,
        r.live,
        "live identities",
    )
}

pub fn purposes(p: &Posture) -> Check {
    check(
        Status::Met,
        "each identity states its purpose, systems and risk",
        format!(
            "all {} live identities name a purpose, the systems they reach, their data's sensitivity and a risk tier (required to request one)",
            p.registry.live
        ),
    )
}

pub fn approvers(p: &Posture) -> Check {
    let h = &p.humans;
    let deciders = h.admins + h.approvers;
    let detail = format!(
        "{deciders} of {} active humans may approve (admins {}, approvers {}); nobody approves their own request",
        h.active, h.admins, h.approvers
    );
    let status = if deciders >= 2 {
        Status::Met
    } else {
        Status::NotMet
    };
    check(
        status,
        "a second human approves identities and high-risk actions",
        detail,
    )
}

pub fn token_lifetime(p: &Posture) -> Check {
    let s = p.tokens.max_token_seconds;
    let status = if s <= SHORT_TOKEN_SECONDS {
        Status::Met
    } else if s <= DAY_SECONDS {
        Status::Partial
    } else {
        Status::NotMet
    };
    check(
        status,
        "access tokens are short-lived and scoped to one task",
        format!(
            "tokens live at most {s} s (short-lived: ≤ {SHORT_TOKEN_SECONDS} s); each names its task and audience"
        ),
    )
}

pub fn delegation(p: &Posture) -> Check {
    check(
        Status::Met,
        "delegation only narrows",
        format!(
            "token exchange keeps a subset of the delegator's scope, at most {} hops; every hop is recorded in the token",
            p.tokens.max_delegation_depth
        ),
    )
}

pub fn policy(p: &Posture) -> Check {
    let d = &p.decisions;
    if d.policy_version == 0 {
        return check(
            Status::Partial,
            "every action is decided by a least-privilege policy",
            "no policy set applied yet: every decision is deny, so no agent works through aim"
                .to_owned(),
        );
    }
    check(
        Status::Met,
        "every action is decided by a least-privilege policy",
        format!(
            "policy version {} in force, default deny; {} grants in force",
            d.policy_version, d.live_grants
        ),
    )
}

pub fn behaviour(p: &Posture) -> Check {
    let b = &p.behaviour;
    let (status, what) = match b.mode.as_str() {
        "enforce" => (
            Status::Met,
            "out-of-character actions are stepped up or locked",
        ),
        "observe" => (
            Status::Partial,
            "out-of-character actions are recorded, not acted on",
        ),
        _ => (Status::NotMet, "no behavioural baseline is learnt"),
    };
    check(
        status,
        "each identity's behaviour is baselined and deviations answered",
        format!("mode {}: {what}; {} profiles held", b.mode, b.profiles),
    )
}

pub fn audit_chain(p: &Posture) -> Check {
    let a = &p.audit;
    let label = "every change and decision is in a tamper-evident record";
    let Some(at) = a.latest_checkpoint else {
        return check(
            Status::Partial,
            label,
            format!(
                "{} records hash-chained; no signed checkpoint yet (checkpoints {})",
                a.events,
                a.checkpoint_every_seconds
                    .map_or("off".to_owned(), |s| format!("every {s} s"))
            ),
        );
    };
    let age = (p.at.as_millis() - at.as_millis()) / 1000;
    let fresh = a
        .checkpoint_every_seconds
        .is_some_and(|s| age <= 2 * s as i64);
    check(
        if fresh { Status::Met } else { Status::Partial },
        label,
        format!(
            "{} records hash-chained; newest signed checkpoint {age} s old (checkpoints {})",
            a.events,
            a.checkpoint_every_seconds
                .map_or("off".to_owned(), |s| format!("every {s} s"))
        ),
    )
}

pub fn sinks(p: &Posture) -> Check {
    let s = &p.audit.sinks;
    let label = "the audit record is delivered off the control plane";
    if s.is_empty() {
        return check(
            Status::NotMet,
            label,
            "no audit sink: the record lives only in aim's database".to_owned(),
        );
    }
    check(Status::Met, label, format!("sinks: {}", s.join(", ")))
}

pub fn kill_switch(p: &Posture) -> Check {
    let t = &p.tools;
    let label = "a lock reaches every enforcement point at once";
    let (status, detail) = match (t.gateways_connected, t.gateways_behind) {
        (0, _) => (
            Status::Partial,
            "no gateway connected: a lock revokes tokens at aim, but no tool call is stopped in flight"
                .to_owned(),
        ),
        (n, 0) => (
            Status::Met,
            format!("{n} gateways connected, all at the newest revocation"),
        ),
        (n, b) => (
            Status::Partial,
            format!("{n} gateways connected, {b} behind the newest revocation"),
        ),
    };
    check(status, label, detail)
}

pub fn tool_pinning(p: &Posture) -> Check {
    let t = &p.tools;
    let label = "tools are used only as an admin approved them";
    if t.seen == 0 {
        return check(
            Status::Partial,
            label,
            "no MCP tool seen through a gateway yet".to_owned(),
        );
    }
    if t.changed.is_empty() {
        return check(
            Status::Met,
            label,
            format!(
                "{} tools seen, each pinned by hash; {} new ones wait for approval and cannot be called",
                t.seen, t.unapproved.count
            ),
        );
    }
    Check {
        status: Status::Partial,
        label: label.to_owned(),
        detail: format!(
            "{} of {} tools changed their definition after approval: blocked until approved again",
            t.changed.count, t.seen
        ),
        count: t.changed.count,
        names: t.changed.names.clone(),
    }
}

pub fn inventory(p: &Posture) -> Check {
    let d = &p.discovery;
    let label = "machine identities outside aim are inventoried";
    if d.sources.is_empty() {
        return check(
            Status::NotMet,
            label,
            format!(
                "no source imported: only aim's {} live identities are known",
                p.registry.live
            ),
        );
    }
    let status = if d.unlinked == 0 {
        Status::Met
    } else {
        Status::Partial
    };
    check(
        status,
        label,
        format!(
            "{} accounts from {} ({} not yet adopted into the registry); {} live registered identities{}",
            d.accounts,
            d.sources.join(", "),
            d.unlinked,
            p.registry.live,
            d.per_human.map_or(String::new(), |r| format!(
                "; {r:.1} machine identities per person"
            ))
        ),
    )
}

pub fn cloud_sources(p: &Posture) -> Check {
    if p.discovery.cloud_sources {
        return check(
            Status::Met,
            "cloud and cluster identities are imported",
            "an AWS or Kubernetes source is imported".to_owned(),
        );
    }
    check(
        Status::NotMet,
        "cloud and cluster identities are imported",
        "no AWS or Kubernetes source imported: their configurations are not assessed".to_owned(),
    )
}

/// Met when no present account has any of `kinds`; not met naming them (`source/name
/// (kind)`); partial when nothing was imported to look at.
pub fn findings(p: &Posture, label: &str, kinds: &[FindingKind]) -> Check {
    let d = &p.discovery;
    if d.sources.is_empty() {
        return check(
            Status::Partial,
            label,
            "not assessed: no discovery source imported".to_owned(),
        );
    }
    let hits = d.with(kinds);
    let names_of = kinds
        .iter()
        .map(|k| k.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    if hits.is_empty() {
        return check(
            Status::Met,
            label,
            format!(
                "no {names_of} finding on {} discovered accounts",
                d.accounts
            ),
        );
    }
    let mut c = Check {
        status: Status::NotMet,
        label: label.to_owned(),
        detail: String::new(),
        count: 0,
        names: Vec::new(),
    };
    let mut parts = Vec::new();
    for (kind, named) in hits {
        c.count += named.count;
        parts.push(match named.acknowledged {
            0 => format!("{} {kind}", named.count),
            n => format!("{} {kind} ({n} acknowledged)", named.count),
        });
        for n in &named.names {
            if c.names.len() < super::posture::NAMED {
                c.names.push(format!("{n} ({kind})"));
            }
        }
    }
    c.detail = format!("{} of {} discovered accounts", parts.join(", "), d.accounts);
    c
}
