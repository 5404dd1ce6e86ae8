//! Batched appends: events that change nothing else (decisions, refusals, token issuance)
//! are queued, and one task writes whatever is queued as one batch: the chain head
//! advanced once, the records inserted with a few multi-row statements, one durable
//! commit. Nobody is answered before that commit is durable. Under load a batch holds many
//! events; alone, an event is written at once.
//!
//! A batch that fails is retried one event at a time, so each writer gets its own verdict
//! and one bad event never fails its neighbours.
//!
//! A record of something that already happened, which no answer to an agent waits on (a
//! gateway's report of a call it forwarded), is *carried* ([`Appender::append_carried`]):
//! it waits up to [`CARRY_WAIT`] for the next write to take it along, and is written on
//! its own only if none comes. It is still durable before its writer is answered; it just
//! costs no commit (no `fsync`) of its own when decisions are being written anyway.
//!
//! The writer is a task ([`Appender::start`], PostgreSQL: its statements are network round
//! trips anyway) or a thread of its own ([`Appender::on_thread`], SQLite: the whole write
//! runs there, so a request is handed over once and woken once).

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aim_domain::event::Event;
use tokio::sync::{mpsc, oneshot};

use crate::StoreError;

/// The most events in one batch.
pub(crate) const MAX_BATCH: usize = 512;

/// How long a carried append waits for another write to take it along.
pub(crate) const CARRY_WAIT: Duration = Duration::from_millis(20);

pub use aim_domain::single_use::Claim;

/// An event, and the claims it depends on: it is appended only if every one is new.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub event: Event,
    pub claims: Vec<Claim>,
}

/// Writes a batch in one durable transaction: records the claims, then appends, in order,
/// the events whose claim was new (setting each one's `seq`). Returns per entry its
/// sequence number, or `None` when its claim had been used.
pub(crate) trait BatchWriter: Send + Sync + 'static {
    fn write(
        &self,
        entries: &mut [Entry],
    ) -> impl Future<Output = Result<Vec<Option<i64>>, StoreError>> + Send;
}

struct Job {
    entry: Entry,
    done: oneshot::Sender<Result<Option<i64>, StoreError>>,
}

/// What the writer is handed: a job, or (`None`) a nudge to write what is carried.
type Msg = Option<Job>;

/// Carried jobs, oldest first, waiting for a write to take them.
type Carried = Arc<Mutex<Vec<Job>>>;

#[derive(Clone)]
pub(crate) struct Appender {
    queue: mpsc::Sender<Msg>,
    carried: Carried,
}

impl std::fmt::Debug for Appender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Appender").finish_non_exhaustive()
    }
}

impl Appender {
    /// Starts the task that writes through `writer`; it ends when the last handle goes.
    pub(crate) fn start(writer: impl BatchWriter) -> Self {
        let (queue, jobs) = mpsc::channel(4 * MAX_BATCH);
        let carried = Carried::default();
        tokio::spawn(run(writer, jobs, carried.clone()));
        Self { queue, carried }
    }

