//! MCP tools through gateways: what a gateway reports of a server's tools
//! (`POST /v1/gateway/tools`), who sent an MCP message (`POST /v1/gateway/verify`), which
//! tools a caller may use (`POST /v1/gateway/permitted`),
//! and the admin's view and approval of their pinned definitions (`/v1/tools`).

use aim_domain::decision::Effect;
use aim_domain::ids::{IdentityId, TaskId};
use aim_domain::tool::{PinState, Tool};
use serde::{Deserialize, Serialize};

use crate::authorize::AuthorizeBody;

/// The tools an MCP server offered the gateway (`tools/list`), as the server sent them.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SeenTools {
    /// The MCP server's name in the gateway's configuration.
    pub server: String,
    /// Each tool's definition (`name`, `description`, `inputSchema`, ...), at most 1000.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Object>))]
    pub tools: Vec<serde_json::Value>,
}

/// Where each tool of a [`SeenTools`] stands: only `approved` ones may be listed or called.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ToolStates {
    pub tools: Vec<ToolState>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ToolState {
    pub name: String,
    /// The definition's hash as seen now (what a call names, see [`ToolRef`]).
    pub hash: String,
    pub state: PinState,
}

/// The tool a gateway's question is about, and the hash of the definition the gateway
/// last saw: the call is refused unless that definition is the approved one.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ToolRef {
    pub server: String,
    pub name: String,
    /// The definition's hash as this gateway last saw it; without one (the gateway has
    /// not listed the server's tools since it started), the definition any gateway last
    /// reported must be the approved one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
}

/// `POST /v1/gateway/verify`: the agent behind this token and proof may send this MCP
/// message (`initialize`, `tools/list`, a notification, the GET stream) through the
/// gateway; the proof is spent and the message recorded. Calls are decided instead
/// (`POST /v1/gateway/authorize`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct GatewayVerify {
    pub token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof: Option<String>,
    pub method: String,
    pub url: String,
    /// The MCP server's name in the gateway's configuration.
    pub server: String,
    /// The JSON-RPC method (`tools/list`, `initialize`, ...), or `GET` / `DELETE` for the
    /// stream and the end of a session.
    pub rpc: String,
}

/// Who presented a token the gateway verified.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Verified {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub identity: IdentityId,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub task: TaskId,
    pub jti: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub act: Vec<String>,
}

/// `POST /v1/gateway/permitted`: which of these questions the identity could be allowed
/// under its task (a tool list filtered for the caller the gateway just verified).
/// Weighed as decisions would be, without asking anyone, taking a lease or recording each.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct GatewayPermitted {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub identity: IdentityId,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub task: TaskId,
    /// At most 1000; `principal`, `task_id` and `policies` left out.
    pub questions: Vec<AuthorizeBody>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Permitted {
    /// One per question, in order: `allow`, `approval_required` (listed: a call will ask
    /// a human) or `deny` (hidden).
    pub effects: Vec<Effect>,
}

/// A tool as an admin sees it: what was seen, what is pinned, and where it stands.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ToolView {
    #[serde(flatten)]
    pub tool: Tool,
    pub state: PinState,
}

impl From<Tool> for ToolView {
    fn from(tool: Tool) -> Self {
        Self {
            state: tool.state(),
            tool,
        }
    }
}

/// `POST /v1/tools/{server}/{name}/approve`: pins the definition with this hash, which
/// must be the one last seen (what the admin reviewed).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ApproveTool {
    pub hash: String,
}
