//! `/v1/humans`: humans and their credentials.

use aim_domain::human::{
    Credential, DepartureOutcome, Human, HumanPatch, IssuedCredential, NewHuman,
};
use aim_domain::ids::{CredentialId, HumanId};
use aim_domain::page::Page;
use reqwest::Method;
use serde_json::json;

use aim_api::common::ReasonBody;

use crate::{Client, Params, Result, first_or_not_found};

impl Client {
    pub async fn create_human(&self, new: &NewHuman) -> Result<Human> {
        self.post("/v1/humans", new).await
    }

    pub async fn human(&self, id: HumanId) -> Result<Human> {
        self.get(&format!("/v1/humans/{id}"), &Vec::new()).await
    }

    /// A human by id, or by user name.
    pub async fn find_human(&self, id_or_user: &str) -> Result<Human> {
        if let Ok(id) = HumanId::parse(id_or_user) {
            return self.human(id).await;
        }
        let page = self
            .humans(&vec![("user_name", id_or_user.to_owned())])
            .await?;
        first_or_not_found(page, || format!("no human with user name `{id_or_user}`"))
    }

    pub async fn humans(&self, params: &Params) -> Result<Page<Human>> {
        self.get("/v1/humans", params).await
    }

    pub async fn change_human(&self, id: HumanId, patch: &HumanPatch) -> Result<Human> {
        self.patch(&format!("/v1/humans/{id}"), patch).await
    }

    pub async fn set_human_active(
        &self,
        id: HumanId,
        active: bool,
        reason: &str,
    ) -> Result<DepartureOutcome> {
        let action = if active { "reactivate" } else { "deactivate" };
        self.post(
            &format!("/v1/humans/{id}/{action}"),
            &ReasonBody {
                reason: reason.to_owned(),
            },
        )
        .await
    }

    pub async fn create_credential(&self, human: HumanId, label: &str) -> Result<IssuedCredential> {
        self.post(
            &format!("/v1/humans/{human}/credentials"),
            &json!({ "label": label }),
        )
        .await
    }

    /// Replaces the first-start admin credential; the new secret is in the answer.
    pub async fn rotate_bootstrap(&self) -> Result<IssuedCredential> {
        self.post("/v1/admin/bootstrap/rotate", &json!({})).await
    }

    pub async fn credentials(&self, human: HumanId) -> Result<Vec<Credential>> {
        self.get(&format!("/v1/humans/{human}/credentials"), &Vec::new())
            .await
    }

    pub async fn revoke_credential(&self, human: HumanId, id: CredentialId) -> Result<()> {
        self.call(
            Method::DELETE,
            &format!("/v1/humans/{human}/credentials/{id}"),
            &Vec::new(),
            None::<&()>,
        )
        .await
    }
}
