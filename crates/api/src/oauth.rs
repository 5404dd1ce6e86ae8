//! `POST /oauth/token`: the form an agent sends and the answer it gets (RFC 6749, RFC 8693,
//! RFC 9396).

use serde::{Deserialize, Serialize};

/// `client_assertion_type` of a client assertion (RFC 7523 `private_key_jwt`).
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// `grant_type` of a federated workload token (RFC 7523).
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// `grant_type` of delegation by token exchange (RFC 8693).
pub const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// The form fields aim reads; others are ignored, as RFC 6749 asks.
#[derive(Debug, Default, Deserialize)]
pub struct TokenRequest {
    #[serde(default)]
    pub grant_type: String,
    pub subject_token: Option<String>,
    pub subject_token_type: Option<String>,
    pub actor_token: Option<String>,
    pub actor_token_type: Option<String>,
    /// For a token exchange: the scopes to hand down (space-separated).
    pub scope: Option<String>,
    /// For the `jwt-bearer` grant: the workload token.
    pub assertion: Option<String>,
    pub client_assertion_type: Option<String>,
    pub client_assertion: Option<String>,
    pub client_id: Option<String>,
    pub authorization_details: Option<String>,
    pub task_id: Option<String>,
    /// RFC 8707: the resource (gateway, tool) the token is for.
    pub resource: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: i64,
    pub scope: String,
    pub task_id: String,
    /// For a new task: the granted `aim_task`.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub authorization_details: serde_json::Value,
    /// For a token exchange (RFC 8693).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_token_type: Option<String>,
}
