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

/// Where a page resumes: after an id, or after a name (for name-ordered pages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cursor {
    Id(Uuid),
    Name(String),
}

const ID_TAG: u8 = 0;
const NAME_TAG: u8 = 1;

fn invalid() -> ApiError {
    ApiError::bad_request("invalid_cursor", "the cursor is not one this server issued")
}

impl Cursor {
    pub fn encode(&self) -> String {
        let mut bytes = Vec::new();
        match self {
            Cursor::Id(id) => {
                bytes.push(ID_TAG);
                bytes.extend_from_slice(id.as_bytes());
            }
            Cursor::Name(n) => {
                bytes.push(NAME_TAG);
                bytes.extend_from_slice(n.as_bytes());
            }
        }
        URL_SAFE_NO_PAD.encode(bytes)
    }

    pub fn decode(cursor: Option<&str>) -> Result<Option<Cursor>, ApiError> {
        let Some(c) = cursor else { return Ok(None) };
        let bytes = URL_SAFE_NO_PAD
            .decode(c.as_bytes())
            .map_err(|_| invalid())?;
        match bytes.split_first() {
            Some((&ID_TAG, rest)) => {
                let id = <[u8; 16]>::try_from(rest).map_err(|_| invalid())?;
                Ok(Some(Cursor::Id(Uuid::from_bytes(id))))
            }
            Some((&NAME_TAG, rest)) if rest.len() <= 256 => {
                let name = std::str::from_utf8(rest).map_err(|_| invalid())?;
                Ok(Some(Cursor::Name(name.to_owned())))
            }
            _ => Err(invalid()),
        }
    }

    /// The id of an id cursor; a name cursor where an id one is expected is refused.
    pub fn id(cursor: Option<Cursor>) -> Result<Option<Uuid>, ApiError> {
        match cursor {
            None => Ok(None),
            Some(Cursor::Id(id)) => Ok(Some(id)),
            Some(Cursor::Name(_)) => Err(ApiError::bad_request(
                "invalid_cursor",
                "this cursor belongs to another listing",
            )),
        }
    }
}

/// Builds a page from `limit + 1` fetched items: the extra one only says there is more.
pub fn page<T>(mut items: Vec<T>, limit: u32, cursor_of: impl Fn(&T) -> Cursor) -> Page<T> {
    let more = items.len() > limit as usize;
    items.truncate(limit as usize);
    let next_cursor = if more {
        items.last().map(|i| cursor_of(i).encode())
    } else {
        None
    };
    Page {
        items,
        next_cursor,
        names: Default::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_forgeries() {
        let id = Uuid::now_v7();
        for c in [Cursor::Id(id), Cursor::Name("agt-x".into())] {
            assert_eq!(Cursor::decode(Some(&c.encode())).unwrap(), Some(c));
        }
        let short = URL_SAFE_NO_PAD.encode([0u8; 5]);
        for bad in ["", "!!", "AA", "Ag", short.as_str()] {
            assert!(Cursor::decode(Some(bad)).is_err(), "{bad}");
        }
        assert!(Cursor::id(Some(Cursor::Name("x".into()))).is_err());
    }
}
