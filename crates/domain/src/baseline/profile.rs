//! One identity's profile: what it did, learnt one decision at a time in bounded memory.
//! Exact where the sets stay small (systems, actions, resource types, tools, keys,
//! networks: capped vocabularies), sketched where they grow (resources: a Count-Min;
//! distinct resources and subjects within a task: HyperLogLogs), and as distributions
//! where time matters (the hours of the week it works, how many calls it makes in a minute
//! and in an hour, how many denials in a minute, how many distinct resources and subjects
//! a task touches, how long it stays idle).

use std::net::IpAddr;

use crate::ids::TaskId;
use crate::risk::DataSensitivity;
use crate::time::{DAY_MS, Timestamp};

use super::sketch::{CountMin, Distinct, SketchKey};
use super::spot::Thresholds;

/// The longest name a vocabulary keeps (characters; longer ones are cut).
pub const NAME_CHARS: usize = 48;
const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 3_600_000;

/// How long and how much an identity is watched before its baseline is enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Learning {
    pub days: u32,
    pub events: u64,
}

impl Default for Learning {
    /// 7 days or 500 events, whichever comes later.
    fn default() -> Self {
        Self {
            days: 7,
            events: 500,
        }
    }
}

/// One decision, as the baseline sees it.
#[derive(Debug, Clone)]
pub struct Observation<'a> {
    pub at: Timestamp,
    pub action: &'a str,
    pub system: &'a str,
    pub resource_type: &'a str,
    pub resource: &'a str,
    pub sensitivity: Option<DataSensitivity>,
    pub tool: Option<&'a str>,
    pub subject: Option<&'a str>,
    pub task: Option<TaskId>,
    /// The thumbprint of the key the call was made with.
    pub key: Option<&'a str>,
    pub source: Option<IpAddr>,
    pub denied: bool,
}

/// A set of names with how often each was seen, holding at most `cap` (kept sorted, for
/// a binary search); names past it are counted together as `overflow`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Vocabulary {
    cap: usize,
    seen: Vec<(Box<str>, u32)>,
    overflow: u32,
}

impl Vocabulary {
    pub fn new(cap: usize) -> Self {
        Self {
            cap,
            ..Self::default()
        }
    }

    fn find(&self, name: &str) -> Result<usize, usize> {
        self.seen.binary_search_by(|(k, _)| (**k).cmp(name))
    }

    /// Counts `name` (cut to [`NAME_CHARS`] characters); false if it was new.
    pub fn note(&mut self, name: &str) -> bool {
        let name = cut(name);
        match self.find(name) {
            Ok(at) => {
                self.seen[at].1 = self.seen[at].1.saturating_add(1);
                true
            }
            Err(at) if self.seen.len() < self.cap => {
                self.seen.insert(at, (name.into(), 1));
                false
            }
            Err(_) => {
                self.overflow = self.overflow.saturating_add(1);
                false
            }
        }
    }

    /// How often `name` was seen (0: never, or past the cap).
    pub fn count(&self, name: &str) -> u32 {
        self.find(cut(name)).map_or(0, |at| self.seen[at].1)
    }

    /// The names seen, most frequent first.
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&(Box<str>, u32)> = self.seen.iter().collect();
        names.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        names.into_iter().map(|(k, _)| &**k).collect()
    }

    /// Whether no name was seen.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty() && self.overflow == 0
    }

    /// Whether names were seen that could not be kept.
    pub fn overflowed(&self) -> bool {
        self.overflow > 0
    }

    fn bytes(&self) -> usize {
        self.seen.capacity() * std::mem::size_of::<(Box<str>, u32)>()
            + self.seen.iter().map(|(k, _)| k.len()).sum::<usize>()
    }
}

fn cut(name: &str) -> &str {
    match name.char_indices().nth(NAME_CHARS) {
        Some((at, _)) => &name[..at],
        None => name,
    }
}

/// A distribution of counts over powers of two: bucket `i` holds counts in [2^i, 2^(i+1)).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Spread {
    buckets: [u32; 24],
}

