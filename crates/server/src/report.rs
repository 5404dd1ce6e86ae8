//! The compliance report: the posture read from the store and the config, evaluated against
//! the frameworks ([`aim_domain::compliance`]), kept with its score (the trend is the kept
//! scores), and rendered as JSON, Markdown or one self-contained HTML page.
//!
//! # Layout
//! - [`posture`] — the posture read: registry, humans, tokens, audit, tools, discovery
//! - [`markdown`] — the report as Markdown
//! - [`html`] — the report as one HTML page
//! - [`chart`] — the page's charts, inline SVG

pub mod chart;
pub mod html;
pub mod markdown;
pub mod posture;

use aim_api::reports::{
    ComplianceReport, ReportFormat, ReportList, ReportSummary, TREND, TrendPoint,
};
use aim_domain::compliance::{self, Score};
use aim_domain::event::AuditAction;
use aim_domain::ids::ReportId;
use aim_store::ReportScore;
use serde_json::json;

use crate::auth::HumanCaller;
use crate::error::ApiError;
use crate::state::AppState;

/// Reads the posture, evaluates it, and keeps the report (with its event) for the trend.
pub async fn generate(s: &AppState, p: &HumanCaller) -> Result<ComplianceReport, ApiError> {
    let posture = posture::read(s).await?;
    let e = compliance::evaluate(&posture);
    let id = ReportId::new();
    let mut trend: Vec<TrendPoint> = s
        .store
        .report_scores(TREND - 1)
        .await?
        .into_iter()
        .rev()
        .map(|r| TrendPoint {
            id: r.id,
            at: r.at,
            score: r.score,
        })
        .collect();
    trend.push(TrendPoint {
        id,
        at: e.at,
        score: e.score,
    });
    let report = ComplianceReport {
        id,
        generated_at: e.at,
        generated_by: p.human.user_name.clone(),
        score: e.score,
        frameworks: e.frameworks,
        controls: e.controls,
        posture,
        trend,
    };
    let not_met: Vec<&str> = report.not_met().iter().map(|c| c.id.as_str()).collect();
    let event = p
        .event(
            e.at,
            AuditAction::ComplianceReported,
            "compliance_report",
            id,
        )
        .detail(json!({
            "score": report.score,
            "frameworks": scores_by_name(&report.frameworks),
            "not_met": not_met,
        }));
    let body = serde_json::to_string(&report).map_err(|_| ApiError::internal())?;
    let scores = serde_json::to_string(&report.frameworks).map_err(|_| ApiError::internal())?;
    let kept = ReportScore {
        id,
        at: e.at,
        by: report.generated_by.clone(),
        score: report.score,
        scores,
    };
    s.store.insert_report(&kept, &body, &event).await?;
    Ok(report)
}

fn scores_by_name(scores: &[Score]) -> serde_json::Value {
    scores
        .iter()
        .map(|f| (f.framework.as_str().to_owned(), json!(f.score)))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// A kept report, as it was generated.
pub async fn kept(s: &AppState, id: ReportId) -> Result<ComplianceReport, ApiError> {
    let body = s
        .store
        .report(id)
        .await?
        .ok_or_else(|| ApiError::not_found("compliance report"))?;
    serde_json::from_str(&body).map_err(|e| {
        tracing::error!(report = %id, error = %e, "a kept compliance report does not parse");
        ApiError::internal()
    })
}

/// The newest `limit` reports, newest first.
pub async fn list(s: &AppState, limit: u32) -> Result<ReportList, ApiError> {
    let items = s
        .store
        .report_scores(limit)
        .await?
        .into_iter()
        .map(|r| ReportSummary {
            id: r.id,
            generated_at: r.at,
            generated_by: r.by,
            score: r.score,
            frameworks: serde_json::from_str(&r.scores).unwrap_or_default(),
        })
        .collect();
    Ok(ReportList { items })
}

/// The report in `format`.
pub fn render(report: &ComplianceReport, format: ReportFormat) -> Result<String, ApiError> {
    match format {
        ReportFormat::Json => {
            serde_json::to_string_pretty(report).map_err(|_| ApiError::internal())
        }
        ReportFormat::Md => Ok(markdown::render(report)),
        ReportFormat::Html => Ok(html::render(report)),
    }
}
