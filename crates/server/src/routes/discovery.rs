//! `/v1/discovery`: imports of outside sources (admins) and what they found (admins and
//! auditors). An import is opened, sent its accounts in batches, and finished; the accounts
//! are kept per source and listed with their findings.

use aim_api::discovery::{
    AccountsBody, BatchCounts, DiscoveredAccount, FindingRow, FinishBody, Import, NewImport,
    Presence,
};
use aim_domain::discovery::{FindingKind, Severity};
use aim_domain::human::Role;
use aim_domain::ids::{AccountId, ImportId};
use aim_store::DiscoveryFilter;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::auth::HumanCaller;
use crate::discovery::{self as disc, rows};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Body, OptionalBody, PathId, Query};
use crate::paging;
use crate::state::AppState;

/// The largest batch body: [`aim_api::discovery::MAX_BATCH`] accounts with their attributes.
pub const BATCH_BODY_LIMIT: usize = 32 * 1024 * 1024;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/discovery/imports", get(imports).post(open))
        .route("/v1/discovery/imports/{id}", get(import))
        .route(
            "/v1/discovery/imports/{id}/accounts",
            post(batch).layer(DefaultBodyLimit::max(BATCH_BODY_LIMIT)),
        )
        .route("/v1/discovery/imports/{id}/finish", post(finish))
        .route("/v1/discovery/imports/{id}/abandon", post(abandon))
        .route("/v1/discovery/accounts", get(accounts))
        .route("/v1/discovery/accounts/{id}", get(account))
        .route("/v1/discovery/findings", get(findings))
}

const READERS: &[Role] = &[Role::Admin, Role::Auditor];

