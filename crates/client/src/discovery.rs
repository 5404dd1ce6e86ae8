//! `/v1/discovery`: imports of outside sources, the accounts they hold, their findings.

use aim_api::common::ReasonBody;
use aim_api::discovery::{
    AccountsBody, AcknowledgeBody, AcknowledgementView, AdoptBody, Adopted, BatchCounts,
    DecommissionRow, DiscoveredAccount, FindingRow, Import, NewImport, Reassessment,
};
use aim_domain::discovery::Account;
use aim_domain::ids::{AccountId, ImportId};
use aim_domain::page::Page;

use crate::{Client, Params, Result};

impl Client {
    /// Opens an import of a source in one format (admins).
    pub async fn open_import(&self, body: &NewImport) -> Result<Import> {
        self.post("/v1/discovery/imports", body).await
    }

    /// Sends one batch of an open import's accounts.
    pub async fn import_accounts(
        &self,
        id: ImportId,
        accounts: Vec<Account>,
    ) -> Result<BatchCounts> {
        let body = AccountsBody { accounts };
        self.post(&format!("/v1/discovery/imports/{id}/accounts"), &body)
            .await
    }

    /// Finishes an import: what it did not show is marked gone, its counts are kept.
    pub async fn finish_import(&self, id: ImportId) -> Result<Import> {
        self.finish_import_with(id, false).await
    }

    /// [`Client::finish_import`], allowing it to mark more than half of the format's
    /// accounts gone (refused otherwise: 409 `mass_removal`).
    pub async fn finish_import_with(
        &self,
        id: ImportId,
        allow_mass_removal: bool,
    ) -> Result<Import> {
        let body = aim_api::discovery::FinishBody { allow_mass_removal };
        self.post(&format!("/v1/discovery/imports/{id}/finish"), &body)
            .await
    }

    /// Ends an import without marking anything gone (its reading failed).
    pub async fn abandon_import(&self, id: ImportId) -> Result<Import> {
        self.post(
            &format!("/v1/discovery/imports/{id}/abandon"),
            &serde_json::json!({}),
        )
        .await
    }

    pub async fn import(&self, id: ImportId) -> Result<Import> {
        self.get(&format!("/v1/discovery/imports/{id}"), &Vec::new())
            .await
    }

    /// Imports newest first (`source`, `cursor`, `limit`).
    pub async fn imports(&self, params: &Params) -> Result<Page<Import>> {
        self.get("/v1/discovery/imports", params).await
    }

    /// Discovered accounts (`source`, `presence`, `finding`, `severity`, `cursor`, `limit`).
    pub async fn discovered_accounts(&self, params: &Params) -> Result<Page<DiscoveredAccount>> {
        self.get("/v1/discovery/accounts", params).await
    }

    pub async fn discovered_account(&self, id: AccountId) -> Result<DiscoveredAccount> {
        self.get(&format!("/v1/discovery/accounts/{id}"), &Vec::new())
            .await
    }

    /// Findings on present accounts (the same filters; `limit` counts accounts).
    pub async fn discovery_findings(&self, params: &Params) -> Result<Page<FindingRow>> {
        self.get("/v1/discovery/findings", params).await
    }

    /// Requests an identity for a discovered account, linked to it.
    pub async fn adopt_account(&self, id: AccountId, body: &AdoptBody) -> Result<Adopted> {
        self.post(&format!("/v1/discovery/accounts/{id}/adopt"), body)
            .await
    }

    /// Puts a discovered account on its source's decommission list (admins, with a reason).
    pub async fn decommission_account(
        &self,
        id: AccountId,
        reason: &str,
    ) -> Result<DecommissionRow> {
        let body = ReasonBody {
            reason: reason.to_owned(),
        };
        self.post(&format!("/v1/discovery/accounts/{id}/decommission"), &body)
            .await
    }

    /// Acknowledges one finding (`kind` or `kind:credential`) until a date.
    pub async fn acknowledge_finding(
        &self,
        id: AccountId,
        body: &AcknowledgeBody,
    ) -> Result<AcknowledgementView> {
        self.post(&format!("/v1/discovery/accounts/{id}/acknowledge"), body)
            .await
    }

    /// Assesses every source's present accounts again now, without an import (admins);
    /// waits `wait` seconds at most (the server's 20 if `None`), then answers `running`.
    pub async fn reassess_discovery(&self, wait: Option<u64>) -> Result<Reassessment> {
        let params: Params = wait.map(|w| ("wait", w.to_string())).into_iter().collect();
        // The answer may take `wait` seconds: longer than this client's own limit.
        let patience = std::time::Duration::from_secs(wait.unwrap_or(20) + 30);
        let req = self
            .request(reqwest::Method::POST, "/v1/discovery/reassess", &params)
            .timeout(patience);
        self.send(req).await
    }

    /// The decommission list (of `source` if given).
    pub async fn decommission_list(&self, source: Option<&str>) -> Result<Vec<DecommissionRow>> {
        let params: Params = source
            .map(|s| ("source", s.to_owned()))
            .into_iter()
            .collect();
        self.get("/v1/discovery/decommission", &params).await
    }

    /// The decommission list as CSV.
    pub async fn decommission_csv(&self, source: Option<&str>) -> Result<String> {
        let mut params: Params = vec![("format", "csv".to_owned())];
        params.extend(source.map(|s| ("source", s.to_owned())));
        self.get_text("/v1/discovery/decommission", &params).await
    }
}
