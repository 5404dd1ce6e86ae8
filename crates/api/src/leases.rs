//! `/v1/leases`: asking for exclusive write on one record.

use aim_domain::lease::Record;
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct LeaseBody {
    /// `{"system", "type", "id"}`: the record, as `/v1/authorize` names it.
    pub record: Record,
    /// The record's attributes as a write decision on it would see them (`type`,
    /// `sensitivity`, `subject`, ...): a lease is granted only to an identity the policies
    /// (or a grant) allow to write it now.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub attrs: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    pub tags: std::collections::BTreeMap<String, String>,
    /// 1 to 900; 60 by default. Asking again before it ends renews it.
    #[serde(default)]
    pub ttl_seconds: Option<i64>,
}
