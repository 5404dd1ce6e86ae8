//! Credentials for upstreams kept in aim: stored by admins, read by gateways.

use aim_api::secrets::{PutUpstreamSecret, UpstreamSecretValue};
use aim_domain::upstream_secret::UpstreamSecret;

use crate::{Client, Result};

impl Client {
    /// `PUT /v1/upstream-secrets/{name}`: stores (or replaces) the value, sealed.
    pub async fn put_upstream_secret(
        &self,
        name: &str,
        body: &PutUpstreamSecret,
    ) -> Result<UpstreamSecret> {
        self.call(
            reqwest::Method::PUT,
            &format!("/v1/upstream-secrets/{name}"),
            &Vec::new(),
            Some(body),
        )
        .await
    }

    /// `GET /v1/upstream-secrets`: every secret's metadata.
    pub async fn upstream_secrets(&self) -> Result<Vec<UpstreamSecret>> {
        self.get("/v1/upstream-secrets", &Vec::new()).await
    }

    /// `DELETE /v1/upstream-secrets/{name}`.
    pub async fn delete_upstream_secret(&self, name: &str) -> Result<()> {
        self.call(
            reqwest::Method::DELETE,
            &format!("/v1/upstream-secrets/{name}"),
            &Vec::new(),
            None::<&()>,
        )
        .await
    }

    /// `GET /v1/gateway/upstream-secrets/{name}`: the value, for a gateway to inject.
    pub async fn gateway_upstream_secret(&self, name: &str) -> Result<UpstreamSecretValue> {
        self.get(&format!("/v1/gateway/upstream-secrets/{name}"), &Vec::new())
            .await
    }
}
