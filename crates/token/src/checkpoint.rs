//! Signed checkpoints of the audit chain, checked offline: a checkpoint names a sequence
//! number and the chain hash there, signed with Ed25519 by the server that made it.

use aim_domain::audit::{Checkpoint, from_hex};
use aws_lc_rs::signature::{ED25519, UnparsedPublicKey};

/// Checks a checkpoint's signature (and, if given, that it was made with `trusted_key`).
pub fn verify(cp: &Checkpoint, trusted_key: Option<&str>) -> Result<(), String> {
    if let Some(k) = trusted_key
        && !k.eq_ignore_ascii_case(&cp.public_key)
    {
        return Err("the checkpoint was signed with another key than the trusted one".into());
    }
    let hash = from_hex(&cp.hash).ok_or("the checkpoint's hash is not 32 bytes of hex")?;
    let public_key = hex_bytes(&cp.public_key).ok_or("the checkpoint's public key is not hex")?;
    let signature = hex_bytes(&cp.signature).ok_or("the checkpoint's signature is not hex")?;
    UnparsedPublicKey::new(&ED25519, public_key)
        .verify(&Checkpoint::message(cp.seq, &hash, cp.at), &signature)
        .map_err(|_| "the checkpoint's signature does not verify".to_owned())
}

fn hex_bytes(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || s.len() > 256 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}
