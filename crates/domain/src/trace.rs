//! The causal chain of one task, built from its events: the human request that started it,
//! the task's own events, then each token issued for it with what was done under that
//! token (decisions, tool calls, revocation), a sub-agent's token nested under the token it
//! was exchanged from.
//!
//! The issuer records the token an exchange started from as `detail.parent_jti` of the
//! `token.issued` event; everything else comes from each event's [`Trail`](crate::event::Trail).

use serde::{Deserialize, Serialize};

use crate::event::Event;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Trace {
    pub task_id: String,
    /// The human requests behind the task, in the order they first appear.
    pub triggered_by: Vec<String>,
    /// The task's events not made under a token (creation, approvals, end), oldest first.
    pub events: Vec<Event>,
    /// The tokens issued for the task that were not exchanged from another of its tokens.
    pub tokens: Vec<TokenTrace>,
    /// More events exist than were read; the trace shows the oldest ones.
    pub truncated: bool,
    /// The name of each identity and the user name of each human the events name, by id.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub names: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenTrace {
    pub jti: String,
    /// Everything recorded under this token, oldest first.
    pub events: Vec<Event>,
    /// Tokens exchanged from this one (sub-agents).
    #[cfg_attr(feature = "openapi", schema(no_recursion))]
    pub tokens: Vec<TokenTrace>,
}

impl Trace {
    /// Builds the trace of `task_id` from its events (any order; they are sorted by `seq`).
    pub fn build(task_id: &str, mut events: Vec<Event>, truncated: bool) -> Self {
        events.sort_by_key(|e| e.seq);
        let mut triggered_by: Vec<String> = Vec::new();
        let mut own = Vec::new();
        // Tokens in order of first appearance, with their parent's index if it came earlier.
        let mut tokens: Vec<(TokenTrace, Option<usize>)> = Vec::new();
        for e in events {
            let t = &e.trail.triggered_by;
            if !t.is_empty() && !triggered_by.contains(t) {
                triggered_by.push(t.clone());
            }
            if e.trail.jti.is_empty() {
                own.push(e);
                continue;
            }
            let index = match tokens.iter().position(|(t, _)| t.jti == e.trail.jti) {
                Some(i) => i,
                None => {
                    let parent = e
                        .detail
                        .get("parent_jti")
                        .and_then(|p| p.as_str())
                        .and_then(|p| tokens.iter().position(|(t, _)| t.jti == p));
                    tokens.push((
                        TokenTrace {
                            jti: e.trail.jti.clone(),
                            events: Vec::new(),
                            tokens: Vec::new(),
                        },
                        parent,
                    ));
                    tokens.len() - 1
                }
            };
            tokens[index].0.events.push(e);
        }
        // A parent always comes before its children, so attaching from the back builds
        // each subtree before it is moved into its parent.
        let mut roots = Vec::new();
        while let Some((token, parent)) = tokens.pop() {
            match parent {
                Some(p) => tokens[p].0.tokens.insert(0, token),
                None => roots.insert(0, token),
            }
        }
        Self {
            task_id: task_id.to_owned(),
            triggered_by,
            events: own,
            tokens: roots,
            truncated,
            names: Default::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::AuditAction;
    use crate::event::{Actor, Trail};
    use crate::time::Timestamp;

    fn event(seq: i64, action: AuditAction, jti: &str, detail: serde_json::Value) -> Event {
        let mut e = Event::new(
            Timestamp::from_millis(seq),
            Actor::system("test"),
            action,
            "task",
            "t1",
        )
        .detail(detail)
        .trail(Trail {
            task_id: "t1".into(),
            jti: jti.into(),
            triggered_by: if seq == 1 {
                "TICKET-7".into()
            } else {
                String::new()
            },
            ..Trail::default()
        });
        e.seq = seq;
        e
    }

    #[test]
    fn tokens_nest_under_the_token_they_were_exchanged_from() {
        let none = serde_json::Value::Null;
        let events = vec![
            event(6, AuditAction::Decision, "b", none.clone()),
            event(1, AuditAction::TaskOpened, "", none.clone()),
            event(2, AuditAction::TokenIssued, "a", none.clone()),
            event(3, AuditAction::Decision, "a", none.clone()),
            event(
                4,
                AuditAction::TokenIssued,
                "b",
                serde_json::json!({ "parent_jti": "a" }),
            ),
            event(
                5,
                AuditAction::TokenIssued,
                "c",
                serde_json::json!({ "parent_jti": "unknown" }),
            ),
            event(7, AuditAction::TaskEnded, "", none),
        ];
        let t = Trace::build("t1", events, false);
        assert_eq!(t.triggered_by, vec!["TICKET-7".to_owned()]);
        let seqs = |es: &[Event]| es.iter().map(|e| e.seq).collect::<Vec<_>>();
        assert_eq!(seqs(&t.events), vec![1, 7]);
        assert_eq!(
            t.tokens.iter().map(|t| t.jti.as_str()).collect::<Vec<_>>(),
            vec!["a", "c"]
        );
        assert_eq!(seqs(&t.tokens[0].events), vec![2, 3]);
        assert_eq!(t.tokens[0].tokens.len(), 1);
        assert_eq!(t.tokens[0].tokens[0].jti, "b");
        assert_eq!(seqs(&t.tokens[0].tokens[0].events), vec![4, 6]);
    }

    #[test]
    fn a_token_cannot_be_its_own_parent() {
        let e = event(
            2,
            AuditAction::TokenIssued,
            "a",
            serde_json::json!({ "parent_jti": "a" }),
        );
        let t = Trace::build("t1", vec![e], false);
        assert_eq!(t.tokens.len(), 1);
        assert!(t.tokens[0].tokens.is_empty());
    }
}
