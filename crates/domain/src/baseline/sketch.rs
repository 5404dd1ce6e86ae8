//! Bounded summaries of what an identity does: a Count-Min sketch for how often it did each
//! thing, a HyperLogLog for how many distinct things it touched. Both hash with SipHash-1-3
//! under the baseline's own secret [`SketchKey`], so a caller cannot pick resource names
//! that collide with what the identity usually touches (and so pass for familiar).

use std::hash::Hasher;

use siphasher::sip128::{Hasher128, SipHasher13};

/// A baseline's secret hashing key (128 bits), made once with the baseline and kept with it.
#[derive(Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SketchKey(pub [u8; 16]);

impl std::fmt::Debug for SketchKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SketchKey(..)")
    }
}

impl SketchKey {
    /// A fresh random key (from the random bits of two UUIDv7s, hashed together).
    pub fn generate() -> Self {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        h.update(uuid::Uuid::now_v7().as_bytes());
        h.update(uuid::Uuid::now_v7().as_bytes());
        let digest = h.finalize();
        let mut key = [0u8; 16];
        key.copy_from_slice(&digest[..16]);
        Self(key)
    }

    /// Two independent 64-bit hashes of `item`.
    fn hash(&self, item: &str) -> (u64, u64) {
        let mut h = SipHasher13::new_with_key(&self.0);
        h.write(item.as_bytes());
        let h = h.finish128();
        (h.h1, h.h2)
    }
}

/// How often each item was seen, never under-counted and over-counted only by collisions:
/// `depth` rows of `width` saturating counters, updated conservatively (only the rows at
/// the current minimum grow), which keeps over-counting low for rare items.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CountMin {
    width: u32,
    depth: u32,
    cells: Vec<u32>,
}

impl CountMin {
    /// A sketch of `depth` rows of `width` counters (`width` is rounded up to a power of two).
    pub fn new(width: u32, depth: u32) -> Self {
        let width = width.max(2).next_power_of_two();
        let depth = depth.max(1);
        Self {
            width,
            depth,
            cells: vec![0; (width * depth) as usize],
        }
    }

    fn cells_of(&self, key: &SketchKey, item: &str) -> impl Iterator<Item = usize> + use<> {
        let (h1, h2) = key.hash(item);
        let (width, depth) = (u64::from(self.width), u64::from(self.depth));
        (0..depth).map(move |row| {
            // Kirsch–Mitzenmacher: row i uses h1 + i·h2 (h2 odd, so rows differ).
            let column = h1.wrapping_add(row.wrapping_mul(h2 | 1)) & (width - 1);
            (row * width + column) as usize
        })
    }

    /// Counts `item` `n` more times.
    pub fn add(&mut self, key: &SketchKey, item: &str, n: u32) {
        let at: Vec<usize> = self.cells_of(key, item).collect();
        let least = at.iter().map(|&i| self.cells[i]).min().unwrap_or(0);
        let target = least.saturating_add(n);
        for i in at {
            if self.cells[i] < target {
                self.cells[i] = target;
            }
        }
    }

    /// How many times `item` was counted (at least; more only by collisions).
    pub fn estimate(&self, key: &SketchKey, item: &str) -> u32 {
        self.cells_of(key, item)
            .map(|i| self.cells[i])
            .min()
            .unwrap_or(0)
    }

    /// Memory held by the counters.
    pub fn bytes(&self) -> usize {
        self.cells.len() * std::mem::size_of::<u32>()
    }
}

/// About how many distinct items were seen (HyperLogLog with 2^`precision` one-byte
/// registers; standard error 1.04/√m: 6.5 % at precision 8).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Distinct {
    precision: u8,
    registers: Vec<u8>,
}

impl Distinct {
    /// `precision` between 4 and 16.
    pub fn new(precision: u8) -> Self {
        let precision = precision.clamp(4, 16);
        Self {
            precision,
            registers: vec![0; 1 << precision],
        }
    }

    /// The register `item` falls in, and the rank it would set there.
    fn slot(&self, key: &SketchKey, item: &str) -> (usize, u8) {
        let (h, _) = key.hash(item);
        let p = u32::from(self.precision);
        let index = (h >> (64 - p)) as usize;
        // Leading zeros of the rest, plus one; capped by the bits there are.
        let rank = ((h << p) | (1 << (p - 1))).leading_zeros() as u8 + 1;
        (index, rank)
    }

    /// Whether inserting `item` would change the estimate (without inserting it).
    pub fn would_change(&self, key: &SketchKey, item: &str) -> bool {
        let (index, rank) = self.slot(key, item);
        rank > self.registers[index]
    }

    /// Notes `item`; true if it changed the estimate's state (a first sight, likely).
    pub fn insert(&mut self, key: &SketchKey, item: &str) -> bool {
        let (index, rank) = self.slot(key, item);
        if rank > self.registers[index] {
            self.registers[index] = rank;
            true
        } else {
            false
        }
    }

