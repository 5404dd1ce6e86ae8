//! MCP tools seen through gateways and the definitions admins pinned (see
//! [`aim_domain::tool`]). Written once for both backends; every change is written with its
//! event in one transaction, and only if the row is still as the writer read it.

use aim_domain::event::Event;
use aim_domain::tool::Tool;
use async_trait::async_trait;

use crate::StoreError;

#[async_trait]
pub trait ToolStore: Send + Sync {
    async fn tool(&self, server: &str, name: &str) -> Result<Option<Tool>, StoreError>;
    /// Every tool, by server and name; of one server only if given.
    async fn list_tools(&self, server: Option<&str>) -> Result<Vec<Tool>, StoreError>;
    /// Writes `t` (a new definition seen, or an approval) if the definition last seen is
    /// still `seen_before` (`None`: the tool is new). False if another writer came first.
    async fn put_tool(
        &self,
        t: &Tool,
        seen_before: Option<&str>,
        event: &Event,
    ) -> Result<bool, StoreError>;
}

/// Implements [`ToolStore`] for `$store` (see `backend::impl_store`).
macro_rules! impl_tool_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl crate::tools::ToolStore for $store {
            async fn tool(
                &self,
                server: &str,
                name: &str,
            ) -> Result<Option<aim_domain::tool::Tool>, crate::StoreError> {
                let row = sqlx::query("SELECT doc FROM mcp_tools WHERE server = $1 AND name = $2")
                    .bind(server)
                    .bind(name)
                    .fetch_optional(self.read())
                    .await?;
                row.as_ref()
                    .map(|r| crate::rows::doc_from_row(r, "mcp_tools"))
                    .transpose()
            }
            async fn list_tools(
                &self,
                server: Option<&str>,
            ) -> Result<Vec<aim_domain::tool::Tool>, crate::StoreError> {
                let rows = match server {
                    Some(s) => {
                        sqlx::query("SELECT doc FROM mcp_tools WHERE server = $1 ORDER BY name")
                            .bind(s)
                            .fetch_all(self.read())
                            .await?
                    }
                    None => {
                        sqlx::query("SELECT doc FROM mcp_tools ORDER BY server, name")
                            .fetch_all(self.read())
                            .await?
                    }
                };
                rows.iter()
                    .map(|r| crate::rows::doc_from_row(r, "mcp_tools"))
                    .collect()
            }
            async fn put_tool(
                &self,
                t: &aim_domain::tool::Tool,
                seen_before: Option<&str>,
                event: &aim_domain::event::Event,
            ) -> Result<bool, crate::StoreError> {
                let mut tx = self.write_tx().await?;
                let doc = crate::rows::doc(t)?;
                let n = match seen_before {
                    None => sqlx::query("INSERT INTO mcp_tools (server, name, seen_hash, doc) VALUES ($1, $2, $3, $4) ON CONFLICT (server, name) DO NOTHING")
                        .bind(&t.server)
                        .bind(&t.name)
                        .bind(&t.seen.hash)
                        .bind(doc)
                        .execute(&mut *tx)
                        .await?,
                    Some(before) => sqlx::query("UPDATE mcp_tools SET seen_hash = $1, doc = $2 WHERE server = $3 AND name = $4 AND seen_hash = $5")
                        .bind(&t.seen.hash)
                        .bind(doc)
                        .bind(&t.server)
                        .bind(&t.name)
                        .bind(before)
                        .execute(&mut *tx)
                        .await?,
                }
                .rows_affected();
                if n != 1 {
                    return Ok(false);
                }
                Self::commit_with(tx, &[event]).await?;
                Ok(true)
            }
        }
    };
}

pub(crate) use impl_tool_store;
