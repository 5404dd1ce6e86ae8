//! The live state behind the tokens agents present, kept briefly so an agent making many
//! calls does not cost a read each. An entry is used only if nothing that could change
//! live state happened on this replica since it was read, and for at most half a second
//! (what another replica's revocation may take to be seen here).
//!
//! INVARIANT: every change that can revoke a token, end a task, or change an identity's or
//! a sponsor's state bumps [`LiveCache::bump`] after it is committed. The auth layer bumps
//! after every mutating request (except the few that never touch live state, see
//! [`changes_live_state`]); background jobs that change identities or tasks bump after
//! each run. A reader takes the generation *before* its read, so an entry read before a
//! change is never used after that change's bump.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aim_store::LiveContext;

/// How long an entry may be used at most: bounds how late a change made on another
/// replica is seen here.
const TTL: Duration = Duration::from_millis(500);
const CAPACITY: usize = 100_000;

#[derive(Debug, Default)]
pub struct LiveCache {
    generation: AtomicU64,
    entries: Mutex<HashMap<String, (LiveContext, Instant, u64)>>,
}

impl LiveCache {
    /// Something that may change live state was committed on this replica.
    pub fn bump(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// The generation to tag a read about to be made with.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The live state of token `jti`, if read since the last change and within the TTL.
    pub fn get(&self, jti: &str) -> Option<LiveContext> {
        let now = self.generation();
        let entries = self.entries.lock().ok()?;
        let (live, at, generation) = entries.get(jti)?;
        (*generation == now && at.elapsed() < TTL).then(|| live.clone())
    }

    /// Keeps what was read under `generation`.
    pub fn put(&self, jti: &str, live: LiveContext, generation: u64) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= CAPACITY {
                entries.retain(|_, (_, at, _)| at.elapsed() < TTL);
                if entries.len() >= CAPACITY {
                    entries.clear();
                }
            }
            entries.insert(jti.to_owned(), (live, Instant::now(), generation));
        }
    }
}

/// Whether a request may change live state: any write, except those that only decide,
/// issue, lease or approve, which never revoke a token, end a task or change an identity.
pub fn changes_live_state(method: &axum::http::Method, path: &str) -> bool {
    use axum::http::Method;
    if method == Method::GET || method == Method::HEAD || method == Method::OPTIONS {
        return false;
    }
    !(path == "/v1/authorize"
        || path == "/v1/authorize/explain"
        || path == "/oauth/introspect"
        || path == "/v1/leases"
        || path == "/v1/grants/requests"
        || (path.starts_with("/v1/leases/") && path.ends_with("/release"))
        || (path.starts_with("/v1/approvals/")
            && (path.ends_with("/approve") || path.ends_with("/deny"))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Method;

    #[test]
    fn only_writes_that_can_revoke_drop_the_cache() {
        for (method, path) in [
            (Method::POST, "/v1/identities/x/suspend"),
            (Method::POST, "/v1/tasks/x/end"),
            (Method::POST, "/oauth/revoke"),
            (Method::PATCH, "/scim/v2/Users/x"),
            (Method::DELETE, "/v1/identities/x/keys/k"),
            (Method::POST, "/v1/signing-keys/k/revoke"),
            (Method::POST, "/v1/grants/x/revoke"),
        ] {
            assert!(changes_live_state(&method, path), "{method} {path}");
        }
        for (method, path) in [
            (Method::GET, "/v1/tasks/x"),
            (Method::POST, "/v1/authorize"),
            (Method::POST, "/oauth/introspect"),
            (Method::POST, "/v1/leases"),
            (Method::POST, "/v1/leases/x/release"),
            (Method::POST, "/v1/approvals/x/approve"),
        ] {
            assert!(!changes_live_state(&method, path), "{method} {path}");
        }
    }
}
