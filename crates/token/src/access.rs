//! Access tokens: minted by aim (RFC 9068, `typ: at+jwt`, EdDSA), verified here by anyone
//! who holds aim's public keys. The verifier checks, in order: the header (allowed `alg`,
//! no embedded keys, well-formed `kid`, `typ`), the key (known `kid`, its own algorithm),
//! the signature, then issuer, audience and times with exact types.

use std::collections::HashMap;

use aws_lc_rs::signature::ParsedPublicKey;

use crate::TokenError;
use crate::claims::AccessClaims;
use crate::jose::{Claims, Unverified};
use crate::jwk::PublicJwk;
use crate::signing::SigningKey;

pub const ACCESS_TYP: &str = "at+jwt";

/// No access token lives longer than this, whatever it claims.
pub const MAX_ACCESS_LIFETIME: i64 = 3600;

/// Clock skew tolerated for `nbf` and `iat` (never for `exp`).
pub const SKEW: i64 = 30;

pub fn mint(key: &SigningKey, claims: &AccessClaims) -> Result<String, TokenError> {
    key.sign(ACCESS_TYP, claims)
}

struct Trusted {
    key: ParsedPublicKey,
    alg: &'static str,
}

/// The signing keys a verifier trusts, by `kid`, each parsed once.
#[derive(Default)]
pub struct TrustedKeys {
    keys: HashMap<String, Trusted>,
}

impl std::fmt::Debug for TrustedKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.keys.keys()).finish()
    }
}

impl TrustedKeys {
    pub fn insert(&mut self, kid: &str, jwk: &PublicJwk) -> Result<(), TokenError> {
        self.keys.insert(
            kid.to_owned(),
            Trusted {
                key: jwk.verifier()?,
                alg: jwk.alg_name(),
            },
        );
        Ok(())
    }

    pub fn remove(&mut self, kid: &str) {
        self.keys.remove(kid);
    }

    pub fn contains(&self, kid: &str) -> bool {
        self.keys.contains_key(kid)
    }

    /// The signing keys of an external issuer's JWKS: Ed25519, P-256 and RSA (RS256, at
    /// least 2048 bits); keys of other kinds or uses are skipped, a key without `kid` too.
    pub fn from_external_jwks(jwks: &serde_json::Value) -> Result<Self, TokenError> {
        use base64::Engine;
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut out = Self::default();
        let keys = jwks
            .get("keys")
            .and_then(|k| k.as_array())
            .ok_or_else(|| TokenError::InvalidKey("a JWKS has a `keys` list".into()))?;
        for k in keys {
            let Some(kid) = k.get("kid").and_then(|v| v.as_str()) else {
                continue;
            };
            if k.get("use")
                .and_then(|v| v.as_str())
                .is_some_and(|u| u != "sig")
            {
                continue;
            }
            let (key, alg) = match k.get("kty").and_then(|v| v.as_str()) {
                Some("RSA") => {
                    let part = |name: &str| {
                        k.get(name)
                            .and_then(|v| v.as_str())
                            .and_then(|s| URL_SAFE_NO_PAD.decode(s).ok())
                    };
                    let (Some(n), Some(e)) = (part("n"), part("e")) else {
                        continue;
                    };
                    let Ok(key) = aws_lc_rs::signature::RsaPublicKeyComponents { n: &n, e: &e }
                        .to_parsed_public_key(&aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256)
                    else {
                        continue;
                    };
                    (key, "RS256")
                }
                _ => match PublicJwk::with_verifier(k) {
                    Ok((jwk, key)) => (key, jwk.alg_name()),
                    Err(_) => continue,
                },
            };
            out.keys.insert(kid.to_owned(), Trusted { key, alg });
        }
        Ok(out)
    }

