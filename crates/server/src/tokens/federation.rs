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
use std::sync::Mutex;

use super::refused::Refused;
use crate::config::FederationConfig;

const FRESH: Duration = Duration::from_secs(300);
/// Clock skew tolerated for `nbf` and `iat`.
const SKEW: i64 = 60;

/// The most a JWKS may weigh.
const MAX_JWKS_BYTES: usize = 64 * 1024;
/// After a failed fetch, the next waits 1 s, then 2, 4, ... up to a minute.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

#[derive(Debug, Default)]
struct Cache {
    keys: Option<(std::sync::Arc<TrustedKeys>, Instant)>,
    /// No fetch before this (after failures).
    not_before: Option<Instant>,
    failures: u32,
    /// A fetch is under way: others use what is cached rather than fetch too.
    fetching: bool,
}

#[derive(Debug)]
struct Issuer {
    config: FederationConfig,
    http: reqwest::Client,
    cache: Mutex<Cache>,
}

#[derive(Debug)]
pub struct Federation {
    issuers: Vec<Issuer>,
}

fn refused(code: &'static str, m: impl Into<String>) -> Refused {
    Refused::new(StatusCode::BAD_REQUEST, "invalid_grant", code, m)
}

fn unavailable() -> Refused {
    Refused::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "temporarily_unavailable",
        "issuer_keys_unavailable",
        "the workload token's issuer keys could not be fetched",
    )
}

impl Federation {
    pub fn new(configs: &[FederationConfig]) -> anyhow::Result<Self> {
        let issuers = configs
            .iter()
            .map(|c| {
                Ok(Issuer {
                    http: crate::outbound::client(c.ca_file.as_deref(), Duration::from_secs(5))?,
                    config: c.clone(),
                    cache: Mutex::new(Cache::default()),
                })
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Self { issuers })
    }

    async fn fetch(issuer: &Issuer) -> anyhow::Result<std::sync::Arc<TrustedKeys>> {
        let resp = issuer.http.get(&issuer.config.jwks_url).send().await?;
        anyhow::ensure!(
            resp.status().is_success(),
            "the JWKS answered {}",
            resp.status()
        );
        let body = crate::outbound::body_capped(resp, MAX_JWKS_BYTES).await?;
        let jwks: serde_json::Value = serde_json::from_slice(&body)?;
        Ok(std::sync::Arc::new(
            TrustedKeys::from_external_jwks(&jwks).map_err(anyhow::Error::msg)?,
        ))
    }

    /// The issuer's keys: cached, fetched when stale, or when `kid` is unknown and the last
    /// fetch is older than `refetch_seconds`. The fetch runs outside the cache's lock, one
    /// at a time, and backs off after failures, so an unreachable issuer or a flood of
    /// tokens with made-up `kid`s cannot pile up fetches.
    async fn keys(
        &self,
        issuer: &Issuer,
        kid: &str,
    ) -> Result<std::sync::Arc<TrustedKeys>, Refused> {
        let now = Instant::now();
        let cached = {
            let mut c = issuer.cache.lock().map_err(|_| unavailable())?;
            let stale = match &c.keys {
                None => true,
                Some((keys, at)) => {
                    now.duration_since(*at) > FRESH
                        || (!keys.contains(kid)
                            && now.duration_since(*at)
                                >= Duration::from_secs(issuer.config.refetch_seconds))
                }
            };
            let may = !c.fetching && c.not_before.is_none_or(|t| now >= t);
            if stale && may {
                c.fetching = true;
                None
            } else {
                Some(c.keys.as_ref().map(|(k, _)| k.clone()))
            }
        };
        let keys = match cached {
            Some(keys) => keys,
            None => {
                let fetched = Self::fetch(issuer).await;
                let mut c = issuer.cache.lock().map_err(|_| unavailable())?;
                c.fetching = false;
                match fetched {
                    Ok(keys) => {
                        c.keys = Some((keys, Instant::now()));
                        c.failures = 0;
                        c.not_before = None;
                    }
                    // Keep serving the last good keys while the issuer is down.
                    Err(e) => {
                        c.failures = c.failures.saturating_add(1);
                        let wait = Duration::from_secs(1 << c.failures.min(6)).min(MAX_BACKOFF);
                        c.not_before = Some(Instant::now() + wait);
                        tracing::warn!(issuer = %issuer.config.issuer, error = %e, retry_in = ?wait, "fetching the issuer's JWKS failed");
                    }
                }
                c.keys.as_ref().map(|(k, _)| k.clone())
            }
        };
        keys.ok_or_else(unavailable)
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
