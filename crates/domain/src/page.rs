//! Cursor pagination: a page of items and, when there may be more, the cursor of the next.

use serde::{Deserialize, Serialize};

/// The largest page any list endpoint returns.
pub const MAX_LIMIT: u32 = 1000;
pub const DEFAULT_LIMIT: u32 = 100;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
    /// The name of each identity and the user name of each human whose id the items hold,
    /// by id (lists people read: tasks, grants, approvals, audit records).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub names: std::collections::BTreeMap<String, String>,
}