impl Spread {
    pub fn add(&mut self, value: u64) {
        let i = (63 - value.max(1).leading_zeros() as usize).min(23);
        self.buckets[i] = self.buckets[i].saturating_add(1);
    }

    /// How many values were added.
    pub fn total(&self) -> u64 {
        self.buckets.iter().map(|&b| u64::from(b)).sum()
    }

    /// The share of values at least as large as `value` (1.0 when none were added).
    pub fn share_at_least(&self, value: u64) -> f64 {
        let total = self.total();
        if total == 0 {
            return 1.0;
        }
        let i = (63 - value.max(1).leading_zeros() as usize).min(23);
        let above: u64 = self.buckets[i..].iter().map(|&b| u64::from(b)).sum();
        above as f64 / total as f64
    }

    /// The largest bucket's lower bound that holds a value (0 when empty).
    pub fn highest(&self) -> u64 {
        self.buckets
            .iter()
            .rposition(|&b| b > 0)
            .map_or(0, |i| 1 << i)
    }
}

/// A running count over a window (a minute, an hour): the window's start and its count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Window {
    pub start: i64,
    pub count: u32,
}

impl Window {
    /// Counts one at `at` in windows of `length` ms; returns the count of the window that
    /// closed, if `at` opened a new one.
    fn tick(&mut self, at: i64, length: i64) -> Option<u32> {
        let start = at.div_euclid(length) * length;
        if start == self.start {
            self.count = self.count.saturating_add(1);
            return None;
        }
        let closed = (self.count > 0).then_some(self.count);
        *self = Window { start, count: 1 };
        closed
    }
}

/// The task being watched: how many distinct resources and subjects it touched.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TaskReach {
    pub task: TaskId,
    pub resources: Distinct,
    pub subjects: Distinct,
}

/// What an identity normally does.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Profile {
    key: SketchKey,
    pub first: Timestamp,
    pub last: Timestamp,
    pub events: u64,
    pub systems: Vocabulary,
    /// When each system was last reached by a call taken as normal (what discovery calls a
    /// permission in use).
    #[serde(default)]
    pub system_used: LastSeen,
    /// `action system` pairs.
    pub actions: Vocabulary,
    pub resource_types: Vocabulary,
    pub tools: Vocabulary,
    pub keys: Vocabulary,
    /// Source networks: IPv4 /24, IPv6 /48.
    pub networks: Vocabulary,
    /// How often each resource was touched.
    pub resources: CountMin,
    /// Calls by sensitivity, lowest first (public, internal, confidential, restricted).
    pub sensitivities: [u32; 4],
    /// Calls by hour of the week (Monday 00:00 UTC first): 168 counts.
    pub hours: Vec<u32>,
    pub minute: Window,
    pub per_minute: Spread,
    pub hour: Window,
    pub per_hour: Spread,
    pub denied_minute: Window,
    pub denied_per_minute: Spread,
    pub task: Option<TaskReach>,
    pub task_resources: Spread,
    pub task_subjects: Spread,
    /// Minutes between one call and the next, when over a minute.
    pub idle_minutes: Spread,
    /// Thresholds on calls a minute, calls an hour, denials a minute, and a task's
    /// distinct resources and subjects.
    pub thresholds: Thresholds,
}

impl Profile {
    /// An empty profile, first seen at `at`, hashing under `key`.
    pub fn new(key: SketchKey, at: Timestamp) -> Self {
        Self {
            key,
            first: at,
            last: at,
            events: 0,
            systems: Vocabulary::new(32),
            system_used: LastSeen::default(),
            actions: Vocabulary::new(32),
            resource_types: Vocabulary::new(16),
            tools: Vocabulary::new(32),
            keys: Vocabulary::new(8),
            networks: Vocabulary::new(16),
            resources: CountMin::new(256, 4),
            sensitivities: [0; 4],
            hours: vec![0; 168],
            minute: Window::default(),
            per_minute: Spread::default(),
            hour: Window::default(),
            per_hour: Spread::default(),
            denied_minute: Window::default(),
            denied_per_minute: Spread::default(),
            task: None,
            task_resources: Spread::default(),
            task_subjects: Spread::default(),
            idle_minutes: Spread::default(),
            thresholds: Thresholds::default(),
        }
    }

