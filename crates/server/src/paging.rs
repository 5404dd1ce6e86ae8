//! Opaque cursors and page limits, the same on every list endpoint.

use aim_domain::page::{DEFAULT_LIMIT, MAX_LIMIT, Page};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use uuid::Uuid;

use crate::error::ApiError;

/// `limit` checked against 1..=MAX_LIMIT; absent means DEFAULT_LIMIT.
pub fn limit(requested: Option<u32>) -> Result<u32, ApiError> {
    match requested {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(n) => Err(ApiError::bad_request(
            "invalid_limit",
            format!("limit {n} is outside 1..={MAX_LIMIT}"),
        )),
    }
}

pub fn encode(id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(id.as_bytes())
}

pub fn decode(cursor: Option<&str>) -> Result<Option<Uuid>, ApiError> {
    let Some(c) = cursor else { return Ok(None) };
    let bytes = URL_SAFE_NO_PAD
        .decode(c.as_bytes())
        .ok()
        .and_then(|b| <[u8; 16]>::try_from(b).ok())
        .ok_or_else(|| {
            ApiError::bad_request("invalid_cursor", "the cursor is not one this server issued")
        })?;
    Ok(Some(Uuid::from_bytes(bytes)))
}

/// Builds a page from `limit + 1` fetched items: the extra one only says there is more.
pub fn page<T>(mut items: Vec<T>, limit: u32, id_of: impl Fn(&T) -> Uuid) -> Page<T> {
    let more = items.len() > limit as usize;
    items.truncate(limit as usize);
    let next_cursor = if more {
        items.last().map(|i| encode(id_of(i)))
    } else {
        None
    };
    Page { items, next_cursor }
}
