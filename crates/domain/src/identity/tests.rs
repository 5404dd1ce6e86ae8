use super::*;
use crate::review::{Decider, Verdict, decide};
use crate::sweep::{SweepAction, sweep};
use crate::time::Timestamp;

fn t0() -> Timestamp {
    Timestamp::parse("2026-01-01T00:00:00Z").unwrap()
}

fn request(crit: Level, sens: DataSensitivity, impact: Level) -> IdentityRequest {
    IdentityRequest {
        name: "agt-claims-triage".into(),
        kind: IdentityKind::AiAgent,
        autonomy: Autonomy::Autonomous,
        sponsor_id: HumanId::new(),
        owner_team: Some("claims".into()),
        purpose: "Triage incoming claims".into(),
        systems: vec!["crm".into(), "claims-db".into(), "crm".into()],
        data_sensitivity: sens,
        criticality: crit,
        impact,
        labels: BTreeMap::new(),
        expires_at: t0().plus_days(30),
    }
}

fn build(req: IdentityRequest) -> Result<Identity, Refusal> {
    req.into_identity(
        IdentityId::new(),
        HumanId::new(),
        t0(),
        &NamingPolicy::default(),
        &GovernanceConfig::default(),
    )
}

fn active(crit: Level, sens: DataSensitivity, impact: Level) -> Identity {
    let mut i = build(request(crit, sens, impact)).unwrap();
    let cfg = GovernanceConfig::default();
    decide(
        &mut i,
        Decider::Human(HumanId::new()),
        Verdict::Approve,
        "",
        t0(),
        &cfg,
    )
    .unwrap();
    i
}

#[test]
fn request_normalises_and_starts_requested() {
    let i = build(request(Level::Low, DataSensitivity::Internal, Level::Low)).unwrap();
    assert_eq!(i.state, LifecycleState::Requested);
    assert_eq!(i.systems, vec!["claims-db", "crm"]);
    assert_eq!(i.risk.tier, RiskTier::Low);
    assert_eq!(i.attestation_due_at, None);
}

#[test]
fn lifetime_is_capped_per_tier() {
    let mut r = request(Level::High, DataSensitivity::Internal, Level::Low);
    r.expires_at = t0().plus_days(91);
    let e = build(r.clone()).unwrap_err();
    assert_eq!(e.code(), "lifetime_too_long");
    r.expires_at = t0().plus_days(90);
    assert!(build(r.clone()).is_ok());
    r.criticality = Level::Low;
    r.expires_at = t0().plus_days(365);
    assert!(build(r.clone()).is_ok());
    r.expires_at = t0();
    assert_eq!(build(r).unwrap_err().code(), "expiry_in_past");
}

#[test]
fn bad_fields_are_refused() {
    let mut r = request(Level::Low, DataSensitivity::Internal, Level::Low);
    r.purpose = " ".into();
    assert_eq!(build(r).unwrap_err().code(), "validation_failed");
    let mut r = request(Level::Low, DataSensitivity::Internal, Level::Low);
    r.systems = vec!["bad system".into()];
    assert_eq!(build(r).unwrap_err().code(), "validation_failed");
    let mut r = request(Level::Low, DataSensitivity::Internal, Level::Low);
    r.labels.insert("k".into(), "v\u{7}".into());
    assert_eq!(build(r).unwrap_err().code(), "validation_failed");
    let mut r = request(Level::Low, DataSensitivity::Internal, Level::Low);
    r.name = "my-agent".into();
    assert_eq!(build(r).unwrap_err().code(), "naming_policy_violation");
}

#[test]
fn separation_of_duties() {
    let cfg = GovernanceConfig::default();
    let mut i = build(request(Level::High, DataSensitivity::Internal, Level::Low)).unwrap();
    let requester = i.created_by;
    let sponsor = i.sponsor_id;
    let e = decide(
        &mut i,
        Decider::Human(requester),
        Verdict::Approve,
        "",
        t0(),
        &cfg,
    );
    assert_eq!(e.unwrap_err(), Refusal::SelfApproval);
    let e = decide(
        &mut i,
        Decider::Human(requester),
        Verdict::Reject,
        "no",
        t0(),
        &cfg,
    );
    assert_eq!(e.unwrap_err(), Refusal::SelfApproval);
    let e = decide(
        &mut i,
        Decider::Human(sponsor),
        Verdict::Approve,
        "",
        t0(),
        &cfg,
    );
    assert_eq!(e.unwrap_err(), Refusal::SponsorApproval);
    assert_eq!(
        i.state,
        LifecycleState::Requested,
        "refusals change nothing"
    );
    // For a low-risk identity the sponsor may approve.
    let mut low = build(request(Level::Low, DataSensitivity::Internal, Level::Low)).unwrap();
    let s = low.sponsor_id;
    decide(
        &mut low,
        Decider::Human(s),
        Verdict::Approve,
        "",
        t0(),
        &cfg,
    )
    .unwrap();
    assert_eq!(low.state, LifecycleState::Active);
    assert_eq!(low.decided_by, Some(s));
}

