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

/// The store, for `aim-enforce`.
#[derive(Debug, Clone, Copy)]
pub struct Source<'a>(pub &'a dyn Store);

impl<'a> Source<'a> {
    pub fn of(s: &'a AppState) -> Self {
        Source(&*s.store)
    }
}

impl LiveSource for Source<'_> {
    type Error = StoreError;

    fn generation(&self) -> u64 {
        self.0.generation().current()
    }

    async fn live_context(
        &self,
        identity: IdentityId,
        task: TaskId,
        hangs: &Hangs<'_>,
    ) -> Result<Option<LiveContext>, StoreError> {
        self.0.live_context(identity, task, hangs).await
    }
}

impl DecisionStore for Source<'_> {
    type Error = StoreError;

    async fn human(
        &self,
        id: aim_domain::ids::HumanId,
    ) -> Result<Option<aim_domain::human::Human>, StoreError> {
        self.0.human(id).await
    }

    async fn held_lease(
        &self,
        record: &Record,
        now: Timestamp,
    ) -> Result<Option<Lease>, StoreError> {
        self.0.held_lease(record, now).await
    }

    async fn approval(&self, id: ApprovalId) -> Result<Option<ActionApproval>, StoreError> {
        self.0.approval(id).await
    }

    async fn open_approval_for(
        &self,
        action: &ApprovedAction,
        now: Timestamp,
    ) -> Result<Option<ActionApproval>, StoreError> {
        self.0.open_approval_for(action, now).await
    }

    async fn insert_approval(
        &self,
        approval: &ActionApproval,
        max_open: u32,
        now: Timestamp,
        event: &Event,
    ) -> Result<bool, StoreError> {
        self.0.insert_approval(approval, max_open, now, event).await
    }

    async fn spend_approval(
        &self,
        approval: &ActionApproval,
        now: Timestamp,
        event: &Event,
        claims: Vec<Claim>,
    ) -> Result<Spent, StoreError> {
        self.0.spend_approval(approval, now, event, claims).await
    }

    async fn record(&self, event: &Event, claims: Vec<Claim>) -> Result<Option<i64>, StoreError> {
        if claims.is_empty() {
            return self.0.append_event(event).await.map(Some);
        }
        self.0.append_claimed(event, claims).await
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
