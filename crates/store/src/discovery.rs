//! Discovery: imports of outside sources and the accounts they hold (see
//! [`aim_domain::discovery`]). The store keeps rows as the server shapes them (JSON
//! documents beside the columns lists filter on); every write carries its event.

use aim_domain::event::Event;
use aim_domain::ids::{AccountId, IdentityId, ImportId};
use aim_domain::time::Timestamp;
use async_trait::async_trait;
use sqlx::ColumnIndex;

use crate::StoreError;
use crate::rows::AimRow;

/// One import of one source in one format.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportRow {
    pub id: ImportId,
    pub source: String,
    pub kind: String,
    /// JSON.
    pub thresholds: String,
    pub started_at: Timestamp,
    pub started_by: String,
    /// Its last batch, or its start.
    pub touched_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    /// JSON, once finished.
    pub summary: Option<String>,
    /// Ended without marking anything gone.
    pub abandoned: bool,
}

/// A discovered account as kept.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountRow {
    pub id: AccountId,
    pub source: String,
    pub key: String,
    pub name: String,
    pub kind: String,
    pub enabled: bool,
    pub owner: Option<String>,
    pub identity: Option<IdentityId>,
    pub tier: String,
    /// JSON: the tier and its reasons.
    pub risk: String,
    /// JSON: the findings.
    pub findings: String,
    /// `,kind:severity,` for each finding (empty when none).
    pub finding_kinds: String,
    /// JSON: the views merged; empty while the account has one view, whose record it is.
    pub account: String,
    pub first_seen: Timestamp,
    pub updated_at: Timestamp,
    pub gone_at: Option<Timestamp>,
    /// What duplicates share (see `aim_domain::discovery::across`).
    pub dup_key: Option<String>,
    pub vendor_key: Option<String>,
    /// `(credential, fingerprint)` of its active credentials with one; written with the
    /// account (not read back with it).
    pub fingerprints: Vec<(String, String)>,
    /// The account's environment, beside its fingerprints.
    pub environment: Option<String>,
    /// What the security team decided about it (read back; imports never write it).
    pub disposition: Option<Disposition>,
}

/// A decision about a discovered account: `adopted` into the registry or marked for
/// `decommission`.
#[derive(Debug, Clone, PartialEq)]
pub struct Disposition {
    pub state: String,
    pub reason: String,
    pub by: String,
    pub at: Timestamp,
}

/// A member of a group of accounts sharing a key, or a fingerprint.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub key: String,
    pub account: AccountId,
    pub name: String,
    /// For a fingerprint: the credential and its account's environment.
    pub credential: Option<String>,
    pub environment: Option<String>,
}

/// What one format of a source says of one account.
#[derive(Debug, Clone, PartialEq)]
pub struct ViewRow {
    pub account: AccountId,
    pub kind: String,
    pub source: String,
    pub import: ImportId,
    pub digest: String,
    /// JSON: the account as that format read it.
    pub record: String,
}

/// An open import's running counts, moved by one batch.
#[derive(Debug, Clone, Copy)]
pub struct Progress<'a> {
    pub import: ImportId,
    pub before: Option<&'a str>,
    pub after: &'a str,
    pub at: Timestamp,
}

/// An account with its views.
pub type Discovered = (AccountRow, Vec<ViewRow>);

/// Which accounts a list shows.
#[derive(Debug, Clone, Default)]
pub struct DiscoveryFilter {
    pub source: Option<String>,
    /// Only accounts of this name.
    pub name: Option<String>,
    /// Only present accounts (`Some(true)`), only gone ones (`Some(false)`).
    pub present: Option<bool>,
    /// Only accounts with a finding of this kind.
    pub finding: Option<String>,
    /// Only accounts with a finding of this severity.
    pub severity: Option<String>,
}

/// What a source holds now: its present accounts, the enabled machine identities among
/// them, and each present account's `finding_kinds`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    pub present: u64,
    pub machine_enabled: u64,
    pub finding_kinds: Vec<String>,
}

