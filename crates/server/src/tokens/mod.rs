//! The token issuer: `POST /oauth/token`, discovery documents and JWKS, and the signing
//! keys behind them.
//!
//! # Layout
//! - [`keys`] — the KEK, the signing key ring and its rotation
//! - [`endpoint`] — `POST /oauth/token`
//! - [`discovery`] — `/.well-known/*`
//! - [`exchange`] — delegation by token exchange (RFC 8693)
//! - [`federation`] — workload tokens from other issuers (RFC 7523 `jwt-bearer`)
//! - [`mint`] — minting, audiences and the signing ring
//! - [`check`] — the store as `aim-enforce`'s source, and the check introspection uses
//! - [`client_auth`] — client assertions (RFC 7523) and who may get tokens
//! - [`refused`] — a refused token request, in RFC 6749's shape

pub mod check;
pub mod client_auth;
pub mod discovery;
pub mod endpoint;
pub mod exchange;
pub mod federation;
pub mod keys;
pub mod mint;
pub mod refused;

use aim_domain::event::{Actor, AuditAction, Event};
use aim_domain::identity::{Identity, IdentityKind};

use crate::config::TokenConfig;
use keys::SigningKeys;

/// Everything the issuer needs besides the store.
#[derive(Debug)]
pub struct TokenService {
    pub issuer: String,
    pub token_endpoint: String,
    pub trust_domain: String,
    pub max_token_seconds: Option<i64>,
    /// What a presented token must be issued by and for (aim's own `audience`, and the
    /// other `resources` tokens may be asked for, RFC 8707), and the cache of the live
    /// state behind presented tokens.
    pub rules: aim_enforce::TokenRules,
    /// What a client assertion is checked against (its identity, sponsor, key, task and
    /// the signing key), kept like the live state of presented tokens: used only while
    /// the store's generation has not moved, for at most half a second.
    pub issuing: aim_enforce::LiveCache<aim_store::TokenContext>,
    pub max_delegation_depth: usize,
    pub federation: federation::Federation,
    pub keys: SigningKeys,
    /// Makes DPoP nonces, when the token endpoint requires them.
    pub nonce_key: Option<aim_token::kek::Kek>,
}

impl TokenService {
    pub fn new(
        config: &TokenConfig,
        issuer: String,
        keys: SigningKeys,
        nonce_key: Option<aim_token::kek::Kek>,
    ) -> anyhow::Result<Self> {
        let issuer = issuer.trim_end_matches('/').to_owned();
        Ok(Self {
            token_endpoint: format!("{issuer}/oauth/token"),
            rules: aim_enforce::TokenRules::new(&issuer, &config.audience, &config.resources),
            issuing: aim_enforce::LiveCache::default(),
            issuer,
            trust_domain: config.trust_domain.clone(),
            max_token_seconds: config.max_token_seconds,
            max_delegation_depth: config.max_delegation_depth,
            federation: federation::Federation::new(&config.federation)?,
            nonce_key,
            keys,
        })
    }

    /// The DPoP nonces accepted at `now` (seconds), the current one first, if nonces are
    /// required: a MAC of the five-minute window, so every replica with the same KEK makes
    /// the same ones and nothing needs storing.
    pub fn nonces(&self, now: i64) -> Option<[String; 2]> {
        let key = self.nonce_key.as_ref()?;
        let window = now.div_euclid(300);
        let make = |w: i64| {
            use base64::Engine;
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(&key.mac(b"dpop-nonce", &w.to_be_bytes())[..16])
        };
        Some([make(window), make(window - 1)])
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

/// What is recorded when an identity flagged dormant gets a token again.
fn active_again(identity: &Identity, now: aim_domain::time::Timestamp) -> Event {
    Event::new(
        now,
        Actor::system("issuer"),
        AuditAction::IdentityActiveAgain,
        "identity",
        identity.id,
    )
    .reason("seen again (a token was issued) after being flagged dormant")
}

/// Records activity for the dormancy sweep, and when the agent's key was last used, each
/// at most once an hour; a failure is logged, never refused (the token is already on the
/// record).
pub(crate) async fn record_seen(
    store: &aim_store::DynStore,
    identity: &Identity,
    key: Option<&aim_domain::agent_key::AgentKey>,
    now: aim_domain::time::Timestamp,
) {
    let stale =
        |t: Option<aim_domain::time::Timestamp>| t.is_none_or(|t| t.plus_millis(3_600_000) < now);
    let key = key
        .filter(|k| stale(k.last_used_at))
        .map(|k| k.kid.as_str());
    if (stale(identity.last_seen_at) || key.is_some())
        && let Err(e) = store
            .touch_identity(identity.id, key, now, &active_again(identity, now))
            .await
    {
        tracing::warn!(error = %e, "could not record that an identity was seen");
    }
}
