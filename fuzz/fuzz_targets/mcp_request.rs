//! An MCP request (headers and one JSON-RPC body) and the server's answer, read by the
//! gateway as a request is: `aim_gateway::fuzz::Harness::mcp`.
#![no_main]

use std::sync::LazyLock;

use aim_gateway::fuzz::{Harness, McpCase};
use libfuzzer_sys::fuzz_target;

static HARNESS: LazyLock<Harness> = LazyLock::new(Harness::new);

fuzz_target!(|data: &[u8]| {
    HARNESS.mcp(&McpCase::read(data));
});