#[async_trait]
pub trait DiscoveryStore: Send + Sync {
    /// Records `import` as open, unless an import of the same source and kind is still open
    /// and had a batch (or began) after `stale_before`: that one is returned and nothing is
    /// written.
    async fn open_import(
        &self,
        import: &ImportRow,
        stale_before: Timestamp,
        event: &Event,
    ) -> Result<Option<ImportRow>, StoreError>;
    async fn discovery_import(&self, id: ImportId) -> Result<Option<ImportRow>, StoreError>;
    /// Imports newest first, of one source if given, before `before` (a cursor).
    async fn discovery_imports(
        &self,
        source: Option<&str>,
        before: Option<ImportId>,
        limit: u32,
    ) -> Result<Vec<ImportRow>, StoreError>;
    /// The accounts of `source` with these keys, with their views.
    async fn discovered_by_key(
        &self,
        source: &str,
        keys: &[String],
    ) -> Result<Vec<Discovered>, StoreError>;
    /// Writes (inserts or replaces) accounts and views with `event`, and moves the open
    /// import's running `summary` from `before` to `after`, in one transaction. False (and
    /// nothing written) if the import is finished or its summary is no longer `before` (a
    /// batch of the same import was written meanwhile).
    async fn save_discovered(
        &self,
        accounts: &[AccountRow],
        views: &[ViewRow],
        progress: Progress<'_>,
        event: &Event,
    ) -> Result<bool, StoreError>;
    /// Up to `limit` present accounts of `source` with a view of `kind` from an import other
    /// than `import`, with their views.
    async fn discovered_unseen(
        &self,
        source: &str,
        kind: &str,
        import: ImportId,
        limit: u32,
    ) -> Result<Vec<Discovered>, StoreError>;
    /// How many present accounts of `source` have a view of `kind`, and how many of those
    /// views are from an import other than `import`.
    async fn view_counts(
        &self,
        source: &str,
        kind: &str,
        import: ImportId,
    ) -> Result<(u64, u64), StoreError>;
    /// Drops the views `(account, kind)` and writes the accounts they changed, with `event`.
    async fn drop_views(
        &self,
        views: &[(AccountId, String)],
        accounts: &[AccountRow],
        event: &Event,
    ) -> Result<(), StoreError>;
    /// Marks the import finished with its summary, with `event`. False if it was not open.
    async fn finish_import(
        &self,
        id: ImportId,
        at: Timestamp,
        summary: &str,
        event: &Event,
    ) -> Result<bool, StoreError>;
    /// Ends the open import without marking anything gone, with `event`. False if it was
    /// not open.
    async fn abandon_import(
        &self,
        id: ImportId,
        at: Timestamp,
        event: &Event,
    ) -> Result<bool, StoreError>;
    /// Accounts in id order after `after`.
    async fn discovered_page(
        &self,
        filter: &DiscoveryFilter,
        after: Option<AccountId>,
        limit: u32,
    ) -> Result<Vec<Discovered>, StoreError>;
    async fn discovered_account(&self, id: AccountId) -> Result<Option<Discovered>, StoreError>;
    async fn discovery_tally(&self, source: &str) -> Result<Tally, StoreError>;
    /// The present accounts of `source` in a group of two or more sharing a duplicate key
    /// or a vendor key.
    async fn duplicate_groups(&self, source: &str) -> Result<Vec<Member>, StoreError>;
    /// The present, enabled accounts of any source holding a fingerprint seen in two
    /// environments or more.
    async fn shared_fingerprints(&self) -> Result<Vec<Member>, StoreError>;
    /// Present accounts (of `source` if given) with a finding of `kind`.
    async fn carrying(
        &self,
        kind: &str,
        source: Option<&str>,
    ) -> Result<Vec<AccountId>, StoreError>;
    async fn discovered_by_ids(&self, ids: &[AccountId]) -> Result<Vec<Discovered>, StoreError>;
    /// The present accounts of `source` linked to a registry identity, and the identity.
    async fn linked_accounts(
        &self,
        source: &str,
    ) -> Result<Vec<(AccountId, IdentityId)>, StoreError>;
    /// Replaces the findings (JSON and `finding_kinds`) of these accounts, with `event`.
    async fn set_findings(
        &self,
        rows: &[(AccountId, String, String)],
        at: Timestamp,
        event: &Event,
    ) -> Result<(), StoreError>;
    /// Enabled machine accounts present in any source and not linked to a registry identity.
    async fn unlinked_machine_accounts(&self) -> Result<u64, StoreError>;
    /// `(source, kind)` of every source read in a format by a finished import, in order.
    async fn discovery_sources(&self) -> Result<Vec<(String, String)>, StoreError>;
    /// The registry's active identities, and the roles (comma-separated) of each active
    /// human.
    async fn population(&self) -> Result<(u64, Vec<String>), StoreError>;
    /// `(user_name_key or lower-cased e-mail as matched, state)` of the humans these
    /// lower-cased names or e-mails name.
    async fn humans_named(&self, names: &[String]) -> Result<Vec<(String, String)>, StoreError>;
    /// `(name, id)` of the registry identities with these names.
    async fn identities_named(
        &self,
        names: &[String],
    ) -> Result<Vec<(String, IdentityId)>, StoreError>;
}

pub(crate) const ACCOUNT_COLUMNS: &str = "id, source, key, name, kind, enabled, owner, \
    identity_id, tier, risk, findings, finding_kinds, account, first_seen, updated_at, gone_at, \
    dup_key, vendor_key";
