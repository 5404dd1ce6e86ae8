//! aim's tokens. Everything here is pure (no IO): parsing public keys, aim's own signing
//! keys and their encryption at rest, and checking and minting JWTs — the client assertions
//! agents sign (RFC 7523) and the access tokens aim issues (RFC 9068). The verifier in
//! [`access`] is what a gateway runs on every call.
//!
//! Every check fails with a [`TokenError`] whose [`code`](TokenError::code) is stable, and
//! no error message ever quotes a token.
//!
//! # Layout
//! - [`jose`] — compact JWS parsing, with the algorithm fixed by the key, never the header
//! - [`jwk`] — public keys (Ed25519, P-256) as JWKs, and their thumbprints
//! - [`signing`] — aim's own signing keys
//! - [`kek`] — the key-encryption key that seals signing keys at rest, and MACs
//! - [`claims`] — access token claims (RFC 9068), `cnf`, `act`
//! - [`access`] — minting access tokens, and the verifier every enforcement point runs
//! - [`assertion`] — client assertions (RFC 7523 `private_key_jwt`)
//! - [`checkpoint`] — the offline check of a signed audit checkpoint
//! - [`dpop`] — DPoP proofs (RFC 9449)
//! - [`delegation`] — narrowing a token handed to a sub-agent (RFC 8693)
//! - [`client`] — what an agent holds: its key, and the assertions and proofs it signs

pub mod access;
pub mod assertion;
pub mod checkpoint;
pub mod claims;
pub mod client;
pub mod delegation;
pub mod dpop;
pub mod jose;
pub mod jwk;
pub mod kek;
pub mod signing;

pub use jwk::PublicJwk;

/// Why a key or token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("invalid key: {0}")]
    InvalidKey(String),
    #[error("the token is not a well-formed JWT")]
    Malformed,
    #[error("algorithm `{0}` is not allowed here")]
    AlgorithmNotAllowed(String),
    #[error("the token header carries `{0}`: keys are never taken from a token")]
    HeaderKeyForbidden(&'static str),
    #[error("the token's `kid` is missing or not a key id")]
    InvalidKid,
    #[error("no key with this `kid` is known")]
    UnknownKey,
    #[error("the signature does not verify")]
    BadSignature,
    #[error("the token's `typ` must be `{0}`")]
    WrongType(&'static str),
    #[error("claim `{0}` is missing or of the wrong type")]
    InvalidClaim(&'static str),
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token lives longer than the {0} seconds allowed")]
    LifetimeTooLong(i64),
    #[error("the token is for another audience")]
    WrongAudience,
    #[error("the token is from another issuer")]
    WrongIssuer,
    #[error("the token's issuer and subject must both be the client")]
    WrongSubject,
    #[error("this token was already used")]
    Replayed,
    #[error("the token has been revoked")]
    Revoked,
    #[error("the DPoP proof is invalid: {0}")]
    InvalidProof(String),
    #[error("the DPoP proof's `{0}` does not match the request")]
    ProofMismatch(&'static str),
    #[error("the DPoP proof's `iat` is too far from now")]
    ProofStale,
    #[error("this token is bound to a key: present it with a DPoP proof")]
    ProofRequired,
    #[error("the DPoP proof is signed by another key than the token is bound to")]
    WrongProofKey,
    #[error("the DPoP proof must carry the nonce in the `DPoP-Nonce` header")]
    NonceRequired,
}

impl TokenError {
    /// The stable, machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            TokenError::InvalidKey(_) => "invalid_key",
            TokenError::Malformed => "malformed_token",
            TokenError::AlgorithmNotAllowed(_) => "alg_not_allowed",
            TokenError::HeaderKeyForbidden(_) => "header_key_forbidden",
            TokenError::InvalidKid => "invalid_kid",
            TokenError::UnknownKey => "unknown_kid",
            TokenError::BadSignature => "bad_signature",
            TokenError::WrongType(_) => "wrong_typ",
            TokenError::InvalidClaim(_) => "invalid_claim",
            TokenError::Expired => "token_expired",
            TokenError::NotYetValid => "token_not_yet_valid",
            TokenError::LifetimeTooLong(_) => "lifetime_too_long",
            TokenError::WrongAudience => "wrong_audience",
            TokenError::WrongIssuer => "wrong_issuer",
            TokenError::WrongSubject => "wrong_subject",
            TokenError::Replayed => "replayed",
            TokenError::Revoked => "token_revoked",
            TokenError::InvalidProof(_) => "invalid_dpop_proof",
            TokenError::ProofMismatch(_) => "dpop_mismatch",
            TokenError::ProofStale => "dpop_stale",
            TokenError::ProofRequired => "dpop_required",
            TokenError::WrongProofKey => "dpop_key_mismatch",
            TokenError::NonceRequired => "use_dpop_nonce",
        }
    }
}

/// base64url without padding, as JOSE uses it.
pub(crate) fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
