//! A request to a REST route (method, target, headers, body), read by the gateway up to
//! the question it would ask aim: `aim_gateway::fuzz::Harness::http`.
#![no_main]

use std::sync::LazyLock;

use aim_gateway::fuzz::{HttpCase, Harness};
use libfuzzer_sys::fuzz_target;

static HARNESS: LazyLock<Harness> = LazyLock::new(Harness::new);

fuzz_target!(|data: &[u8]| {
    HARNESS.http(&HttpCase::read(data));
});
