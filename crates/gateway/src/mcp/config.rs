//! `[mcp.<server>]` in `gateway.toml`: an MCP server (streamable HTTP) behind an upstream,
//! the path agents reach it at, and how each tool's call becomes a question.
//!
//! ```toml
//! [mcp.crm]
//! upstream = "crm_mcp"      # its url is the server's MCP endpoint
//! path = "/mcp/crm"
//! system = "crm"            # default: the server's name
//!
//! [[mcp.crm.tools]]         # by default a tool is `call_tool` on Tool::"crm/<tool>"
//! name = "update_record"
//! action = "write"
//! resource = { type = "Resource", system = "crm", id = "{id}", attrs = { type = "record", sensitivity = "confidential", subject = "body:/customer" } }
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::config::{ConfigError, TargetConfig, Upstream};
use crate::route::{Route, Template};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpConfig {
    /// The upstream whose URL is the server's MCP endpoint.
    pub upstream: String,
    /// Where agents reach the server through the gateway (`/mcp/crm`).
    pub path: String,
    /// The Cedar system its tools belong to; the server's name by default.
    #[serde(default)]
    pub system: Option<String>,
    /// Browser origins allowed to call (an `Origin` header not on this list, nor the
    /// gateway's own origin, is refused with 403).
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// Tools whose call is another action or acts on another resource than the default.
    #[serde(default)]
    pub tools: Vec<McpToolConfig>,
    /// How its tools' decisions reach aim's record, unless a tool says otherwise
    /// (`durable` or `batched`, as a route's `audit`).
    #[serde(default)]
    pub audit: crate::decide::Audit,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpToolConfig {
    pub name: String,
    #[serde(default = "call_tool")]
    pub action: String,
    /// The resource the call acts on; `{arg}` in its id or a literal attribute is the
    /// call's argument `arg`, `body:/pointer` points into the arguments.
    #[serde(default)]
    pub resource: Option<TargetConfig>,
    /// The server's `audit` unless given.
    #[serde(default)]
    pub audit: Option<crate::decide::Audit>,
}

fn call_tool() -> String {
    "call_tool".into()
}

/// An MCP server as checked.
#[derive(Debug)]
pub struct Server {
    pub name: String,
    /// Index of its upstream.
    pub upstream: usize,
    pub path: String,
    pub system: String,
    pub origins: Vec<String>,
    /// Tools with their own question.
    pub tools: BTreeMap<String, Route>,
    /// How the decisions on its tools reach aim's record, unless a tool's route says.
    pub audit: crate::decide::Audit,
}

impl Server {
    /// How a call of `tool` becomes a question: its own route, or `call_tool` on
    /// `Tool::"<server>/<tool>"` with its name.
    pub fn route(&self, tool: &str) -> Route {
        if let Some(r) = self.tools.get(tool) {
            return r.clone();
        }
        let target = TargetConfig {
            kind: "Tool".into(),
            system: self.system.clone(),
            id: format!("{}/{tool}", self.name),
            attrs: BTreeMap::from([("name".to_owned(), tool.to_owned())]),
        };
        // Cannot fail: every part is non-empty and the tool's name holds no `{`.
        let mut route = Route::for_tool(self.upstream, call_tool(), target)
            .unwrap_or_else(|_| unreachable!("a default tool route is always valid"));
        route.audit = self.audit;
        route
    }
}

fn invalid(message: String) -> ConfigError {
    ConfigError::Invalid(message)
}

/// Checks `[mcp.*]` against the upstreams.
pub fn check(
    servers: BTreeMap<String, McpConfig>,
    upstreams: &[Upstream],
) -> Result<Vec<Server>, ConfigError> {
    let mut out: Vec<Server> = Vec::new();
    for (name, m) in servers {
        let what = format!("mcp.{name}");
        if !aim_domain::tool::valid_name(&name) {
            return Err(invalid(format!(
                "{what}: a server's name is 1-128 of A-Z a-z 0-9 _ - ."
            )));
        }
        let Some(upstream) = upstreams.iter().position(|u| u.name == m.upstream) else {
            return Err(invalid(format!(
                "{what}: no upstream is called {:?}",
                m.upstream
            )));
        };
        let template =
            Template::parse(&m.path).map_err(|e| invalid(format!("{what}.path: {e}")))?;
        let path = template.to_string();
        if path != m.path || m.path.contains('{') || path == "/" {
            return Err(invalid(format!(
                "{what}.path: {:?} must be a literal path such as /mcp/{name}",
                m.path
            )));
        }
        if out.iter().any(|s| s.path == path) {
            return Err(invalid(format!(
                "{what}.path: {path} is taken by another server"
            )));
        }
        let mut tools = BTreeMap::new();
        for t in m.tools {
            if !aim_domain::tool::valid_name(&t.name) {
                return Err(invalid(format!(
                    "{what}.tools: {:?} is not a tool name",
                    t.name
                )));
            }
            let system = m.system.clone().unwrap_or_else(|| name.clone());
            let target = t.resource.unwrap_or_else(|| TargetConfig {
                kind: "Tool".into(),
                system,
                id: format!("{name}/{}", t.name),
                attrs: BTreeMap::from([("name".to_owned(), t.name.clone())]),
            });
            let mut route = Route::for_tool(upstream, t.action, target)
                .map_err(|e| invalid(format!("{what}.tools.{}: {e}", t.name)))?;
            route.audit = t.audit.unwrap_or(m.audit);
            if tools.insert(t.name.clone(), route).is_some() {
                return Err(invalid(format!("{what}.tools: {} appears twice", t.name)));
            }
        }
        out.push(Server {
            system: m.system.unwrap_or_else(|| name.clone()),
            name,
            upstream,
            path,
            origins: m.allowed_origins,
            tools,
            audit: m.audit,
        });
    }
    Ok(out)
}