/// What reads of accounts select: the written columns and the disposition.
pub(crate) const SELECT_COLUMNS: &str = "id, source, key, name, kind, enabled, owner, \
    identity_id, tier, risk, findings, finding_kinds, account, first_seen, updated_at, gone_at, \
    dup_key, vendor_key, disposition, disposition_reason, disposition_by, disposition_at";
pub(crate) const VIEW_COLUMNS: &str = "account_id, kind, source, import_id, digest, record";
pub(crate) const IMPORT_COLUMNS: &str = "id, source, kind, thresholds, started_at, started_by, touched_at, finished_at, summary, \
    abandoned";

/// Rows per multi-row statement: within both backends' limits on bound values.
pub(crate) const CHUNK: usize = 500;

pub(crate) fn import_from_row<'r, R: AimRow<'r>>(r: &'r R) -> Result<ImportRow, StoreError>
where
    &'r str: ColumnIndex<R>,
{
    Ok(ImportRow {
        id: ImportId::from_uuid(r.uuid("id")?),
        source: r.text("source")?,
        kind: r.text("kind")?,
        thresholds: r.text("thresholds")?,
        started_at: Timestamp::from_millis(r.int("started_at")?),
        started_by: r.text("started_by")?,
        touched_at: Timestamp::from_millis(r.int("touched_at")?),
        finished_at: r.opt_int("finished_at")?.map(Timestamp::from_millis),
        summary: r.opt_text("summary")?,
        abandoned: r.boolean("abandoned")?,
    })
}

pub(crate) fn account_from_row<'r, R: AimRow<'r>>(r: &'r R) -> Result<AccountRow, StoreError>
where
    &'r str: ColumnIndex<R>,
{
    Ok(AccountRow {
        id: AccountId::from_uuid(r.uuid("id")?),
        source: r.text("source")?,
        key: r.text("key")?,
        name: r.text("name")?,
        kind: r.text("kind")?,
        enabled: r.boolean("enabled")?,
        owner: r.opt_text("owner")?,
        identity: r.opt_uuid("identity_id")?.map(IdentityId::from_uuid),
        tier: r.text("tier")?,
        risk: r.text("risk")?,
        findings: r.text("findings")?,
        finding_kinds: r.text("finding_kinds")?,
        account: r.text("account")?,
        first_seen: Timestamp::from_millis(r.int("first_seen")?),
        updated_at: Timestamp::from_millis(r.int("updated_at")?),
        gone_at: r.opt_int("gone_at")?.map(Timestamp::from_millis),
        dup_key: r.opt_text("dup_key")?,
        vendor_key: r.opt_text("vendor_key")?,
        fingerprints: Vec::new(),
        environment: None,
        disposition: match r.opt_text("disposition")? {
            Some(state) => Some(Disposition {
                state,
                reason: r.opt_text("disposition_reason")?.unwrap_or_default(),
                by: r.opt_text("disposition_by")?.unwrap_or_default(),
                at: Timestamp::from_millis(r.opt_int("disposition_at")?.unwrap_or_default()),
            }),
            None => None,
        },
    })
}

pub(crate) fn view_from_row<'r, R: AimRow<'r>>(r: &'r R) -> Result<ViewRow, StoreError>
where
    &'r str: ColumnIndex<R>,
{
    Ok(ViewRow {
        account: AccountId::from_uuid(r.uuid("account_id")?),
        kind: r.text("kind")?,
        source: r.text("source")?,
        import: ImportId::from_uuid(r.uuid("import_id")?),
        digest: r.text("digest")?,
        record: r.text("record")?,
    })
}

/// Pairs each account with its views.
pub(crate) fn with_views(accounts: Vec<AccountRow>, views: Vec<ViewRow>) -> Vec<Discovered> {
    let mut by: std::collections::HashMap<AccountId, Vec<ViewRow>> =
        std::collections::HashMap::new();
    for v in views {
        by.entry(v.account).or_default().push(v);
    }
    accounts
        .into_iter()
        .map(|a| {
            let mut v = by.remove(&a.id).unwrap_or_default();
            v.sort_by(|x, y| x.kind.cmp(&y.kind));
            (a, v)
        })
        .collect()
}

/// A LIKE pattern over `,kind:severity,` entries for one kind or one severity (both are
/// names from a closed list, checked by the caller).
pub(crate) fn like_kind(kind: &str) -> String {
    format!("%,{kind}:%")
}
pub(crate) fn like_severity(severity: &str) -> String {
    format!("%:{severity},%")
}

macro_rules! impl_discovery_store {
    ($store:ty) => {
        crate::discovery_sql::impl_discovery_store_for!($store);
    };
}

pub(crate) use impl_discovery_store;