/// Opens an import of a source in one format.
#[utoipa::path(post, path = "/v1/discovery/imports", tag = "discovery", request_body = NewImport,
    responses((status = 201, body = Import), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn open(
    State(s): State<AppState>,
    p: HumanCaller,
    Body(body): Body<NewImport>,
) -> Result<(StatusCode, Json<Import>), ApiError> {
    p.require_any(&[Role::Admin], "importing a discovery source")?;
    Ok((StatusCode::CREATED, Json(disc::open(&s, &p, body).await?)))
}

/// One batch of an open import's accounts.
#[utoipa::path(post, path = "/v1/discovery/imports/{id}/accounts", params(("id" = String, Path)), tag = "discovery", request_body = AccountsBody,
    responses((status = 200, body = BatchCounts), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn batch(
    State(s): State<AppState>,
    p: HumanCaller,
    PathId(id): PathId<ImportId>,
    Body(body): Body<AccountsBody>,
) -> Result<Json<BatchCounts>, ApiError> {
    p.require_any(&[Role::Admin], "importing a discovery source")?;
    Ok(Json(disc::batch(&s, &p, id, body.accounts).await?))
}

/// Finishes an import: accounts it no longer shows are marked gone; its counts are kept.
/// Marking more than half of the format's accounts gone needs `allow_mass_removal`.
#[utoipa::path(post, path = "/v1/discovery/imports/{id}/finish", params(("id" = String, Path)), tag = "discovery", request_body = Option<FinishBody>,
    responses((status = 200, body = Import), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn finish(
    State(s): State<AppState>,
    p: HumanCaller,
    PathId(id): PathId<ImportId>,
    OptionalBody(body): OptionalBody<FinishBody>,
) -> Result<Json<Import>, ApiError> {
    p.require_any(&[Role::Admin], "importing a discovery source")?;
    Ok(Json(
        disc::finish(&s, &p, id, body.allow_mass_removal).await?,
    ))
}

/// Ends an open import without marking anything gone (its reading failed); a new import of
/// the source may start at once.
#[utoipa::path(post, path = "/v1/discovery/imports/{id}/abandon", params(("id" = String, Path)), tag = "discovery",
    responses((status = 200, body = Import), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn abandon(
    State(s): State<AppState>,
    p: HumanCaller,
    PathId(id): PathId<ImportId>,
) -> Result<Json<Import>, ApiError> {
    p.require_any(&[Role::Admin], "importing a discovery source")?;
    Ok(Json(disc::abandon(&s, &p, id).await?))
}

/// One import, with its counts once finished.
#[utoipa::path(get, path = "/v1/discovery/imports/{id}", params(("id" = String, Path)), tag = "discovery",
    responses((status = 200, body = Import), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn import(
    State(s): State<AppState>,
    p: HumanCaller,
    PathId(id): PathId<ImportId>,
) -> Result<Json<Import>, ApiError> {
    p.require_any(READERS, "reading discovery imports")?;
    let row = s
        .store
        .discovery_import(id)
        .await?
        .ok_or_else(|| ApiError::not_found("import"))?;
    Ok(Json(disc::import_of(row)?))
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ImportQuery {
    /// Imports of this source.
    source: Option<String>,
    cursor: Option<String>,
    limit: Option<u32>,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ImportPage {
    pub items: Vec<Import>,
    pub next_cursor: Option<String>,
}

/// Imports, newest first: with their counts, the trend of a source over time.
#[utoipa::path(get, path = "/v1/discovery/imports", params(ImportQuery), tag = "discovery",
    responses((status = 200, body = ImportPage), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn imports(
    State(s): State<AppState>,
    p: HumanCaller,
    Query(q): Query<ImportQuery>,
) -> Result<Json<ImportPage>, ApiError> {
    p.require_any(READERS, "reading discovery imports")?;
    let limit = paging::limit(q.limit)?;
    let before =
        paging::Cursor::id(paging::Cursor::decode(q.cursor.as_deref())?)?.map(ImportId::from_uuid);
    let rows = s
        .store
        .discovery_imports(q.source.as_deref(), before, limit + 1)
        .await?
        .into_iter()
        .map(disc::import_of)
        .collect::<Result<Vec<_>, _>>()?;
    let page = paging::page(rows, limit, |i: &Import| paging::Cursor::Id(i.id.as_uuid()));
    Ok(Json(ImportPage {
        items: page.items,
        next_cursor: page.next_cursor,
    }))
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AccountQuery {
    /// Accounts of this source.
    source: Option<String>,
    /// Accounts of this name.
    name: Option<String>,
    /// `present` or `gone`.
    #[param(value_type = Option<String>)]
    presence: Option<Presence>,
    /// Accounts with a finding of this kind (`dormant`, `over_privileged`, ...).
    #[param(value_type = Option<String>)]
    finding: Option<FindingKind>,
    /// Accounts with a finding of this severity.
    #[param(value_type = Option<String>)]
    severity: Option<Severity>,
    /// Findings: leave out those acknowledged (`exclude`, the default), show them too
    /// (`include`), or only them (`only`).
    #[param(value_type = Option<String>)]
    acknowledged: Option<Acknowledged>,
    cursor: Option<String>,
    limit: Option<u32>,
}

/// Which findings an acknowledgement hides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Acknowledged {
    Exclude,
    Include,
    Only,
}

impl AccountQuery {
    fn filter(&self) -> DiscoveryFilter {
        DiscoveryFilter {
            source: self.source.clone(),
            name: self.name.clone(),
            present: self.presence.map(|p| p == Presence::Present),
            finding: self.finding.map(|k| k.as_str().to_owned()),
            severity: self.severity.map(|k| k.as_str().to_owned()),
        }
    }
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AccountPage {
    pub items: Vec<DiscoveredAccount>,
    pub next_cursor: Option<String>,
}

async fn account_page(
    s: &AppState,
    q: &AccountQuery,
) -> Result<(Vec<DiscoveredAccount>, Option<String>), ApiError> {
    let limit = paging::limit(q.limit)?;
    let after =
        paging::Cursor::id(paging::Cursor::decode(q.cursor.as_deref())?)?.map(AccountId::from_uuid);
    let rows = s
        .store
        .discovered_page(&q.filter(), after, limit + 1)
        .await?
        .into_iter()
        .map(rows::account)
        .collect::<Result<Vec<_>, _>>()?;
    let page = paging::page(rows, limit, |a: &DiscoveredAccount| {
        paging::Cursor::Id(a.id.as_uuid())
    });
    Ok((
        rows::with_acknowledgements(s, page.items).await?,
        page.next_cursor,
    ))
}

/// Discovered accounts, with their findings and tiers.
#[utoipa::path(get, path = "/v1/discovery/accounts", params(AccountQuery), tag = "discovery",
    responses((status = 200, body = AccountPage), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn accounts(
    State(s): State<AppState>,
    p: HumanCaller,
    Query(q): Query<AccountQuery>,
) -> Result<Json<AccountPage>, ApiError> {
    p.require_any(READERS, "reading discovered accounts")?;
    let (items, next_cursor) = account_page(&s, &q).await?;
    Ok(Json(AccountPage { items, next_cursor }))
}

/// One discovered account.
#[utoipa::path(get, path = "/v1/discovery/accounts/{id}", params(("id" = String, Path)), tag = "discovery",
    responses((status = 200, body = DiscoveredAccount), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn account(
    State(s): State<AppState>,
    p: HumanCaller,
    PathId(id): PathId<AccountId>,
) -> Result<Json<DiscoveredAccount>, ApiError> {
    p.require_any(READERS, "reading discovered accounts")?;
    let d = s
        .store
        .discovered_account(id)
        .await?
        .ok_or_else(|| ApiError::not_found("discovered account"))?;
    let mut one = rows::with_acknowledgements(&s, vec![rows::account(d)?]).await?;
    Ok(Json(one.pop().ok_or_else(ApiError::internal)?))
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FindingPage {
    /// The findings of up to `limit` accounts.
    pub items: Vec<FindingRow>,
    pub next_cursor: Option<String>,
}

/// Findings on present accounts, account by account (`limit` counts accounts): filtered by
/// `finding` (kind) and `severity`.
#[utoipa::path(get, path = "/v1/discovery/findings", params(AccountQuery), tag = "discovery",
    responses((status = 200, body = FindingPage), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn findings(
    State(s): State<AppState>,
    p: HumanCaller,
    Query(mut q): Query<AccountQuery>,
) -> Result<Json<FindingPage>, ApiError> {
    p.require_any(READERS, "reading discovery findings")?;
    q.presence = Some(Presence::Present);
    let (accounts, next_cursor) = account_page(&s, &q).await?;
    let items = accounts
        .iter()
        .flat_map(rows::findings)
        .filter(|f| q.finding.is_none_or(|k| f.finding.kind == k))
        .filter(|f| q.severity.is_none_or(|v| f.finding.severity == v))
        .filter(|f| match q.acknowledged.unwrap_or(Acknowledged::Exclude) {
            Acknowledged::Exclude => f.acknowledged.is_none(),
            Acknowledged::Include => true,
            Acknowledged::Only => f.acknowledged.is_some(),
        })
        .collect();
    Ok(Json(FindingPage { items, next_cursor }))
}
