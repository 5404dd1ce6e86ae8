//! DPoP proofs (RFC 9449): a short JWT, signed with the key the agent holds and carrying
//! its public half in the header, that binds one HTTP request (method and URL) — and, when
//! a token is presented, that token (`ath`) — to that key. A token issued with a proof is
//! bound to the key's thumbprint (`cnf.jkt`) and is useless without a fresh proof.
//!
//! The checks here are pure; replay (the proof's `jti` used twice) needs shared state, so
//! [`Proof`] hands back what the caller must record.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::jose::{ALLOWED_ALGS, Claims, MAX_TOKEN_LEN};
use crate::jwk::PublicJwk;
use crate::{TokenError, b64};

pub const DPOP_TYP: &str = "dpop+jwt";

/// How far a proof's `iat` may be from now, either way, in seconds.
pub const IAT_WINDOW: i64 = 60;

/// A checked proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proof {
    /// The RFC 7638 thumbprint of the key that signed it.
    pub jkt: String,
    /// Single use: record it (per `jkt`) until `iat + IAT_WINDOW` and refuse it again.
    pub jti: String,
    pub iat: i64,
}

/// What the proof must match.
#[derive(Debug, Clone, Copy)]
pub struct Expect<'a> {
    /// `POST`, `GET`, ...
    pub method: &'a str,
    /// The request URL; compared without query and fragment.
    pub url: &'a str,
    /// The access token presented with the proof, if any (`ath` must be its hash).
    pub access_token: Option<&'a str>,
    /// The nonces the server accepts now, if it requires one (RFC 9449 §8).
    pub nonce: Option<&'a [String]>,
    /// Now, in seconds since the epoch.
    pub now: i64,
}

/// `ath`: base64url SHA-256 of the access token.
pub fn token_hash(access_token: &str) -> String {
    b64(&Sha256::digest(access_token.as_bytes()))
}

/// The URL as `htu` compares it: no query, no fragment, scheme and host lower-cased.
pub fn normalize_url(url: &str) -> String {
    let end = url.find(['?', '#']).unwrap_or(url.len());
    let url = &url[..end];
    match url.find("://") {
        Some(i) => {
            let rest = &url[i + 3..];
            let host_end = rest.find('/').unwrap_or(rest.len());
            format!(
                "{}://{}{}",
                url[..i].to_ascii_lowercase(),
                rest[..host_end].to_ascii_lowercase(),
                &rest[host_end..]
            )
        }
        None => url.to_owned(),
    }
}

fn part(s: &str) -> Result<Map<String, Value>, TokenError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| TokenError::InvalidProof("not base64url".into()))?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(TokenError::InvalidProof("not a JSON object".into())),
    }
}

