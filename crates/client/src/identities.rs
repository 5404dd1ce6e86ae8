//! `/v1/identities`: requesting, finding, changing and deciding identities.

use aim_domain::identity::{Identity, IdentityPatch, IdentityRequest};
use aim_domain::ids::IdentityId;
use aim_domain::page::Page;

use aim_api::common::ReasonBody;
use aim_api::identities::BearerBody;

use crate::{Client, Params, Result, first_or_not_found};

impl Client {
    pub async fn request_identity(&self, req: &IdentityRequest) -> Result<Identity> {
        self.post("/v1/identities", req).await
    }

    pub async fn identity(&self, id: IdentityId) -> Result<Identity> {
        self.get(&format!("/v1/identities/{id}"), &Vec::new()).await
    }

    /// An identity by id, or by exact name.
    pub async fn find_identity(&self, id_or_name: &str) -> Result<Identity> {
        if let Ok(id) = IdentityId::parse(id_or_name) {
            return self.identity(id).await;
        }
        let page = self
            .identities(&vec![("name", id_or_name.to_owned())])
            .await?;
        first_or_not_found(page, || format!("no identity named `{id_or_name}`"))
    }

    pub async fn identities(&self, params: &Params) -> Result<Page<Identity>> {
        self.get("/v1/identities", params).await
    }

    /// `action` is one of approve, reject, suspend, resume, lock, unlock, decommission, attest.
    pub async fn identity_action(
        &self,
        id: IdentityId,
        action: &str,
        reason: &str,
    ) -> Result<Identity> {
        self.post(
            &format!("/v1/identities/{id}/{action}"),
            &ReasonBody {
                reason: reason.to_owned(),
            },
        )
        .await
    }

    /// The emergency stop: locks every active AI agent.
    pub async fn lock_all_agents(&self, reason: &str) -> Result<aim_api::gateway::LockedAll> {
        self.post(
            "/v1/identities/lock-all",
            &serde_json::json!({ "reason": reason }),
        )
        .await
    }

    /// Locks an identity: its answer says how many connected gateways applied the lock.
    pub async fn lock_identity(
        &self,
        id: IdentityId,
        reason: &str,
    ) -> Result<aim_api::gateway::Locked> {
        self.post(
            &format!("/v1/identities/{id}/lock"),
            &serde_json::json!({ "reason": reason }),
        )
        .await
    }

    pub async fn change_identity(&self, id: IdentityId, patch: &IdentityPatch) -> Result<Identity> {
        self.patch(&format!("/v1/identities/{id}"), patch).await
    }

    /// Lets the identity have bearer tokens (`allowed`, with `reason`), or withdraws it.
    pub async fn set_bearer(
        &self,
        id: IdentityId,
        allowed: bool,
        reason: &str,
    ) -> Result<Identity> {
        self.post(
            &format!("/v1/identities/{id}/bearer"),
            &BearerBody {
                allowed,
                reason: reason.to_owned(),
            },
        )
        .await
    }
}
