//! Credentials for upstreams (the API keys and tokens a gateway injects), kept in aim sealed
//! under its key-encryption key and handed only to gateway accounts. What is shown and
//! recorded of one is its metadata; the value never leaves aim except to a gateway.

use serde::{Deserialize, Serialize};

use crate::ids::HumanId;
use crate::time::Timestamp;

/// The most bytes a secret value may have.
pub const MAX_VALUE: usize = 8192;

/// A secret as listed: everything but its value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UpstreamSecret {
    /// 1-128 of `A-Z a-z 0-9 _ - .`, named by gateways' `aim_secret`.
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// The gateway accounts (user names) that may read it; any gateway account if empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gateways: Vec<String>,
    /// 1 when stored, one more at each replacement.
    pub version: i64,
    pub updated_at: Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub updated_by: HumanId,
}

impl UpstreamSecret {
    /// Whether the gateway account `user_name` may read the value.
    pub fn readable_by(&self, user_name: &str) -> bool {
        self.gateways.is_empty() || self.gateways.iter().any(|g| g == user_name)
    }
}

/// Why a value is refused: it goes into an HTTP header as it is.
pub fn check_value(value: &str) -> Result<(), &'static str> {
    if value.is_empty() || value.len() > MAX_VALUE {
        return Err("a secret's value is 1 to 8192 bytes");
    }
    if !value.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Err("a secret's value is visible ASCII (it is sent as an HTTP header value)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_header_safe() {
        assert!(check_value("sk_live_4eC39HqLyjWDarjtT1zdp7dc").is_ok());
        for bad in [
            "",
            "a\r\nX-Injected: 1",
            "tab\there",
            "ünï",
            &"x".repeat(8193),
        ] {
            assert!(check_value(bad).is_err(), "{bad:?}");
        }
    }
}
