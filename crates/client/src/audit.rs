//! The record: the audit log, a task's causal chain, the chain head and checkpoints, and
//! the sweep that writes to it.

use aim_domain::event::Event;
use aim_domain::page::Page;
use aim_domain::sweep::SweepReport;
use serde_json::json;

use crate::{AuditHead, Client, Params, Result};

impl Client {
    pub async fn run_sweep(&self) -> Result<SweepReport> {
        self.post("/v1/sweeps/run", &json!({})).await
    }

    /// A page of the audit log (filters: identity, human, action, outcome, since, until).
    pub async fn audit(&self, params: &Params) -> Result<Page<Event>> {
        self.get("/v1/audit", params).await
    }

    /// The causal chain of a task.
    pub async fn audit_trace(
        &self,
        task: aim_domain::ids::TaskId,
    ) -> Result<aim_domain::trace::Trace> {
        self.get(&format!("/v1/audit/trace/{task}"), &Vec::new())
            .await
    }

    /// The head of the chain: the last sequence number and its hash.
    pub async fn audit_head(&self) -> Result<AuditHead> {
        self.get("/v1/audit/head", &Vec::new()).await
    }

    /// The keys checkpoints are signed with, newest first.
    pub async fn checkpoint_keys(&self) -> Result<Vec<aim_api::audit::CheckpointKey>> {
        self.get("/v1/audit/checkpoint-keys", &Vec::new()).await
    }

    /// Starts signing checkpoints with a new key (admins); returns the keys after.
    pub async fn rotate_checkpoint_key(&self) -> Result<Vec<aim_api::audit::CheckpointKey>> {
        self.post("/v1/audit/checkpoint-keys/rotate", &json!({}))
            .await
    }

    /// Signs the current head (if it moved) and returns the latest checkpoint.
    pub async fn create_checkpoint(&self) -> Result<aim_domain::audit::Checkpoint> {
        self.post("/v1/audit/checkpoints", &json!({})).await
    }

    pub async fn audit_record(&self, seq: i64) -> Result<Event> {
        self.get(&format!("/v1/audit/{seq}"), &Vec::new()).await
    }
}