#[test]
fn auto_approval_only_when_enabled_and_low_risk() {
    let mut cfg = GovernanceConfig::default();
    let mut low = build(request(Level::Low, DataSensitivity::Internal, Level::Low)).unwrap();
    assert!(
        decide(
            &mut low,
            Decider::AutoApproval,
            Verdict::Approve,
            "",
            t0(),
            &cfg
        )
        .is_err()
    );
    cfg.auto_approve_low_risk = true;
    let mut med = build(request(
        Level::Medium,
        DataSensitivity::Internal,
        Level::Low,
    ))
    .unwrap();
    assert!(
        decide(
            &mut med,
            Decider::AutoApproval,
            Verdict::Approve,
            "",
            t0(),
            &cfg
        )
        .is_err()
    );
    decide(
        &mut low,
        Decider::AutoApproval,
        Verdict::Approve,
        "",
        t0(),
        &cfg,
    )
    .unwrap();
    assert_eq!(low.state_cause, StateCause::AutoApproved);
}

#[test]
fn an_orphaned_request_is_not_approved() {
    let cfg = GovernanceConfig::default();
    let mut i = build(request(Level::Low, DataSensitivity::Internal, Level::Low)).unwrap();
    i.orphaned_since = Some(t0());
    let e = decide(
        &mut i,
        Decider::Human(HumanId::new()),
        Verdict::Approve,
        "",
        t0(),
        &cfg,
    );
    assert_eq!(e.unwrap_err(), Refusal::Orphaned);
    assert_eq!(i.state, LifecycleState::Requested);
    // It can still be rejected.
    decide(
        &mut i,
        Decider::Human(HumanId::new()),
        Verdict::Reject,
        "sponsor left",
        t0(),
        &cfg,
    )
    .unwrap();
    assert_eq!(i.state, LifecycleState::Rejected);
}

#[test]
fn rejection_needs_a_reason() {
    let cfg = GovernanceConfig::default();
    let mut i = build(request(Level::Low, DataSensitivity::Internal, Level::Low)).unwrap();
    let e = decide(
        &mut i,
        Decider::Human(HumanId::new()),
        Verdict::Reject,
        " ",
        t0(),
        &cfg,
    );
    assert_eq!(e.unwrap_err().code(), "reason_required");
    decide(
        &mut i,
        Decider::Human(HumanId::new()),
        Verdict::Reject,
        "not needed",
        t0(),
        &cfg,
    )
    .unwrap();
    assert_eq!(i.state, LifecycleState::Rejected);
}

#[test]
fn attestation_due_and_overdue() {
    let cfg = GovernanceConfig::default();
    let high = active(Level::High, DataSensitivity::Internal, Level::Low);
    assert_eq!(high.attestation_due_at, Some(t0().plus_days(30)));
    let mut med = active(Level::Medium, DataSensitivity::Internal, Level::Low);
    assert_eq!(med.attestation_due_at, Some(t0().plus_days(90)));
    let grace = cfg.attestation_grace_days;
    assert!(!med.attestation_overdue(t0().plus_days(90 + grace).plus_millis(-1), &cfg));
    assert!(med.attestation_overdue(t0().plus_days(90 + grace), &cfg));
    med.attest(t0().plus_days(10), &cfg).unwrap();
    assert_eq!(med.attestation_due_at, Some(t0().plus_days(100)));
    assert_eq!(med.last_attested_at, Some(t0().plus_days(10)));
}

#[test]
fn sweep_suspends_overdue_then_attest_resumes() {
    let cfg = GovernanceConfig::default();
    let mut i = active(Level::High, DataSensitivity::Internal, Level::Low);
    i.expires_at = t0().plus_days(90);
    let now = t0().plus_days(30 + cfg.attestation_grace_days);
    i.seen(now);
    let (a, _) = sweep(&mut i, now, &cfg).unwrap();
    assert_eq!(a, SweepAction::SuspendedAttestationOverdue);
    assert_eq!(i.state, LifecycleState::Suspended);
    let e = i
        .transition(Transition::Resume, StateCause::Manual, "", now, &cfg)
        .unwrap_err();
    assert_eq!(e, Refusal::AttestationOverdue);
    i.attest(now, &cfg).unwrap();
    assert_eq!(i.state, LifecycleState::Active);
    assert_eq!(sweep(&mut i, now, &cfg), None);
}

#[test]
fn sweep_expires_at_end_of_life_in_every_live_state() {
    let cfg = GovernanceConfig::default();
    let mut requested = build(request(Level::Low, DataSensitivity::Internal, Level::Low)).unwrap();
    let mut a = active(Level::Low, DataSensitivity::Internal, Level::Low);
    let eol = a.expires_at;
    assert_eq!(sweep(&mut a, eol.plus_millis(-1), &cfg).map(|x| x.0), None);
    for i in [&mut requested, &mut a] {
        let (action, reason) = sweep(i, eol, &cfg).unwrap();
        assert_eq!(action, SweepAction::Expired);
        assert!(reason.contains("end-of-life"));
        assert_eq!(i.state, LifecycleState::Expired);
        assert_eq!(i.state_cause, StateCause::EndOfLife);
    }
}