    /// Starts a thread named `name` that writes each batch with `write`, blocking; it ends
    /// when the last handle goes.
    pub(crate) fn on_thread(
        name: &str,
        write: impl FnMut(&mut [Entry]) -> Result<Vec<Option<i64>>, StoreError> + Send + 'static,
    ) -> Result<Self, StoreError> {
        let (queue, jobs) = mpsc::channel(4 * MAX_BATCH);
        let carried = Carried::default();
        let taken = carried.clone();
        std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || run_blocking(write, jobs, taken))
            .map_err(|e| StoreError::Unavailable(sqlx::Error::Io(e)))?;
        Ok(Self { queue, carried })
    }

    /// Appends `event` and waits until it is durable.
    pub(crate) async fn append(&self, event: &Event) -> Result<i64, StoreError> {
        self.submit(event, Vec::new())
            .await?
            .ok_or_else(|| StoreError::Corrupt("an unclaimed append was refused".into()))
    }

    /// Records `claims` and appends `event` in one durable write; `None` (and no event) if
    /// any claim was used before (the new ones among them stay used).
    pub(crate) async fn append_claimed(
        &self,
        event: &Event,
        claims: Vec<Claim>,
    ) -> Result<Option<i64>, StoreError> {
        self.submit(event, claims).await
    }

    /// Appends `event` with the next write, or alone after [`CARRY_WAIT`] if none comes;
    /// waits until it is durable.
    pub(crate) async fn append_carried(&self, event: &Event) -> Result<i64, StoreError> {
        let (job, mut answer) = job(event, Vec::new());
        self.carried.lock().map_err(|_| stopped())?.push(job);
        let written = match tokio::time::timeout(CARRY_WAIT, &mut answer).await {
            Ok(written) => written,
            Err(_) => {
                self.queue.send(None).await.map_err(|_| stopped())?;
                answer.await
            }
        };
        written
            .map_err(|_| stopped())??
            .ok_or_else(|| StoreError::Corrupt("an unclaimed append was refused".into()))
    }

    async fn submit(&self, event: &Event, claims: Vec<Claim>) -> Result<Option<i64>, StoreError> {
        let (job, answer) = job(event, claims);
        self.queue.send(Some(job)).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

type Answered = oneshot::Receiver<Result<Option<i64>, StoreError>>;

fn job(event: &Event, claims: Vec<Claim>) -> (Job, Answered) {
    let (done, answer) = oneshot::channel();
    let entry = Entry {
        event: event.clone(),
        claims,
    };
    (Job { entry, done }, answer)
}

fn stopped() -> StoreError {
    StoreError::Unavailable(sqlx::Error::PoolClosed)
}

type Answer = oneshot::Sender<Result<Option<i64>, StoreError>>;

/// A batch's verdict: every writer answered, or the batch failed as a whole and its
/// entries are to be written one at a time.
enum Verdict {
    Answered,
    OneByOne(Vec<Entry>, Vec<Answer>),
}

fn answer(
    entries: Vec<Entry>,
    answers: Vec<Answer>,
    written: Result<Vec<Option<i64>>, StoreError>,
) -> Verdict {
    match written {
        Ok(seqs) => {
            for (done, seq) in answers.into_iter().zip(seqs) {
                let _ = done.send(Ok(seq));
            }
            Verdict::Answered
        }
        Err(e) if answers.len() == 1 => {
            if let Some(done) = answers.into_iter().next() {
                let _ = done.send(Err(e));
            }
            Verdict::Answered
        }
        Err(e) => {
            tracing::warn!(error = %e, events = entries.len(), "an audit batch failed; writing its events one by one");
            Verdict::OneByOne(entries, answers)
        }
    }
}

/// The verdict on one entry written alone.
fn alone(written: Result<Vec<Option<i64>>, StoreError>) -> Result<Option<i64>, StoreError> {
    written.and_then(|seqs| {
        seqs.first()
            .copied()
            .ok_or_else(|| StoreError::Corrupt("no sequence number for an append".into()))
    })
}

/// What one write takes: the carried jobs (they came first), up to [`MAX_BATCH`] of them,
/// then the jobs received.
fn split(batch: &mut Vec<Msg>, carried: &Mutex<Vec<Job>>) -> (Vec<Entry>, Vec<Answer>) {
    let mut jobs: Vec<Job> = match carried.lock() {
        Ok(mut c) => {
            let n = c.len().min(MAX_BATCH);
            c.drain(..n).collect()
        }
        Err(_) => Vec::new(),
    };
    jobs.extend(batch.drain(..).flatten());
    jobs.into_iter().map(|j| (j.entry, j.done)).unzip()
}

async fn run(writer: impl BatchWriter, mut jobs: mpsc::Receiver<Msg>, carried: Carried) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while jobs.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let (mut entries, answers) = split(&mut batch, &carried);
        if entries.is_empty() {
            continue;
        }
        let written = writer.write(&mut entries).await;
        if let Verdict::OneByOne(mut entries, answers) = answer(entries, answers, written) {
            for (entry, done) in entries.iter_mut().zip(answers) {
                let _ = done.send(alone(writer.write(std::slice::from_mut(entry)).await));
            }
        }
    }
}

fn run_blocking(
    mut write: impl FnMut(&mut [Entry]) -> Result<Vec<Option<i64>>, StoreError>,
    mut jobs: mpsc::Receiver<Msg>,
    carried: Carried,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while jobs.blocking_recv_many(&mut batch, MAX_BATCH) > 0 {
        let (mut entries, answers) = split(&mut batch, &carried);
        if entries.is_empty() {
            continue;
        }
        let written = write(&mut entries);
        if let Verdict::OneByOne(mut entries, answers) = answer(entries, answers, written) {
            for (entry, done) in entries.iter_mut().zip(answers) {
                let _ = done.send(alone(write(std::slice::from_mut(entry))));
            }
        }
    }
}

