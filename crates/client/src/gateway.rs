//! What an enforcement gateway asks of aim, each under the request id of the agent's call
//! so that aim's record and the gateway's log name the same request.

use aim_api::gateway::{
    Ack, GatewayAuthorize, GatewayCall, GatewayDecision, GatewayLive, GatewayLiveState,
    GatewayRecord, GatewayRecorded, GatewayRefusal, GatewayState,
};

use crate::{Client, Result};

impl Client {
    /// `POST /v1/gateway/authorize`: a decision on an agent's request to a gateway,
    /// durable on aim's record when it is answered.
    pub async fn gateway_authorize(
        &self,
        body: &GatewayAuthorize,
        request_id: &str,
    ) -> Result<GatewayDecision> {
        self.post_as("/v1/gateway/authorize", body, request_id)
            .await
    }

    /// `POST /v1/gateway/refusals`: a request the gateway refused on its own.
    pub async fn gateway_refusal(&self, body: &GatewayRefusal, request_id: &str) -> Result<()> {
        self.post_as("/v1/gateway/refusals", body, request_id).await
    }

    /// `POST /v1/gateway/calls`: a forwarded call and the upstream's answer, for the record.
    pub async fn gateway_call(&self, call: &GatewayCall, request_id: &str) -> Result<()> {
        self.post_as("/v1/gateway/calls", call, request_id).await
    }

    /// `POST /v1/gateway/calls` with several calls at once.
    pub async fn gateway_calls(&self, calls: &[GatewayCall], request_id: &str) -> Result<()> {
        self.post_as("/v1/gateway/calls", calls, request_id).await
    }

    /// `GET /v1/gateway/state`: the policy set, schema and grants a gateway decides with.
    pub async fn gateway_state(&self) -> Result<GatewayState> {
        self.get("/v1/gateway/state", &Vec::new()).await
    }

    /// `POST /v1/gateway/live`: the live state behind a token the gateway verified.
    pub async fn gateway_live(
        &self,
        body: &GatewayLive,
        request_id: &str,
    ) -> Result<GatewayLiveState> {
        self.post_as("/v1/gateway/live", body, request_id).await
    }

    /// `POST /v1/gateway/decisions`: a decision the gateway took, durable on aim's record
    /// (with its proof spent) when this returns.
    pub async fn gateway_record(
        &self,
        record: &GatewayRecord,
        request_id: &str,
    ) -> Result<GatewayRecorded> {
        self.post_as("/v1/gateway/decisions", record, request_id)
            .await
    }

    /// `POST /v1/gateway/decisions` with several decisions a gateway already acted on.
    pub async fn gateway_records(
        &self,
        records: &[GatewayRecord],
        request_id: &str,
    ) -> Result<GatewayRecorded> {
        self.post_as("/v1/gateway/decisions", records, request_id)
            .await
    }

    /// `POST /v1/gateway/acks`: the gateway applied the revocation list up to `epoch`.
    pub async fn gateway_ack(&self, epoch: i64) -> Result<()> {
        self.post("/v1/gateway/acks", &Ack { epoch }).await
    }

    /// `GET /v1/gateway/feed`: the open event stream, to be read as it comes.
    pub async fn gateway_feed(&self, since: Option<i64>) -> Result<reqwest::Response> {
        let mut req = self
            .http
            .get(format!("{}/v1/gateway/feed", self.base))
            .header("accept", "text/event-stream")
            // A stream has no overall deadline; the gateway watches its heartbeat.
            .timeout(std::time::Duration::from_secs(365 * 24 * 3600));
        if let Some(since) = since {
            req = req.query(&[("since", since)]);
        }
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let response = req
            .send()
            .await
            .map_err(|e| crate::ClientError::Transport {
                addr: self.base.clone(),
                message: crate::without_url(&e),
            })?;
        let status = response.status();
        if !status.is_success() {
            let bytes = response.bytes().await.unwrap_or_default();
            return Err(crate::api_error(status, &bytes));
        }
        Ok(response)
    }
}