/// Checks a `DPoP` header value against the request it came with.
pub fn verify(proof: &str, expect: &Expect<'_>) -> Result<Proof, TokenError> {
    let bad = |m: &str| TokenError::InvalidProof(m.to_owned());
    if proof.len() > MAX_TOKEN_LEN {
        return Err(bad("too long"));
    }
    let mut parts = proof.split('.');
    let (Some(h), Some(c), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("not a compact JWS"));
    };
    let header = part(h)?;
    let typ = header.get("typ").and_then(Value::as_str).unwrap_or("");
    if !typ.eq_ignore_ascii_case(DPOP_TYP) {
        return Err(bad("`typ` must be dpop+jwt"));
    }
    let alg = header.get("alg").and_then(Value::as_str).unwrap_or("");
    if !ALLOWED_ALGS.contains(&alg) {
        return Err(TokenError::AlgorithmNotAllowed(
            alg.chars().take(16).filter(|c| !c.is_control()).collect(),
        ));
    }
    for forbidden in ["jku", "x5u", "x5c", "crit"] {
        if header.contains_key(forbidden) {
            return Err(bad("the header may carry only its own `jwk`"));
        }
    }
    let (jwk, verifier) =
        PublicJwk::with_verifier(header.get("jwk").ok_or_else(|| bad("`jwk` is missing"))?)
            .map_err(|e| TokenError::InvalidProof(e.to_string()))?;
    if jwk.alg_name() != alg {
        return Err(TokenError::AlgorithmNotAllowed(alg.to_owned()));
    }
    let signature = URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| bad("bad signature encoding"))?;
    verifier
        .verify_sig(&proof.as_bytes()[..h.len() + 1 + c.len()], &signature)
        .map_err(|_| TokenError::BadSignature)?;
    let claims = Claims(part(c)?);
    let jti = claims.str("jti").map_err(|_| bad("`jti` is missing"))?;
    if jti.len() > 256 {
        return Err(bad("`jti` is too long"));
    }
    if claims.str("htm").map_err(|_| bad("`htm` is missing"))? != expect.method {
        return Err(TokenError::ProofMismatch("htm"));
    }
    let htu = claims.str("htu").map_err(|_| bad("`htu` is missing"))?;
    if normalize_url(htu) != normalize_url(expect.url) {
        return Err(TokenError::ProofMismatch("htu"));
    }
    let iat = claims.time("iat")?;
    if (iat - expect.now).abs() > IAT_WINDOW {
        return Err(TokenError::ProofStale);
    }
    match (expect.access_token, claims.opt_str("ath")?) {
        (Some(token), Some(ath)) if ath == token_hash(token) => {}
        (Some(_), _) => return Err(TokenError::ProofMismatch("ath")),
        (None, _) => {}
    }
    if let Some(accepted) = expect.nonce {
        match claims.opt_str("nonce")? {
            Some(n) if accepted.iter().any(|a| a == n) => {}
            _ => return Err(TokenError::NonceRequired),
        }
    }
    Ok(Proof {
        jkt: jwk.thumbprint(),
        jti: jti.to_owned(),
        iat,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::ClientKey;

    const NOW: i64 = 1_790_000_000;
    const URL: &str = "https://aim.example/v1/tasks/t1/end";

    fn expect<'a>(token: Option<&'a str>) -> Expect<'a> {
        Expect {
            method: "POST",
            url: URL,
            access_token: token,
            nonce: None,
            now: NOW,
        }
    }

    #[test]
    fn a_good_proof_names_its_key() {
        for alg in ["EdDSA", "ES256"] {
            let key = ClientKey::generate(alg).unwrap();
            let p = key.dpop_proof("POST", URL, Some("the-token"), NOW).unwrap();
            let got = verify(&p, &expect(Some("the-token"))).unwrap();
            assert_eq!(got.jkt, key.kid());
            assert_eq!(got.iat, NOW);
            // The query and the host's case do not matter.
            let other = Expect {
                url: "https://AIM.example/v1/tasks/t1/end?x=1",
                ..expect(Some("the-token"))
            };
            assert!(verify(&p, &other).is_ok());
        }
    }

    #[test]
    fn each_mismatch_is_named() {
        let key = ClientKey::generate("EdDSA").unwrap();
        let p = key.dpop_proof("POST", URL, Some("the-token"), NOW).unwrap();
        let code = |e: Expect<'_>| verify(&p, &e).unwrap_err().code();
        assert_eq!(
            code(Expect {
                method: "GET",
                ..expect(Some("the-token"))
            }),
            "dpop_mismatch"
        );
        assert_eq!(
            code(Expect {
                url: "https://aim.example/v1/other",
                ..expect(Some("the-token"))
            }),
            "dpop_mismatch"
        );
        assert_eq!(code(expect(Some("another-token"))), "dpop_mismatch");
        assert_eq!(
            code(Expect {
                now: NOW + 61,
                ..expect(Some("the-token"))
            }),
            "dpop_stale"
        );
        assert_eq!(
            code(Expect {
                now: NOW - 61,
                ..expect(Some("the-token"))
            }),
            "dpop_stale"
        );
        let nonces = ["n-1".to_owned()];
        assert_eq!(
            code(Expect {
                nonce: Some(&nonces),
                ..expect(Some("the-token"))
            }),
            "use_dpop_nonce"
        );
        let with_nonce = key
            .dpop_proof_with_nonce("POST", URL, Some("the-token"), Some("n-1"), NOW)
            .unwrap();
        let accepting = Expect {
            nonce: Some(&nonces),
            ..expect(Some("the-token"))
        };
        assert!(verify(&with_nonce, &accepting).is_ok());
        // Signed by one key, claiming another in the header.
        let other = ClientKey::generate("EdDSA").unwrap();
        let mut parts: Vec<String> = p.split('.').map(str::to_owned).collect();
        let forged = other
            .dpop_proof("POST", URL, Some("the-token"), NOW)
            .unwrap();
        parts[0] = forged.split('.').next().unwrap().to_owned();
        assert_eq!(
            verify(&parts.join("."), &expect(Some("the-token"))).unwrap_err(),
            TokenError::BadSignature
        );
        // An access token is not a proof.
        let not_proof = key.assertion("c", URL, NOW, 60).unwrap();
        assert_eq!(
            verify(&not_proof, &expect(None)).unwrap_err().code(),
            "invalid_dpop_proof"
        );
        // A proof with a private key in its header is refused.
        let mut jwk = key.public().to_json();
        jwk["d"] = Value::String("AAAA".into());
        let leaky = key
            .sign(
                serde_json::json!({ "typ": DPOP_TYP, "jwk": jwk }),
                &serde_json::json!({ "jti": "j", "htm": "POST", "htu": URL, "iat": NOW }),
            )
            .unwrap();
        assert_eq!(
            verify(&leaky, &expect(None)).unwrap_err().code(),
            "invalid_dpop_proof"
        );
    }

    #[test]
    fn url_normalisation() {
        assert_eq!(
            normalize_url("HTTPS://Aim.Example/Path?q#f"),
            "https://aim.example/Path"
        );
        assert_eq!(normalize_url("http://h"), "http://h");
    }
}
