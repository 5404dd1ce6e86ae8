//! Compact JWS checking, strict by construction: the header may only name a key (`kid`)
//! and an algorithm from the allow-list; the key, found by `kid` among keys aim already
//! trusts, fixes the algorithm; nothing in a token can bring its own key (`jwk`, `jku`,
//! `x5u`, `x5c`) or extension (`crit`). Claims are read with exact types: a time is an
//! integer number of seconds, never a string or a float.
//!
//! This is written on aws-lc-rs directly rather than through a JWT crate so each refusal
//! names its exact cause (tests and audit events depend on it), the parsed verifying key is
//! reused across calls, and the token is decoded once.

use aws_lc_rs::signature::ParsedPublicKey;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

use crate::TokenError;

/// The longest token or proof accepted, in bytes.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

/// Algorithms a token may name; the key still decides which one of them applies.
pub const ALLOWED_ALGS: [&str; 2] = ["EdDSA", "ES256"];

/// Algorithms a trusted external issuer's workload token may name.
pub const EXTERNAL_ALGS: [&str; 3] = ["EdDSA", "ES256", "RS256"];

/// A JWS split into its parts, with the header checked and the claims decoded but the
/// signature not yet verified.
#[derive(Debug)]
pub struct Unverified<'a> {
    pub header: Map<String, Value>,
    pub claims: Map<String, Value>,
    signing_input: &'a str,
    signature: Vec<u8>,
}

fn decode_json(part: &str) -> Result<Map<String, Value>, TokenError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| TokenError::Malformed)?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(TokenError::Malformed),
    }
}

impl<'a> Unverified<'a> {
    /// Splits and decodes `token`, and checks its header: an allowed `alg`, no embedded
    /// key or key reference, and `typ` one of `typs` (compared without case, with or without
    /// the `application/` prefix; `""` admits a header without `typ`).
    pub fn parse(token: &'a str, typs: &'static [&'static str]) -> Result<Self, TokenError> {
        Self::parse_with_algs(token, typs, &ALLOWED_ALGS)
    }

    /// As [`Unverified::parse`], with another algorithm allow-list (tokens from trusted
    /// external issuers may also be RS256).
    pub fn parse_with_algs(
        token: &'a str,
        typs: &'static [&'static str],
        algs: &[&str],
    ) -> Result<Self, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Malformed);
        }
        let mut parts = token.split('.');
        let (Some(h), Some(c), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        let header = decode_json(h)?;
        let alg = header.get("alg").and_then(Value::as_str).unwrap_or("");
        if !algs.contains(&alg) {
            return Err(TokenError::AlgorithmNotAllowed(
                alg.chars().take(16).filter(|c| !c.is_control()).collect(),
            ));
        }
        for forbidden in ["jwk", "jku", "x5u", "x5c", "x5t", "x5t#S256", "crit"] {
            if header.contains_key(forbidden) {
                return Err(TokenError::HeaderKeyForbidden(match forbidden {
                    "jwk" => "jwk",
                    "jku" => "jku",
                    "x5u" => "x5u",
                    "x5c" => "x5c",
                    "crit" => "crit",
                    _ => "x5t",
                }));
            }
        }
        let got = match header.get("typ") {
            None => String::new(),
            Some(Value::String(t)) => t.to_ascii_lowercase(),
            Some(_) => return Err(TokenError::WrongType(typs.first().copied().unwrap_or(""))),
        };
        if !typs.contains(&got.strip_prefix("application/").unwrap_or(&got)) {
            return Err(TokenError::WrongType(typs.first().copied().unwrap_or("")));
        }
        let signature = URL_SAFE_NO_PAD
            .decode(s)
            .map_err(|_| TokenError::Malformed)?;
        Ok(Self {
            claims: decode_json(c)?,
            header,
            signing_input: &token[..h.len() + 1 + c.len()],
            signature,
        })
    }

    /// The `kid`: 1 to 128 characters of base64url, so it can never be a path or a URL.
    pub fn kid(&self) -> Result<&str, TokenError> {
        let kid = self
            .header
            .get("kid")
            .and_then(Value::as_str)
            .ok_or(TokenError::InvalidKid)?;
        if kid.is_empty()
            || kid.len() > 128
            || !kid
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(TokenError::InvalidKid);
        }
        Ok(kid)
    }

    pub fn alg(&self) -> &str {
        self.header.get("alg").and_then(Value::as_str).unwrap_or("")
    }

    /// Verifies the signature with `key`, whose algorithm is `alg`; the header must name
    /// that same algorithm.
    pub fn verify(self, key: &ParsedPublicKey, alg: &str) -> Result<Claims, TokenError> {
        if self.alg() != alg {
            return Err(TokenError::AlgorithmNotAllowed(self.alg().to_owned()));
        }
        key.verify_sig(self.signing_input.as_bytes(), &self.signature)
            .map_err(|_| TokenError::BadSignature)?;
        Ok(Claims(self.claims))
    }
}

/// Verified claims, read with exact types.
#[derive(Debug, Clone)]
pub struct Claims(pub Map<String, Value>);

