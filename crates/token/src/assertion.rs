//! Client assertions (RFC 7523 `private_key_jwt`): an agent proves it holds a registered key
//! by signing a short JWT naming itself and aim's token endpoint.

use crate::TokenError;
use crate::jose::Claims;

/// The longest an assertion may live, in seconds.
pub const MAX_ASSERTION_LIFETIME: i64 = 300;

/// `typ` values an assertion may carry: none, `JWT`, or the explicit
/// `client-authentication+jwt`.
pub const ASSERTION_TYPS: &[&str] = &["", "jwt", "client-authentication+jwt"];

/// What a verified assertion says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assertion {
    /// Single use: the caller records it until `exp` and refuses it again.
    pub jti: String,
    pub exp: i64,
}

/// Checks verified assertion claims: `iss` and `sub` are `client_id`, `aud` names one of
/// `audiences` (the token endpoint or the issuer), `exp` is in the future and at most five
/// minutes away (and from `iat`), `nbf` has passed, and there is a `jti`.
pub fn check(
    claims: &Claims,
    client_id: &str,
    audiences: &[&str],
    now: i64,
) -> Result<Assertion, TokenError> {
    if claims.str("iss")? != client_id || claims.str("sub")? != client_id {
        return Err(TokenError::WrongSubject);
    }
    let mut aud_ok = false;
    for a in audiences {
        aud_ok |= claims.has_audience(a)?;
    }
    if !aud_ok {
        return Err(TokenError::WrongAudience);
    }
    let exp = claims.time("exp")?;
    if exp <= now {
        return Err(TokenError::Expired);
    }
    if exp - now > MAX_ASSERTION_LIFETIME {
        return Err(TokenError::LifetimeTooLong(MAX_ASSERTION_LIFETIME));
    }
    if let Some(iat) = claims.opt_time("iat")? {
        if iat > now + 60 {
            return Err(TokenError::NotYetValid);
        }
        if exp - iat > MAX_ASSERTION_LIFETIME {
            return Err(TokenError::LifetimeTooLong(MAX_ASSERTION_LIFETIME));
        }
    }
    if let Some(nbf) = claims.opt_time("nbf")?
        && nbf > now + 60
    {
        return Err(TokenError::NotYetValid);
    }
    let jti = claims.str("jti")?;
    if jti.len() > 256 {
        return Err(TokenError::InvalidClaim("jti"));
    }
    Ok(Assertion {
        jti: jti.to_owned(),
        exp,
    })
}
