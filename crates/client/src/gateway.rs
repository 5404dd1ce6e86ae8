//! What an enforcement gateway asks of aim, each under the request id of the agent's call
//! so that aim's record and the gateway's log name the same request.

use aim_api::gateway::{GatewayAuthorize, GatewayDecision, GatewayRefusal};

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
}
