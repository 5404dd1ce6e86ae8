//! Just-in-time credentials: agents' keys, join tokens, tasks, aim's token endpoint and
//! signing keys, introspection and the revocation list.

use aim_domain::agent_key::AgentKey;
use aim_domain::ids::{IdentityId, TaskId};
use aim_domain::page::Page;
use aim_domain::task::Task;
use reqwest::Method;
use serde_json::json;

use aim_api::common::ReasonBody;
use aim_api::identities::{IssuedJoinToken, JoinRequest, NewAgentKey, NewJoinToken};
use aim_api::oauth::{Introspection, ServerMetadata, TokenResponse};
use aim_api::tokens::{RevocationPage, SigningKeyInfo};

use crate::{Client, Params, Result, path_segment};

impl Client {
    /// Registers a public key (a JWK) on an identity.
    pub async fn add_agent_key(
        &self,
        identity: IdentityId,
        jwk: &serde_json::Value,
        label: &str,
    ) -> Result<AgentKey> {
        self.post(
            &format!("/v1/identities/{identity}/keys"),
            &NewAgentKey {
                jwk: jwk.clone(),
                label: label.to_owned(),
            },
        )
        .await
    }

    /// A one-time join token for `identity` (the secret is in the answer, once).
    pub async fn create_join_token(
        &self,
        identity: IdentityId,
        ttl_seconds: Option<i64>,
    ) -> Result<IssuedJoinToken> {
        self.post(
            &format!("/v1/identities/{identity}/join-tokens"),
            &NewJoinToken { ttl_seconds },
        )
        .await
    }

    /// As a new agent: registers `jwk` with a join token; `proof` is a DPoP proof for
    /// `POST <issuer>/v1/join` signed by that key.
    pub async fn join(
        &self,
        token: &str,
        jwk: &serde_json::Value,
        label: &str,
        proof: Option<&str>,
    ) -> Result<AgentKey> {
        let mut req = self
            .http
            .post(format!("{}/v1/join", self.base))
            .json(&JoinRequest {
                token: token.to_owned(),
                jwk: jwk.clone(),
                label: label.to_owned(),
            });
        if let Some(p) = proof {
            req = req.header("DPoP", p);
        }
        self.send(req).await
    }

    pub async fn agent_keys(&self, identity: IdentityId) -> Result<Vec<AgentKey>> {
        self.get(&format!("/v1/identities/{identity}/keys"), &Vec::new())
            .await
    }

    pub async fn revoke_agent_key(
        &self,
        identity: IdentityId,
        kid: &str,
        reason: &str,
    ) -> Result<AgentKey> {
        self.call(
            Method::DELETE,
            &format!("/v1/identities/{identity}/keys/{}", path_segment(kid)),
            &Vec::new(),
            Some(&ReasonBody {
                reason: reason.to_owned(),
            }),
        )
        .await
    }

    pub async fn tasks(&self, params: &Params) -> Result<Page<Task>> {
        self.get("/v1/tasks", params).await
    }

    pub async fn task(&self, id: TaskId) -> Result<Task> {
        self.get(&format!("/v1/tasks/{id}"), &Vec::new()).await
    }

    pub async fn end_task(&self, id: TaskId, reason: &str) -> Result<Task> {
        self.post(
            &format!("/v1/tasks/{id}/end"),
            &ReasonBody {
                reason: reason.to_owned(),
            },
        )
        .await
    }

    /// `POST /oauth/token` with form fields, as an agent does (no human credential), with
    /// a DPoP proof to bind the token to the agent's key.
    pub async fn oauth_token(
        &self,
        form: &[(&str, &str)],
        dpop: Option<&str>,
    ) -> Result<TokenResponse> {
        let mut req = self
            .http
            .post(format!("{}/oauth/token", self.base))
            .form(form);
        if let Some(p) = dpop {
            req = req.header("DPoP", p);
        }
        self.send(req).await
    }

    /// The authorization-server metadata (RFC 8414).
    pub async fn authorization_server(&self) -> Result<ServerMetadata> {
        self.get("/.well-known/oauth-authorization-server", &Vec::new())
            .await
    }

    /// The published signing keys.
    /// The JWK Set (RFC 7517) as published: a JSON document any JWT library reads, and
    /// `aim_token::access::TrustedKeys::from_jwks` too.
    pub async fn jwks(&self) -> Result<serde_json::Value> {
        self.get("/.well-known/jwks.json", &Vec::new()).await
    }

    /// aim's signing keys (no private halves).
    pub async fn signing_keys(&self) -> Result<Vec<SigningKeyInfo>> {
        self.get("/v1/signing-keys", &Vec::new()).await
    }

    pub async fn rotate_signing_key(&self) -> Result<Vec<SigningKeyInfo>> {
        self.post("/v1/signing-keys/rotate", &json!({})).await
    }

    pub async fn revoke_signing_key(&self, kid: &str, reason: &str) -> Result<Vec<SigningKeyInfo>> {
        self.post(
            &format!("/v1/signing-keys/{}/revoke", path_segment(kid)),
            &ReasonBody {
                reason: reason.to_owned(),
            },
        )
        .await
    }

    /// RFC 7662: `{"active": true, ...claims}` or `{"active": false}`.
    pub async fn introspect(&self, token: &str) -> Result<Introspection> {
        self.post_form("/oauth/introspect", &[("token", token)])
            .await
    }

    /// RFC 7009: revokes an access token at once.
    /// Revokes one access token (RFC 7009): an unknown or already dead token is no error.
    pub async fn revoke_token(&self, token: &str) -> Result<()> {
        let _: serde::de::IgnoredAny = self.post_form("/oauth/revoke", &[("token", token)]).await?;
        Ok(())
    }

    pub async fn revocations(&self, since: i64) -> Result<RevocationPage> {
        self.get("/v1/revocations", &vec![("since", since.to_string())])
            .await
    }
}
