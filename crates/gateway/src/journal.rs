//! The gateway's journal: the records of decisions it took on durable routes, made durable
//! on its own disk before the call goes on, then sent to aim's record in batches and
//! forgotten once aim has them. With a journal a durable call waits for one local
//! `fdatasync`, shared by every record that arrived while the last was in flight, instead
//! of an exchange with aim and aim's own write.
//!
//! ```text
//! decision ─► append ─► fdatasync (group commit) ─► call forwarded
//!                            │
//!                            └─► ship (≤ 1,000 a request, every 20 ms at most while they
//!                                 trickle) ─► aim ─► shipped mark ─► segment deleted
//! ```
//!
//! On disk, in its folder: `<n>.seg` files of [`SEGMENT`] bytes, zero-filled and synced when
//! made (the next one while the current fills, so a commit writes data and never a file
//! size), holding records as `length: u32 LE | CRC-32C: u32 LE | JSON`; a zero length ends
//! a segment's data. `shipped` holds how far aim has them: segment, offset and their CRC.
//! A gateway that starts ships first what its last run had not, and writes into a new
//! segment, so nothing is ever appended after a torn write.
//!
//! What it costs: a record on this disk until aim has it (within milliseconds while aim
//! answers). What it does not do: a proof's single use across gateways that share one URL
//! is checked by aim when it takes the record (after the call, as on a batched route); and
//! after a restart this gateway's own set of spent proofs starts empty (aim refuses a
//! replay of a proof it already recorded, and records one it had not yet as `replayed`).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aim_api::gateway::GatewayRecord;
use tokio::sync::{oneshot, watch};

use crate::metrics::Metrics;

mod disk;
use disk::{prepare, read, read_mark, segment_path, segments, write_mark};

/// Bytes in one segment file.
pub const SEGMENT: u64 = 16 << 20;
/// The largest record, and about the most one commit writes.
const MAX_RECORD: usize = 1 << 20;
/// Past this many segments not yet taken by aim, appends are refused (the route's record
/// then goes to aim directly, or the call is refused when aim cannot take it either).
const MAX_BACKLOG: u64 = 64;
/// Records in one request to aim.
const SHIP_BATCH: usize = 1_000;
/// How long the shipper lets records gather after sending a partial batch.
const LINGER: Duration = Duration::from_millis(20);
/// Bytes before a record's JSON.
const HEADER: usize = 8;
const CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);

/// A place in the journal: a segment and a byte offset in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    pub segment: u64,
    pub offset: u64,
}

/// A record to append, and who waits for its commit.
struct Append {
    bytes: Vec<u8>,
    done: oneshot::Sender<io::Result<()>>,
}

/// An open journal: appends go to its writer thread, which commits them in groups.
#[derive(Debug)]
pub struct Journal {
    dir: PathBuf,
    appends: Mutex<std::sync::mpsc::Sender<Append>>,
    /// The end of what is committed.
    durable: watch::Receiver<Position>,
    /// The first segment aim does not have all of.
    shipped_segment: Arc<AtomicU64>,
    /// Held locked while open: two gateways on one folder would each ship it.
    _lock: File,
}

