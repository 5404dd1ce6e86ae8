//! Group commit for SQLite: many writers' transactions share one durable commit.
//!
//! SQLite has one writer, and with `synchronous=FULL` every commit waits for the disk. Here
//! each write runs inside a `SAVEPOINT` of one outer transaction on the single write
//! connection; when the writers queued at that moment are done, a committer commits the
//! outer transaction once and answers all of them. A writer is told it succeeded only after
//! the commit that holds its work is durable; a writer that fails rolls back to its own
//! savepoint and leaves the others' work alone; a failed commit fails every writer in it.
//!
//! The outer transaction holds the [`Gate`] from `BEGIN IMMEDIATE` to its end, taking turns
//! with the log writer (`log_writer.rs`), the other connection that writes.

use std::collections::BTreeSet;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use sqlx::SqliteConnection;
use tokio::sync::{Mutex, Notify, OwnedMutexGuard, watch};

/// This process's turn to write to the database file: held by whichever of its two writing
/// connections has a write transaction open. A fair (first come, first served) lock, so
/// neither writer waits on SQLite's sleeping busy handler for the other, and neither starves.
pub(crate) type Gate = Arc<Mutex<()>>;

struct State {
    conn: SqliteConnection,
    /// Whether the outer transaction is open.
    open: bool,
    /// The gate, held while the outer transaction is open.
    turn: Option<OwnedMutexGuard<()>>,
    /// The batch the next writer joins.
    batch: u64,
    /// A writer gave up without releasing its savepoint; undo it before anything else.
    abandoned: bool,
}

impl State {
    async fn tidy(&mut self) -> Result<(), sqlx::Error> {
        if self.abandoned {
            self.abandoned = false;
            sqlx::raw_sql("ROLLBACK TO SAVEPOINT job; RELEASE SAVEPOINT job")
                .execute(&mut self.conn)
                .await?;
        }
        Ok(())
    }
}

/// The batches finished so far.
#[derive(Debug, Clone, Default)]
struct Finished {
    /// Every batch up to and including this one is finished.
    upto: Option<u64>,
    /// Recent batches whose commit failed.
    failed: BTreeSet<u64>,
}

struct Inner {
    state: Arc<Mutex<State>>,
    gate: Gate,
    kick: Notify,
    finished: watch::Sender<Finished>,
    stop: AtomicBool,
}

/// Stops the committer when the last handle goes.
struct Stopper(Arc<Inner>);

impl Drop for Stopper {
    fn drop(&mut self) {
        self.0.stop.store(true, Ordering::SeqCst);
        self.0.kick.notify_one();
    }
}

#[derive(Clone)]
pub(crate) struct GroupCommit {
    inner: Arc<Inner>,
    _stopper: Arc<Stopper>,
}

impl std::fmt::Debug for GroupCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit").finish_non_exhaustive()
    }
}

impl GroupCommit {
    /// Takes over `conn` and starts the committer; the outer transaction takes turns with
    /// the other writers through `gate`.
    pub(crate) fn new(conn: SqliteConnection, gate: Gate) -> Self {
        let (finished, _) = watch::channel(Finished::default());
        let inner = Arc::new(Inner {
            state: Arc::new(Mutex::new(State {
                conn,
                open: false,
                turn: None,
                batch: 0,
                abandoned: false,
            })),
            gate,
            kick: Notify::new(),
            finished,
            stop: AtomicBool::new(false),
        });
        tokio::spawn(committer(inner.clone()));
        Self {
            _stopper: Arc::new(Stopper(inner.clone())),
            inner,
        }
    }

    /// Starts a writer's part of the current batch.
    pub(crate) async fn begin(&self) -> Result<GroupTx, sqlx::Error> {
        let mut state = self.inner.state.clone().lock_owned().await;
        state.tidy().await?;
        if !state.open {
            let turn = self.inner.gate.clone().lock_owned().await;
            sqlx::raw_sql("BEGIN IMMEDIATE")
                .execute(&mut state.conn)
                .await?;
            state.open = true;
            state.turn = Some(turn);
        }
        if let Err(e) = sqlx::raw_sql("SAVEPOINT job")
            .execute(&mut state.conn)
            .await
        {
            drop(state);
            // The outer transaction may be open with nobody in it: let the committer close it.
            self.inner.kick.notify_one();
            return Err(e);
        }
        let batch = state.batch;
        Ok(GroupTx {
            state: Some(state),
            inner: self.inner.clone(),
            batch,
        })
    }
}

async fn committer(inner: Arc<Inner>) {
    loop {
        inner.kick.notified().await;
        let mut state = inner.state.lock().await;
        let tidied = state.tidy().await;
        if state.open {
            let committed = match tidied {
                Ok(()) => sqlx::raw_sql("COMMIT")
                    .execute(&mut state.conn)
                    .await
                    .map(|_| ()),
                Err(e) => Err(e),
            };
            if let Err(e) = &committed {
                tracing::error!(error = %e, "group commit failed; every write in the batch fails");
                let _ = sqlx::raw_sql("ROLLBACK").execute(&mut state.conn).await;
            }
            state.open = false;
            state.turn = None;
            let batch = state.batch;
            state.batch += 1;
            inner.finished.send_modify(|f| {
                f.upto = Some(batch);
                if committed.is_err() {
                    f.failed.insert(batch);
                    while f.failed.len() > 1024 {
                        f.failed.pop_first();
                    }
                }
            });
        }
        drop(state);
        if inner.stop.load(Ordering::SeqCst) {
            return;
        }
    }
}

/// One writer's part of a batch. Deref to the connection to run statements; `commit`
/// waits until the batch is durable. Dropped without `commit`, its work is undone.
pub(crate) struct GroupTx {
    state: Option<OwnedMutexGuard<State>>,
    inner: Arc<Inner>,
    batch: u64,
}

impl GroupTx {
    pub(crate) async fn commit(mut self) -> Result<(), sqlx::Error> {
        let Some(mut state) = self.state.take() else {
            return Err(sqlx::Error::WorkerCrashed);
        };
        if let Err(e) = sqlx::raw_sql("RELEASE SAVEPOINT job")
            .execute(&mut state.conn)
            .await
        {
            state.abandoned = true;
            return Err(e);
        }
        drop(state);
        self.inner.kick.notify_one();
        let mut finished = self.inner.finished.subscribe();
        loop {
            {
                let f = finished.borrow_and_update();
                if f.upto.is_some_and(|u| u >= self.batch) {
                    if f.failed.contains(&self.batch) {
                        return Err(sqlx::Error::Protocol(
                            "the group commit holding this write failed".into(),
                        ));
                    }
                    return Ok(());
                }
            }
            finished
                .changed()
                .await
                .map_err(|_| sqlx::Error::WorkerCrashed)?;
        }
    }
}

impl Drop for GroupTx {
    fn drop(&mut self) {
        if let Some(mut state) = self.state.take() {
            state.abandoned = true;
            drop(state);
            // Let the committer undo it and close the outer transaction soon, so the
            // database's write lock is not held until the next writer comes along.
            self.inner.kick.notify_one();
        }
    }
}

impl Deref for GroupTx {
    type Target = SqliteConnection;
    fn deref(&self) -> &SqliteConnection {
        // INVARIANT: `state` is Some until `commit` or drop consume it.
        match &self.state {
            Some(s) => &s.conn,
            None => unreachable_state(),
        }
    }
}

impl DerefMut for GroupTx {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        match &mut self.state {
            Some(s) => &mut s.conn,
            None => unreachable_state(),
        }
    }
}

#[allow(clippy::panic)]
fn unreachable_state() -> ! {
    panic!("a group transaction was used after commit")
}
