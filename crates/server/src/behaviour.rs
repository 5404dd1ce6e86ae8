//! Behavioural baselines on this replica: each identity's profile, held in memory while it
//! is in use, learnt from every decision taken here ([`Baselines::watch`], on the decision
//! path, under the identity's own lock), and saved every few seconds; what a finding leads
//! to once its decision is on the record ([`act`]); and the replay of the record through the
//! same detectors ([`backtest`]).
//!
//! A profile is derived from decisions already on the record, so saving one records no
//! event; one idle for 15 minutes leaves memory once saved. What a crash loses is the learning since the last save (five seconds by default):
//! the next calls are held against a profile a few calls behind.
//!
//! # Layout
//! - [`act`] — after a decision: the lock, the finding on the record, the sponsor told
//! - [`backtest`] — the recorded history replayed through the detectors

pub mod act;
pub mod backtest;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use aim_domain::baseline::detect::Detector;
use aim_domain::baseline::profile::{Learning, Profile};
use aim_domain::baseline::respond::Responses;
use aim_domain::baseline::sketch::SketchKey;
use aim_domain::baseline::watch::{Rules, Seen, Verdict, check};
use aim_domain::identity::Identity;
use aim_domain::ids::IdentityId;
use aim_domain::risk::RiskTier;
use aim_domain::time::Timestamp;
use aim_store::{DynStore, SavedBaseline, StoreError};
use serde::Deserialize;

/// Whether baselines are kept, and whether their findings are acted on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Kept, and findings acted on per the responses.
    #[default]
    Enforce,
    /// Kept, and findings recorded only.
    Observe,
    /// Not kept.
    Off,
}

/// `[behaviour]`: behavioural baselines.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BehaviourConfig {
    pub mode: Mode,
    /// An identity is learning (only a system outside its registered ones is enforced)
    /// until both this many days have passed since its first call...
    pub learning_days: u32,
    /// ...and it has made this many calls.
    pub learning_events: u64,
    /// Detectors whose findings are recorded but not acted on (say, while a backtest
    /// shows what they would do).
    pub observe: Vec<Detector>,
    /// Responses per risk tier, replacing the defaults (`[behaviour.responses.high]` with
    /// `high`, `medium` and `low` each `observe`, `step_up` or `lock`).
    pub responses: BTreeMap<RiskTier, Responses>,
    /// How often learnt profiles are saved to the store.
    pub save_seconds: u64,
}

impl Default for BehaviourConfig {
    fn default() -> Self {
        let learning = Learning::default();
        Self {
            mode: Mode::Enforce,
            learning_days: learning.days,
            learning_events: learning.events,
            observe: Vec::new(),
            responses: BTreeMap::new(),
            save_seconds: 5,
        }
    }
}

impl BehaviourConfig {
    pub fn check(&self) -> anyhow::Result<()> {
        if !(1..=3600).contains(&self.save_seconds) {
            anyhow::bail!("[behaviour] save_seconds must be from 1 to 3600");
        }
        if self.learning_days > 365 {
            anyhow::bail!("[behaviour] learning_days must be at most 365");
        }
        Ok(())
    }

    /// The rules the detectors' findings are answered by.
    pub fn rules(&self) -> Rules {
        Rules {
            learning: Learning {
                days: self.learning_days,
                events: self.learning_events,
            },
            tiers: self.responses.iter().map(|(t, r)| (*t, *r)).collect(),
            observing: self.observe.clone(),
            observe_only: self.mode == Mode::Observe,
        }
    }
}

/// How long a saved profile stays in memory after its identity's last call.
const IDLE_MS: i64 = 15 * 60_000;

/// One identity's profile as held here.
#[derive(Debug)]
struct Kept {
    profile: Profile,
    /// Learnt from since it was last saved.
    dirty: bool,
}

/// Every baseline in use on this replica.
#[derive(Debug)]
pub struct Baselines {
    config: BehaviourConfig,
    rules: Rules,
    store: DynStore,
    kept: Mutex<HashMap<IdentityId, Arc<Mutex<Kept>>>>,
}

