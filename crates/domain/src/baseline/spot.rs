//! A threshold for one identity's anomaly scores, set from its own benign scores so that
//! about a chosen fraction `q` of them would cross it: Streaming Peaks-Over-Threshold
//! (SPOT; Siffer et al., KDD 2017). Extreme-value theory says the excesses over a high
//! threshold `t` follow a generalised Pareto distribution whatever the scores' own
//! distribution; fitting it to the excesses seen gives the level `z` that a score passes
//! with probability `q`, far into the tail where there are too few samples to count.
//!
//! Memory is bounded: the excesses kept are the last [`PEAKS`].

use std::collections::VecDeque;

/// Excesses over the initial threshold kept for the fit.
pub const PEAKS: usize = 64;

/// A calibrated threshold, updated by each benign score.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Spot {
    /// The target probability of a benign score crossing [`Spot::threshold`].
    q: f64,
    /// The initial threshold: excesses over it are fitted.
    t: f64,
    /// Scores seen (benign).
    n: u64,
    /// Scores over `t` seen (benign).
    over: u64,
    /// Excesses over `t`, as `f32` (a quarter of a kilobyte at most).
    peaks: VecDeque<f32>,
    z: f64,
}

impl Spot {
    /// Calibrates on `scores` (benign, at least 50) for a false-positive rate `q` (0 < q ≤
    /// 0.005). `t` is the scores' quantile at 1 − 20·q (the 90th to 98th percentile), so
    /// the threshold sits about three scale lengths above it: far enough that leaving the
    /// scores over it out of the fit (they are anomalies) hardly biases it. None if there
    /// are too few scores.
    pub fn calibrate(scores: &[f64], q: f64) -> Option<Spot> {
        let mut sorted: Vec<f64> = scores.iter().copied().filter(|s| s.is_finite()).collect();
        if sorted.len() < 50 || !(q > 0.0 && q <= 0.005) {
            return None;
        }
        sorted.sort_by(f64::total_cmp);
        let level = (1.0 - 20.0 * q).clamp(0.9, 0.98);
        let t = sorted[(sorted.len() as f64 * level) as usize - 1];
        // In the order they came (the last ones are kept), not sorted: a sorted list's
        // last excesses would be its largest.
        let peaks: VecDeque<f32> = scores
            .iter()
            .filter(|&&s| s.is_finite() && s > t)
            .map(|s| (s - t) as f32)
            .collect();
        let mut spot = Spot {
            q,
            t,
            n: sorted.len() as u64,
            over: peaks.len() as u64,
            peaks,
            z: t,
        };
        while spot.peaks.len() > PEAKS {
            spot.peaks.pop_front();
        }
        spot.refit();
        Some(spot)
    }

    /// The level a benign score passes with probability about `q`.
    pub fn threshold(&self) -> f64 {
        self.z
    }

    /// Whether `score` crosses the threshold. A score that does not is learnt from (the
    /// threshold follows the identity's drift); one that does is not.
    pub fn check(&mut self, score: f64) -> bool {
        if !score.is_finite() || score > self.z {
            return true;
        }
        self.n += 1;
        if score > self.t {
            self.over += 1;
            self.peaks.push_back((score - self.t) as f32);
            if self.peaks.len() > PEAKS {
                self.peaks.pop_front();
            }
            self.refit();
        }
        false
    }

    /// Fits the generalised Pareto distribution to the peaks (method of moments) and sets
    /// `z` where its tail, scaled by the share of scores over `t`, falls to `q`.
    fn refit(&mut self) {
        let k = self.peaks.len() as f64;
        if k < 2.0 {
            // Too few excesses to fit: the largest seen, with a margin.
            let top = self.peaks.iter().map(|&p| f64::from(p)).fold(0.0, f64::max);
            self.z = self.t + 2.0 * top.max(f64::EPSILON);
            return;
        }
        let mean = self.peaks.iter().map(|&p| f64::from(p)).sum::<f64>() / k;
        let var = self
            .peaks
            .iter()
            .map(|&p| (f64::from(p) - mean).powi(2))
            .sum::<f64>()
            / (k - 1.0);
        let ratio = if var > 0.0 { mean * mean / var } else { 1.0 };
        // ξ < 1/2 for the variance to exist. A bounded tail (ξ < 0) is taken as
        // exponential (ξ = 0): with a hundred-odd excesses ξ is uncertain by ±0.1, and
        // reading noise as a bounded tail would put the threshold too low; erring high
        // means fewer false positives, which is what a threshold that locks must do.
        // The moments' σ grows without bound as the excesses' spread shrinks (it belongs to
        // a bounded fit, ξ < 0): past a ratio of 3 it is held at twice the excesses' mean.
        let xi = (0.5 * (1.0 - ratio)).clamp(0.0, 0.45);
        let sigma = (0.5 * mean * (ratio.min(3.0) + 1.0)).max(f64::EPSILON);
        let r = self.q * self.n as f64 / self.over.max(1) as f64;
        let excess = if xi.abs() < 1e-6 {
            -sigma * r.ln()
        } else {
            sigma / xi * (r.powf(-xi) - 1.0)
        };
        self.z = self.t + excess.max(0.0);
    }
}

/// Samples collected before a threshold is set.
const CALIBRATION: usize = 64;
/// The false-positive rate thresholds are set for, per closed window.
pub const TARGET_FALSE_POSITIVES: f64 = 1e-3;

