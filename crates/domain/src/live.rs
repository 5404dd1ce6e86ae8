//! The live state behind a presented token: what it hangs on ([`Hangs`]) and what one read
//! of the store finds about them ([`LiveContext`]). An enforcement point refuses the token
//! when any of it says no (see `aim-enforce`).

use crate::agent_key::{AgentKey, RevocationKind};
use crate::ids::IdentityId;
use crate::task::Task;
use crate::time::Timestamp;

/// What a presented token hangs on besides its own identity and task.
#[derive(Debug, Clone, Default)]
pub struct Hangs<'a> {
    /// Revocations that kill it whenever it was issued: its id and its ancestors' ids, its
    /// signing key, the agent key it is bound to.
    pub always: Vec<(RevocationKind, &'a str)>,
    /// Revocations that kill it only if it was issued at or before them: its identity's
    /// and every delegator's.
    pub earlier: Vec<(RevocationKind, &'a str)>,
    /// The identities that delegated it, nearest first: each must still be active.
    pub delegators: Vec<IdentityId>,
}

/// The state behind a presented token, read in one query.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct LiveContext {
    pub context: TokenContext,
    /// When the task was last revoked (ended), if ever.
    pub task_revoked_at: Option<Timestamp>,
    /// When any of [`Hangs::always`] was last revoked, if ever.
    pub always_revoked_at: Option<Timestamp>,
    /// When any of [`Hangs::earlier`] was last revoked, if ever.
    pub earlier_revoked_at: Option<Timestamp>,
    /// How many of [`Hangs::delegators`] are active with an active sponsor.
    pub delegators_active: usize,
}

/// What issuing a token needs to know, read in one query.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct TokenContext {
    pub identity: crate::identity::Identity,
    pub sponsor_state: crate::human::HumanState,
    /// The identity's key with the asked-for kid, if registered.
    pub key: Option<AgentKey>,
    /// The asked-for task, if it exists and belongs to the identity.
    pub task: Option<Task>,
    /// Whether the signing key the caller is about to sign with is revoked
    /// (`token_context` only; false from `live_context`).
    pub signer_revoked: bool,
}
