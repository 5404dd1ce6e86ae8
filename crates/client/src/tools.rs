//! MCP tools through gateways: what a gateway reports and asks, and the admin's review and
//! approval of pinned definitions.

use aim_api::tools::{
    ApproveTool, GatewayPermitted, GatewayVerify, Permitted, SeenTools, ToolStates, ToolView,
    Verified,
};

use crate::{Client, Result};

impl Client {
    /// `POST /v1/gateway/tools`: the tools a server offered; where each stands.
    pub async fn gateway_tools(&self, seen: &SeenTools, request_id: &str) -> Result<ToolStates> {
        self.post_as("/v1/gateway/tools", seen, request_id).await
    }

    /// `POST /v1/gateway/verify`: who sent an MCP message that is not a call.
    pub async fn gateway_verify(&self, body: &GatewayVerify, request_id: &str) -> Result<Verified> {
        self.post_as("/v1/gateway/verify", body, request_id).await
    }

    /// `POST /v1/gateway/permitted`: which questions a verified agent may be allowed.
    pub async fn gateway_permitted(
        &self,
        body: &GatewayPermitted,
        request_id: &str,
    ) -> Result<Permitted> {
        self.post_as("/v1/gateway/permitted", body, request_id)
            .await
    }

    /// `GET /v1/tools`: every tool seen, of one server if given.
    pub async fn tools(&self, server: Option<&str>) -> Result<Vec<ToolView>> {
        let params = server
            .map(|s| vec![("server", s.to_owned())])
            .unwrap_or_default();
        self.get("/v1/tools", &params).await
    }

    /// `GET /v1/tools/{server}/{name}`.
    pub async fn tool(&self, server: &str, name: &str) -> Result<ToolView> {
        self.get(&format!("/v1/tools/{server}/{name}"), &Vec::new())
            .await
    }

    /// `POST /v1/tools/{server}/{name}/approve`: pins the definition with `hash`.
    pub async fn approve_tool(&self, server: &str, name: &str, hash: &str) -> Result<ToolView> {
        self.post(
            &format!("/v1/tools/{server}/{name}/approve"),
            &ApproveTool {
                hash: hash.to_owned(),
            },
        )
        .await
    }
}
