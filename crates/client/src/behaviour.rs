//! Behavioural baselines: backtests, why an identity was held, findings marked expected.

use aim_api::behaviour::{Backtest, BacktestBody, ExpectedBody, Why};
use aim_domain::ids::IdentityId;

use crate::{Client, Result};

impl Client {
    /// Replays the recorded decisions through the detectors (admins).
    pub async fn backtest(&self, body: &BacktestBody) -> Result<Backtest> {
        self.post("/v1/behaviour/backtest", body).await
    }

    /// The identity's state, its baseline and the findings behind them.
    pub async fn why(&self, id: IdentityId) -> Result<Why> {
        self.get(&format!("/v1/identities/{id}/why"), &Vec::new())
            .await
    }

    /// Marks the finding `finding` (its sequence number) as expected (admins, with a
    /// reason): its call becomes part of the identity's baseline.
    pub async fn mark_expected(
        &self,
        id: IdentityId,
        finding: i64,
        reason: &str,
    ) -> Result<serde_json::Value> {
        let body = ExpectedBody {
            finding,
            reason: reason.to_owned(),
        };
        self.post(&format!("/v1/identities/{id}/behaviour/expected"), &body)
            .await
    }
}
