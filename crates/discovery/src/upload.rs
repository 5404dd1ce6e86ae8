//! Sends what an importer reads to aim: opens an import, sends the accounts in batches as
//! they are read (the file is never held whole), and finishes the import only when every
//! record was read and accepted. A read error or a refused batch abandons the import, so
//! nothing is marked gone on the strength of half a file.

use aim_api::discovery::{BatchCounts, Import, MAX_BATCH, NewImport};
use aim_client::{Client, ClientError};
use aim_domain::discovery::{Account, SourceKind, Thresholds};

use crate::ReadError;

/// What to import, and how.
#[derive(Debug, Clone)]
pub struct Options {
    pub source: String,
    pub kind: SourceKind,
    pub thresholds: Option<Thresholds>,
    /// Accounts per batch (at most [`MAX_BATCH`]).
    pub batch: usize,
    /// The environment of accounts the source does not place in one (`prod`).
    pub environment: Option<String>,
    /// Let the import mark more than half of the source's accounts gone.
    pub allow_mass_removal: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("{0}; the import was abandoned, so nothing was marked gone")]
    Read(ReadError),
    #[error("{0}")]
    Api(ClientError),
    #[error("aim refused a batch: {error}; the import was abandoned, so nothing was marked gone")]
    Batch { error: ClientError },
}

/// Where an upload is, for a progress display.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    pub read: u64,
    pub sent: BatchCounts,
}

/// Opens an import, sends `accounts` in batches, finishes it; `progress` is told after each
/// batch. The source is read on a thread of its own, a batch or two ahead of what aim has
/// taken, so reading and sending overlap.
pub async fn upload(
    client: &Client,
    options: &Options,
    accounts: impl Iterator<Item = Result<Account, ReadError>> + Send + 'static,
    mut progress: impl FnMut(&Progress),
) -> Result<Import, UploadError> {
    let size = options.batch.clamp(1, MAX_BATCH);
    let import = client
        .open_import(&NewImport {
            source: options.source.clone(),
            kind: options.kind,
            thresholds: options.thresholds,
        })
        .await
        .map_err(UploadError::Api)?;
    let (tx, mut rx) = tokio::sync::mpsc::channel(2);
    let environment = options.environment.clone();
    let reader =
        std::thread::spawn(move || read_batches(accounts, size, environment.as_deref(), &tx));
    let mut state = Progress::default();
    while let Some(batch) = rx.recv().await {
        let sent = match batch {
            Ok(batch) => {
                state.read += batch.len() as u64;
                send(client, &import, batch, &mut state).await
            }
            Err(e) => Err(UploadError::Read(e)),
        };
        if let Err(e) = sent {
            // Nothing is marked gone on the strength of half a source, and the next import
            // need not wait for this one to go stale. If aim cannot be told, the import
            // stops holding its source after 15 idle minutes anyway.
            let _ = client.abandon_import(import.id).await;
            return Err(e);
        }
        progress(&state);
    }
    // The reader has sent all it read, or stopped at an error already returned above.
    let _ = reader.join();
    match client
        .finish_import_with(import.id, options.allow_mass_removal)
        .await
    {
        Ok(done) => Ok(done),
        Err(e) => {
            // Refused (a mass removal): the import must not hold its source.
            if e.status() == Some(409) {
                let _ = client.abandon_import(import.id).await;
            }
            Err(UploadError::Api(e))
        }
    }
}

type Batch = Result<Vec<Account>, ReadError>;

/// Reads `accounts` into batches of `size` and hands each over; stops at the first error
/// (handed over too) or when nobody takes them any more.
fn read_batches(
    accounts: impl Iterator<Item = Result<Account, ReadError>>,
    size: usize,
    environment: Option<&str>,
    tx: &tokio::sync::mpsc::Sender<Batch>,
) {
    let mut batch = Vec::with_capacity(size);
    for account in accounts {
        match account {
            Ok(mut a) => {
                if a.environment.is_none() {
                    a.environment = environment.map(str::to_owned);
                }
                batch.push(a);
                if batch.len() == size
                    && tx
                        .blocking_send(Ok(std::mem::replace(&mut batch, Vec::with_capacity(size))))
                        .is_err()
                {
                    return;
                }
            }
            Err(e) => {
                let _ = tx.blocking_send(Err(e));
                return;
            }
        }
    }
    if !batch.is_empty() {
        let _ = tx.blocking_send(Ok(batch));
    }
}

async fn send(
    client: &Client,
    import: &Import,
    batch: Vec<Account>,
    state: &mut Progress,
) -> Result<(), UploadError> {
    let counts = client
        .import_accounts(import.id, batch)
        .await
        .map_err(|error| UploadError::Batch { error })?;
    let s = &mut state.sent;
    s.received += counts.received;
    s.new += counts.new;
    s.updated += counts.updated;
    s.unchanged += counts.unchanged;
    s.findings += counts.findings;
    Ok(())
}
