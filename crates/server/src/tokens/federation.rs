//! Federated workload tokens (RFC 7523 `jwt-bearer` grant): a workload already holding a
//! token from a trusted issuer (a Kubernetes service-account token, a CI job token) trades
//! it for an aim token, with no key of its own registered. The issuer's JWKS is fetched and
//! cached for five minutes, and fetched again (at most every 30 s) when a token names a key
//! it does not know, which is how the issuer's key rotation reaches aim.

use std::time::{Duration, Instant};

use aim_token::TokenError;
use aim_token::access::TrustedKeys;
use aim_token::jose::{EXTERNAL_ALGS, Unverified};
use axum::http::StatusCode;
use tokio::sync::Mutex;

use super::endpoint::Refused;
use crate::config::FederationConfig;

const FRESH: Duration = Duration::from_secs(300);
/// Clock skew tolerated for `nbf` and `iat`.
const SKEW: i64 = 60;

#[derive(Debug)]
struct Issuer {
    config: FederationConfig,
    keys: Mutex<Option<(std::sync::Arc<TrustedKeys>, Instant)>>,
}

#[derive(Debug)]
pub struct Federation {
    issuers: Vec<Issuer>,
    http: reqwest::Client,
}

fn refused(code: &'static str, m: impl Into<String>) -> Refused {
    Refused::new(StatusCode::BAD_REQUEST, "invalid_grant", code, m)
}

impl Federation {
    pub fn new(configs: &[FederationConfig]) -> Self {
        Self {
            issuers: configs
                .iter()
                .map(|c| Issuer {
                    config: c.clone(),
                    keys: Mutex::new(None),
                })
                .collect(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap_or_default(),
        }
    }

    async fn fetch(&self, issuer: &Issuer) -> Result<std::sync::Arc<TrustedKeys>, Refused> {
        let unavailable = |m: String| {
            tracing::warn!(issuer = %issuer.config.issuer, "{m}");
            Refused::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "issuer_keys_unavailable",
                "the workload token's issuer keys could not be fetched",
            )
        };
        let resp = self
            .http
            .get(&issuer.config.jwks_url)
            .send()
            .await
            .map_err(|e| unavailable(format!("fetching the JWKS failed: {e}")))?;
        if !resp.status().is_success() {
            return Err(unavailable(format!("the JWKS answered {}", resp.status())));
        }
        let jwks: serde_json::Value = resp
            .json()
            .await
            .map_err(|e| unavailable(format!("the JWKS is not JSON: {e}")))?;
        let keys = TrustedKeys::from_external_jwks(&jwks)
            .map_err(|e| unavailable(format!("the JWKS is unusable: {e}")))?;
        Ok(std::sync::Arc::new(keys))
    }

    /// The issuer's keys: cached, fetched when stale, or when `kid` is unknown and the last
    /// fetch is older than 30 s.
    async fn keys(
        &self,
        issuer: &Issuer,
        kid: &str,
    ) -> Result<std::sync::Arc<TrustedKeys>, Refused> {
        let mut cached = issuer.keys.lock().await;
        let now = Instant::now();
        let stale = match &*cached {
            None => true,
            Some((keys, at)) => {
                now.duration_since(*at) > FRESH
                    || (!keys.contains(kid)
                        && now.duration_since(*at)
                            >= Duration::from_secs(issuer.config.refetch_seconds))
            }
        };
        if stale {
            match self.fetch(issuer).await {
                Ok(keys) => *cached = Some((keys, now)),
                // Keep serving the last good keys while the issuer is down.
                Err(e) if cached.is_none() => return Err(e),
                Err(_) => {}
            }
        }
        cached
            .as_ref()
            .map(|(k, _)| k.clone())
            .ok_or_else(|| refused("unknown_issuer", "no keys for this issuer"))
    }

    /// Verifies a workload token and returns the name of the identity it maps to, and the
    /// workload it names.
    pub async fn authenticate(&self, token: &str, now: i64) -> Result<(String, String), Refused> {
        let bad = |e: TokenError| refused(e.code(), format!("workload token refused: {e}"));
        let unverified =
            Unverified::parse_with_algs(token, &["", "jwt"], &EXTERNAL_ALGS).map_err(bad)?;
        let iss = unverified
            .claims
            .get("iss")
            .and_then(|v| v.as_str())
            .ok_or(bad(TokenError::InvalidClaim("iss")))?;
        let issuer = self
            .issuers
            .iter()
            .find(|i| i.config.issuer == iss)
            .ok_or_else(|| {
                refused(
                    "unknown_issuer",
                    "the workload token's issuer is not trusted",
                )
            })?;
        let kid = unverified.kid().map_err(bad)?.to_owned();
        let keys = self.keys(issuer, &kid).await?;
        let claims = keys.verify_external(token, &["", "jwt"]).map_err(bad)?;
        if !claims.has_audience(&issuer.config.audience).map_err(bad)? {
            return Err(bad(TokenError::WrongAudience));
        }
        if claims.time("exp").map_err(bad)? <= now {
            return Err(bad(TokenError::Expired));
        }
        for name in ["nbf", "iat"] {
            if claims
                .opt_time(name)
                .map_err(bad)?
                .is_some_and(|t| t > now + SKEW)
            {
                return Err(bad(TokenError::NotYetValid));
            }
        }
        let workload = claims
            .0
            .get(&issuer.config.claim)
            .and_then(|v| v.as_str())
            .filter(|v| !v.is_empty())
            .ok_or_else(|| {
                refused(
                    "invalid_claim",
                    format!("the workload token has no `{}` string", issuer.config.claim),
                )
            })?
            .to_owned();
        let identity = issuer.config.identities.get(&workload).ok_or_else(|| {
            refused(
                "unknown_workload",
                "the workload is not mapped to an identity for this issuer",
            )
        })?;
        Ok((identity.clone(), workload))
    }
}
