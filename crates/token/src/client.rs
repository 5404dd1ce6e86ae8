//! The agent's side: a private key (Ed25519 or P-256) that signs client assertions (RFC 7523)
//! and, later, DPoP proofs. `aim token issue` uses it with a key file; so do the tests.
//! Key files are PKCS#8 in PEM (`-----BEGIN PRIVATE KEY-----`), as `openssl genpkey` writes.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair,
};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::jwk::PublicJwk;
use crate::{TokenError, b64};

enum Pair {
    Ed25519(Ed25519KeyPair),
    P256(EcdsaKeyPair),
}

pub struct ClientKey {
    pair: Pair,
    public: PublicJwk,
    pkcs8: Vec<u8>,
}

impl std::fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ClientKey({})", self.public.thumbprint())
    }
}

impl ClientKey {
    /// A new key; `alg` is `EdDSA` or `ES256`.
    pub fn generate(alg: &str) -> Result<Self, TokenError> {
        let rng = SystemRandom::new();
        let fail = |_| TokenError::InvalidKey("could not generate a key".into());
        let pkcs8 = match alg {
            "EdDSA" => Ed25519KeyPair::generate_pkcs8(&rng).map_err(fail)?,
            "ES256" => EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                .map_err(fail)?,
            other => {
                return Err(TokenError::InvalidKey(format!(
                    "`{other}` is not EdDSA or ES256"
                )));
            }
        };
        Self::from_pkcs8(pkcs8.as_ref())
    }

    /// An Ed25519 or P-256 private key in PKCS#8 DER (v1, as `openssl genpkey` writes, or
    /// v2 with the public key). It is kept, and written by [`ClientKey::to_pem`], as v1
    /// (RFC 5208; RFC 8410 for Ed25519), the form every other tool reads.
    pub fn from_pkcs8(der: &[u8]) -> Result<Self, TokenError> {
        let unwritable = |_| TokenError::InvalidKey("the key cannot be written as PKCS#8".into());
        if let Ok(pair) = Ed25519KeyPair::from_pkcs8(der)
            .or_else(|_| Ed25519KeyPair::from_pkcs8_maybe_unchecked(der))
        {
            let public = PublicJwk::Ed25519 {
                x: b64(pair.public_key().as_ref()),
            };
            let pkcs8 = pair.to_pkcs8v1().map_err(unwritable)?.as_ref().to_vec();
            return Ok(Self {
                pair: Pair::Ed25519(pair),
                public,
                pkcs8,
            });
        }
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
            .map_err(|_| TokenError::InvalidKey("not an Ed25519 or P-256 PKCS#8 key".into()))?;
        let point = pair.public_key().as_ref();
        if point.len() != 65 || point[0] != 4 {
            return Err(TokenError::InvalidKey(
                "unexpected P-256 public key form".into(),
            ));
        }
        let public = PublicJwk::P256 {
            x: b64(&point[1..33]),
            y: b64(&point[33..]),
        };
        let pkcs8 = pair.to_pkcs8v1().map_err(unwritable)?.as_ref().to_vec();
        Ok(Self {
            pair: Pair::P256(pair),
            public,
            pkcs8,
        })
    }

    pub fn from_pem(pem: &str) -> Result<Self, TokenError> {
        let body: String = pem
            .lines()
            .map(str::trim)
            .skip_while(|l| *l != "-----BEGIN PRIVATE KEY-----")
            .skip(1)
            .take_while(|l| *l != "-----END PRIVATE KEY-----")
            .collect();
        let der = STANDARD
            .decode(body)
            .map_err(|_| TokenError::InvalidKey("expected a PKCS#8 PEM private key".into()))?;
        Self::from_pkcs8(&der)
    }

    pub fn to_pem(&self) -> String {
        let text = STANDARD.encode(&self.pkcs8);
        let mut out = String::from("-----BEGIN PRIVATE KEY-----\n");
        for chunk in text.as_bytes().chunks(64) {
            out.push_str(&String::from_utf8_lossy(chunk));
            out.push('\n');
        }
        out.push_str("-----END PRIVATE KEY-----\n");
        out
    }

    pub fn public(&self) -> &PublicJwk {
        &self.public
    }

    pub fn kid(&self) -> String {
        self.public.thumbprint()
    }

    /// A compact JWS of `claims` under `header` (to which `alg` is added).
    pub fn sign(&self, mut header: Value, claims: &Value) -> Result<String, TokenError> {
        header["alg"] = json!(self.public.alg_name());
        let mut out = b64(header.to_string().as_bytes());
        out.push('.');
        out.push_str(&b64(claims.to_string().as_bytes()));
        let signature = match &self.pair {
            Pair::Ed25519(p) => p.sign(out.as_bytes()).as_ref().to_vec(),
            Pair::P256(p) => p
                .sign(&SystemRandom::new(), out.as_bytes())
                .map_err(|_| TokenError::InvalidKey("signing failed".into()))?
                .as_ref()
                .to_vec(),
        };
        out.push('.');
        out.push_str(&b64(&signature));
        Ok(out)
    }

