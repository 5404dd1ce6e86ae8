//! aim's own signing keys (Ed25519). The private half lives only sealed with the KEK in the
//! store and in memory here; the public half is published in JWKS under its `kid`, the
//! key's RFC 7638 thumbprint.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use serde::Serialize;

use crate::jwk::PublicJwk;
use crate::{TokenError, b64};

pub struct SigningKey {
    kid: String,
    pair: Ed25519KeyPair,
    public: PublicJwk,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({})", self.kid)
    }
}

impl SigningKey {
    /// A new key, and its PKCS#8 form to seal and store.
    pub fn generate() -> Result<(Self, Vec<u8>), TokenError> {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
            .map_err(|_| TokenError::InvalidKey("could not generate a signing key".into()))?;
        let key = Self::from_pkcs8(pkcs8.as_ref())?;
        Ok((key, pkcs8.as_ref().to_vec()))
    }

    pub fn from_pkcs8(pkcs8: &[u8]) -> Result<Self, TokenError> {
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8)
            .or_else(|_| Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8))
            .map_err(|_| TokenError::InvalidKey("not an Ed25519 PKCS#8 key".into()))?;
        let public = PublicJwk::Ed25519 {
            x: b64(pair.public_key().as_ref()),
        };
        Ok(Self {
            kid: public.thumbprint(),
            pair,
            public,
        })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn public(&self) -> &PublicJwk {
        &self.public
    }

    /// Signs raw bytes (tests forge tokens with it; aim itself signs only through `sign`).
    #[doc(hidden)]
    pub fn raw_sign(&self, message: &[u8]) -> Vec<u8> {
        self.pair.sign(message).as_ref().to_vec()
    }

    /// A compact JWS of `claims` with header `{"alg":"EdDSA","kid":…,"typ":typ}`.
    pub fn sign<T: Serialize>(&self, typ: &str, claims: &T) -> Result<String, TokenError> {
        let header = serde_json::json!({ "alg": "EdDSA", "kid": self.kid, "typ": typ });
        let claims = serde_json::to_vec(claims).map_err(|_| TokenError::InvalidClaim("claims"))?;
        let mut out = b64(header.to_string().as_bytes());
        out.push('.');
        out.push_str(&b64(&claims));
        let signature = self.pair.sign(out.as_bytes());
        out.push('.');
        out.push_str(&b64(signature.as_ref()));
        Ok(out)
    }
}
