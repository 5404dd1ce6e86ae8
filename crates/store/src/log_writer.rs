//! SQLite appends on a thread of their own.
//!
//! Decisions, refusals and token issuance are appends: a record and the single-use ids it
//! spends. Through sqlx-sqlite every statement is a round trip to the connection's worker
//! thread (two context switches), and such a write was eight of them plus the hops between
//! the appender and the group committer: at concurrency 1 those hand-offs, not the disk,
//! were most of a decision's time (BENCHMARKS.md). Here the whole write (the ids, the chain
//! head, the records, the durable commit) runs start to end on one thread that owns its
//! connection: a request is handed over once and woken once, when its record is durable.
//!
//! The registry's writes keep sqlx and their group commit (`group.rs`). The two writing
//! connections take turns through the [`Gate`], held from `BEGIN IMMEDIATE` to the end of
//! the transaction, so neither sleeps in SQLite's busy handler waiting for the other.
//! Another process on the same file is kept out by SQLite's own lock, as before.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use aim_domain::event::Event;
use rusqlite::{Connection, OpenFlags, TransactionBehavior, params};

use crate::StoreError;
use crate::appender::{Appender, Entry, kept};
use crate::group::Gate;
use crate::rows::json_text;
use crate::sql::{ADVANCE_HEAD, MultiInsert, SET_HEAD_HASH, multi_insert};

struct LogWriter {
    conn: Connection,
    gate: Gate,
}

/// Starts the log writer on the database at `path` (made and migrated already).
pub(crate) fn start(path: &Path, read_only: bool, gate: Gate) -> Result<Appender, StoreError> {
    let mut writer = LogWriter::open(path, read_only, gate)?;
    Appender::on_thread("aim-log-writer", move |entries| writer.write(entries))
}

impl LogWriter {
    fn open(path: &Path, read_only: bool, gate: Gate) -> Result<Self, StoreError> {
        let access = if read_only {
            OpenFlags::SQLITE_OPEN_READ_ONLY
        } else {
            OpenFlags::SQLITE_OPEN_READ_WRITE
        };
        // One thread uses the connection: SQLite's own mutex would only cost.
        let conn = Connection::open_with_flags(path, access | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        // As on sqlx's connections (sqlite.rs): every commit durable before it is answered.
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", true)?;
        conn.pragma_update(None, "cache_size", -8192)?;
        conn.pragma_update(None, "temp_store", "memory")?;
        Ok(Self { conn, gate })
    }

    /// Records the entries' claims, then appends, in order, the events whose claims were all
    /// new, in one durable transaction (see `appender::BatchWriter`).
    fn write(&mut self, entries: &mut [Entry]) -> Result<Vec<Option<i64>>, StoreError> {
        let _turn = self.gate.blocking_lock();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut won = HashSet::new();
        {
            let mut claim = tx.prepare_cached(multi_insert(MultiInsert::UsedIds, 1, true))?;
            for c in entries.iter().flat_map(|e| &e.claims) {
                if claim
                    .query(params![c.id, c.expires_at.as_millis()])?
                    .next()?
                    .is_some()
                {
                    won.insert(c.id.clone());
                }
            }
        }
        let keep = kept(entries, &mut won);
        let n = keep.iter().filter(|k| **k).count();
        if n > 0 {
            let (last, prev): (i64, Vec<u8>) = tx
                .prepare_cached(ADVANCE_HEAD)?
                .query_row([n as i64], |r| Ok((r.get(0)?, r.get(1)?)))?;
            let events = entries
                .iter_mut()
                .zip(&keep)
                .filter(|(_, k)| **k)
                .map(|(e, _)| &mut e.event);
            let (chained, head) = crate::audit::chain(events, last - n as i64 + 1, prev)?;
            let mut insert = tx.prepare_cached(multi_insert(MultiInsert::Events, 1, true))?;
            for (e, prev, hash) in chained {
                insert_event(&mut insert, e, &prev, &hash)?;
            }
            tx.prepare_cached(SET_HEAD_HASH)?.execute([&head[..]])?;
        }
        tx.commit()?;
        Ok(entries
            .iter()
            .zip(keep)
            .map(|(e, k)| k.then_some(e.event.seq))
            .collect())
    }
}

/// Binds `e` to the one-row event insert, in `sql::EVENT_COLUMNS` order.
fn insert_event(
    insert: &mut rusqlite::CachedStatement<'_>,
    e: &Event,
    prev: &[u8; 32],
    hash: &[u8; 32],
) -> rusqlite::Result<usize> {
    let model_decision = e
        .trail
        .model_decision
        .as_ref()
        .map(json_text)
        .unwrap_or_default();
    insert.execute(params![
        e.seq,
        e.at.as_millis(),
        e.actor.kind.as_str(),
        e.actor.id,
        e.action.as_str(),
        e.target_type,
        e.target_id,
        e.outcome.as_str(),
        e.reason,
        json_text(&e.detail),
        e.request_id,
        e.source,
        json_text(&e.trail.act),
        e.trail.task_id,
        e.trail.session_id,
        e.trail.jti,
        e.trail.triggered_by,
        json_text(&e.trail.policies),
        model_decision,
        &prev[..],
        &hash[..],
    ])
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match e {
            rusqlite::Error::FromSqlConversionFailure(..)
            | rusqlite::Error::InvalidColumnType(..)
            | rusqlite::Error::IntegralValueOutOfRange(..) => StoreError::Corrupt(e.to_string()),
            other => StoreError::Unavailable(sqlx::Error::AnyDriverError(Box::new(other))),
        }
    }
}