    /// A DPoP proof (RFC 9449) for one request, with `ath` when presenting `access_token`.
    pub fn dpop_proof(
        &self,
        method: &str,
        url: &str,
        access_token: Option<&str>,
        now: i64,
    ) -> Result<String, TokenError> {
        self.dpop_proof_with_nonce(method, url, access_token, None, now)
    }

    /// As [`ClientKey::dpop_proof`], carrying the server's `DPoP-Nonce`.
    pub fn dpop_proof_with_nonce(
        &self,
        method: &str,
        url: &str,
        access_token: Option<&str>,
        nonce: Option<&str>,
        now: i64,
    ) -> Result<String, TokenError> {
        let mut claims = json!({
            "jti": uuid::Uuid::now_v7().to_string(),
            "htm": method,
            "htu": url,
            "iat": now,
        });
        if let Some(t) = access_token {
            claims["ath"] = json!(crate::dpop::token_hash(t));
        }
        if let Some(n) = nonce {
            claims["nonce"] = json!(n);
        }
        let mut jwk = self.public.to_json();
        if let Some(o) = jwk.as_object_mut() {
            o.remove("kid");
            o.remove("use");
            o.remove("alg");
        }
        self.sign(json!({ "typ": crate::dpop::DPOP_TYP, "jwk": jwk }), &claims)
    }

    /// A client assertion: `iss` = `sub` = `client_id`, `aud` = the token endpoint, a fresh
    /// `jti`, valid for `lifetime` seconds from `now`.
    pub fn assertion(
        &self,
        client_id: &str,
        audience: &str,
        now: i64,
        lifetime: i64,
    ) -> Result<String, TokenError> {
        self.sign(
            json!({ "typ": "JWT", "kid": self.kid() }),
            &json!({
                "iss": client_id,
                "sub": client_id,
                "aud": audience,
                "iat": now,
                "exp": now + lifetime,
                "jti": uuid::Uuid::now_v7().to_string(),
            }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jose::Unverified;

    /// Runs `openssl` (the real one, which `.ci/run` installs) with `args`.
    fn openssl(args: &[&str]) -> std::process::Output {
        std::process::Command::new("openssl")
            .args(args)
            .output()
            .expect("openssl is installed (.ci/run installs it)")
    }

    #[test]
    fn key_files_are_pkcs8_that_openssl_reads_and_aim_reads_openssl_keys() {
        let dir = tempfile::tempdir().unwrap();
        for (alg, genpkey) in [
            ("EdDSA", vec!["-algorithm", "ed25519"]),
            (
                "ES256",
                vec!["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
            ),
        ] {
            // Ours, read by OpenSSL (3.0 refuses PKCS#8 v2 Ed25519 keys as "unsupported").
            let ours = dir.path().join(format!("{alg}-aim.pem"));
            let key = ClientKey::generate(alg).unwrap();
            std::fs::write(&ours, key.to_pem()).unwrap();
            let out = openssl(&["pkey", "-in", ours.to_str().unwrap(), "-noout"]);
            assert!(
                out.status.success(),
                "{alg}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            // Read back, it is the same key.
            let again = ClientKey::from_pem(&std::fs::read_to_string(&ours).unwrap()).unwrap();
            assert_eq!(again.kid(), key.kid());
            // OpenSSL's, read by aim.
            let theirs = dir.path().join(format!("{alg}-openssl.pem"));
            let mut args = vec!["genpkey"];
            args.extend(&genpkey);
            args.extend(["-out", theirs.to_str().unwrap()]);
            assert!(openssl(&args).status.success());
            let pem = std::fs::read_to_string(&theirs).unwrap();
            let from_openssl = ClientKey::from_pem(&pem).unwrap();
            assert_eq!(from_openssl.public().alg_name(), alg);
            // And written back as OpenSSL wrote it.
            assert_eq!(from_openssl.to_pem(), pem, "{alg}");
        }
    }

    #[test]
    fn both_kinds_sign_what_their_public_key_verifies() {
        for alg in ["EdDSA", "ES256"] {
            let key = ClientKey::generate(alg).unwrap();
            let again = ClientKey::from_pem(&key.to_pem()).unwrap();
            assert_eq!(again.public(), key.public());
            let token = key
                .assertion("client", "https://aim/oauth/token", 100, 60)
                .unwrap();
            let u = Unverified::parse(&token, crate::assertion::ASSERTION_TYPS).unwrap();
            assert_eq!(u.kid().unwrap(), key.kid());
            let claims = u.verify(&key.public().verifier().unwrap(), alg).unwrap();
            assert_eq!(claims.str("iss").unwrap(), "client");
            // The other algorithm's name is refused even with the right key.
            let other = if alg == "EdDSA" { "ES256" } else { "EdDSA" };
            let u = Unverified::parse(&token, crate::assertion::ASSERTION_TYPS).unwrap();
            assert!(u.verify(&key.public().verifier().unwrap(), other).is_err());
        }
        assert!(ClientKey::from_pem("nonsense").is_err());
    }
}