#[test]
fn sweep_flags_dormant_and_optionally_suspends() {
    let mut cfg = GovernanceConfig::default();
    let mut i = active(Level::Low, DataSensitivity::Internal, Level::Low);
    i.expires_at = t0().plus_days(365);
    assert_eq!(sweep(&mut i, t0().plus_days(29), &cfg), None);
    let (a, _) = sweep(&mut i, t0().plus_days(30), &cfg).unwrap();
    assert_eq!(a, SweepAction::FlaggedDormant);
    assert!(i.dormant);
    assert_eq!(i.state, LifecycleState::Active);
    assert_eq!(
        sweep(&mut i, t0().plus_days(31), &cfg),
        None,
        "flagged once"
    );
    i.seen(t0().plus_days(31));
    assert!(!i.dormant);
    cfg.suspend_dormant = true;
    let (a, _) = sweep(&mut i, t0().plus_days(61), &cfg).unwrap();
    assert_eq!(a, SweepAction::SuspendedDormant);
    assert_eq!(i.state, LifecycleState::Suspended);
}

#[test]
fn sweep_suspends_orphans_after_grace() {
    let cfg = GovernanceConfig::default();
    let mut i = active(Level::Low, DataSensitivity::Internal, Level::Low);
    i.orphaned_since = Some(t0().plus_days(1));
    i.seen(t0().plus_days(7));
    assert_eq!(sweep(&mut i, t0().plus_days(8).plus_millis(-1), &cfg), None);
    let (a, _) = sweep(&mut i, t0().plus_days(8), &cfg).unwrap();
    assert_eq!(a, SweepAction::SuspendedOrphaned);
    let e = i.transition(
        Transition::Resume,
        StateCause::Manual,
        "",
        t0().plus_days(8),
        &cfg,
    );
    assert_eq!(e.unwrap_err(), Refusal::Orphaned);
    let patch = IdentityPatch {
        sponsor_id: Some(HumanId::new()),
        ..Default::default()
    };
    i.apply_patch(patch, t0().plus_days(8), &cfg).unwrap();
    i.transition(
        Transition::Resume,
        StateCause::Manual,
        "new sponsor",
        t0().plus_days(8),
        &cfg,
    )
    .unwrap();
    assert_eq!(i.state, LifecycleState::Active);
}

#[test]
fn patch_recomputes_risk_and_tightens_dates() {
    let cfg = GovernanceConfig::default();
    let mut i = active(Level::Low, DataSensitivity::Internal, Level::Low);
    let patch = IdentityPatch {
        expires_at: Some(t0().plus_days(300)),
        ..Default::default()
    };
    i.apply_patch(patch, t0(), &cfg).unwrap();
    assert_eq!(i.attestation_due_at, Some(t0().plus_days(90)));
    let patch = IdentityPatch {
        data_sensitivity: Some(DataSensitivity::Restricted),
        ..Default::default()
    };
    let changed = i.apply_patch(patch, t0().plus_days(1), &cfg).unwrap();
    assert_eq!(i.risk.tier, RiskTier::High);
    assert!(
        changed.contains(&"risk") && changed.contains(&"expires_at"),
        "{changed:?}"
    );
    assert_eq!(i.expires_at, t0().plus_days(91));
    assert_eq!(i.attestation_due_at, Some(t0().plus_days(31)));
    let v = i.version;
    let bad = IdentityPatch {
        purpose: Some("\n".into()),
        ..Default::default()
    };
    assert!(i.apply_patch(bad, t0(), &cfg).is_err());
    assert_eq!(i.version, v, "a refused patch changes nothing");
}

#[test]
fn unlock_needs_a_reason() {
    let cfg = GovernanceConfig::default();
    let mut i = active(Level::Low, DataSensitivity::Internal, Level::Low);
    i.transition(Transition::Lock, StateCause::Manual, "incident", t0(), &cfg)
        .unwrap();
    let e = i
        .transition(Transition::Unlock, StateCause::Manual, "", t0(), &cfg)
        .unwrap_err();
    assert_eq!(e.code(), "reason_required");
    i.transition(
        Transition::Unlock,
        StateCause::Manual,
        "cleared",
        t0(),
        &cfg,
    )
    .unwrap();
    assert_eq!(i.state, LifecycleState::Active);
}

#[test]
fn duplicate_key_ignores_case_spacing_and_system_order() {
    let a = active(Level::Low, DataSensitivity::Internal, Level::Low);
    let mut b = a.clone();
    b.purpose = "  triage   INCOMING claims ".into();
    assert_eq!(a.duplicate_key(), b.duplicate_key());
    b.systems.push("zzz".into());
    assert_ne!(a.duplicate_key(), b.duplicate_key());
}
