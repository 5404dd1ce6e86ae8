//! What an enforcement gateway asks of aim: `POST /v1/gateway/authorize` (may the agent
//! that presented this token and proof to the gateway take this action now?) and
//! `POST /v1/gateway/refusals` (a request the gateway refused before it could ask).

use aim_domain::agent_key::RevocationKind;
use aim_domain::event::Event;
use aim_domain::ids::{IdentityId, TaskId};
use aim_domain::live::LiveContext;
use aim_domain::single_use::Claim;
use serde::{Deserialize, Serialize};

use crate::authorize::{AuthorizeBody, AuthorizeResponse};

/// The agent's request as it reached the gateway, and the question it comes to.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct GatewayAuthorize {
    /// The access token the agent presented (`Authorization: DPoP <token>`).
    pub token: String,
    /// The DPoP proof it presented with it (required for a DPoP-bound token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof: Option<String>,
    /// The request's method, as the proof's `htm` must name it.
    pub method: String,
    /// The absolute URL the agent called, as the proof's `htu` must name it: it starts
    /// with the gateway's resource (one of aim's `tokens.resources`), and the token's
    /// audience must be that resource (RFC 8707).
    pub url: String,
    /// The question (`action`, `resource`, `call`, `approval_id`); `principal`,
    /// `task_id` and `policies` are refused: the token says who asks, under which task.
    pub question: AuthorizeBody,
    /// For an MCP `tools/call`: the tool and the hash of its definition as the gateway
    /// last saw it; refused (`tool_not_approved`) unless that definition is pinned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<crate::tools::ToolRef>,
}

/// The decision, and who it was about, for the gateway's own log and its cache.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GatewayDecision {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub identity: IdentityId,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub task: TaskId,
    /// The token's id.
    pub jti: String,
    /// The identities the token was delegated through, nearest first (`act`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub act: Vec<String>,
    /// The decision, on the record (durably) before this answer was sent.
    pub answer: AuthorizeResponse,
}

/// A request the gateway refused on its own (no token, a path that is not canonical, a
/// route it does not know), for the record.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct GatewayRefusal {
    /// The request's method and path as received (shortened, control characters dropped).
    pub method: String,
    pub path: String,
    /// The agent's address as the gateway saw it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// The status the gateway answered and its machine-readable code.
    pub status: u16,
    pub code: String,
}

/// How many connected gateways applied a revocation (a lock), and how fast.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Acknowledged {
    /// The revocation list's epoch the lock made.
    pub epoch: i64,
    pub acknowledged: u32,
    /// Gateways that acknowledged anything in the last five seconds, on any replica.
    pub connected: u32,
    /// From the lock's commit to the last acknowledgement (or to giving up, after 2 s).
    pub millis: f64,
}

impl std::fmt::Display for Acknowledged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "acknowledged by {} of {} gateways in {:.0} ms",
            self.acknowledged, self.connected, self.millis
        )
    }
}

/// `POST /v1/gateway/acks`: the gateway applied the revocation list up to `epoch`.
#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Ack {
    pub epoch: i64,
}

/// `POST /v1/identities/{id}/lock`: the identity, now locked, and how many connected
/// gateways applied the lock.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Locked {
    #[serde(flatten)]
    pub identity: aim_domain::identity::Identity,
    pub gateways: Acknowledged,
}

/// `POST /v1/gateway/calls`: a call the gateway forwarded, and what the upstream answered.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct GatewayCall {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub identity: IdentityId,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub task: TaskId,
    /// The token's id and its delegation chain, as aim's decision named them.
    pub jti: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub act: Vec<String>,
    /// The route's action and the resource it acted on.
    pub action: String,
    pub resource: String,
    pub method: String,
    pub path: String,
    /// The upstream's name in the gateway's config, its status, and the time from
    /// forwarding to its answer's headers.
    pub upstream: String,
    pub status: u16,
    pub micros: u64,
    /// Why the agent says it made the call (`Aim-Model-Decision`), shortened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_decision: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// The agent's request's id, when calls are sent several at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// `POST /v1/gateway/calls`: one call, or several (at most 1000) in one request.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum GatewayCalls {
    One(Box<GatewayCall>),
    Many(Vec<GatewayCall>),
}

/// `POST /v1/identities/lock-all`: the emergency stop.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct LockAll {
    pub reason: String,
    /// The kind of identity to lock; `ai_agent` unless given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub kind: Option<aim_domain::identity::IdentityKind>,
}

/// What the emergency stop locked, what it could not, and the gateways' acknowledgement of
/// the last lock.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LockedAll {
    pub locked: u32,
    /// `{"identity", "code", "message"}` of each identity that could not be locked (it
    /// changed state meanwhile, say).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Object>))]
    pub failed: Vec<serde_json::Value>,
    pub gateways: Acknowledged,
}

// Decisions taken in the gateway: it reads what it needs from aim (below) and keeps it
// until aim's feed says it changed; aim keeps the record.

/// `POST /v1/gateway/live`: what a token presented to a gateway hangs on, as the gateway
/// read it from the verified token; aim answers with the live state behind it.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct GatewayLive {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub identity: IdentityId,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub task: TaskId,
    /// Revocations that kill the token whenever it was issued (`[kind, value]`).
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Vec<String>>))]
    pub always: Vec<(RevocationKind, String)>,
    /// Revocations that kill it if it was issued at or before them.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Vec<String>>))]
    pub earlier: Vec<(RevocationKind, String)>,
    /// The identities that delegated it, nearest first.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub delegators: Vec<IdentityId>,
}

/// The live state behind a token (`None`: its identity is unknown), and the identity's
/// sponsor for policies that read it.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GatewayLiveState {
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub context: Option<LiveContext>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sponsor: Option<aim_domain::human::Human>,
}

/// `GET /v1/gateway/state`: what a gateway decides with: the policy set in force on this
/// replica with the schema it compiles against, the live grants, and the approval limits.
/// The feed's heartbeat names `policy_version` and `grants_revision`; a gateway reads
/// this again when either moves.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GatewayState {
    /// The issuer aim's tokens name.
    pub issuer: String,
    pub policy_version: i64,
    pub policies: crate::policies::Content,
    /// The schema extensions the policies were validated against.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Object>))]
    pub schema: Vec<aim_domain::policy_file::Source>,
    pub grants_revision: i64,
    pub grants: Vec<aim_domain::grant::Grant>,
    pub approval_ttl_seconds: i64,
    pub max_pending_approvals: u32,
}

/// `POST /v1/gateway/decisions`: a decision a gateway took, built as aim builds its own
/// (a `decision` event), with the DPoP proof it spends.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct GatewayRecord {
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub event: Event,
    /// `[{"id": "dpop:<jkt>:<jti>", "expires_at"}]`: recorded as used with the event.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Object>))]
    pub claims: Vec<Claim>,
}

/// `POST /v1/gateway/decisions`: one record, durable before the answer (the gateway
/// forwards nothing before it); or several a gateway queued on `audit = "batched"`
/// routes, already acted on.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum GatewayRecords {
    One(Box<GatewayRecord>),
    Many(Vec<GatewayRecord>),
}

/// What aim made of the records: the sequence number of each on aim's log; a batched
/// record whose proof had been spent before is recorded with `replayed`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GatewayRecorded {
    pub seqs: Vec<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replayed: Vec<usize>,
}
