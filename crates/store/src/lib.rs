//! aim's storage: one interface ([`Store`]) with two backends, SQLite (the default, a file
//! in the data dir, WAL) and PostgreSQL (shared by several `aim serve` replicas). Both run
//! the same SQL, written once, and the same conformance suite (`tests/it`).
//!
//! Every method that changes state takes the [`Event`] that records the change and writes
//! both in one transaction: no change without its event, no event without its change.
//! Events form a hash chain ([`aim_domain::audit`]): each append takes the next sequence
//! number and the previous hash from the `chain_head` row, locked until commit.
//!
//! # Layout
//! - [`error`] — [`StoreError`]
//! - [`filter`] — list filters and sweep thresholds
//! - [`credentials`] — the storage of just-in-time credentials: signing keys, agents' keys,
//!   tasks, single-use ids, revocations, and the live state behind a token
//! - [`policies`] — versioned policy sets
//! - `runtime` — approvals, grants and leases
//! - `tasks` — tasks that end or narrow with their identity, inside its write
//! - `sql` — the SQL both backends run, and the WHERE clauses of list queries
//! - `rows`, `credential_rows` — rows back into domain types
//! - `backend` — the implementation, written once as a macro over the two backends
//! - `appender` — batched appends of events that change nothing else, one durable commit
//! - `group` — SQLite group commit: many writers share one durable commit
//! - `write` — write transactions, and the [`Generation`] they move when they commit
//! - `migrations` — the versioned migrations of both backends
//! - [`sqlite`], [`postgres`] — connection set-up and migrations per backend

mod appender;
mod backend;
mod credential_rows;
pub mod credentials;
pub mod error;
pub mod filter;
mod group;
mod migrations;
pub mod policies;
pub mod postgres;
mod rows;
mod runtime;
mod sql;
pub mod sqlite;
mod tasks;
mod write;

use std::fmt::Debug;
use std::sync::Arc;

use aim_domain::event::Event;
use aim_domain::human::{Credential, Human};
use aim_domain::identity::Identity;
use aim_domain::ids::{CredentialId, HumanId, IdentityId};
use aim_domain::time::Timestamp;
use async_trait::async_trait;

pub use appender::Claim;
pub use credentials::{
    CredentialStore, Hangs, JoinToken, LiveContext, NewRevocation, SigningKeyRow, TokenContext,
};
pub use error::StoreError;
pub use filter::{AuditFilter, HumanFilter, IdentityCursor, IdentityFilter, SweepThresholds};
pub use policies::{PolicyStore, PolicyVersion};
pub use runtime::{Acquired, RuntimeStore, Spent};
pub use write::Generation;

/// An identity a sponsor's departure (or return) changed, and the event that records it.
pub type OrphanChange = (IdentityId, Event);

