//! Humans known to aim: sponsors, approvers, admins and auditors, provisioned by API or by
//! SCIM from the company's IdP.

use serde::{Deserialize, Serialize};

use crate::error::Refusal;
use crate::ids::HumanId;
use crate::time::Timestamp;
use crate::validate;

str_enum! {
    /// What a human may do through the API.
    pub enum Role {
        /// Everything, including unlocking and managing humans.
        Admin => "admin",
        /// Approves or rejects identity requests (never their own).
        Approver => "approver",
        /// Requests identities and attests, suspends and resumes the ones they sponsor.
        Sponsor => "sponsor",
        /// Reads everything, changes nothing.
        Auditor => "auditor",
        /// A machine: an enforcement gateway. Decides for other principals, reads the
        /// revocation feed, introspects tokens; nothing else.
        Gateway => "gateway",
        /// A machine: an identity provider pushing humans over SCIM (`/scim/v2` only).
        Scim => "scim",
    }
}

impl Role {
    /// A role held by a machine that talks to aim, not by a person.
    pub fn is_machine(self) -> bool {
        matches!(self, Role::Gateway | Role::Scim)
    }
}

/// Whether an account with `roles` is a person: it has no role (a sponsor) or one a
/// machine does not hold. Gateways' and SCIM clients' accounts are not people.
pub fn is_person(roles: &[Role]) -> bool {
    roles.is_empty() || roles.iter().any(|r| !r.is_machine())
}

str_enum! {
    pub enum HumanState {
        Active => "active",
        /// Left the company or was deprovisioned; every identity they sponsor is orphaned.
        Departed => "departed",
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Human {
    pub id: HumanId,
    /// Unique, compared case-insensitively (SCIM `userName`).
    pub user_name: String,
    pub display_name: Option<String>,
    pub email: Option<String>,
    /// The IdP's id for this person (SCIM `externalId`).
    pub external_id: Option<String>,
    pub roles: Vec<Role>,
    /// Groups the human belongs to (`finance-approvers`), as the IdP or an admin set
    /// them: `@approval("group:finance-approvers")` names them.
    #[serde(default)]
    pub groups: Vec<String>,
    pub state: HumanState,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub departed_at: Option<Timestamp>,
    /// Set when the IdP deleted the user over SCIM; the record stays for the audit trail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<Timestamp>,
    pub version: i64,
}

impl Human {
    pub fn is_active(&self) -> bool {
        self.state == HumanState::Active
    }

    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// Marks the human departed. Returns false if they already were.
    pub fn depart(&mut self, now: Timestamp) -> bool {
        if self.state == HumanState::Departed {
            return false;
        }
        self.state = HumanState::Departed;
        self.departed_at = Some(now);
        self.updated_at = now;
        true
    }

    /// Marks the human active again. Returns false if they already were.
    pub fn reactivate(&mut self, now: Timestamp) -> bool {
        if self.state == HumanState::Active {
            return false;
        }
        self.state = HumanState::Active;
        self.departed_at = None;
        self.deleted_at = None;
        self.updated_at = now;
        true
    }
}

/// What an admin or the IdP supplies to create a human.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewHuman {
    pub user_name: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub external_id: Option<String>,
    #[serde(default)]
    pub roles: Vec<Role>,
    #[serde(default)]
    pub groups: Vec<String>,
}

impl NewHuman {
    pub fn into_human(self, id: HumanId, now: Timestamp) -> Result<Human, Refusal> {
        let user_name = validate::user_name(&self.user_name)?;
        let display_name = validate::optional_text("display_name", self.display_name, 256)?;
        let email = validate::optional_text("email", self.email, 320)?;
        let external_id = validate::optional_text("external_id", self.external_id, 256)?;
        Ok(Human {
            id,
            user_name,
            display_name,
            email,
            external_id,
            roles: role_set(self.roles)?,
            groups: group_names(self.groups)?,
            state: HumanState::Active,
            created_at: now,
            updated_at: now,
            departed_at: None,
            deleted_at: None,
            version: 1,
        })
    }
}

/// What an admin may change on a human. Absent fields stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct HumanPatch {
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub roles: Option<Vec<Role>>,
    #[serde(default)]
    pub groups: Option<Vec<String>>,
}

impl HumanPatch {
    pub fn apply(self, h: &mut Human, now: Timestamp) -> Result<(), Refusal> {
        if let Some(d) = validate::optional_text("display_name", self.display_name, 256)? {
            h.display_name = Some(d);
        }
        if let Some(e) = validate::optional_text("email", self.email, 320)? {
            h.email = Some(e);
        }
        if let Some(r) = self.roles {
            h.roles = role_set(r)?;
        }
        if let Some(g) = self.groups {
            h.groups = group_names(g)?;
        }
        h.updated_at = now;
        Ok(())
    }
}

/// Group names are tokens (letters, digits, `-`, `_`, `.`), sorted, without repeats, at
/// most 64 of them.
fn group_names(groups: Vec<String>) -> Result<Vec<String>, Refusal> {
    if groups.len() > 64 {
        return Err(Refusal::Validation(
            "a human may be in at most 64 groups".to_owned(),
        ));
    }
    let mut out = groups
        .iter()
        .map(|g| validate::token("group", g, 128))
        .collect::<Result<Vec<_>, _>>()?;
    out.sort();
    out.dedup();
    Ok(out)
}

/// Roles sorted without repeats. A machine role (`gateway`, `scim`) stands alone: the
/// credential of a machine is never also a person's, so its narrow reach stays narrow.
pub fn role_set(mut roles: Vec<Role>) -> Result<Vec<Role>, Refusal> {
    roles.sort();
    roles.dedup();
    if roles.iter().any(|r| r.is_machine()) && roles.len() > 1 {
        return Err(Refusal::Validation(
            "`gateway` and `scim` are machine roles and go alone: make one human per machine"
                .to_owned(),
        ));
    }
    Ok(roles)
}

/// An API credential of a human. Only a hash of its secret is ever stored; the secret is
/// shown once, when it is created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Credential {
    pub id: crate::ids::CredentialId,
    pub human_id: HumanId,
    pub label: String,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

/// The human and how many identities their departure (or return) touched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DepartureOutcome {
    pub human: Human,
    /// Identities now orphaned (on deactivate) or no longer orphaned (on reactivate).
    pub identities_affected: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewCredential {
    /// What the credential is for (`laptop`, `ci`).
    #[serde(default)]
    pub label: String,
}

/// A new credential. `secret` is shown this once; aim stores only its hash.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IssuedCredential {
    pub credential: Credential,
    pub secret: String,
}

impl std::fmt::Debug for IssuedCredential {
    // INVARIANT: the secret never reaches a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedCredential")
            .field("credential", &self.credential)
            .field("secret", &"<redacted>")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::{Role, is_person};

    #[test]
    fn gateways_and_scim_clients_are_not_people() {
        assert!(is_person(&[]), "a sponsor with no role is a person");
        assert!(is_person(&[Role::Approver]));
        assert!(is_person(&[Role::Gateway, Role::Admin]));
        assert!(!is_person(&[Role::Gateway]));
        assert!(!is_person(&[Role::Scim, Role::Gateway]));
    }
}
