//! The live state behind the tokens agents present (and, in `aim serve`, what a token is
//! issued on), kept briefly so an agent making many calls does not cost a read each. An entry is used only if the source's generation has
//! not moved since it was read, and for at most half a second (what a change made where
//! this enforcement point cannot see it, another replica say, may take to be seen here).
//!
//! INVARIANT: the generation comes from the source of live state itself ([`LiveSource`]):
//! the store moves it when it commits a write, a gateway when its revocation feed says so.
//! No list of requests that "might change something" is kept anywhere. A reader takes the
//! generation *before* its read, so an entry read before a change is never used after it.
//!
//! [`LiveSource`]: crate::token::LiveSource

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aim_domain::live::LiveContext;

/// How long an entry may be used at most.
pub const TTL: Duration = Duration::from_millis(500);
const CAPACITY: usize = 100_000;

/// Entries of `T` (by default a presented token's live state) by key: a token's `jti`,
/// or what a token is issued on (the identity, its key, the task, the signing key).
#[derive(Debug)]
pub struct LiveCache<T = LiveContext> {
    entries: Mutex<HashMap<String, (T, Instant, u64)>>,
    hits: std::sync::atomic::AtomicU64,
    misses: std::sync::atomic::AtomicU64,
}

impl<T> Default for LiveCache<T> {
    fn default() -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            hits: Default::default(),
            misses: Default::default(),
        }
    }
}

impl<T> LiveCache<T> {
    /// How many lookups found a fresh entry, and how many did not.
    pub fn counts(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (self.hits.load(Relaxed), self.misses.load(Relaxed))
    }
}

impl<T: Clone> LiveCache<T> {
    /// The entry under `key`, if it was read at `generation` and within the TTL.
    pub fn get(&self, key: &str, generation: u64) -> Option<T> {
        use std::sync::atomic::Ordering::Relaxed;
        let found = self.entries.lock().ok().and_then(|entries| {
            let (live, at, read_at) = entries.get(key)?;
            (*read_at == generation && at.elapsed() < TTL).then(|| live.clone())
        });
        match &found {
            Some(_) => self.hits.fetch_add(1, Relaxed),
            None => self.misses.fetch_add(1, Relaxed),
        };
        found
    }

    /// Keeps what was read under `generation`.
    pub fn put(&self, key: &str, live: T, generation: u64) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= CAPACITY {
                entries.retain(|_, (_, at, _)| at.elapsed() < TTL);
                if entries.len() >= CAPACITY {
                    entries.clear();
                }
            }
            entries.insert(key.to_owned(), (live, Instant::now(), generation));
        }
    }
}
