//! Compliance reports as they were generated: the posture's trend, and old reports read
//! again. Written once for both backends; each report with its event.

use aim_domain::event::Event;
use aim_domain::ids::ReportId;
use aim_domain::time::Timestamp;
use async_trait::async_trait;

use crate::StoreError;

/// One report's scores, without its body.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportScore {
    pub id: ReportId,
    pub at: Timestamp,
    pub by: String,
    pub score: f64,
    /// Each framework's score, JSON.
    pub scores: String,
}

#[async_trait]
pub trait ReportStore: Send + Sync {
    /// Keeps a report (`report`, JSON) with its scores, and `event`.
    async fn insert_report(
        &self,
        score: &ReportScore,
        report: &str,
        event: &Event,
    ) -> Result<(), StoreError>;
    /// The newest `limit` reports' scores, newest first.
    async fn report_scores(&self, limit: u32) -> Result<Vec<ReportScore>, StoreError>;
    /// A kept report's body (JSON).
    async fn report(&self, id: ReportId) -> Result<Option<String>, StoreError>;
}

/// Implements [`ReportStore`] for `$store` (see `backend::impl_store`).
macro_rules! impl_report_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl crate::reports::ReportStore for $store {
            async fn insert_report(
                &self,
                score: &crate::reports::ReportScore,
                report: &str,
                event: &aim_domain::event::Event,
            ) -> Result<(), crate::StoreError> {
                let mut tx = self.write_tx().await?;
                sqlx::query(
                    "INSERT INTO compliance_reports (id, generated_at, generated_by, score, \
                     scores, report) VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(score.id.as_uuid())
                .bind(score.at.as_millis())
                .bind(&score.by)
                .bind(score.score)
                .bind(&score.scores)
                .bind(report)
                .execute(&mut *tx)
                .await?;
                Self::commit_with(tx, &[event]).await?;
                Ok(())
            }

            async fn report_scores(
                &self,
                limit: u32,
            ) -> Result<Vec<crate::reports::ReportScore>, crate::StoreError> {
                let rows: Vec<(uuid::Uuid, i64, String, f64, String)> = sqlx::query_as(
                    "SELECT id, generated_at, generated_by, score, scores FROM compliance_reports \
                     ORDER BY generated_at DESC, id DESC LIMIT $1",
                )
                .bind(i64::from(limit))
                .fetch_all(self.read())
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|(id, at, by, score, scores)| crate::reports::ReportScore {
                        id: aim_domain::ids::ReportId::from_uuid(id),
                        at: aim_domain::time::Timestamp::from_millis(at),
                        by,
                        score,
                        scores,
                    })
                    .collect())
            }

            async fn report(
                &self,
                id: aim_domain::ids::ReportId,
            ) -> Result<Option<String>, crate::StoreError> {
                let row: Option<(String,)> =
                    sqlx::query_as("SELECT report FROM compliance_reports WHERE id = $1")
                        .bind(id.as_uuid())
                        .fetch_optional(self.read())
                        .await?;
                Ok(row.map(|(r,)| r))
            }
        }
    };
}

pub(crate) use impl_report_store;
