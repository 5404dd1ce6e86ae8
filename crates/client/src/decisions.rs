//! Decisions: policy sets, `POST /v1/authorize`, approvals and grants.

use aim_api::authorize::{AuthorizeBody, AuthorizeResponse};
use aim_api::common::ReasonBody;
use aim_api::policies::{Applied, ApplyBody, PolicySetVersion, RollbackBody, VersionSummary};

use crate::{Client, Params, Result};

impl Client {
    /// A page of approvals (`state`, `identity`, `cursor`, `limit`).
    pub async fn approvals(
        &self,
        params: &Params,
    ) -> Result<aim_domain::page::Page<aim_domain::approval::ActionApproval>> {
        self.get("/v1/approvals", params).await
    }

    pub async fn approval(
        &self,
        id: aim_domain::ids::ApprovalId,
    ) -> Result<aim_domain::approval::ActionApproval> {
        self.get(&format!("/v1/approvals/{id}"), &Vec::new()).await
    }

    /// Approves (`approve`) or denies (`deny`) an approval, with a reason.
    pub async fn decide_approval(
        &self,
        id: aim_domain::ids::ApprovalId,
        verdict: &str,
        reason: &str,
    ) -> Result<aim_domain::approval::ActionApproval> {
        self.post(
            &format!("/v1/approvals/{id}/{verdict}"),
            &ReasonBody {
                reason: reason.to_owned(),
            },
        )
        .await
    }

    pub async fn add_grant(
        &self,
        grant: &aim_domain::grant::NewGrant,
    ) -> Result<aim_domain::grant::Grant> {
        self.post("/v1/grants", grant).await
    }

    /// A page of grants (`state`, `identity`, `group`, `cursor`, `limit`).
    pub async fn grants(
        &self,
        params: &Params,
    ) -> Result<aim_domain::page::Page<aim_domain::grant::Grant>> {
        self.get("/v1/grants", params).await
    }

    /// `approve`, `deny` (an elevation request) or `revoke` a grant, with a reason.
    pub async fn grant_action(
        &self,
        id: aim_domain::ids::GrantId,
        action: &str,
        reason: &str,
    ) -> Result<aim_domain::grant::Grant> {
        self.post(
            &format!("/v1/grants/{id}/{action}"),
            &ReasonBody {
                reason: reason.to_owned(),
            },
        )
        .await
    }

    /// Applies a policy set.
    pub async fn apply_policies(&self, body: &ApplyBody) -> Result<Applied> {
        self.post("/v1/policies", body).await
    }

    /// The policy version in force, or `version` of the history.
    pub async fn policies(&self, version: Option<i64>) -> Result<PolicySetVersion> {
        match version {
            Some(v) => {
                self.get(&format!("/v1/policies/versions/{v}"), &Vec::new())
                    .await
            }
            None => self.get("/v1/policies", &Vec::new()).await,
        }
    }

    pub async fn policy_versions(&self) -> Result<Vec<VersionSummary>> {
        self.get("/v1/policies/versions", &Vec::new()).await
    }

    /// Brings `version`'s content back, as a new version.
    pub async fn rollback_policies(&self, version: i64, comment: &str) -> Result<Applied> {
        let body = RollbackBody {
            version,
            comment: comment.to_owned(),
        };
        self.post("/v1/policies/rollback", &body).await
    }

    /// `POST /v1/authorize`: a decision, on the record.
    pub async fn authorize(&self, question: &AuthorizeBody) -> Result<AuthorizeResponse> {
        self.post("/v1/authorize", question).await
    }

    /// `POST /v1/authorize/explain`: what would be decided (with `question.policies`, by a
    /// proposed set), recording nothing.
    pub async fn explain(&self, question: &AuthorizeBody) -> Result<AuthorizeResponse> {
        self.post("/v1/authorize/explain", question).await
    }
}
