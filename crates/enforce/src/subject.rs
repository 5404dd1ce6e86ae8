//! Who a question is about, the task it is asked under, and who asks.

use aim_api::authorize::AuthorizeBody;
use aim_domain::baseline::watch::Seen;
use aim_domain::event::{Actor, Trail};
use aim_domain::human::Human;
use aim_domain::identity::Identity;
use aim_domain::task::Task;
use aim_domain::time::Timestamp;

use crate::token::Agent;

/// The principal a question is about.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)] // one per request, never in a collection
pub enum About {
    Identity(Identity),
    Human(Human),
}

/// Who the question is about, the task it is asked under, and who asks.
#[derive(Debug, Clone)]
pub struct Subject {
    pub about: About,
    pub task: Option<Task>,
    /// Who asks: the agent itself, or the human (an admin, a gateway) asking for it.
    pub actor: Actor,
    /// The token and task behind the question, for the record.
    pub trail: Trail,
    /// An agent asking about itself under its token's task: only then does an
    /// `approval_required` become an approval to wait for.
    pub own_task: bool,
    /// The thumbprint of the key the agent's token is bound to (`cnf.jkt`).
    pub key: Option<String>,
}

impl Subject {
    /// An agent asking about itself, as its token's check found it.
    pub fn agent(agent: &Agent) -> Self {
        let (identity, task) = (*agent.live).clone();
        Subject {
            trail: Trail {
                act: agent
                    .claims
                    .act
                    .as_ref()
                    .map(|act| act.chain())
                    .unwrap_or_default(),
                task_id: task.id.to_string(),
                session_id: agent.claims.sid.clone(),
                jti: agent.claims.jti.clone(),
                triggered_by: task.triggered_by.clone(),
                ..Trail::default()
            },
            about: About::Identity(identity),
            task: Some(task),
            actor: Actor::identity(agent.identity),
            own_task: true,
            key: agent.claims.cnf.as_ref().map(|c| c.jkt.clone()),
        }
    }

    /// The identity the question is about, if it is about one.
    pub fn identity(&self) -> Option<&Identity> {
        match &self.about {
            About::Identity(i) => Some(i),
            About::Human(_) => None,
        }
    }
}

impl Subject {
    /// Its call `q` at `now` as its baseline sees it (`denied`: what the rules said).
    pub fn seen(&self, q: &AuthorizeBody, denied: bool, now: Timestamp) -> Seen {
        Seen::of(
            now,
            &q.action,
            &q.resource,
            self.task.as_ref().map(|t| t.id),
            self.key.as_deref(),
            q.call.ip.as_deref(),
            denied,
        )
    }
}
