//! Compliance reports: aim's posture read against OWASP, NIST and CSA frameworks
//! ([`aim_domain::compliance`]), kept so the score has a trend.

use aim_domain::compliance::{Control, Posture, Score, Status};
use aim_domain::ids::ReportId;
use aim_domain::time::Timestamp;
use serde::{Deserialize, Serialize};

/// How many earlier reports a report's trend shows.
pub const TREND: u32 = 24;

/// What a report is rendered as.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum ReportFormat {
    #[default]
    Json,
    /// Markdown, for a ticket or a wiki.
    Md,
    /// One self-contained page with its charts inline.
    Html,
}

impl ReportFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            ReportFormat::Json => "json",
            ReportFormat::Md => "md",
            ReportFormat::Html => "html",
        }
    }

    /// The media type a response in this format carries.
    pub fn media_type(self) -> &'static str {
        match self {
            ReportFormat::Json => "application/json",
            ReportFormat::Md => "text/markdown; charset=utf-8",
            ReportFormat::Html => "text/html; charset=utf-8",
        }
    }
}

/// One report's score at one time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TrendPoint {
    pub id: ReportId,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub at: Timestamp,
    pub score: f64,
}

/// `POST /v1/reports/compliance`: a compliance report, as generated and kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ComplianceReport {
    pub id: ReportId,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub generated_at: Timestamp,
    /// The human who asked for it (user name).
    pub generated_by: String,
    /// The share of controls met over every framework (partial counts half), out of 100.
    pub score: f64,
    pub frameworks: Vec<Score>,
    pub controls: Vec<Control>,
    /// What the controls were read from.
    pub posture: Posture,
    /// This report's score and the earlier ones', oldest first.
    pub trend: Vec<TrendPoint>,
}

impl ComplianceReport {
    /// The controls not met, in the report's order: what to fix first.
    pub fn not_met(&self) -> Vec<&Control> {
        self.controls
            .iter()
            .filter(|c| c.status == Status::NotMet)
            .collect()
    }
}

/// A kept report, without its body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReportSummary {
    pub id: ReportId,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub generated_at: Timestamp,
    pub generated_by: String,
    pub score: f64,
    pub frameworks: Vec<Score>,
}

/// `GET /v1/reports/compliance`: the newest reports kept, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReportList {
    pub items: Vec<ReportSummary>,
}
