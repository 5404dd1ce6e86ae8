//! The identity lifecycle as a state machine.
//!
//! ```text
//! requested ──approve──► active ◄──resume── suspended
//!     │                    │  └──suspend──►    │
//!   reject                lock ◄──────lock─────┘
//!     ▼                    ▼
//!  rejected             locked ──unlock (admin, reason)──► active
//!
//! any live state (requested, active, suspended, locked) ──expire──► expired
//! any state except decommissioned ──decommission──► decommissioned (terminal)
//! ```
//!
//! Only `active` identities get credentials.

use crate::error::Refusal;

str_enum! {
    /// Where an identity is in its life.
    pub enum LifecycleState {
        Requested => "requested",
        Active => "active",
        Suspended => "suspended",
        Locked => "locked",
        Expired => "expired",
        Rejected => "rejected",
        Decommissioned => "decommissioned",
    }
}

str_enum! {
    /// A move between lifecycle states.
    pub enum Transition {
        Approve => "approve",
        Reject => "reject",
        Suspend => "suspend",
        Resume => "resume",
        Lock => "lock",
        Unlock => "unlock",
        Expire => "expire",
        Decommission => "decommission",
    }
}

str_enum! {
    /// Why the identity is in its current state: a machine-readable cause that guards use
    /// (an identity suspended for an overdue attestation resumes only by attesting).
    pub enum StateCause {
        Requested => "requested",
        Approved => "approved",
        AutoApproved => "auto_approved",
        Rejected => "rejected",
        Manual => "manual",
        AttestationOverdue => "attestation_overdue",
        Dormant => "dormant",
        Orphaned => "orphaned",
        EndOfLife => "end_of_life",
        Attested => "attested",
        Decommissioned => "decommissioned",
        /// Locked by its behavioural baseline: a call far out of character.
        Behaviour => "behaviour",
    }
}

impl LifecycleState {
    /// States from which end-of-life expiry applies.
    pub fn is_live(self) -> bool {
        matches!(
            self,
            LifecycleState::Requested
                | LifecycleState::Active
                | LifecycleState::Suspended
                | LifecycleState::Locked
        )
    }

    pub fn is_terminal(self) -> bool {
        self == LifecycleState::Decommissioned
    }
}

/// The state `transition` leads to from `from`, or why it is illegal.
pub fn next_state(from: LifecycleState, transition: Transition) -> Result<LifecycleState, Refusal> {
    use LifecycleState as S;
    use Transition as T;
    let to = match (from, transition) {
        (S::Requested, T::Approve) => S::Active,
        (S::Requested, T::Reject) => S::Rejected,
        (S::Active, T::Suspend) => S::Suspended,
        (S::Suspended, T::Resume) => S::Active,
        (S::Active | S::Suspended, T::Lock) => S::Locked,
        (S::Locked, T::Unlock) => S::Active,
        (s, T::Expire) if s.is_live() => S::Expired,
        (s, T::Decommission) if !s.is_terminal() => S::Decommissioned,
        _ => return Err(Refusal::IllegalTransition { from, transition }),
    };
    Ok(to)
}

#[cfg(test)]
mod tests {
    use super::*;
    use LifecycleState as S;
    use Transition as T;
    use proptest::prelude::*;

    /// The full table, written out independently of `next_state`, so the test can fail.
    const LEGAL: &[(S, T, S)] = &[
        (S::Requested, T::Approve, S::Active),
        (S::Requested, T::Reject, S::Rejected),
        (S::Requested, T::Expire, S::Expired),
        (S::Requested, T::Decommission, S::Decommissioned),
        (S::Active, T::Suspend, S::Suspended),
        (S::Active, T::Lock, S::Locked),
        (S::Active, T::Expire, S::Expired),
        (S::Active, T::Decommission, S::Decommissioned),
        (S::Suspended, T::Resume, S::Active),
        (S::Suspended, T::Lock, S::Locked),
        (S::Suspended, T::Expire, S::Expired),
        (S::Suspended, T::Decommission, S::Decommissioned),
        (S::Locked, T::Unlock, S::Active),
        (S::Locked, T::Expire, S::Expired),
        (S::Locked, T::Decommission, S::Decommissioned),
        (S::Expired, T::Decommission, S::Decommissioned),
        (S::Rejected, T::Decommission, S::Decommissioned),
    ];

    #[test]
    fn every_pair_matches_the_table() {
        for &from in S::ALL {
            for &t in T::ALL {
                let expected = LEGAL
                    .iter()
                    .find(|(f, tr, _)| *f == from && *tr == t)
                    .map(|x| x.2);
                match (next_state(from, t), expected) {
                    (Ok(to), Some(e)) => assert_eq!(to, e, "{from} --{t}-->"),
                    (Err(r), None) => assert_eq!(r.code(), "illegal_transition"),
                    (got, want) => panic!("{from} --{t}--> got {got:?}, table says {want:?}"),
                }
            }
        }
    }

    fn state() -> impl Strategy<Value = S> {
        prop::sample::select(S::ALL)
    }
    fn transition() -> impl Strategy<Value = T> {
        prop::sample::select(T::ALL)
    }

    proptest! {
        /// Random walks: decommissioned is terminal, rejected only follows requested, a
        /// refused move leaves the state as it was, and only approve/resume/unlock reach active.
        #[test]
        fn random_walks_respect_the_invariants(start in state(), moves in prop::collection::vec(transition(), 0..64)) {
            let mut s = start;
            for t in moves {
                match next_state(s, t) {
                    Ok(next) => {
                        prop_assert!(!s.is_terminal(), "left decommissioned via {t}");
                        if next == S::Rejected { prop_assert_eq!(s, S::Requested); }
                        if next == S::Active {
                            prop_assert!(matches!(t, T::Approve | T::Resume | T::Unlock));
                        }
                        if next == S::Expired { prop_assert!(s.is_live()); }
                        if s == S::Requested {
                            prop_assert!(next != S::Suspended && next != S::Locked);
                        }
                        s = next;
                    }
                    Err(Refusal::IllegalTransition { from, transition }) => {
                        prop_assert_eq!(from, s);
                        prop_assert_eq!(transition, t);
                    }
                    Err(other) => prop_assert!(false, "unexpected refusal {other:?}"),
                }
            }
        }

        #[test]
        fn names_round_trip(s in state(), t in transition()) {
            prop_assert_eq!(S::parse(s.as_str()).unwrap(), s);
            prop_assert_eq!(T::parse(t.as_str()).unwrap(), t);
        }
    }
}