    /// Verifies a JWS from an external issuer (algorithms of [`crate::jose::EXTERNAL_ALGS`],
    /// each fixed by its key).
    pub fn verify_external(
        &self,
        token: &str,
        typs: &'static [&'static str],
    ) -> Result<Claims, TokenError> {
        let u = Unverified::parse_with_algs(token, typs, &crate::jose::EXTERNAL_ALGS)?;
        let trusted = self.keys.get(u.kid()?).ok_or(TokenError::UnknownKey)?;
        u.verify(&trusted.key, trusted.alg)
    }

    /// Every key of a JWKS document (`{"keys": [...]}`) under its `kid`.
    pub fn from_jwks(jwks: &serde_json::Value) -> Result<Self, TokenError> {
        let mut out = Self::default();
        let keys = jwks
            .get("keys")
            .and_then(|k| k.as_array())
            .ok_or_else(|| TokenError::InvalidKey("a JWKS has a `keys` list".into()))?;
        for k in keys {
            let jwk = PublicJwk::from_json(k)?;
            let kid = k
                .get("kid")
                .and_then(|v| v.as_str())
                .map_or_else(|| jwk.thumbprint(), str::to_owned);
            out.insert(&kid, &jwk)?;
        }
        Ok(out)
    }

    /// Verifies a JWS whose `typ` is one of `typs` against these keys; returns its claims.
    pub fn verify_jws(
        &self,
        token: &str,
        typs: &'static [&'static str],
    ) -> Result<Claims, TokenError> {
        let u = Unverified::parse(token, typs)?;
        let trusted = self.keys.get(u.kid()?).ok_or(TokenError::UnknownKey)?;
        u.verify(&trusted.key, trusted.alg)
    }
}

/// What a verifier expects of a token besides a good signature.
#[derive(Debug, Clone, Copy)]
pub struct Expect<'a> {
    pub issuer: &'a str,
    pub audience: &'a str,
    /// Now, in seconds since the epoch.
    pub now: i64,
}

/// Verifies an access token: signature by a trusted key, issuer, audience, and times
/// (`exp` strictly in the future, `nbf` and `iat` not ahead of now, lifetime at most an
/// hour), all with exact types. Revocation and proof of possession are the caller's next
/// checks.
pub fn verify(
    token: &str,
    keys: &TrustedKeys,
    expect: &Expect<'_>,
) -> Result<AccessClaims, TokenError> {
    let claims = keys.verify_jws(token, &[ACCESS_TYP])?;
    if claims.str("iss")? != expect.issuer {
        return Err(TokenError::WrongIssuer);
    }
    if !claims.has_audience(expect.audience)? {
        return Err(TokenError::WrongAudience);
    }
    let exp = claims.time("exp")?;
    let nbf = claims.time("nbf")?;
    let iat = claims.time("iat")?;
    if exp <= expect.now {
        return Err(TokenError::Expired);
    }
    if nbf > expect.now + SKEW || iat > expect.now + SKEW {
        return Err(TokenError::NotYetValid);
    }
    if exp - iat > MAX_ACCESS_LIFETIME || exp < iat {
        return Err(TokenError::LifetimeTooLong(MAX_ACCESS_LIFETIME));
    }
    serde_json::from_value(serde_json::Value::Object(claims.0))
        .map_err(|_| TokenError::InvalidClaim("claims"))
}

/// A token presented with a request, checked together with its DPoP proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presented {
    pub claims: AccessClaims,
    /// The proof, when the token is bound; the caller records its `jti` (per `jkt`) as used.
    pub proof: Option<crate::dpop::Proof>,
}

/// Verifies a token as a resource server receives it: the token itself ([`verify`]), then,
/// if it is bound to a key (`cnf.jkt`), a DPoP proof for this very request (`method`,
/// `url`, `ath`), signed by that key. A bound token without a proof, or a proof with an
/// unbound token, is refused. Replay of the proof and revocation are the caller's checks.
pub fn verify_request(
    token: &str,
    proof: Option<&str>,
    method: &str,
    url: &str,
    keys: &TrustedKeys,
    expect: &Expect<'_>,
) -> Result<Presented, TokenError> {
    let claims = verify(token, keys, expect)?;
    check_binding(claims, token, proof, method, url, expect.now)
}

