//! The key-encryption key: aim's private signing keys are stored sealed with it
//! (AES-256-GCM, a random nonce per seal, the key id as associated data so a sealed key
//! cannot be moved to another row).

use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};

use crate::TokenError;

pub const KEK_LEN: usize = 32;

pub struct Kek(RandomizedNonceKey, aws_lc_rs::hmac::Key);

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Kek(..)")
    }
}

impl Kek {
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, TokenError> {
        if bytes.len() != KEK_LEN {
            return Err(TokenError::InvalidKey(format!(
                "the key-encryption key must be {KEK_LEN} bytes"
            )));
        }
        let aead = RandomizedNonceKey::new(&AES_256_GCM, bytes)
            .map_err(|_| TokenError::InvalidKey("unusable key-encryption key".into()))?;
        // A separate key for MACs, derived so the KEK itself is used only for sealing.
        let root = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, bytes);
        let derived = aws_lc_rs::hmac::sign(&root, b"aim mac key v1");
        let mac = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, derived.as_ref());
        Ok(Kek(aead, mac))
    }

    /// Fresh random key material for a new KEK.
    pub fn generate_bytes() -> Result<[u8; KEK_LEN], TokenError> {
        let mut out = [0u8; KEK_LEN];
        SystemRandom::new()
            .fill(&mut out)
            .map_err(|_| TokenError::InvalidKey("no randomness available".into()))?;
        Ok(out)
    }

    /// HMAC-SHA256 under a key derived from the KEK, for values every replica must compute
    /// alike (DPoP nonces); `label` separates uses.
    pub fn mac(&self, label: &[u8], data: &[u8]) -> Vec<u8> {
        let mut ctx = aws_lc_rs::hmac::Context::with_key(&self.1);
        ctx.update(label);
        ctx.update(&[0]);
        ctx.update(data);
        ctx.sign().as_ref().to_vec()
    }

    /// `nonce || ciphertext || tag`.
    pub fn seal(&self, plaintext: &[u8], context: &str) -> Result<Vec<u8>, TokenError> {
        let mut data = plaintext.to_vec();
        let nonce = self
            .0
            .seal_in_place_append_tag(Aad::from(context.as_bytes()), &mut data)
            .map_err(|_| TokenError::InvalidKey("sealing failed".into()))?;
        let mut out = nonce.as_ref().to_vec();
        out.extend_from_slice(&data);
        Ok(out)
    }

    pub fn open(&self, sealed: &[u8], context: &str) -> Result<Vec<u8>, TokenError> {
        let wrong = || {
            TokenError::InvalidKey(
                "a sealed signing key does not open with this key-encryption key".into(),
            )
        };
        if sealed.len() < NONCE_LEN {
            return Err(wrong());
        }
        let (nonce, data) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| wrong())?;
        let mut data = data.to_vec();
        let plain = self
            .0
            .open_in_place(nonce, Aad::from(context.as_bytes()), &mut data)
            .map_err(|_| wrong())?;
        Ok(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_opens_only_with_the_same_key_and_context() {
        let kek = Kek::from_bytes(&Kek::generate_bytes().unwrap()).unwrap();
        let sealed = kek.seal(b"private", "kid-1").unwrap();
        assert_ne!(&sealed[NONCE_LEN..NONCE_LEN + 7], b"private");
        assert_eq!(kek.open(&sealed, "kid-1").unwrap(), b"private");
        assert!(kek.open(&sealed, "kid-2").is_err(), "bound to its key id");
        let other = Kek::from_bytes(&Kek::generate_bytes().unwrap()).unwrap();
        assert!(other.open(&sealed, "kid-1").is_err());
        let mut flipped = sealed.clone();
        flipped[NONCE_LEN] ^= 1;
        assert!(kek.open(&flipped, "kid-1").is_err());
        assert!(kek.open(&sealed[..5], "kid-1").is_err());
        assert!(Kek::from_bytes(&[0; 16]).is_err());
    }
}
