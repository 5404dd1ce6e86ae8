//! Sends what an importer reads to aim: opens an import, sends the accounts in batches as
//! they are read (the file is never held whole), and finishes the import only when every
//! record was read and accepted. A read error or a refused batch leaves the import
//! unfinished, so nothing is marked gone on the strength of half a file.

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
}

#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("{0}; the import was left unfinished, so nothing was marked gone")]
    Read(ReadError),
    #[error("{0}")]
    Api(ClientError),
    #[error(
        "aim refused a batch: {error}; the import was left unfinished, so nothing was marked gone"
    )]
    Batch { error: ClientError },
}

/// Where an upload is, for a progress display.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    pub read: u64,
    pub sent: BatchCounts,
}

/// Opens an import, sends `accounts` in batches, finishes it; `progress` is told after each
/// batch.
pub async fn upload(
    client: &Client,
    options: &Options,
    accounts: impl Iterator<Item = Result<Account, ReadError>>,
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
    let mut state = Progress::default();
    let mut batch = Vec::with_capacity(size);
    for account in accounts {
        let mut account = account.map_err(UploadError::Read)?;
        if account.environment.is_none() {
            account.environment.clone_from(&options.environment);
        }
        batch.push(account);
        state.read += 1;
        if batch.len() == size {
            send(client, &import, &mut batch, &mut state).await?;
            progress(&state);
        }
    }
    if !batch.is_empty() {
        send(client, &import, &mut batch, &mut state).await?;
        progress(&state);
    }
    client
        .finish_import(import.id)
        .await
        .map_err(UploadError::Api)
}

async fn send(
    client: &Client,
    import: &Import,
    batch: &mut Vec<Account>,
    state: &mut Progress,
) -> Result<(), UploadError> {
    let counts = client
        .import_accounts(import.id, std::mem::take(batch))
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
