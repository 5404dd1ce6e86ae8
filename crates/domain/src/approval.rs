//! Human approval of one exact high-risk action (step-up). A policy's `@approval` turns an
//! allow into `approval_required`; aim then holds a pending approval naming the identity,
//! its task, the action, the record and the hash of the call's arguments. A human the
//! policy names approves or denies it with a reason; the agent retries with the approval
//! id and gets one allow for that exact action. An approval is single-use, expires, and
//! can never be granted by the identity itself.

use serde::{Deserialize, Serialize};

use crate::error::Refusal;
use crate::human::{Human, Role};
use crate::ids::{ApprovalId, HumanId, IdentityId, TaskId};
use crate::time::Timestamp;

/// How long an approval stays open when the config says nothing: 15 minutes.
pub const DEFAULT_TTL_SECONDS: i64 = 15 * 60;

str_enum! {
    pub enum ApprovalState {
        /// Waiting for a human.
        Pending => "pending",
        /// Approved; good for one retry of the exact action until it expires.
        Approved => "approved",
        Denied => "denied",
        /// Approved and spent by the retry it allowed.
        Used => "used",
        /// Not decided, or not used, in time.
        Expired => "expired",
    }
}

/// The exact action an approval is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApprovedAction {
    pub identity_id: IdentityId,
    pub task_id: TaskId,
    pub action: String,
    /// The target's entity type (`Resource`), id and system.
    pub resource_type: String,
    pub resource_id: String,
    pub system: String,
    /// The hash of the call's arguments the caller sent; other arguments need another
    /// approval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args_hash: Option<String>,
    /// SHA-256 (hex) of the target's attributes and tags as the policies saw them: the
    /// same record described otherwise (another owner, a lower sensitivity) is another
    /// action.
    #[serde(default)]
    pub target_digest: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ActionApproval {
    pub id: ApprovalId,
    #[serde(flatten)]
    pub action: ApprovedAction,
    /// Who may decide, from the policies' `@approval`: `sponsor`, `group:<name>`,
    /// `role:<role>`, `human:<user name>`. Any one of them suffices.
    pub approvers: Vec<String>,
    /// The policies that asked for the approval, and the version they were in.
    pub policies: Vec<String>,
    pub policy_version: i64,
    /// The human behind the task, as the task says (`alice: TICKET-42`).
    pub triggered_by: String,
    /// The identity's sponsor when the approval was asked for.
    pub sponsor_id: HumanId,
    pub state: ApprovalState,
    pub requested_at: Timestamp,
    pub expires_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<HumanId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used_at: Option<Timestamp>,
}

impl ActionApproval {
    /// The state as of `now`: an open approval past its expiry is expired.
    pub fn state_at(&self, now: Timestamp) -> ApprovalState {
        match self.state {
            ApprovalState::Pending | ApprovalState::Approved if now >= self.expires_at => {
                ApprovalState::Expired
            }
            s => s,
        }
    }

    /// Whether `human` is one of the approvers this approval names.
    pub fn may_decide(&self, human: &Human) -> Result<(), Refusal> {
        if !human.is_active() {
            return Err(Refusal::HumanDeparted(human.user_name.clone()));
        }
        let named = self.approvers.iter().any(|a| match a.split_once(':') {
            None if a == "sponsor" => human.id == self.sponsor_id,
            Some(("group", g)) => human.groups.iter().any(|h| h == g),
            Some(("role", r)) => Role::parse(r).is_ok_and(|r| human.has_role(r)),
            Some(("human", u)) => human.user_name.eq_ignore_ascii_case(u),
            _ => false,
        });
        if named {
            Ok(())
        } else {
            Err(Refusal::NotAnApprover(format!(
                "`{}` is not among this approval's approvers ({})",
                human.user_name,
                self.approvers.join(", ")
            )))
        }
    }

    /// Records a human's decision. Only a pending, unexpired approval can be decided,
    /// only by a named approver, and only with a reason.
    pub fn decide(
        &mut self,
        human: &Human,
        approve: bool,
        reason: &str,
        now: Timestamp,
    ) -> Result<(), Refusal> {
        match self.state_at(now) {
            ApprovalState::Pending => {}
            ApprovalState::Expired => return Err(Refusal::Expired("approval")),
            s => {
                return Err(Refusal::NotPending {
                    what: "approval",
                    state: s.to_string(),
                });
            }
        }
        self.may_decide(human)?;
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(Refusal::ReasonRequired(
                "approving or denying an action takes a reason",
            ));
        }
        self.state = if approve {
            ApprovalState::Approved
        } else {
            ApprovalState::Denied
        };
        self.decided_by = Some(human.id);
        self.decided_at = Some(now);
        self.reason = crate::validate::text("reason", reason, 1000)?;
        Ok(())
    }

    /// Why this approval does not allow `action` now, if it does not.
    /// Why this approval does not allow `action` now, if it does not. `approvers` are the
    /// approvers the policies name for it now: an approval given by fewer people than the
    /// policies now ask for does not count.
    pub fn refuses(
        &self,
        action: &ApprovedAction,
        approvers: &[String],
        now: Timestamp,
    ) -> Option<(&'static str, String)> {
        match self.state_at(now) {
            ApprovalState::Approved => {}
            ApprovalState::Pending => {
                return Some((
                    "approval_pending",
                    "the approval has not been decided yet".into(),
                ));
            }
            ApprovalState::Denied => {
                return Some((
                    "approval_denied",
                    format!("the approval was denied: {}", self.reason),
                ));
            }
            ApprovalState::Used => {
                return Some((
                    "approval_used",
                    "the approval was already used; an approval allows one retry".into(),
                ));
            }
            ApprovalState::Expired => {
                return Some(("approval_expired", "the approval has expired".into()));
            }
        }
        if &self.action != action {
            return Some((
                "approval_mismatch",
                "the approval is for another action, record or arguments; ask again for a new approval".into(),
            ));
        }
        if let Some(new) = approvers.iter().find(|a| !self.approvers.contains(a)) {
            return Some((
                "approval_mismatch",
                format!(
                    "the policies now name `{new}` as an approver, which this approval did not ask; ask again for a new approval"
                ),
            ));
        }
        None
    }
}