/// Which claimed entries go in: an entry whose every claim is in `won` (newly recorded),
/// and of two entries with the same id in one batch, the first. Takes the ids out of `won`.
pub(crate) fn kept(entries: &[Entry], won: &mut std::collections::HashSet<String>) -> Vec<bool> {
    entries
        .iter()
        .map(|e| {
            // Every id taken out, even after one that was not won.
            let mut all = true;
            for c in &e.claims {
                all &= won.remove(&c.id);
            }
            all
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use aim_domain::event::Actor;
    use aim_domain::time::Timestamp;

    /// Numbers events in memory and refuses any batch holding an event whose reason is
    /// `poison`; records the size of each batch it was given.
    #[derive(Clone, Default)]
    struct Counting {
        next: std::sync::Arc<Mutex<i64>>,
        batches: std::sync::Arc<Mutex<Vec<usize>>>,
    }

    impl BatchWriter for Counting {
        async fn write(&self, entries: &mut [Entry]) -> Result<Vec<Option<i64>>, StoreError> {
            self.batches.lock().unwrap().push(entries.len());
            // Let the queue fill while "writing".
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            if entries.iter().any(|e| e.event.reason == "poison") {
                return Err(StoreError::Corrupt("poison".into()));
            }
            let mut next = self.next.lock().unwrap();
            Ok(entries
                .iter_mut()
                .map(|e| {
                    *next += 1;
                    e.event.seq = *next;
                    Some(*next)
                })
                .collect())
        }
    }

    fn event(reason: &str) -> Event {
        Event::new(
            Timestamp::from_millis(1),
            Actor::system("t"),
            aim_domain::event::AuditAction::Decision,
            "y",
            "z",
        )
        .reason(reason)
    }

    #[tokio::test]
    async fn concurrent_appends_share_batches_and_a_bad_one_fails_alone() {
        let writer = Counting::default();
        let appender = Appender::start(writer.clone());
        let mut tasks = Vec::new();
        for n in 0..200 {
            let a = appender.clone();
            tasks.push(tokio::spawn(async move {
                a.append(&event(if n == 150 { "poison" } else { "fine" }))
                    .await
            }));
        }
        let mut seqs = Vec::new();
        let mut failed = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(seq) => seqs.push(seq),
                Err(StoreError::Corrupt(_)) => failed += 1,
                Err(e) => panic!("unexpected {e}"),
            }
        }
        assert_eq!(failed, 1, "only the poisoned event fails");
        seqs.sort();
        assert_eq!(seqs, (1..=199).collect::<Vec<_>>(), "each other event once");
        let batches = writer.batches.lock().unwrap().clone();
        assert!(
            batches.iter().any(|&b| b > 1),
            "waiting writers were batched: {batches:?}"
        );
        assert!(batches.iter().all(|&b| b <= MAX_BATCH));
    }

    /// A carried append rides along with the next write: no batch of its own.
    #[tokio::test]
    async fn a_carried_append_goes_with_the_next_write() {
        let writer = Counting::default();
        let appender = Appender::start(writer.clone());
        let carried = {
            let a = appender.clone();
            tokio::spawn(async move { a.append_carried(&event("carried")).await })
        };
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        assert_eq!(appender.append(&event("durable")).await.unwrap(), 2);
        assert_eq!(
            carried.await.unwrap().unwrap(),
            1,
            "written first, it came first"
        );
        assert_eq!(*writer.batches.lock().unwrap(), [2], "one write took both");
    }

    /// With nothing else to write, a carried append is written alone after the wait.
    #[tokio::test]
    async fn a_carried_append_alone_is_written_after_the_wait() {
        let writer = Counting::default();
        let appender = Appender::start(writer.clone());
        let started = std::time::Instant::now();
        assert_eq!(appender.append_carried(&event("alone")).await.unwrap(), 1);
        assert!(started.elapsed() >= CARRY_WAIT);
        assert_eq!(*writer.batches.lock().unwrap(), [1]);
    }
}
