//! The store's contract, case by case, on every backend.

use aim_domain::Refusal;
use aim_domain::governance::GovernanceConfig;
use aim_domain::human::{Credential, HumanState};
use aim_domain::identity::IdentityKind;
use aim_domain::ids::CredentialId;
use aim_domain::lifecycle::{LifecycleState, StateCause, Transition};
use aim_domain::risk::RiskTier;
use aim_store::{
    DynStore, HumanFilter, IdentityCursor, IdentityFilter, StoreError, SweepThresholds,
};
use aim_testkit::{Backend, TestStore};

use crate::fixtures::{event, human, identity, t0};

/// Runs one conformance case on every enabled backend.
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $name() {
            for backend in Backend::enabled() {
                eprintln!("backend: {backend:?}");
                let t = TestStore::new(backend).await;
                cases::$name(&t.store).await;
                t.cleanup().await;
            }
        }
    )*};
}

mod humans;
mod identities;

fn conflict(e: StoreError) -> Refusal {
    match e {
        StoreError::Conflict(r) => r,
        other => panic!("expected a conflict, got {other:?}"),
    }
}
