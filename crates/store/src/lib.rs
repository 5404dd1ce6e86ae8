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
//! The interface, one trait per vocabulary ([`Store`] is all of them), each with the macro
//! that implements it once for both backends:
//! - [`humans`] — humans and their API credentials
//! - [`identities`] — the registry of identities
//! - [`credentials`] — signing keys, agents' keys, join tokens, single-use ids
//! - [`revocations`] — the revocation list, and the live state behind a token
//! - [`tasks`] — tasks, and tasks that end or narrow with their identity inside its write
//! - [`approvals`], [`grants`], [`leases`] — what decisions use besides policies
//! - [`policies`] — versioned policy sets
//! - [`audit`] — the hash chain, reads of the record, checkpoints, sink positions
//! - [`scim_groups`] — groups an identity provider pushes, their members on the humans
//! - [`tools`] — MCP tools seen through gateways, and their pinned definitions
//! - [`upstream_secrets`] — credentials for upstreams, sealed
//! - [`baselines`] — behavioural baselines, saved as they are learnt
//! - [`discovery`] — imports of outside sources and the accounts they hold (its SQL in
//!   `discovery_sql` and `discovery_rows`), and [`discovery_remedy`]: adoption,
//!   decommissioning, acknowledged findings
//! - [`reports`] — compliance reports as generated, for the posture's trend
//! - [`names`] — names for the ids of identities and humans, for people reading records
//!
//! And what they are built on:
//! - `backend` — the bind macros, [`Store`] itself, and `commit_with`, the one way a change
//!   is written with its events
//! - `write` — write transactions, and the [`Generation`] they move when they commit
//! - `appender` — batched appends of events that change nothing else, one durable commit
//! - `group` — SQLite group commit: many writers share one durable commit
//! - `log_writer` — SQLite appends, each batch written whole on a thread of its own
//! - `sql` — the SQL both backends run, and the WHERE clauses of list queries
//! - `rows`, `credential_rows` — rows back into domain types
//! - `migrations` — the versioned migrations of both backends
//! - [`error`] — [`StoreError`]; [`filter`] — list filters and sweep thresholds
//! - [`sqlite`], [`postgres`] — connection set-up per backend

mod appender;
pub mod approvals;
pub mod audit;
mod backend;
pub mod baselines;
mod credential_rows;
pub mod credentials;
pub mod discovery;
pub mod discovery_remedy;
mod discovery_rows;
mod discovery_sql;
pub mod error;
pub mod filter;
pub mod grants;
mod group;
pub mod humans;
pub mod identities;
pub mod leases;
mod log_writer;
mod migrations;
pub mod names;
pub mod policies;
pub mod postgres;
pub mod reports;
pub mod revocations;
mod rows;
pub mod scim_groups;
mod sql;
pub mod sqlite;
pub mod tasks;
pub mod tools;
pub mod upstream_secrets;
mod write;

use std::fmt::Debug;
use std::sync::Arc;

use aim_domain::event::Event;
use aim_domain::human::{Credential, Human};
use aim_domain::ids::IdentityId;
use async_trait::async_trait;

pub use appender::Claim;
pub use approvals::{ApprovalStore, Spent};
pub use audit::{AuditStore, CheckpointKeyRow};
pub use baselines::{BaselineStore, SavedBaseline};
pub use credentials::{
    CredentialStore, Hangs, JoinToken, LiveContext, NewRevocation, SigningKeyRow, TokenContext,
};
pub use discovery::{
    AccountRow, Discovered, DiscoveryFilter, DiscoveryStore, Disposition, ImportRow, Member,
    Progress, Tally, ViewRow,
};
pub use discovery_remedy::{Acknowledgement, DiscoveryRemedyStore};
pub use error::StoreError;
pub use filter::{AuditFilter, HumanFilter, IdentityCursor, IdentityFilter, SweepThresholds};
pub use grants::GrantStore;
pub use humans::HumanStore;
pub use identities::IdentityStore;
pub use leases::{Acquired, LeaseStore};
pub use names::NameStore;
pub use policies::{PolicyStore, PolicyVersion};
pub use reports::{ReportScore, ReportStore};
pub use revocations::RevocationStore;
pub use scim_groups::{Membership, ScimGroup, ScimGroupStore};
pub use tasks::TaskStore;
pub use tools::ToolStore;
pub use upstream_secrets::UpstreamSecretStore;
pub use write::Generation;

/// An identity a sponsor's departure (or return) changed, and the event that records it.
pub type OrphanChange = (IdentityId, Event);

#[async_trait]
pub trait Store:
    humans::HumanStore
    + identities::IdentityStore
    + audit::AuditStore
    + tasks::TaskStore
    + credentials::CredentialStore
    + revocations::RevocationStore
    + policies::PolicyStore
    + approvals::ApprovalStore
    + grants::GrantStore
    + leases::LeaseStore
    + names::NameStore
    + scim_groups::ScimGroupStore
    + tools::ToolStore
    + upstream_secrets::UpstreamSecretStore
    + baselines::BaselineStore
    + discovery::DiscoveryStore
    + discovery_remedy::DiscoveryRemedyStore
    + reports::ReportStore
    + Send
    + Sync
    + Debug
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