/// The DPoP part of [`verify_request`], for claims already verified.
fn check_binding(
    claims: AccessClaims,
    token: &str,
    proof: Option<&str>,
    method: &str,
    url: &str,
    now: i64,
) -> Result<Presented, TokenError> {
    let proof = match (&claims.cnf, proof) {
        (Some(cnf), Some(p)) => {
            let checked = crate::dpop::verify(
                p,
                &crate::dpop::Expect {
                    method,
                    url,
                    access_token: Some(token),
                    nonce: None,
                    now,
                },
            )?;
            if checked.jkt != cnf.jkt {
                return Err(TokenError::WrongProofKey);
            }
            Some(checked)
        }
        (Some(_), None) => return Err(TokenError::ProofRequired),
        (None, Some(_)) => {
            return Err(TokenError::InvalidProof(
                "the token is not bound to a key".into(),
            ));
        }
        (None, None) => None,
    };
    Ok(Presented { claims, proof })
}

/// A resource server's verifier: the trusted keys, and the tokens it has already verified,
/// so a token used for many calls has its signature checked once while its DPoP proof is
/// checked on every call. Expiry, issuer, audience and the signing key's trust are checked
/// again on each hit; changing the keys empties the cache.
pub struct Verifier {
    keys: TrustedKeys,
    cache: std::sync::Mutex<HashMap<[u8; 32], (String, AccessClaims)>>,
    capacity: usize,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    pub fn new(keys: TrustedKeys, capacity: usize) -> Self {
        Self {
            keys,
            cache: std::sync::Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
        }
    }

    /// Replaces the trusted keys (a key was rotated out or revoked) and forgets every
    /// cached token.
    pub fn set_keys(&mut self, keys: TrustedKeys) {
        self.keys = keys;
        match self.cache.get_mut() {
            Ok(c) => c.clear(),
            Err(p) => p.into_inner().clear(),
        }
    }