    /// Whether it is still learning at `now`: until both `learning.days` have passed since
    /// its first call and it has made `learning.events` calls.
    pub fn learning(&self, learning: Learning, now: Timestamp) -> bool {
        let days = (now.as_millis() - self.first.as_millis()) / DAY_MS;
        days < i64::from(learning.days) || self.events < learning.events
    }

    /// Learns from `o`: what it reached (its kinds) and how much (its counts).
    pub fn learn(&mut self, o: &Observation<'_>) {
        self.count(o);
        self.accept(o);
    }

    /// Learns how much from `o` (rates, denials, a task's reach, idle gaps), not what it
    /// reached: a call held for a human or refused by a lock must not make its own kind
    /// familiar, or its retry would pass unquestioned.
    pub fn count(&mut self, o: &Observation<'_>) {
        let at = o.at.as_millis();
        if self.events > 0 {
            let idle = (at - self.last.as_millis()) / MINUTE_MS;
            if idle >= 1 {
                self.idle_minutes.add(idle as u64);
            }
        } else {
            self.first = o.at;
        }
        self.last = self.last.max(o.at);
        self.events += 1;
        if let Some(n) = self.minute.tick(at, MINUTE_MS) {
            self.per_minute.add(u64::from(n));
            self.thresholds.per_minute.observe(f64::from(n));
        }
        if let Some(n) = self.hour.tick(at, HOUR_MS) {
            self.per_hour.add(u64::from(n));
            self.thresholds.per_hour.observe(f64::from(n));
        }
        if o.denied
            && let Some(n) = self.denied_minute.tick(at, MINUTE_MS)
        {
            self.denied_per_minute.add(u64::from(n));
            self.thresholds.denied_per_minute.observe(f64::from(n));
        }
        self.reach(o);
    }

    /// Learns what `o` reached (its system, action, resource, tool, key, network,
    /// sensitivity and hour of the week) as normal: with every call, and for a call a human
    /// approved or an admin marked as expected.
    pub fn accept(&mut self, o: &Observation<'_>) {
        self.systems.note(o.system);
        self.system_used.touch(o.system, o.at, 32);
        self.actions.note(&format!("{} {}", o.action, o.system));
        self.resource_types.note(o.resource_type);
        if let Some(tool) = o.tool {
            self.tools.note(tool);
        }
        if let Some(key) = o.key {
            self.keys.note(key);
        }
        if let Some(source) = o.source {
            self.networks.note(&network(source));
        }
        self.resources.add(&self.key, o.resource, 1);
        if let Some(s) = o.sensitivity {
            let i = DataSensitivity::ALL
                .iter()
                .position(|x| *x == s)
                .unwrap_or(0);
            self.sensitivities[i] = self.sensitivities[i].saturating_add(1);
        }
        // A profile read back from elsewhere may hold fewer: 168 it is.
        self.hours.resize(168, 0);
        let h = hour_of_week(o.at);
        self.hours[h] = self.hours[h].saturating_add(1);
    }

    fn reach(&mut self, o: &Observation<'_>) {
        let Some(task) = o.task else { return };
        if self.task.as_ref().is_none_or(|t| t.task != task) {
            if let Some(done) = self.task.take() {
                let (resources, subjects) = (done.resources.count(), done.subjects.count());
                self.task_resources.add(resources.round() as u64);
                self.task_subjects.add(subjects.round() as u64);
                self.thresholds.task_resources.observe(resources);
                self.thresholds.task_subjects.observe(subjects);
            }
            self.task = Some(TaskReach {
                task,
                resources: Distinct::new(8),
                subjects: Distinct::new(8),
            });
        }
        if let Some(t) = self.task.as_mut() {
            t.resources.insert(&self.key, o.resource);
            if let Some(subject) = o.subject {
                t.subjects.insert(&self.key, subject);
            }
        }
    }

    /// The key its sketches hash under.
    pub fn key(&self) -> &SketchKey {
        &self.key
    }

