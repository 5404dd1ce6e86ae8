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

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    /// Whether everything in `old` is in `new` as it was (`new` may have more members).
    fn keeps(old: &Value, new: &Value) -> bool {
        match (old, new) {
            (Value::Object(o), Value::Object(n)) => {
                o.iter().all(|(k, v)| n.get(k).is_some_and(|w| keeps(v, w)))
            }
            (Value::Array(o), Value::Array(n)) => {
                o.len() == n.len() && o.iter().zip(n).all(|(v, w)| keeps(v, w))
            }
            _ => old == new,
        }
    }

    /// A report as aim kept it on 2026-12-01 (the compliance example's, made by CI) reads
    /// with today's types and loses nothing: a kept report must read again as generated.
    /// A change to the report's shape that breaks this needs `#[serde(default)]` on what
    /// it adds, or old reports would answer 500.
    #[test]
    fn a_report_kept_before_reads_again_as_it_was() {
        let kept = include_str!("../testdata/compliance-report-2026-12-01.json");
        let report: ComplianceReport = serde_json::from_str(kept).expect("a kept report reads");
        let old: Value = serde_json::from_str(kept).unwrap();
        let new = serde_json::to_value(&report).unwrap();
        assert!(keeps(&old, &new), "reading it lost or changed something");
        assert_eq!(report.controls.len(), 48);
        assert_eq!(
            report.not_met().len(),
            2,
            "the example's two controls not met"
        );
    }
}
