//! The store as `aim-enforce` sees it: the source of the live state behind presented
//! tokens, and what the decision pipeline reads and writes. Also the authoritative check of
//! a token that introspection (RFC 7662), revocation (RFC 7009) and exchange need.

use aim_domain::approval::{ActionApproval, ApprovedAction, Spent};
use aim_domain::event::Event;
use aim_domain::ids::{ApprovalId, IdentityId, TaskId};
use aim_domain::lease::{Lease, Record};
use aim_domain::live::{Hangs, LiveContext};
use aim_domain::single_use::Claim;
use aim_domain::task::Task;
use aim_domain::time::Timestamp;
use aim_enforce::LiveSource;
use aim_enforce::pipeline::DecisionStore;
use aim_store::{Store, StoreError};
use aim_token::claims::AccessClaims;

use crate::state::AppState;

/// Why a token is not active, as this server's store reports it.
pub type Inactive = aim_enforce::Inactive<StoreError>;

/// The store, for `aim-enforce`, and what is kept of its reads on the decision path.
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    store: &'a dyn Store,
    /// The lease held on a record (or none), by the record's key.
    held: &'a aim_enforce::LiveCache<Option<Lease>>,
    baselines: &'a crate::behaviour::Baselines,
}

impl<'a> Source<'a> {
    pub fn of(s: &'a AppState) -> Self {
        Source {
            store: &*s.store,
            held: &s.held_leases,
            baselines: &s.behaviour,
        }
    }
}

impl LiveSource for Source<'_> {
    type Error = StoreError;

    fn generation(&self) -> u64 {
        self.store.generation().current()
    }

    async fn live_context(
        &self,
        identity: IdentityId,
        task: TaskId,
        hangs: &Hangs<'_>,
    ) -> Result<Option<LiveContext>, StoreError> {
        self.store.live_context(identity, task, hangs).await
    }
}

impl DecisionStore for Source<'_> {
    type Error = StoreError;

    async fn human(
        &self,
        id: aim_domain::ids::HumanId,
    ) -> Result<Option<aim_domain::human::Human>, StoreError> {
        self.store.human(id).await
    }

    /// From what was read while the store's generation has not moved (taking or releasing
    /// a lease is a write that moves it), for at most half a second; a lease read as held
    /// counts only until it expires. Every write decision asks.
    async fn held_lease(
        &self,
        record: &Record,
        now: Timestamp,
    ) -> Result<Option<Lease>, StoreError> {
        let key = record.key();
        // Taken before the read: a lease taken after it moves the generation past this.
        let generation = self.store.generation().current();
        if let Some(held) = self.held.get(&key, generation) {
            return Ok(held.filter(|l| l.expires_at > now));
        }
        let held = self.store.held_lease(record, now).await?;
        self.held.put(&key, held.clone(), generation);
        Ok(held)
    }

    async fn approval(&self, id: ApprovalId) -> Result<Option<ActionApproval>, StoreError> {
        self.store.approval(id).await
    }

    async fn open_approval_for(
        &self,
        action: &ApprovedAction,
        now: Timestamp,
    ) -> Result<Option<ActionApproval>, StoreError> {
        self.store.open_approval_for(action, now).await
    }

    async fn insert_approval(
        &self,
        approval: &ActionApproval,
        max_open: u32,
        now: Timestamp,
        event: &Event,
    ) -> Result<bool, StoreError> {
        self.store
            .insert_approval(approval, max_open, now, event)
            .await
    }

    async fn spend_approval(
        &self,
        approval: &ActionApproval,
        now: Timestamp,
        event: &Event,
        claims: Vec<Claim>,
    ) -> Result<Spent, StoreError> {
        self.store
            .spend_approval(approval, now, event, claims)
            .await
    }

    async fn record(&self, event: &Event, claims: Vec<Claim>) -> Result<Option<i64>, StoreError> {
        if claims.is_empty() {
            return self.store.append_event(event).await.map(Some);
        }
        self.store.append_claimed(event, claims).await
    }

    async fn watch(
        &self,
        identity: &aim_domain::identity::Identity,
        seen: &aim_domain::baseline::watch::Seen,
    ) -> Result<Option<aim_domain::baseline::watch::Verdict>, StoreError> {
        self.baselines.watch(identity, seen).await
    }
}

/// Verifies `token` against aim's keys and audiences, then the state behind it. Returns
/// its claims and its task as the token may use it (the systems it may still reach).
pub async fn check(
    s: &AppState,
    token: &str,
    now: Timestamp,
) -> Result<(AccessClaims, Task), Inactive> {
    let ring = s.tokens.keys.current();
    s.tokens
        .rules
        .check(&Source::of(s), &ring.trusted, token, now)
        .await
}