    /// As [`verify_request`].
    pub fn verify_request(
        &self,
        token: &str,
        proof: Option<&str>,
        method: &str,
        url: &str,
        expect: &Expect<'_>,
    ) -> Result<Presented, TokenError> {
        use sha2::Digest;
        let digest: [u8; 32] = sha2::Sha256::digest(token.as_bytes()).into();
        let hit = self.cache.lock().ok().and_then(|c| c.get(&digest).cloned());
        let claims = match hit {
            Some((kid, claims)) if self.keys.contains(&kid) => {
                if claims.exp <= expect.now {
                    return Err(TokenError::Expired);
                }
                if claims.iss != expect.issuer {
                    return Err(TokenError::WrongIssuer);
                }
                if claims.aud != expect.audience {
                    return Err(TokenError::WrongAudience);
                }
                claims
            }
            _ => {
                let claims = verify(token, &self.keys, expect)?;
                let kid = Unverified::parse(token, &[ACCESS_TYP])?.kid()?.to_owned();
                if let Ok(mut c) = self.cache.lock() {
                    if c.len() >= self.capacity {
                        c.retain(|_, (_, cl)| cl.exp > expect.now);
                        if c.len() >= self.capacity {
                            c.clear();
                        }
                    }
                    c.insert(digest, (kid, claims.clone()));
                }
                claims
            }
        };
        check_binding(claims, token, proof, method, url, expect.now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::b64;
    use crate::claims::{Act, Cnf};
    use serde_json::json;

    const NOW: i64 = 1_790_000_000;

    fn claims() -> AccessClaims {
        AccessClaims {
            iss: "https://aim.example".into(),
            sub: "spiffe://aim.example/agent/claims-bot".into(),
            aud: "https://tools.example".into(),
            exp: NOW + 300,
            iat: NOW,
            nbf: NOW,
            jti: "j-1".into(),
            client_id: "id-1".into(),
            scope: "crm billing".into(),
            aim_task: "task-1".into(),
            sid: "task-1".into(),
            act: Some(Act {
                sub: "spiffe://aim.example/agent/parent".into(),
                client_id: Some("id-0".into()),
                cnf: None,
                act: None,
            }),
            cnf: Some(Cnf {
                jkt: "thumb".into(),
            }),
            aim_parents: Vec::new(),
        }
    }

    fn expect() -> Expect<'static> {
        Expect {
            issuer: "https://aim.example",
            audience: "https://tools.example",
            now: NOW + 10,
        }
    }

    fn setup() -> (SigningKey, TrustedKeys) {
        let (key, _) = SigningKey::generate().unwrap();
        let mut keys = TrustedKeys::default();
        keys.insert(key.kid(), key.public()).unwrap();
        (key, keys)
    }

    #[test]
    fn a_minted_token_verifies() {
        let (key, keys) = setup();
        let token = mint(&key, &claims()).unwrap();
        assert_eq!(verify(&token, &keys, &expect()), Ok(claims()));
        assert_eq!(claims().scopes().collect::<Vec<_>>(), ["crm", "billing"]);
    }

    /// Re-signs arbitrary header and claims with the real key, to test what a verifier does
    /// with a token aim would never mint.
    fn forge(key: &SigningKey, header: serde_json::Value, claims: serde_json::Value) -> String {
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        format!("{input}.{}", b64(&key.raw_sign(input.as_bytes())))
    }

    #[test]
    fn refusals() {
        let (key, keys) = setup();
        let kid = key.kid().to_owned();
        let good = serde_json::to_value(claims()).unwrap();
        let header = json!({ "alg": "EdDSA", "typ": "at+jwt", "kid": kid });
        let with = |field: &str, v: serde_json::Value| {
            let mut c = good.clone();
            if v.is_null() {
                c.as_object_mut().unwrap().remove(field);
            } else {
                c[field] = v;
            }
            forge(&key, header.clone(), c)
        };
        let cases = [
            (with("exp", json!("1790000300")), "invalid_claim"),
            (with("exp", json!(-5)), "invalid_claim"),
            (with("exp", json!(1e300)), "invalid_claim"),
            (with("exp", serde_json::Value::Null), "invalid_claim"),
            (with("nbf", json!("now")), "invalid_claim"),
            (with("exp", json!(NOW + 5)), "token_expired"),
            (with("exp", json!(NOW + 100_000)), "lifetime_too_long"),
            (with("nbf", json!(NOW + 1000)), "token_not_yet_valid"),
            (with("aud", json!("https://elsewhere")), "wrong_audience"),
            (with("aud", json!(5)), "invalid_claim"),
            (with("iss", json!("https://evil")), "wrong_issuer"),
            (with("scope", json!(["crm"])), "invalid_claim"),
            (
                forge(
                    &key,
                    json!({ "alg": "EdDSA", "typ": "at+jwt", "kid": "unknown" }),
                    good.clone(),
                ),
                "unknown_kid",
            ),
            (
                forge(
                    &key,
                    json!({ "alg": "ES256", "typ": "at+jwt", "kid": kid }),
                    good.clone(),
                ),
                "alg_not_allowed",
            ),
        ];
        for (token, code) in cases {
            assert_eq!(
                verify(&token, &keys, &expect())
                    .map(|_| ())
                    .unwrap_err()
                    .code(),
                code
            );
        }
        // A token signed by another key under our kid.
        let (other, _) = SigningKey::generate().unwrap();
        let stolen = forge(&other, header.clone(), good.clone());
        assert_eq!(
            verify(&stolen, &keys, &expect()).unwrap_err(),
            TokenError::BadSignature
        );
        // HS256 "signed" with our public key as the HMAC secret.
        let hs = json!({ "alg": "HS256", "typ": "at+jwt", "kid": kid });
        let input = format!(
            "{}.{}",
            b64(hs.to_string().as_bytes()),
            b64(good.to_string().as_bytes())
        );
        let mac = aws_lc_rs::hmac::sign(
            &aws_lc_rs::hmac::Key::new(
                aws_lc_rs::hmac::HMAC_SHA256,
                key.public().to_json().to_string().as_bytes(),
            ),
            input.as_bytes(),
        );
        let hs_token = format!("{input}.{}", b64(mac.as_ref()));
        assert_eq!(
            verify(&hs_token, &keys, &expect()).unwrap_err().code(),
            "alg_not_allowed"
        );
        // alg none, empty signature.
        let none = json!({ "alg": "none", "typ": "at+jwt", "kid": kid });
        let none_token = format!(
            "{}.{}.",
            b64(none.to_string().as_bytes()),
            b64(good.to_string().as_bytes())
        );
        assert_eq!(
            verify(&none_token, &keys, &expect()).unwrap_err().code(),
            "alg_not_allowed"
        );
    }

    #[test]
    fn bound_tokens_need_a_proof_from_their_key() {
        let (key, keys) = setup();
        let holder = crate::client::ClientKey::generate("ES256").unwrap();
        let mut c = claims();
        c.cnf = Some(Cnf { jkt: holder.kid() });
        let token = mint(&key, &c).unwrap();
        let url = "https://tools.example/crm/records/42";
        let now = expect().now;
        let proof = holder.dpop_proof("GET", url, Some(&token), now).unwrap();
        let got = verify_request(&token, Some(&proof), "GET", url, &keys, &expect()).unwrap();
        assert_eq!(got.proof.unwrap().jkt, holder.kid());
        let code = |proof: Option<&str>| {
            verify_request(&token, proof, "GET", url, &keys, &expect())
                .unwrap_err()
                .code()
        };
        assert_eq!(code(None), "dpop_required");
        let thief = crate::client::ClientKey::generate("ES256").unwrap();
        let stolen = thief.dpop_proof("GET", url, Some(&token), now).unwrap();
        assert_eq!(code(Some(&stolen)), "dpop_key_mismatch");
        let for_other_token = holder.dpop_proof("GET", url, Some("other"), now).unwrap();
        assert_eq!(code(Some(&for_other_token)), "dpop_mismatch");
        // A bearer token with a proof is refused too.
        let bearer = mint(
            &key,
            &AccessClaims {
                cnf: None,
                ..claims()
            },
        )
        .unwrap();
        let p = holder.dpop_proof("GET", url, Some(&bearer), now).unwrap();
        assert_eq!(
            verify_request(&bearer, Some(&p), "GET", url, &keys, &expect())
                .unwrap_err()
                .code(),
            "invalid_dpop_proof"
        );
    }

    #[test]
    fn the_cache_rechecks_what_can_change() {
        let (key, keys) = setup();
        let holder = crate::client::ClientKey::generate("EdDSA").unwrap();
        let c = AccessClaims {
            cnf: Some(Cnf { jkt: holder.kid() }),
            ..claims()
        };
        let token = mint(&key, &c).unwrap();
        let url = "https://tools.example/x";
        let mut v = Verifier::new(keys, 2);
        for _ in 0..3 {
            let p = holder
                .dpop_proof("GET", url, Some(&token), expect().now)
                .unwrap();
            assert!(
                v.verify_request(&token, Some(&p), "GET", url, &expect())
                    .is_ok()
            );
            // A cached token still needs its proof.
            assert_eq!(
                v.verify_request(&token, None, "GET", url, &expect())
                    .unwrap_err()
                    .code(),
                "dpop_required"
            );
        }
        let p = holder
            .dpop_proof("GET", url, Some(&token), NOW + 400)
            .unwrap();
        let later = Expect {
            now: NOW + 400,
            ..expect()
        };
        assert_eq!(
            v.verify_request(&token, Some(&p), "GET", url, &later)
                .unwrap_err(),
            TokenError::Expired
        );
        let other_aud = Expect {
            audience: "https://other",
            ..expect()
        };
        let p = holder.dpop_proof("GET", url, Some(&token), NOW).unwrap();
        assert_eq!(
            v.verify_request(&token, Some(&p), "GET", url, &other_aud)
                .unwrap_err(),
            TokenError::WrongAudience
        );
        // The signing key is dropped: cached tokens die with it.
        v.set_keys(TrustedKeys::default());
        let p = holder.dpop_proof("GET", url, Some(&token), NOW).unwrap();
        assert_eq!(
            v.verify_request(&token, Some(&p), "GET", url, &expect())
                .unwrap_err(),
            TokenError::UnknownKey
        );
    }
}
