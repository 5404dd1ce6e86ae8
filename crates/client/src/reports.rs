//! Compliance reports: generated (and kept for the trend), listed, read again.

use aim_api::reports::{ComplianceReport, ReportFormat, ReportList};
use aim_domain::ids::ReportId;
use reqwest::Method;

use crate::{Client, Params, Result};

impl Client {
    /// Generates a report and keeps it.
    pub async fn compliance_report(&self) -> Result<ComplianceReport> {
        self.post("/v1/reports/compliance", &()).await
    }

    /// Generates a report, keeps it, and answers it rendered in `format`.
    pub async fn compliance_report_as(&self, format: ReportFormat) -> Result<String> {
        let params: Params = vec![("format", format.as_str().to_owned())];
        self.text(Method::POST, "/v1/reports/compliance", &params)
            .await
    }

    /// The newest `limit` kept reports' scores, newest first.
    pub async fn compliance_reports(&self, limit: Option<u32>) -> Result<ReportList> {
        let params: Params = limit
            .map(|n| ("limit", n.to_string()))
            .into_iter()
            .collect();
        self.get("/v1/reports/compliance", &params).await
    }

    /// A kept report rendered in `format`.
    pub async fn kept_report_as(&self, id: ReportId, format: ReportFormat) -> Result<String> {
        let params: Params = vec![("format", format.as_str().to_owned())];
        self.get_text(&format!("/v1/reports/compliance/{id}"), &params)
            .await
    }
}