impl Journal {
    /// Opens (or makes) the journal in `dir`; what an earlier run had not shipped is shipped
    /// first by [`Journal::ship`].
    pub fn open(dir: &Path) -> io::Result<Journal> {
        std::fs::create_dir_all(dir)?;
        let lock = File::options()
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join("lock"))?;
        if let Err(e) = lock.try_lock() {
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                format!(
                    "another gateway has this journal open ({e}); each gateway needs a folder of its own"
                ),
            ));
        }
        let segments = segments(dir)?;
        let next = segments.last().map_or(1, |n| n + 1);
        let file = prepare(dir, next)?;
        let shipped = read_mark(dir)
            .unwrap_or_else(|| Position {
                segment: segments.first().copied().unwrap_or(next),
                offset: 0,
            })
            .segment;
        let shipped_segment = Arc::new(AtomicU64::new(shipped));
        let (durable_tx, durable) = watch::channel(Position {
            segment: next,
            offset: 0,
        });
        let (appends, received) = std::sync::mpsc::channel();
        let writer = Writer {
            dir: dir.to_owned(),
            segment: next,
            offset: 0,
            file,
            spare: None,
            durable: durable_tx,
            shipped: shipped_segment.clone(),
        };
        std::thread::Builder::new()
            .name("aim-journal".into())
            .spawn(move || writer.run(&received))?;
        Ok(Journal {
            dir: dir.to_owned(),
            appends: Mutex::new(appends),
            durable,
            shipped_segment,
            _lock: lock,
        })
    }

    /// Appends `record`; returns once it is on disk (with the records committed beside it).
    pub async fn append(&self, record: &GatewayRecord) -> io::Result<()> {
        let bytes = serde_json::to_vec(record).map_err(io::Error::other)?;
        if bytes.len() > MAX_RECORD {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("a record of {} bytes", bytes.len()),
            ));
        }
        let (done, committed) = oneshot::channel();
        let sent = match self.appends.lock() {
            Ok(appends) => appends.send(Append { bytes, done }).is_ok(),
            Err(_) => false,
        };
        if !sent {
            return Err(io::Error::other("the journal's writer has stopped"));
        }
        committed
            .await
            .unwrap_or_else(|_| Err(io::Error::other("the journal's writer has stopped")))
    }

    /// The end of what is committed.
    pub fn durable(&self) -> Position {
        *self.durable.borrow()
    }

    /// How far aim has the records (the `shipped` mark), or the journal's start.
    pub fn shipped(&self) -> io::Result<Position> {
        if let Some(mark) = read_mark(&self.dir) {
            return Ok(mark);
        }
        let first = segments(&self.dir)?.first().copied();
        Ok(Position {
            segment: first.unwrap_or(self.durable().segment),
            offset: 0,
        })
    }

    /// Up to `max` committed records from `at`, and where the next read starts.
    pub fn read(&self, at: Position, max: usize) -> io::Result<(Vec<GatewayRecord>, Position)> {
        read(&self.dir, at, self.durable(), max)
    }

    /// Marks everything before `at` as aim's: written down, then the segments before it
    /// deleted.
    pub fn mark_shipped(&self, at: Position) -> io::Result<()> {
        write_mark(&self.dir, at)?;
        if self.shipped_segment.swap(at.segment, Ordering::Relaxed) == at.segment {
            return Ok(());
        }
        for n in segments(&self.dir)? {
            if n < at.segment {
                std::fs::remove_file(segment_path(&self.dir, n))?;
            }
        }
        Ok(())
    }

    /// Sends committed records to aim for as long as the gateway runs, in order, as many
    /// at once as were committed while the last request was out; what aim does not take
    /// is tried again (the records stay on disk).
    pub async fn ship(self: Arc<Self>, aim: aim_client::Client, metrics: Arc<Metrics>) {
        let mut at = match self.shipped() {
            Ok(at) => at,
            Err(e) => {
                tracing::error!(error = %e, dir = %self.dir.display(), "cannot read the journal's shipped mark; its records are not sent to aim");
                return;
            }
        };
        let mut durable = self.durable.clone();
        loop {
            metrics.journal_backlog(backlog(at, self.durable()));
            let journal = self.clone();
            let read = tokio::task::spawn_blocking(move || journal.read(at, SHIP_BATCH)).await;
            let (records, next) = match read {
                Ok(Ok(read)) => read,
                Ok(Err(e)) => {
                    tracing::error!(error = %e, segment = at.segment, "cannot read the journal; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
                Err(_) => return,
            };
            if !records.is_empty() {
                send(&aim, &records, "journaled").await;
            }
            if !records.is_empty() && records.len() < SHIP_BATCH {
                // Let a few more commits gather: fewer, fuller requests to aim and syncs
                // of the mark, off the calls' way (their records are durable already).
                tokio::time::sleep(LINGER).await;
            }
            if next != at {
                let journal = self.clone();
                let marked = tokio::task::spawn_blocking(move || journal.mark_shipped(next)).await;
                if let Ok(Err(e)) = marked {
                    tracing::warn!(error = %e, "cannot write the journal's shipped mark");
                }
                at = next;
            } else if durable.changed().await.is_err() {
                return;
            }
        }
    }
}

/// About how many bytes lie between `from` and `to` (a segment's unused tail counted).
fn backlog(from: Position, to: Position) -> u64 {
    if from >= to {
        return 0;
    }
    if from.segment == to.segment {
        return to.offset - from.offset;
    }
    (to.segment - from.segment) * SEGMENT + to.offset - from.offset
}

/// Sends `records` (of `kind` calls: batched, journaled) to aim until it takes them,
/// waiting longer after each refusal (up to 5 s).
pub(crate) async fn send(aim: &aim_client::Client, records: &[GatewayRecord], kind: &str) {
    let id = records[0].event.request_id.clone();
    let mut wait = Duration::from_millis(100);
    loop {
        match aim.gateway_records(records, &id).await {
            Ok(r) => {
                for at in r.replayed {
                    tracing::warn!(request_id = %records[at].event.request_id, kind, "a call's DPoP proof had been used at another gateway; aim recorded it as replayed");
                }
                return;
            }
            Err(e) => {
                tracing::warn!(records = records.len(), kind, error = %e, "could not send decisions to aim's record; retrying");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// The writer thread's state.
struct Writer {
    dir: PathBuf,
    segment: u64,
    offset: u64,
    file: File,
    spare: Option<std::thread::JoinHandle<io::Result<File>>>,
    durable: watch::Sender<Position>,
    shipped: Arc<AtomicU64>,
}

impl Writer {
    /// Commits appends in groups until every sender is gone: all that arrived while the
    /// last commit was on its way to disk go in the next one.
    fn run(mut self, received: &std::sync::mpsc::Receiver<Append>) {
        let mut broken: Option<String> = None;
        while let Ok(first) = received.recv() {
            let mut group = vec![first];
            let mut bytes = 0;
            while bytes < MAX_RECORD {
                match received.try_recv() {
                    Ok(a) => {
                        bytes += a.bytes.len() + HEADER;
                        group.push(a);
                    }
                    Err(_) => break,
                }
            }
            let result = match &broken {
                Some(why) => Err(io::Error::other(why.clone())),
                None => self.commit(&group),
            };
            if let Err(e) = &result
                && broken.is_none()
                && e.kind() != io::ErrorKind::StorageFull
            {
                tracing::error!(error = %e, dir = %self.dir.display(), "the journal cannot write; durable records go to aim from now on");
                broken = Some(format!("the journal failed: {e}"));
            }
            for a in group {
                let answer = match &result {
                    Ok(()) => Ok(()),
                    Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
                };
                let _ = a.done.send(answer);
            }
        }
    }

    fn commit(&mut self, group: &[Append]) -> io::Result<()> {
        let mut buf = Vec::with_capacity(group.iter().map(|a| a.bytes.len() + HEADER).sum());
        for a in group {
            buf.extend_from_slice(&(a.bytes.len() as u32).to_le_bytes());
            buf.extend_from_slice(&CRC.checksum(&a.bytes).to_le_bytes());
            buf.extend_from_slice(&a.bytes);
        }
        // A zero length after the data ends the segment: leave room for it.
        if self.offset + buf.len() as u64 + HEADER as u64 > SEGMENT {
            self.next_segment()?;
        }
        self.file.write_all_at(&buf, self.offset)?;
        self.file.sync_data()?;
        self.offset += buf.len() as u64;
        self.durable.send_replace(Position {
            segment: self.segment,
            offset: self.offset,
        });
        if self.spare.is_none() && self.offset > SEGMENT / 2 {
            let (dir, n) = (self.dir.clone(), self.segment + 1);
            self.spare = Some(std::thread::spawn(move || prepare(&dir, n)));
        }
        Ok(())
    }

    fn next_segment(&mut self) -> io::Result<()> {
        if self.segment + 1 - self.shipped.load(Ordering::Relaxed) > MAX_BACKLOG {
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                format!("{MAX_BACKLOG} segments are waiting for aim to take them"),
            ));
        }
        let file = match self.spare.take() {
            Some(made) => made
                .join()
                .map_err(|_| io::Error::other("preparing a segment panicked"))??,
            None => prepare(&self.dir, self.segment + 1)?,
        };
        self.file = file;
        self.segment += 1;
        self.offset = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use aim_domain::event::{Actor, AuditAction, Event};
    use aim_domain::ids::IdentityId;
    use aim_domain::time::{Clock, SystemClock};

    use super::disk::mark_path;
    use super::*;

    fn record(request_id: &str) -> GatewayRecord {
        let event = Event::new(
            SystemClock.now(),
            Actor::identity(IdentityId::new()),
            AuditAction::Decision,
            "Resource",
            "crm/customers/1",
        )
        .detail(serde_json::json!({ "action": "read" }))
        .from_request(request_id, "127.0.0.1");
        GatewayRecord {
            event,
            claims: vec![],
        }
    }

    fn ids(records: &[GatewayRecord]) -> Vec<&str> {
        records
            .iter()
            .map(|r| r.event.request_id.as_str())
            .collect()
    }

    /// Everything readable from `journal`'s shipped mark, and where it ends.
    fn unshipped(journal: &Journal) -> (Vec<GatewayRecord>, Position) {
        let (mut all, mut at) = (Vec::new(), journal.shipped().unwrap());
        loop {
            let (records, next) = journal.read(at, 2).unwrap();
            all.extend(records);
            if next == at {
                return (all, at);
            }
            at = next;
        }
    }

    #[tokio::test]
    async fn records_read_back_in_order_until_aim_has_them_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Arc::new(Journal::open(dir.path()).unwrap());
        // Appends that arrive together are committed together, each answered.
        let (a, b, c) = (record("r-1"), record("r-2"), record("r-3"));
        let (x, y, z) = tokio::join!(journal.append(&a), journal.append(&b), journal.append(&c));
        x.unwrap();
        y.unwrap();
        z.unwrap();
        let (records, end) = unshipped(&journal);
        let mut read = ids(&records);
        read.sort_unstable();
        assert_eq!(read, ["r-1", "r-2", "r-3"]);
        assert_eq!(end, journal.durable());
        drop(journal);

        // A restart: nothing was shipped, so all of it is read again, and new records go
        // to a new segment after it.
        let journal = Journal::open(dir.path()).unwrap();
        journal.append(&record("r-4")).await.unwrap();
        let (records, end) = unshipped(&journal);
        assert_eq!(records.len(), 4, "{:?}", ids(&records));
        assert_eq!(records[3].event.request_id, "r-4");
        assert!(end.segment > 1);

        // Once aim has them, they are gone from disk and not read again.
        journal.mark_shipped(end).unwrap();
        assert_eq!(segments(dir.path()).unwrap().first(), Some(&end.segment));
        drop(journal);
        let journal = Journal::open(dir.path()).unwrap();
        assert_eq!(journal.shipped().unwrap(), end);
        assert!(unshipped(&journal).0.is_empty());
    }

    #[tokio::test]
    async fn a_record_that_does_not_read_back_ends_its_segment() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(dir.path()).unwrap();
        for id in ["t-1", "t-2", "t-3"] {
            journal.append(&record(id)).await.unwrap();
        }
        let at = journal.shipped().unwrap();
        let (records, _) = journal.read(at, 10).unwrap();
        // A crash tore the second record's write: one byte of its JSON differs.
        let second = at.offset + (HEADER + serde_json::to_vec(&records[0]).unwrap().len()) as u64;
        let file = File::options()
            .write(true)
            .open(segment_path(dir.path(), at.segment))
            .unwrap();
        file.write_all_at(b"#", second + HEADER as u64 + 3).unwrap();
        drop(journal);

        let journal = Journal::open(dir.path()).unwrap();
        let (records, next) = journal.read(at, 10).unwrap();
        assert_eq!(ids(&records), ["t-1"]);
        assert_eq!(
            next,
            Position {
                segment: at.segment + 1,
                offset: 0
            }
        );
        // A damaged mark reads as none: shipping starts again from the oldest segment.
        std::fs::write(mark_path(dir.path()), [1u8; 20]).unwrap();
        assert_eq!(journal.shipped().unwrap(), at);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn appends_arriving_together_are_each_committed_once() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Arc::new(Journal::open(dir.path()).unwrap());
        let appends = (0..300).map(|i| {
            let journal = journal.clone();
            tokio::spawn(async move { journal.append(&record(&format!("c-{i}"))).await })
        });
        for a in appends.collect::<Vec<_>>() {
            a.await.unwrap().unwrap();
        }
        let (records, _) = unshipped(&journal);
        let mut read: Vec<_> = ids(&records);
        read.sort_unstable();
        read.dedup();
        assert_eq!(read.len(), 300);
        assert_eq!(records.len(), 300, "each once");
        // Leadership was handed on and given back: a later append is committed too.
        journal.append(&record("last")).await.unwrap();
    }

    #[test]
    fn a_journal_is_one_gateways_own() {
        let dir = tempfile::tempdir().unwrap();
        let first = Journal::open(dir.path()).unwrap();
        let second = Journal::open(dir.path()).unwrap_err();
        assert_eq!(second.kind(), io::ErrorKind::WouldBlock);
        assert!(
            second.to_string().contains("a folder of its own"),
            "{second}"
        );
        drop(first);
        Journal::open(dir.path()).unwrap();
    }

    #[test]
    fn the_backlog_counts_the_bytes_between_two_places() {
        let at = |segment, offset| Position { segment, offset };
        assert_eq!(backlog(at(2, 100), at(2, 300)), 200);
        assert_eq!(backlog(at(2, 300), at(3, 100)), SEGMENT - 200);
        assert_eq!(backlog(at(3, 0), at(2, 100)), 0);
    }

    #[tokio::test]
    async fn a_record_too_large_is_refused_and_the_journal_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(dir.path()).unwrap();
        let mut large = record("big");
        large.event.reason = "x".repeat(MAX_RECORD + 1);
        let refused = journal.append(&large).await.unwrap_err();
        assert_eq!(refused.kind(), io::ErrorKind::InvalidInput);
        journal.append(&record("small")).await.unwrap();
        let (records, _) = journal.read(journal.shipped().unwrap(), 10).unwrap();
        assert_eq!(ids(&records), ["small"]);
    }
}