    /// The estimated number of distinct items.
    pub fn count(&self) -> f64 {
        let m = self.registers.len() as f64;
        let alpha = match self.registers.len() {
            16 => 0.673,
            32 => 0.697,
            64 => 0.709,
            _ => 0.7213 / (1.0 + 1.079 / m),
        };
        let (mut sum, mut zeros) = (0.0, 0usize);
        for &r in &self.registers {
            // 2^-r, exactly, from the exponent bits (r ≤ 64).
            sum += f64::from_bits((1023 - u64::from(r)) << 52);
            zeros += usize::from(r == 0);
        }
        let raw = alpha * m * m / sum;
        if raw <= 2.5 * m && zeros > 0 {
            // Few items: linear counting is closer.
            m * (m / zeros as f64).ln()
        } else {
            raw
        }
    }

    /// Forgets everything (a new task starts).
    pub fn clear(&mut self) {
        self.registers.fill(0);
    }

    /// Memory held by the registers.
    pub fn bytes(&self) -> usize {
        self.registers.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: SketchKey = SketchKey(*b"0123456789abcdef");

    #[test]
    fn counts_are_never_under_and_rarely_much_over() {
        let mut cm = CountMin::new(256, 4);
        // A skewed workload: item i seen 1 + 1000/(i+1) times, 2,000 distinct items.
        for i in 0..2_000u32 {
            cm.add(&KEY, &format!("crm/customers/{i}"), 1 + 1_000 / (i + 1));
        }
        let mut far_over = 0;
        for i in 0..2_000u32 {
            let truth = 1 + 1_000 / (i + 1);
            let got = cm.estimate(&KEY, &format!("crm/customers/{i}"));
            assert!(got >= truth, "item {i}: {got} < {truth}");
            if got > truth + 20 {
                far_over += 1;
            }
        }
        assert!(
            far_over < 40,
            "{far_over} of 2,000 over-counted by more than 20"
        );
        // Count-Min's bound: an item reads at most e·N/width over its count, but for a
        // chance of e^-depth (2 %).
        let total: u32 = (0..2_000u32).map(|i| 1 + 1_000 / (i + 1)).sum();
        let bound = (std::f64::consts::E * f64::from(total) / 256.0) as u32;
        let over_bound = (0..100)
            .filter(|i| cm.estimate(&KEY, &format!("hr-payroll/{i}")) > bound)
            .count();
        assert!(
            over_bound <= 6,
            "{over_bound} of 100 unseen items read over {bound}"
        );
        assert_eq!(cm.bytes(), 4 * 1024);
    }

    #[test]
    fn lightly_loaded_unseen_items_read_zero() {
        let mut cm = CountMin::new(256, 4);
        for i in 0..100 {
            cm.add(&KEY, &format!("sensors/{i}"), 5);
        }
        let nonzero = (0..100)
            .filter(|i| cm.estimate(&KEY, &format!("hr-payroll/{i}")) > 0)
            .count();
        assert!(
            nonzero <= 5,
            "{nonzero} of 100 unseen items read above zero"
        );
    }

    #[test]
    fn counters_saturate_rather_than_wrap() {
        let mut cm = CountMin::new(16, 2);
        cm.add(&KEY, "x", u32::MAX - 1);
        cm.add(&KEY, "x", 5);
        assert_eq!(cm.estimate(&KEY, "x"), u32::MAX);
    }

    #[test]
    fn another_key_puts_the_same_item_elsewhere() {
        let other = SketchKey(*b"fedcba9876543210");
        let mut a = CountMin::new(1024, 1);
        let mut b = CountMin::new(1024, 1);
        let mut differ = 0;
        for i in 0..50 {
            let item = format!("item-{i}");
            a.add(&KEY, &item, 1);
            b.add(&other, &item, 1);
        }
        for i in 0..a.cells.len() {
            if a.cells[i] != b.cells[i] {
                differ += 1;
            }
        }
        assert!(differ > 50, "the layouts barely differ: {differ}");
        assert_ne!(SketchKey::generate(), SketchKey::generate());
    }

    #[test]
    fn distinct_counts_are_within_a_few_standard_errors() {
        for n in [0usize, 1, 10, 100, 1_000, 20_000] {
            let mut d = Distinct::new(8);
            for i in 0..n {
                d.insert(&KEY, &format!("subject-{i}"));
                // Repeats change nothing.
                d.insert(&KEY, &format!("subject-{}", i / 2));
            }
            let got = d.count();
            let err = (got - n as f64).abs() / (n as f64).max(1.0);
            assert!(err < 0.2, "{n} distinct: estimated {got:.1}");
        }
        let mut d = Distinct::new(8);
        assert!(d.would_change(&KEY, "a"));
        assert!(d.insert(&KEY, "a"));
        assert!(!d.would_change(&KEY, "a"));
        assert!(!d.insert(&KEY, "a"));
        d.clear();
        assert_eq!(d.count(), 0.0);
        assert_eq!(d.bytes(), 256);
    }
}