/// What spending an approval came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spent {
    /// Spent, and the decision recorded with this sequence number.
    Yes(i64),
    /// Someone spent it first, or it expired.
    Gone,
    /// A claim (the agent's DPoP proof) had been used before; nothing was written.
    Replayed,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::human::NewHuman;

    fn human(name: &str, groups: &[&str]) -> Human {
        NewHuman {
            user_name: name.into(),
            display_name: None,
            email: None,
            external_id: None,
            roles: vec![Role::Approver],
            groups: groups.iter().map(|g| g.to_string()).collect(),
        }
        .into_human(HumanId::new(), Timestamp::from_millis(0))
        .unwrap()
    }

    fn approval(approvers: &[&str], sponsor: HumanId) -> ActionApproval {
        ActionApproval {
            id: ApprovalId::new(),
            action: ApprovedAction {
                identity_id: IdentityId::new(),
                task_id: TaskId::new(),
                action: "write".into(),
                resource_type: "Resource".into(),
                resource_id: "crm/1".into(),
                system: "crm".into(),
                args_hash: Some("ab".into()),
                target_digest: "d1".into(),
            },
            approvers: approvers.iter().map(|a| a.to_string()).collect(),
            policies: vec!["p".into()],
            policy_version: 1,
            triggered_by: "alice: T-1".into(),
            sponsor_id: sponsor,
            state: ApprovalState::Pending,
            requested_at: Timestamp::from_millis(0),
            expires_at: Timestamp::from_millis(1000),
            decided_by: None,
            decided_at: None,
            reason: String::new(),
            used_at: None,
        }
    }

    #[test]
    fn only_named_approvers_decide_once_in_time() {
        let sponsor = human("sam", &[]);
        let finance = human("fay", &["finance-approvers"]);
        let other = human("oz", &["ops"]);
        let mut a = approval(&["group:finance-approvers"], sponsor.id);
        let at = Timestamp::from_millis(10);
        assert_eq!(
            a.decide(&sponsor, true, "ok", at).unwrap_err().code(),
            "not_an_approver"
        );
        assert_eq!(
            a.decide(&other, true, "ok", at).unwrap_err().code(),
            "not_an_approver"
        );
        assert_eq!(
            a.decide(&finance, true, " ", at).unwrap_err().code(),
            "reason_required"
        );
        a.decide(&finance, true, "refund checked", at).unwrap();
        assert_eq!(
            a.decide(&finance, false, "again", at).unwrap_err().code(),
            "not_pending"
        );
        let named = a.approvers.clone();
        assert_eq!(a.refuses(&a.action.clone(), &named, at), None);
        assert_eq!(a.refuses(&a.action.clone(), &[], at), None, "fewer is fine");
        let mut other_args = a.action.clone();
        other_args.args_hash = Some("cd".into());
        assert_eq!(
            a.refuses(&other_args, &named, at).unwrap().0,
            "approval_mismatch"
        );
        let mut described_otherwise = a.action.clone();
        described_otherwise.target_digest = "ff".into();
        assert_eq!(
            a.refuses(&described_otherwise, &named, at).unwrap().0,
            "approval_mismatch"
        );
        let more = [
            "group:finance-approvers".to_owned(),
            "role:admin".to_owned(),
        ];
        assert_eq!(
            a.refuses(&a.action.clone(), &more, at).unwrap().0,
            "approval_mismatch"
        );
        assert_eq!(
            a.refuses(&a.action.clone(), &named, Timestamp::from_millis(1000))
                .unwrap()
                .0,
            "approval_expired"
        );

        let mut b = approval(&["sponsor"], sponsor.id);
        assert_eq!(
            b.decide(&sponsor, true, "late", Timestamp::from_millis(1000))
                .unwrap_err()
                .code(),
            "expired"
        );
        b.decide(&sponsor, false, "no", at).unwrap();
        assert_eq!(
            b.refuses(&b.action.clone(), &[], at).unwrap().0,
            "approval_denied"
        );
    }
}