    /// The highest sensitivity it has touched, if any.
    pub fn highest_sensitivity(&self) -> Option<DataSensitivity> {
        let i = self.sensitivities.iter().rposition(|&n| n > 0)?;
        DataSensitivity::ALL.get(i).copied()
    }

    /// How often it touched `resource` (at least; more only by the sketch's collisions).
    pub fn resource_count(&self, resource: &str) -> u32 {
        self.resources.estimate(&self.key, resource)
    }

    /// About how much memory it holds.
    pub fn bytes(&self) -> usize {
        let vocabularies = [
            &self.systems,
            &self.actions,
            &self.resource_types,
            &self.tools,
            &self.keys,
            &self.networks,
        ];
        std::mem::size_of::<Self>()
            + vocabularies.iter().map(|v| v.bytes()).sum::<usize>()
            + self.system_used.bytes()
            + self.resources.bytes()
            + self.hours.capacity() * std::mem::size_of::<u32>()
            + self.thresholds.bytes()
            + self
                .task
                .as_ref()
                .map_or(0, |t| t.resources.bytes() + t.subjects.bytes())
    }
}

/// The last day each name was seen, at most `cap` names: each kept as a 32-bit hash of the
/// name and a day number (8 bytes a name, so the profile stays within its bound). Asked
/// only about names the caller knows (a registered system).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LastSeen(Vec<(u32, u32)>);

fn name_hash(name: &str) -> u32 {
    use std::hash::Hasher;
    let mut h = siphasher::sip::SipHasher13::new();
    h.write(cut(name).as_bytes());
    (h.finish() >> 32) as u32
}

impl LastSeen {
    /// Notes `name` on the day of `at`, unless `cap` names are held and it is not one.
    pub fn touch(&mut self, name: &str, at: Timestamp, cap: usize) {
        let day = u32::try_from(at.as_millis().div_euclid(DAY_MS)).unwrap_or(0);
        let h = name_hash(name);
        match self.0.binary_search_by_key(&h, |(k, _)| *k) {
            Ok(i) => self.0[i].1 = self.0[i].1.max(day),
            Err(i) if self.0.len() < cap => self.0.insert(i, (h, day)),
            Err(_) => {}
        }
    }

    /// The start of the last day `name` was seen.
    pub fn get(&self, name: &str) -> Option<Timestamp> {
        let h = name_hash(name);
        self.0
            .binary_search_by_key(&h, |(k, _)| *k)
            .ok()
            .map(|i| Timestamp::from_millis(i64::from(self.0[i].1) * DAY_MS))
    }

    fn bytes(&self) -> usize {
        self.0.capacity() * std::mem::size_of::<(u32, u32)>()
    }
}

/// The hour of the week of `at` (UTC), Monday 00:00 being 0.
pub fn hour_of_week(at: Timestamp) -> usize {
    let hours = at.as_millis().div_euclid(HOUR_MS);
    // 1970-01-01 was a Thursday: day 0 is weekday 3 counting from Monday.
    let day = (hours.div_euclid(24) + 3).rem_euclid(7);
    (day * 24 + hours.rem_euclid(24)) as usize
}

