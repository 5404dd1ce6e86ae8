//! The token issuer: `POST /oauth/token`, discovery documents and JWKS, and the signing
//! keys behind them.
//!
//! # Layout
//! - [`keys`] — the KEK, the signing key ring and its rotation
//! - [`endpoint`] — `POST /oauth/token`
//! - [`discovery`] — `/.well-known/*`

pub mod check;
pub mod discovery;
pub mod endpoint;
pub mod exchange;
pub mod federation;
pub mod keys;

use aim_domain::identity::{Identity, IdentityKind};

use crate::config::TokenConfig;
use keys::SigningKeys;

/// Everything the issuer needs besides the store.
#[derive(Debug)]
pub struct TokenService {
    pub issuer: String,
    pub token_endpoint: String,
    pub trust_domain: String,
    pub audience: String,
    pub max_token_seconds: Option<i64>,
    pub dpop_required_for: Vec<aim_domain::identity::Autonomy>,
    pub max_delegation_depth: usize,
    pub federation: federation::Federation,
    pub keys: SigningKeys,
}

impl TokenService {
    pub fn new(config: &TokenConfig, issuer: String, keys: SigningKeys) -> Self {
        let issuer = issuer.trim_end_matches('/').to_owned();
        Self {
            token_endpoint: format!("{issuer}/oauth/token"),
            issuer,
            trust_domain: config.trust_domain.clone(),
            audience: config.audience.clone(),
            max_token_seconds: config.max_token_seconds,
            dpop_required_for: config.dpop_required_for.clone(),
            max_delegation_depth: config.max_delegation_depth,
            federation: federation::Federation::new(&config.federation),
            keys,
        }
    }

    /// `spiffe://<trust-domain>/<kind>/<name>`.
    pub fn subject(&self, identity: &Identity) -> String {
        let kind = match identity.kind {
            IdentityKind::AiAgent => "agent",
            IdentityKind::Bot => "bot",
            IdentityKind::ServiceAccount => "service-account",
            IdentityKind::ApiKey => "api-key",
            IdentityKind::Automation => "automation",
        };
        format!("spiffe://{}/{kind}/{}", self.trust_domain, identity.name)
    }
}
