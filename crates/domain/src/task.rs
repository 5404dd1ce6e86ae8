//! Tasks: one unit of work an agent was given. A task names its purpose, the systems it may
//! touch (a subset of the identity's registered systems), optionally the subject it is
//! about, and the human request that started it; it has a deadline capped by the
//! identity's autonomy. Every token is issued for one task and dies with it.

use serde::{Deserialize, Serialize};

use crate::Refusal;
use crate::identity::{Autonomy, Identity};
use crate::ids::{IdentityId, TaskId};
use crate::time::Timestamp;

str_enum! {
    pub enum TaskState {
        Open => "open",
        Ended => "ended",
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Task {
    pub id: TaskId,
    pub identity_id: IdentityId,
    pub purpose: String,
    pub systems: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The human and their request behind the task (`alice: TICKET-42`).
    pub triggered_by: String,
    pub state: TaskState,
    pub opened_at: Timestamp,
    pub deadline: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<Timestamp>,
    /// Why it ended: `ended by the agent`, `deadline passed`, `identity suspended`, ...
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub end_reason: String,
}

impl Task {
    pub fn is_open_at(&self, now: Timestamp) -> bool {
        self.state == TaskState::Open && now < self.deadline
    }
}

/// The RFC 9396 `authorization_details` entry of type `aim_task` that opens a task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskRequest {
    #[serde(rename = "type")]
    pub kind: String,
    pub purpose: String,
    pub systems: Vec<String>,
    #[serde(default)]
    pub subject: Option<String>,
    pub triggered_by: String,
    /// Seconds; capped by the identity's autonomy class.
    #[serde(default)]
    pub max_duration: Option<i64>,
}

pub const TASK_DETAIL_TYPE: &str = "aim_task";

/// The longest a task may run, by autonomy class, in seconds.
pub fn max_task_seconds(autonomy: Autonomy) -> i64 {
    match autonomy {
        Autonomy::Autonomous => 3600,
        Autonomy::Assistant => 8 * 3600,
        Autonomy::Automation => 24 * 3600,
    }
}

/// The default lifetime of an access token, by autonomy class, in seconds.
pub fn token_seconds(autonomy: Autonomy) -> i64 {
    match autonomy {
        Autonomy::Autonomous => 5 * 60,
        Autonomy::Assistant => 15 * 60,
        Autonomy::Automation => 60 * 60,
    }
}

fn text(field: &str, value: &str, max: usize) -> Result<(), Refusal> {
    if value.trim().is_empty() || value.len() > max || value.chars().any(char::is_control) {
        return Err(Refusal::Validation(format!(
            "`{field}` must be 1 to {max} bytes without control characters"
        )));
    }
    Ok(())
}

impl TaskRequest {
    /// Checks the request against the identity and opens the task at `now`.
    pub fn open(&self, identity: &Identity, now: Timestamp) -> Result<Task, Refusal> {
        if self.kind != TASK_DETAIL_TYPE {
            return Err(Refusal::Validation(format!(
                "authorization_details type must be `{TASK_DETAIL_TYPE}`"
            )));
        }
        text("purpose", &self.purpose, 500)?;
        text("triggered_by", &self.triggered_by, 300)?;
        if let Some(s) = &self.subject {
            text("subject", s, 200)?;
        }
        if self.systems.is_empty() || self.systems.len() > 32 {
            return Err(Refusal::Validation(
                "`systems` names 1 to 32 of the identity's systems".into(),
            ));
        }
        let mut systems = self.systems.clone();
        systems.sort();
        systems.dedup();
        if let Some(extra) = systems.iter().find(|s| !identity.systems.contains(s)) {
            return Err(Refusal::Validation(format!(
                "system `{}` is not one of the identity's registered systems",
                extra
                    .chars()
                    .take(64)
                    .filter(|c| !c.is_control())
                    .collect::<String>()
            )));
        }
        let cap = max_task_seconds(identity.autonomy);
        let seconds = match self.max_duration {
            None => cap,
            Some(d) if d > 0 => d.min(cap),
            Some(_) => {
                return Err(Refusal::Validation(
                    "`max_duration` is a positive number of seconds".into(),
                ));
            }
        };
        let deadline = now.plus_millis(seconds * 1000).min(identity.expires_at);
        Ok(Task {
            id: TaskId::new(),
            identity_id: identity.id,
            purpose: self.purpose.clone(),
            systems,
            subject: self.subject.clone(),
            triggered_by: self.triggered_by.clone(),
            state: TaskState::Open,
            opened_at: now,
            deadline,
            ended_at: None,
            end_reason: String::new(),
        })
    }
}
