//! Public keys as JWKs (RFC 7517): Ed25519 (`OKP`) and P-256 (`EC`), the only kinds aim
//! accepts. A key fixes its algorithm (EdDSA or ES256); a token's header never chooses it.

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED, ED25519, ParsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::TokenError;

/// A public signing key.
#[derive(Clone, PartialEq, Eq)]
pub enum PublicJwk {
    Ed25519 { x: String },
    P256 { x: String, y: String },
}

impl std::fmt::Debug for PublicJwk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicJwk({})", self.thumbprint())
    }
}

fn member<'a>(v: &'a Value, name: &str) -> Result<Option<&'a str>, TokenError> {
    match v.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(TokenError::InvalidKey(format!("`{name}` must be a string"))),
    }
}

fn coordinate(v: &Value, name: &str) -> Result<String, TokenError> {
    let s =
        member(v, name)?.ok_or_else(|| TokenError::InvalidKey(format!("`{name}` is missing")))?;
    let bytes = URL_SAFE_NO_PAD.decode(s).map_err(|_| {
        TokenError::InvalidKey(format!("`{name}` is not base64url without padding"))
    })?;
    if bytes.len() != 32 {
        return Err(TokenError::InvalidKey(format!("`{name}` must be 32 bytes")));
    }
    Ok(s.to_owned())
}

impl PublicJwk {
    /// Parses a public JWK, refusing private keys, other key types and curves, and points
    /// that are not on the curve.
    pub fn from_json(v: &Value) -> Result<Self, TokenError> {
        Self::with_verifier(v).map(|(key, _)| key)
    }

    /// As [`PublicJwk::from_json`], with the parsed key ready to verify (parsed once).
    pub fn with_verifier(v: &Value) -> Result<(Self, ParsedPublicKey), TokenError> {
        if !v.is_object() {
            return Err(TokenError::InvalidKey("a JWK is a JSON object".into()));
        }
        for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
            if v.get(private).is_some() {
                return Err(TokenError::InvalidKey(format!(
                    "the key holds private member `{private}`: register only the public key"
                )));
            }
        }
        if let Some(u) = member(v, "use")?
            && u != "sig"
        {
            return Err(TokenError::InvalidKey("`use` must be `sig`".into()));
        }
        let key = match (member(v, "kty")?, member(v, "crv")?) {
            (Some("OKP"), Some("Ed25519")) => PublicJwk::Ed25519 {
                x: coordinate(v, "x")?,
            },
            (Some("EC"), Some("P-256")) => PublicJwk::P256 {
                x: coordinate(v, "x")?,
                y: coordinate(v, "y")?,
            },
            _ => {
                return Err(TokenError::InvalidKey(
                    "only Ed25519 (`kty` OKP) and P-256 (`kty` EC) keys are accepted".into(),
                ));
            }
        };
        if let Some(alg) = member(v, "alg")?
            && alg != key.alg_name()
        {
            return Err(TokenError::InvalidKey(format!(
                "`alg` {alg} does not fit this key, which signs with {}",
                key.alg_name()
            )));
        }
        let verifier = key.verifier()?;
        Ok((key, verifier))
    }

    /// The raw public key: 32 bytes for Ed25519, the uncompressed point for P-256.
    fn raw(&self) -> Vec<u8> {
        let d = |s: &str| URL_SAFE_NO_PAD.decode(s).unwrap_or_default();
        match self {
            PublicJwk::Ed25519 { x } => d(x),
            PublicJwk::P256 { x, y } => {
                let mut out = vec![4];
                out.extend(d(x));
                out.extend(d(y));
                out
            }
        }
    }

    /// The one JOSE algorithm this key verifies.
    pub fn alg_name(&self) -> &'static str {
        match self {
            PublicJwk::Ed25519 { .. } => "EdDSA",
            PublicJwk::P256 { .. } => "ES256",
        }
    }

    /// The RFC 7638 thumbprint (SHA-256, base64url): the key's id and its `cnf.jkt`.
    pub fn thumbprint(&self) -> String {
        // The required members in lexicographic order, no whitespace.
        let canonical = match self {
            PublicJwk::Ed25519 { x } => format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#),
            PublicJwk::P256 { x, y } => {
                format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#)
            }
        };
        URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
    }

    /// The key as a JWK, with `kid` (its thumbprint), `alg` and `use`.
    pub fn to_json(&self) -> Value {
        let mut v = match self {
            PublicJwk::Ed25519 { x } => json!({ "kty": "OKP", "crv": "Ed25519", "x": x }),
            PublicJwk::P256 { x, y } => json!({ "kty": "EC", "crv": "P-256", "x": x, "y": y }),
        };
        v["kid"] = json!(self.thumbprint());
        v["alg"] = json!(self.alg_name());
        v["use"] = json!("sig");
        v
    }

    /// The parsed key, ready to verify signatures with its one algorithm (ES256 signatures
    /// in the fixed `r || s` form JOSE uses). Parse once, verify many times.
    pub fn verifier(&self) -> Result<ParsedPublicKey, TokenError> {
        let alg: &'static dyn aws_lc_rs::signature::VerificationAlgorithm = match self {
            PublicJwk::Ed25519 { .. } => &ED25519,
            PublicJwk::P256 { .. } => &ECDSA_P256_SHA256_FIXED,
        };
        ParsedPublicKey::new(alg, self.raw())
            .map_err(|_| TokenError::InvalidKey("the key is not a valid point".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_8037_thumbprint() {
        // RFC 8037 appendix A.3.
        let k = PublicJwk::from_json(&json!({
            "kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
        }))
        .unwrap();
        assert_eq!(
            k.thumbprint(),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
        assert_eq!(k.alg_name(), "EdDSA");
    }

    #[test]
    fn refuses_what_is_not_a_public_signing_key() {
        let x = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
        let cases = [
            json!("a string"),
            json!({ "kty": "OKP", "crv": "Ed25519", "x": x, "d": x }),
            json!({ "kty": "OKP", "crv": "X25519", "x": x }),
            json!({ "kty": "RSA", "n": "AQAB", "e": "AQAB" }),
            json!({ "kty": "oct", "k": "c2VjcmV0" }),
            json!({ "kty": "OKP", "crv": "Ed25519", "x": "short" }),
            json!({ "kty": "OKP", "crv": "Ed25519", "x": x, "alg": "ES256" }),
            json!({ "kty": "OKP", "crv": "Ed25519", "x": x, "use": "enc" }),
            json!({ "kty": "OKP", "crv": "Ed25519", "x": 5 }),
            // Not a point on P-256.
            json!({ "kty": "EC", "crv": "P-256", "x": x, "y": x }),
        ];
        for c in cases {
            assert!(
                matches!(PublicJwk::from_json(&c), Err(TokenError::InvalidKey(_))),
                "{c}"
            );
        }
    }
}
