-- MCP tools seen through gateways, each with the definition an admin pinned (approved):
-- a tool whose definition is not the pinned one is hidden and its calls refused.
CREATE TABLE mcp_tools (
    server TEXT NOT NULL,
    name TEXT NOT NULL,
    seen_hash TEXT NOT NULL,
    doc TEXT NOT NULL,
    PRIMARY KEY (server, name)
);
