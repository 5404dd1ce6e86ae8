//! Write transactions that tell the live-state cache about themselves.
//!
//! Every change to registry state (an identity, a human, a task, a key, a revocation, a
//! grant...) is written in a transaction begun by the backend's `write_tx`, which hands out
//! a [`WriteTx`]. Its `commit` moves the store's [`Generation`] once the commit is durable,
//! so a cache of what presented tokens hang on (`aim-enforce`) never serves an entry read
//! before the change. Appends that change nothing else (decisions, refusals, token
//! issuance) go through the appender and leave the generation alone.
//!
//! INVARIANT: the generation moves after the commit, never before: a reader that takes it
//! before its read and finds it unchanged afterwards read nothing older than the last
//! change committed on this replica.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counts the write transactions committed through this store (on this replica), and on
/// PostgreSQL those other replicas committed too (their `NOTIFY`, heard by
/// `postgres::listen`).
#[derive(Debug, Default, Clone)]
pub struct Generation(Arc<Counter>);

#[derive(Debug, Default)]
struct Counter {
    value: AtomicU64,
    moved: tokio::sync::Notify,
}

impl Generation {
    /// The current value: it moves after every committed write transaction.
    pub fn current(&self) -> u64 {
        self.0.value.load(Ordering::Acquire)
    }

    /// Returns once the generation is no longer `seen`.
    pub async fn moved_from(&self, seen: u64) {
        loop {
            let moved = self.0.moved.notified();
            if self.current() != seen {
                return;
            }
            moved.await;
        }
    }

    pub(crate) fn advance(&self) {
        self.0.value.fetch_add(1, Ordering::AcqRel);
        self.0.moved.notify_waiters();
    }
}

/// A write transaction: deref to the connection to run statements. A change commits with
/// its events through the store's `commit_with`, which appends them and then makes the
/// whole durable and moves the store's [`Generation`]. Dropped without a commit, nothing
/// of it is applied.
pub(crate) struct WriteTx<T> {
    tx: T,
    generation: Generation,
}

impl<T> WriteTx<T> {
    pub(crate) fn new(tx: T, generation: &Generation) -> Self {
        Self {
            tx,
            generation: generation.clone(),
        }
    }
}

impl WriteTx<sqlx::Transaction<'static, sqlx::Postgres>> {
    /// Commits a change that records no event of its own: telemetry (last seen), a sink's
    /// position, a checkpoint, a single-use id. Every other change commits through
    /// `commit_with` (see `backend::impl_store`), which appends its events first.
    pub(crate) async fn commit_unrecorded(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await?;
        self.generation.advance();
        Ok(())
    }
}

impl WriteTx<crate::group::GroupTx> {
    /// As above.
    pub(crate) async fn commit_unrecorded(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await?;
        self.generation.advance();
        Ok(())
    }
}

impl<T: Deref> Deref for WriteTx<T>
where
    T::Target: Sized,
{
    type Target = T::Target;
    fn deref(&self) -> &T::Target {
        &self.tx
    }
}

impl<T: DerefMut> DerefMut for WriteTx<T>
where
    T::Target: Sized,
{
    fn deref_mut(&mut self) -> &mut T::Target {
        &mut self.tx
    }
}

/// Run first in a write transaction, it takes the chain head's row lock, which every
/// write that appends an event takes at its end: a "create it if there is none yet" (the
/// first admin, the first signing key) then runs alone, and a replica starting at the same
/// moment sees what the first one committed instead of inserting a second. (SQLite writes
/// run one at a time anyway.)
pub(crate) const SERIALIZE_WITH_OTHER_WRITERS: &str =
    "UPDATE chain_head SET seq = seq WHERE id = 1";
