//! Names beside ids in what people read: a list of tasks, grants, approvals or audit
//! records carries `names`, each identity's name and each human's user name by id, looked
//! up in one query per page rather than one per row.

use std::collections::{BTreeMap, BTreeSet};

use aim_store::DynStore;
use serde::Serialize;
use uuid::Uuid;

use crate::error::ApiError;

/// The most ids one page's names look up; a page of 1,000 audit records names far fewer.
const MAX_IDS: usize = 5_000;

/// `id → name` for every identity and human whose id appears as a string anywhere in
/// `items` (as `identity_id`, `decided_by`, an audit record's actor or target...).
pub async fn names_in<T: Serialize>(
    store: &DynStore,
    items: &[T],
) -> Result<BTreeMap<String, String>, ApiError> {
    let mut ids = BTreeSet::new();
    for item in items {
        let value = serde_json::to_value(item).map_err(|e| {
            tracing::error!(error = %e, "serializing a page to name its ids");
            ApiError::internal()
        })?;
        collect_ids(&value, &mut ids);
        if ids.len() >= MAX_IDS {
            break;
        }
    }
    let ids: Vec<Uuid> = ids.into_iter().collect();
    Ok(store
        .names(&ids)
        .await?
        .into_iter()
        .map(|(id, name)| (id.to_string(), name))
        .collect())
}

fn collect_ids(value: &serde_json::Value, out: &mut BTreeSet<Uuid>) {
    match value {
        serde_json::Value::String(s) if s.len() == 36 => {
            if let Ok(id) = Uuid::parse_str(s) {
                out.insert(id);
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| collect_ids(v, out)),
        serde_json::Value::Object(m) => m.values().for_each(|v| collect_ids(v, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_found_wherever_they_are() {
        let a = Uuid::now_v7();
        let b = Uuid::now_v7();
        let v = serde_json::json!({
            "identity_id": a.to_string(),
            "actor": { "kind": "human", "id": b.to_string() },
            "note": "not-an-id",
            "list": [a.to_string(), 7],
        });
        let mut ids = BTreeSet::new();
        collect_ids(&v, &mut ids);
        assert_eq!(ids, BTreeSet::from([a, b]));
    }
}