/// The network `source` is in: its /24 (IPv4) or /48 (IPv6).
pub fn network(source: IpAddr) -> String {
    match source {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            format!("{a}.{b}.{c}.0/24")
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::baseline::testing::{HOUR, KEY, MONDAY, call, manufacturing};

    #[test]
    fn hours_of_the_week_start_on_monday() {
        assert_eq!(hour_of_week(Timestamp::from_millis(MONDAY)), 0);
        assert_eq!(hour_of_week(Timestamp::from_millis(MONDAY + 25 * HOUR)), 25);
        assert_eq!(hour_of_week(Timestamp::from_millis(MONDAY - HOUR)), 167);
        assert_eq!(
            hour_of_week(Timestamp::from_millis(0)),
            3 * 24,
            "a Thursday"
        );
    }

    #[test]
    fn a_manufacturing_agent_learns_its_systems_rates_and_hours() {
        let p = manufacturing();
        assert_eq!(p.events, 9 * 270 + 9 * 54);
        assert_eq!(p.systems.names(), ["sensors", "maintenance-log"]);
        assert_eq!(p.systems.count("hr-payroll"), 0);
        assert_eq!(p.actions.count("write maintenance-log"), 9 * 54);
        assert_eq!(p.highest_sensitivity(), Some(DataSensitivity::Internal));
        assert_eq!(p.keys.names(), ["jkt-1"]);
        assert_eq!(p.networks.names(), ["10.1.2.0/24"]);
        assert!(p.resource_count("sensors/line-3") >= 300);
        // Working hours only: nothing at 03:00 on any day, something at 10:00.
        assert_eq!(p.hours[3], 0);
        assert!(p.hours[10] > 0 && p.hours[24 + 10] > 0);
        // One or two calls a minute, ~36 an hour; idle nights of 15 hours.
        assert!(p.per_minute.highest() <= 2, "{:?}", p.per_minute);
        assert_eq!(p.per_hour.highest(), 32);
        assert!(p.idle_minutes.highest() >= 512);
        // Learnt for 9 days and 2,916 events: past the default learning period.
        let now = Timestamp::from_millis(MONDAY + 9 * DAY_MS);
        assert!(!p.learning(Learning::default(), now));
        assert!(p.learning(
            Learning {
                days: 10,
                events: 500
            },
            now
        ));
        assert!(p.learning(
            Learning {
                days: 7,
                events: 5_000
            },
            now
        ));
    }

    #[test]
    fn a_task_reach_and_denials_are_counted() {
        let mut p = Profile::new(KEY, Timestamp::from_millis(MONDAY));
        let (first, second) = (TaskId::new(), TaskId::new());
        for i in 0..40 {
            let resource = format!("crm/customers/{i}");
            let subject = format!("customer:{}", i % 10);
            let mut o = call(MONDAY + i * 1_000, "crm", &resource);
            o.task = Some(first);
            o.subject = Some(&subject);
            o.denied = i % 4 == 0;
            p.learn(&o);
        }
        let reach = p.task.as_ref().unwrap();
        assert!((reach.resources.count() - 40.0).abs() < 4.0);
        assert!((reach.subjects.count() - 10.0).abs() < 2.0);
        let mut o = call(MONDAY + 120_000, "crm", "crm/customers/1");
        o.task = Some(second);
        p.learn(&o);
        // The first task's reach is in the distributions now.
        assert_eq!(p.task_resources.highest(), 32);
        assert_eq!(p.task_subjects.highest(), 8);
        assert_eq!(p.denied_minute.count, 10);
    }

    #[test]
    fn memory_stays_bounded_whatever_it_touches() {
        let mut p = Profile::new(KEY, Timestamp::from_millis(MONDAY));
        let long = "x".repeat(500);
        for i in 0..50_000i64 {
            let system = format!("system-{}-{long}", i % 500);
            let resource = format!("resource-{i}");
            let mut o = call(MONDAY + i * 7_000, &system, &resource);
            o.key = Some(&resource);
            o.tool = Some(&system);
            o.source = Some(IpAddr::from([10, (i % 200) as u8, (i % 250) as u8, 1]));
            o.task = Some(TaskId::new());
            p.learn(&o);
        }
        assert!(p.systems.overflowed());
        assert_eq!(p.systems.names().len(), 32);
        assert!(p.systems.names()[0].chars().count() <= NAME_CHARS);
        eprintln!("worst-case profile: {} bytes", p.bytes());
        assert!(p.bytes() <= 16 * 1024, "{} bytes", p.bytes());
    }

    #[test]
    fn spreads_say_how_rare_a_count_is() {
        let mut s = Spread::default();
        assert_eq!(s.share_at_least(5), 1.0);
        for v in [1, 1, 2, 3, 3, 4, 40] {
            s.add(v);
        }
        assert_eq!(s.total(), 7);
        assert!((s.share_at_least(32) - 1.0 / 7.0).abs() < 1e-9);
        assert!((s.share_at_least(2) - 5.0 / 7.0).abs() < 1e-9);
        assert_eq!(s.highest(), 32);
        assert_eq!(
            network("2001:db8:1:2::5".parse().unwrap()),
            "2001:db8:1::/48"
        );
    }
}
