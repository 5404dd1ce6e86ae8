//! `aim behaviour ...`: behavioural baselines.

use aim_domain::baseline::detect::Detector;
use clap::Subcommand;

use super::parse_duration_ms;

#[derive(Debug, Subcommand)]
pub enum BehaviourCommand {
    /// Replay the recorded decisions through the detectors and report what they would
    /// have stepped up or locked (admins). With the rules in force, every replayed verdict
    /// must match the recorded one; `--enforce` tries a detector that only observes now.
    Backtest {
        /// Report the calls of this last while (`30d`, `12h`, `1w`); each identity's
        /// whole history is replayed.
        #[arg(long, value_parser = parse_duration_ms, default_value = "30d")]
        since: i64,
        /// Enforce this detector although the configuration keeps it observing
        /// (repeatable): `rate_spike`, `new_system`, `denial_burst`, ...
        #[arg(long, value_parser = parse_detector)]
        enforce: Vec<Detector>,
        /// Enforce every detector, as `mode = "enforce"` would.
        #[arg(long)]
        enforce_all: bool,
    },
    /// Mark a finding as expected (admins, with a reason): the call behind it becomes
    /// part of the identity's baseline, so it is not found again.
    Expected {
        /// Name or id of the identity.
        identity: String,
        /// The finding's sequence number (`aim identity why` lists them).
        #[arg(long)]
        finding: i64,
        /// Why the finding was expected (on the record).
        #[arg(long)]
        reason: String,
    },
}

fn parse_detector(s: &str) -> Result<Detector, String> {
    Detector::parse(s).map_err(|e| e.to_string())
}