#[async_trait]
pub trait Store:
    credentials::CredentialStore + policies::PolicyStore + runtime::RuntimeStore + Send + Sync + Debug
{
    /// Moves after every write transaction committed through this store (see `write.rs`):
    /// what caches of live state are tagged with.
    fn generation(&self) -> &Generation;

    /// Cheap round trip, for `/readyz`.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Creates the first admin and their credential, only if there are no humans yet.
    /// Returns false (and writes nothing) if the store already has humans.
    async fn bootstrap(
        &self,
        admin: &Human,
        credential: &Credential,
        secret_hash: &[u8],
        event: &Event,
    ) -> Result<bool, StoreError>;

    async fn insert_human(&self, human: &Human, event: &Event) -> Result<(), StoreError>;
    async fn human(&self, id: HumanId) -> Result<Option<Human>, StoreError>;
    async fn human_by_user_name(&self, user_name: &str) -> Result<Option<Human>, StoreError>;
    /// Humans in id order after `after`, at most `limit`.
    async fn list_humans(
        &self,
        filter: &HumanFilter,
        after: Option<HumanId>,
        limit: u32,
    ) -> Result<Vec<Human>, StoreError>;
    /// Humans in id order from `offset` (SCIM's index-based paging), and the total count.
    async fn list_humans_offset(
        &self,
        filter: &HumanFilter,
        offset: u64,
        limit: u32,
    ) -> Result<(Vec<Human>, u64), StoreError>;
    /// Writes `human` if the stored version is still `expected_version`; otherwise
    /// `Conflict(ConcurrentUpdate)`.
    async fn update_human(
        &self,
        human: &Human,
        expected_version: i64,
        event: &Event,
    ) -> Result<(), StoreError>;
    /// Writes a human who departed or returned, and in the same transaction marks every
    /// live identity they sponsor orphaned (departed) or no longer orphaned (returned).
    /// Returns one event per identity changed, already written.
    async fn update_human_sponsorships(
        &self,
        human: &Human,
        expected_version: i64,
        event: &Event,
        now: Timestamp,
    ) -> Result<Vec<OrphanChange>, StoreError>;

    async fn insert_credential(
        &self,
        credential: &Credential,
        secret_hash: &[u8],
        event: &Event,
    ) -> Result<(), StoreError>;
    /// The unrevoked credential with this secret hash and its human.
    async fn credential_by_hash(
        &self,
        secret_hash: &[u8],
    ) -> Result<Option<(Credential, Human)>, StoreError>;
    async fn credentials_of(&self, human: HumanId) -> Result<Vec<Credential>, StoreError>;
    /// The unrevoked first-start credential (label `bootstrap`) and its human, if any.
    async fn bootstrap_credential(&self) -> Result<Option<(Credential, Human)>, StoreError>;
    /// Since when an active admin other than `except` has existed (the earliest such
    /// admin's last change), if one does.
    async fn other_admin_since(&self, except: HumanId) -> Result<Option<Timestamp>, StoreError>;
    async fn revoke_credential(
        &self,
        id: CredentialId,
        now: Timestamp,
        event: &Event,
    ) -> Result<bool, StoreError>;

    async fn insert_identity(&self, identity: &Identity, event: &Event) -> Result<(), StoreError>;
    /// Inserts many identities in one transaction per call (bulk import).
    async fn import_identities(&self, batch: &[(Identity, Event)]) -> Result<(), StoreError>;
    async fn identity(&self, id: IdentityId) -> Result<Option<Identity>, StoreError>;
    async fn identity_by_name(&self, name: &str) -> Result<Option<Identity>, StoreError>;
    /// A page of identities: in id order, or in name order when the filter has a name
    /// prefix (see [`IdentityFilter::orders_by_name`]).
    async fn list_identities(
        &self,
        filter: &IdentityFilter,
        after: Option<&IdentityCursor>,
        limit: u32,
    ) -> Result<Vec<Identity>, StoreError>;
    /// Whether an identity other than `except`, not decommissioned or rejected, has this
    /// duplicate key.
    async fn duplicate_exists(&self, key: &str, except: IdentityId) -> Result<bool, StoreError>;
    /// Whether aim knows group `name`: some human is in it, some identity's team is it, or
    /// some grant is for it.
    async fn group_known(&self, name: &str) -> Result<bool, StoreError>;
    /// Writes `identity` if the stored version is still `expected_version` (the version the
    /// change was computed from); otherwise `Conflict(ConcurrentUpdate)`.
    async fn update_identity(
        &self,
        identity: &Identity,
        expected_version: i64,
        event: &Event,
    ) -> Result<(), StoreError>;
    /// Identities some sweep rule may apply to, at most `limit`.
    async fn sweep_candidates(
        &self,
        thresholds: &SweepThresholds,
        limit: u32,
    ) -> Result<Vec<Identity>, StoreError>;

    /// Stores a signed checkpoint (once per sequence number; a second is ignored).
    async fn insert_checkpoint(
        &self,
        checkpoint: &aim_domain::audit::Checkpoint,
    ) -> Result<(), StoreError>;
    /// The checkpoint with the highest sequence number.
    async fn latest_checkpoint(&self) -> Result<Option<aim_domain::audit::Checkpoint>, StoreError>;

    /// The last sequence number the sink `name` acknowledged (0 if none yet).
    async fn sink_position(&self, name: &str) -> Result<i64, StoreError>;
    async fn set_sink_position(&self, name: &str, seq: i64) -> Result<(), StoreError>;

    /// The head of the hash chain: the last sequence number and its hash.
    async fn chain_head(&self) -> Result<(i64, [u8; 32]), StoreError>;

    /// Appends an event that records no change (a refusal).
    async fn append_event(&self, event: &Event) -> Result<i64, StoreError>;
    /// Events after `after_seq`, oldest first.
    async fn events(&self, after_seq: i64, limit: u32) -> Result<Vec<Event>, StoreError>;
    /// Events matching `filter` after `after_seq`, oldest first.
    async fn audit(
        &self,
        filter: &AuditFilter,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<Event>, StoreError>;
    /// One event by sequence number.
    async fn event(&self, seq: i64) -> Result<Option<Event>, StoreError>;
}

pub type DynStore = Arc<dyn Store>;

/// Walks the whole event log in sequence order and checks every link, then compares the
/// end with the chain head. `Ok(Ok(n))`: intact, `n` records; `Ok(Err(break))`: the first
/// bad record; `Err`: the store could not be read.
pub async fn verify_chain(
    store: &dyn Store,
    checkpoint: Option<&aim_domain::audit::Checkpoint>,
) -> Result<Result<i64, aim_domain::audit::ChainBreak>, StoreError> {
    use aim_domain::audit::{ChainBreak, Chained, Verifier, from_hex};
    const PAGE: u32 = 10_000;
    let mut verifier = Verifier::default();
    let mut after = 0;
    loop {
        let page = store.events(after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for event in page {
            let seq = event.seq;
            // A hash that is not 32 bytes was tampered with like any other field.
            let (Some(prev_hash), Some(hash)) = (from_hex(&event.prev_hash), from_hex(&event.hash))
            else {
                return Ok(Err(ChainBreak::Altered { seq }));
            };
            let record = Chained {
                event,
                prev_hash,
                hash,
            };
            if let Err(b) = verifier.push(&record) {
                return Ok(Err(b));
            }
            if let Some(cp) = checkpoint
                && let Err(b) = verifier.check_checkpoint(&record, cp)
            {
                return Ok(Err(b));
            }
        }
    }
    if let Some(cp) = checkpoint
        && let Err(b) = verifier.reaches(cp)
    {
        return Ok(Err(b));
    }
    let (head_seq, head_hash) = store.chain_head().await?;
    Ok(verifier.finish(head_seq, &head_hash))
}