/// A per-identity threshold on one count (calls in a minute, denials in a minute, a task's
/// distinct resources): the first values collected, then a SPOT threshold set from them
/// that follows each later benign value.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Threshold {
    Collecting(Vec<f32>),
    Set(Spot),
}

impl Default for Threshold {
    fn default() -> Self {
        Threshold::Collecting(Vec::new())
    }
}

impl Threshold {
    /// Learns from a closed window's `value`.
    pub fn observe(&mut self, value: f64) {
        match self {
            Threshold::Collecting(samples) => {
                samples.push(value as f32);
                if samples.len() >= CALIBRATION {
                    let scores: Vec<f64> = samples.iter().map(|&v| f64::from(v)).collect();
                    if let Some(spot) = Spot::calibrate(&scores, TARGET_FALSE_POSITIVES) {
                        *self = Threshold::Set(spot);
                    }
                }
            }
            Threshold::Set(spot) => {
                spot.check(value);
            }
        }
    }

    /// The level a benign value passes with probability about
    /// [`TARGET_FALSE_POSITIVES`], once set.
    pub fn level(&self) -> Option<f64> {
        match self {
            Threshold::Set(spot) => Some(spot.threshold()),
            Threshold::Collecting(_) => None,
        }
    }

    fn bytes(&self) -> usize {
        match self {
            Threshold::Collecting(samples) => samples.capacity() * 4,
            Threshold::Set(_) => std::mem::size_of::<Spot>() + std::mem::size_of::<f32>() * PEAKS,
        }
    }
}

/// The per-identity thresholds a profile keeps (see [`Threshold`]).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Thresholds {
    pub per_minute: Threshold,
    pub per_hour: Threshold,
    pub denied_per_minute: Threshold,
    pub task_resources: Threshold,
    pub task_subjects: Threshold,
}

impl Thresholds {
    pub(super) fn bytes(&self) -> usize {
        [
            &self.per_minute,
            &self.per_hour,
            &self.denied_per_minute,
            &self.task_resources,
            &self.task_subjects,
        ]
        .iter()
        .map(|t| t.bytes())
        .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::baseline::testing::Rng;

    #[test]
    fn benign_scores_cross_the_threshold_about_as_often_as_asked() {
        for (seed, q) in [(7, 1e-3), (11, 1e-3), (13, 5e-3)] {
            let mut rng = Rng(seed);
            let calibration: Vec<f64> = (0..2_000).map(|_| rng.exponential()).collect();
            let mut spot = Spot::calibrate(&calibration, q).unwrap();
            // The true (1 − q) quantile of Exp(1) is −ln q.
            let truth = -q.ln();
            assert!(
                (spot.threshold() - truth).abs() < 0.35 * truth,
                "q {q}: threshold {:.2}, truth {truth:.2}",
                spot.threshold()
            );
            let n = 200_000;
            let crossed = (0..n).filter(|_| spot.check(rng.exponential())).count();
            let rate = crossed as f64 / n as f64;
            assert!(
                rate > q / 4.0 && rate < q * 2.0,
                "q {q}: {crossed} of {n} crossed ({rate:.5})"
            );
            assert!(spot.peaks.len() <= PEAKS);
        }
    }

    #[test]
    fn a_heavy_tail_gets_a_higher_threshold_than_a_light_one() {
        let mut rng = Rng(3);
        let light: Vec<f64> = (0..3_000).map(|_| rng.exponential()).collect();
        // Pareto with shape 2: P(X > x) = x^-2.
        let heavy: Vec<f64> = (0..3_000).map(|_| rng.uniform().powf(-0.5)).collect();
        let light = Spot::calibrate(&light, 1e-3).unwrap().threshold();
        let heavy = Spot::calibrate(&heavy, 1e-3).unwrap().threshold();
        // Exp: −ln(1e-3) ≈ 6.9; Pareto(2): 1e-3^(-1/2) ≈ 31.6.
        assert!(heavy > 2.0 * light, "heavy {heavy:.1}, light {light:.1}");
    }

    #[test]
    fn an_outlier_is_flagged_and_not_learnt_from() {
        let mut rng = Rng(5);
        let calibration: Vec<f64> = (0..1_000).map(|_| rng.exponential()).collect();
        let mut spot = Spot::calibrate(&calibration, 1e-3).unwrap();
        let before = spot.threshold();
        assert!(spot.check(1_000.0));
        assert!(spot.check(f64::NAN), "not a number is not benign");
        assert_eq!(spot.threshold(), before);
        assert!(!spot.check(0.1));
    }

    #[test]
    fn nearly_equal_excesses_do_not_send_the_threshold_to_infinity() {
        // Task sizes that are mostly 5–8 and, past the initial level, all but equal.
        let mut scores: Vec<f64> = (0..200).map(|i| f64::from(5 + i % 4)).collect();
        scores.extend([9.000_001, 9.000_002, 9.000_003, 9.000_001]);
        let spot = Spot::calibrate(&scores, 1e-3).unwrap();
        assert!(spot.threshold() < 20.0, "{}", spot.threshold());
    }

    #[test]
    fn too_little_to_calibrate_on_is_refused() {
        assert!(Spot::calibrate(&[1.0; 49], 1e-3).is_none());
        assert!(Spot::calibrate(&[1.0; 100], 0.5).is_none());
        assert!(Spot::calibrate(&[f64::NAN; 100], 1e-3).is_none());
        // Constant scores: the threshold is above them.
        let mut flat = Spot::calibrate(&[1.0; 100], 1e-3).unwrap();
        assert!(!flat.check(1.0));
        assert!(flat.check(1.5));
    }
}