/// A lock, even one a panicking thread left behind: a profile is plain counts, never
/// half-written in a way that matters more than losing it.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Baselines {
    pub fn new(config: BehaviourConfig, store: DynStore) -> Self {
        Self {
            rules: config.rules(),
            config,
            store,
            kept: Mutex::default(),
        }
    }

    pub fn config(&self) -> &BehaviourConfig {
        &self.config
    }

    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    /// Holds `seen` against `identity`'s baseline and learns from it; `None` when
    /// baselines are off.
    pub async fn watch(
        &self,
        identity: &Identity,
        seen: &Seen,
    ) -> Result<Option<Verdict>, StoreError> {
        if self.config.mode == Mode::Off {
            return Ok(None);
        }
        let kept = self.kept(identity.id, seen.at).await?;
        let mut k = lock(&kept);
        let verdict = check(&mut k.profile, seen, identity, &self.rules);
        k.dirty = true;
        Ok(Some(verdict))
    }

    /// Accepts what `seen` reached as normal for `identity` (a human approved the call,
    /// or an admin marked its finding as expected).
    pub async fn accept(&self, identity: IdentityId, seen: &Seen) -> Result<(), StoreError> {
        if self.config.mode == Mode::Off {
            return Ok(());
        }
        let kept = self.kept(identity, seen.at).await?;
        let mut k = lock(&kept);
        k.profile.accept(&seen.observation());
        k.dirty = true;
        Ok(())
    }

    /// The key `identity`'s sketches hash under (a backtest replays with the same one).
    pub async fn key(&self, identity: IdentityId, now: Timestamp) -> Result<SketchKey, StoreError> {
        let kept = self.kept(identity, now).await?;
        let key = *lock(&kept).profile.key();
        Ok(key)
    }

    /// A copy of `identity`'s profile as it is now, if it has one.
    pub async fn profile(&self, identity: IdentityId) -> Result<Option<Profile>, StoreError> {
        if let Some(k) = lock(&self.kept).get(&identity).cloned() {
            return Ok(Some(lock(&k).profile.clone()));
        }
        self.load(identity).await
    }

    /// How many profiles are held in memory.
    pub fn held(&self) -> usize {
        lock(&self.kept).len()
    }

    /// The profile held here, read from the store (or begun) on first use.
    async fn kept(&self, id: IdentityId, at: Timestamp) -> Result<Arc<Mutex<Kept>>, StoreError> {
        if let Some(k) = lock(&self.kept).get(&id) {
            return Ok(k.clone());
        }
        let profile = self
            .load(id)
            .await?
            .unwrap_or_else(|| Profile::new(SketchKey::generate(), at));
        let mut kept = lock(&self.kept);
        // Another call may have loaded it meanwhile: the first one in stays.
        let entry = kept.entry(id).or_insert_with(|| {
            Arc::new(Mutex::new(Kept {
                profile,
                dirty: false,
            }))
        });
        Ok(entry.clone())
    }

    /// The saved profile; one that cannot be read back is logged and begun again.
    async fn load(&self, id: IdentityId) -> Result<Option<Profile>, StoreError> {
        let Some(doc) = self.store.baseline(id).await? else {
            return Ok(None);
        };
        match serde_json::from_str(&doc) {
            Ok(p) => Ok(Some(p)),
            Err(e) => {
                tracing::error!(identity = %id, error = %e, "a saved baseline could not be read; it starts over");
                Ok(None)
            }
        }
    }

    /// Saves every profile learnt from since its last save; one that fails is tried again
    /// at the next save.
    pub async fn save(&self, now: Timestamp) -> Result<(), StoreError> {
        let held: Vec<(IdentityId, Arc<Mutex<Kept>>)> = lock(&self.kept)
            .iter()
            .map(|(id, k)| (*id, k.clone()))
            .collect();
        let mut rows = Vec::new();
        for (identity, kept) in &held {
            let mut k = lock(kept);
            if !k.dirty {
                continue;
            }
            match serde_json::to_string(&k.profile) {
                Ok(profile) => {
                    rows.push(SavedBaseline {
                        identity: *identity,
                        profile,
                        events: k.profile.events,
                    });
                    k.dirty = false;
                }
                Err(e) => {
                    tracing::error!(identity = %identity, error = %e, "a baseline could not be serialized")
                }
            }
        }
        if let Err(e) = self.store.save_baselines(&rows, now).await {
            for (identity, kept) in &held {
                if rows.iter().any(|r| r.identity == *identity) {
                    lock(kept).dirty = true;
                }
            }
            return Err(e);
        }
        drop(held);
        self.forget_idle(now);
        Ok(())
    }

    /// Drops from memory the saved profiles of identities idle for [`IDLE_MS`]: read back
    /// from the store when they call again. One in use (another holder of its `Arc`, taken
    /// only under the map's lock, held here) or not yet saved stays.
    fn forget_idle(&self, now: Timestamp) {
        let mut kept = lock(&self.kept);
        kept.retain(|_, k| {
            if Arc::strong_count(k) > 1 {
                return true;
            }
            let k = lock(k);
            k.dirty || now.as_millis() - k.profile.last.as_millis() < IDLE_MS
        });
    }
}