impl Claims {
    pub fn str(&self, name: &'static str) -> Result<&str, TokenError> {
        match self.0.get(name) {
            Some(Value::String(s)) if !s.is_empty() => Ok(s),
            _ => Err(TokenError::InvalidClaim(name)),
        }
    }

    pub fn opt_str(&self, name: &'static str) -> Result<Option<&str>, TokenError> {
        match self.0.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(TokenError::InvalidClaim(name)),
        }
    }

    /// A NumericDate as whole seconds: an integer in `0..=253402300799` (year 9999).
    pub fn time(&self, name: &'static str) -> Result<i64, TokenError> {
        match self.0.get(name).and_then(Value::as_i64) {
            Some(t) if (0..=253_402_300_799).contains(&t) => Ok(t),
            _ => Err(TokenError::InvalidClaim(name)),
        }
    }

    pub fn opt_time(&self, name: &'static str) -> Result<Option<i64>, TokenError> {
        if self.0.contains_key(name) {
            self.time(name).map(Some)
        } else {
            Ok(None)
        }
    }

    /// `aud` holds `audience`, as a string or in a list of strings.
    pub fn has_audience(&self, audience: &str) -> Result<bool, TokenError> {
        match self.0.get("aud") {
            Some(Value::String(s)) => Ok(s == audience),
            Some(Value::Array(list)) if list.iter().all(Value::is_string) => {
                Ok(list.iter().any(|a| a.as_str() == Some(audience)))
            }
            _ => Err(TokenError::InvalidClaim("aud")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::b64;

    const AT: &[&str] = &["at+jwt"];

    fn token(header: &str, claims: &str) -> String {
        format!(
            "{}.{}.{}",
            b64(header.as_bytes()),
            b64(claims.as_bytes()),
            b64(b"sig")
        )
    }

    #[test]
    fn header_refusals_name_their_cause() {
        let claims = r#"{"sub":"x"}"#;
        let cases: [(&str, &str); 9] = [
            (
                r#"{"alg":"none","typ":"at+jwt","kid":"k"}"#,
                "alg_not_allowed",
            ),
            (
                r#"{"alg":"HS256","typ":"at+jwt","kid":"k"}"#,
                "alg_not_allowed",
            ),
            (r#"{"typ":"at+jwt","kid":"k"}"#, "alg_not_allowed"),
            (
                r#"{"alg":"EdDSA","typ":"at+jwt","kid":"k","jwk":{}}"#,
                "header_key_forbidden",
            ),
            (
                r#"{"alg":"EdDSA","typ":"at+jwt","kid":"k","jku":"https://x"}"#,
                "header_key_forbidden",
            ),
            (
                r#"{"alg":"EdDSA","typ":"at+jwt","kid":"k","x5u":"https://x"}"#,
                "header_key_forbidden",
            ),
            (
                r#"{"alg":"EdDSA","typ":"at+jwt","kid":"k","crit":["b64"]}"#,
                "header_key_forbidden",
            ),
            (r#"{"alg":"EdDSA","typ":"JWT","kid":"k"}"#, "wrong_typ"),
            (r#"["not","an","object"]"#, "malformed_token"),
        ];
        for (header, code) in cases {
            let got = Unverified::parse(&token(header, claims), AT).unwrap_err();
            assert_eq!(got.code(), code, "{header}");
        }
        for kid in ["../../etc/passwd", "", "a/b", "a b", &"k".repeat(129)] {
            let header =
                serde_json::json!({ "alg": "EdDSA", "typ": "at+jwt", "kid": kid }).to_string();
            let t = token(&header, claims);
            let u = Unverified::parse(&t, AT).unwrap();
            assert_eq!(u.kid(), Err(TokenError::InvalidKid), "{kid}");
        }
        let t = token(
            r#"{"alg":"ES256","typ":"application/AT+JWT","kid":"abc-_1"}"#,
            claims,
        );
        let ok = Unverified::parse(&t, AT).unwrap();
        assert_eq!(ok.kid(), Ok("abc-_1"));
        for bad in [
            "a.b",
            "a.b.c.d",
            "!!.e30.e30",
            &"a".repeat(MAX_TOKEN_LEN + 1),
        ] {
            assert_eq!(
                Unverified::parse(bad, AT).unwrap_err(),
                TokenError::Malformed
            );
        }
    }

    #[test]
    fn times_are_integers_in_range() {
        let c = |v: Value| Claims(serde_json::from_value(serde_json::json!({ "exp": v })).unwrap());
        assert_eq!(
            c(serde_json::json!(1_700_000_000)).time("exp"),
            Ok(1_700_000_000)
        );
        for bad in [
            serde_json::json!("1700000000"),
            serde_json::json!(-1),
            serde_json::json!(1.5e300),
            serde_json::json!(17e8),
            serde_json::json!(99_999_999_999_999u64),
            serde_json::json!(null),
        ] {
            assert_eq!(
                c(bad.clone()).time("exp"),
                Err(TokenError::InvalidClaim("exp")),
                "{bad}"
            );
        }
        assert_eq!(
            Claims(Map::new()).time("exp"),
            Err(TokenError::InvalidClaim("exp"))
        );
    }
}
