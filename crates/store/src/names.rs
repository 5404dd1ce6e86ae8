//! Names for ids, so that people read `agt-claims-triage` and `alice@example.com` where a
//! record holds a UUID. Written once for both backends, like `backend.rs`.

use std::collections::BTreeMap;

use async_trait::async_trait;
use uuid::Uuid;

use crate::StoreError;

/// How many ids one query looks up; more are looked up in several.
pub(crate) const NAMES_PER_QUERY: usize = 500;

#[async_trait]
pub trait NameStore: Send + Sync {
    /// The name of each of `ids` that is an identity, and the user name of each that is a
    /// human; ids that are neither are left out.
    async fn names(&self, ids: &[Uuid]) -> Result<BTreeMap<Uuid, String>, StoreError>;
}

/// `$1, $2, ... $n`.
pub(crate) fn placeholders(n: usize) -> String {
    (1..=n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Implements [`NameStore`] for `$store` (see `backend::impl_store`).
macro_rules! impl_name_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl crate::names::NameStore for $store {
            async fn names(
                &self,
                ids: &[uuid::Uuid],
            ) -> Result<std::collections::BTreeMap<uuid::Uuid, String>, crate::StoreError> {
                use crate::rows::AimRow;
                let mut out = std::collections::BTreeMap::new();
                for chunk in ids.chunks(crate::names::NAMES_PER_QUERY) {
                    let list = crate::names::placeholders(chunk.len());
                    let sql = format!(
                        "SELECT id, name FROM identities WHERE id IN ({list}) \
                         UNION ALL SELECT id, user_name AS name FROM humans WHERE id IN ({list})"
                    );
                    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                    for id in chunk {
                        q = q.bind(*id);
                    }
                    for row in q.fetch_all(self.read()).await? {
                        out.insert(row.uuid("id")?, row.text("name")?);
                    }
                }
                Ok(out)
            }
        }
    };
}
pub(crate) use impl_name_store;

#[cfg(test)]
mod tests {
    #[test]
    fn placeholders_count_from_one() {
        assert_eq!(super::placeholders(3), "$1, $2, $3");
    }
}
