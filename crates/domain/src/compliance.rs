//! The compliance report: aim's live controls and findings read against the frameworks a
//! security team answers to (OWASP Top 10 for Non-Human Identities, OWASP Top 10 for Agentic
//! Applications, NIST CSF 2.0, NIST AI RMF, CSA MAESTRO).
//!
//! The server reads a [`Posture`] from the store and the running config (counts, and the
//! identities and accounts behind each count, by name); [`evaluate`] turns it into one
//! [`Control`] per framework entry, each `met`, `partial` or `not_met` with the evidence that
//! decided it, and a score. Nothing here reads anything: the same posture always gives the
//! same report.
//!
//! A control is built from [`Check`]s. A check is met, or not met with the names that fail it
//! (or partial where aim covers only part of an entry, with the reason). A control is met
//! when every check is, not met when none is, partial otherwise; `not_applicable` (physical
//! access) is left out of the score.
//!
//! # Layout
//! - [`posture`] — what the report reads: the registry, humans, tokens, decisions,
//!   behaviour, audit, tools and discovery, as counts and names
//! - [`checks`] — the questions asked of a posture, each a [`Check`]
//! - [`catalog`] — the frameworks' entries and the checks each is answered by

pub mod catalog;
pub mod checks;
pub mod posture;

#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

pub use posture::{Named, Posture};

use crate::time::Timestamp;

str_enum! {
    /// The frameworks the report reads aim against.
    pub enum Framework {
        /// OWASP Top 10 for Non-Human Identities (2025).
        OwaspNhi => "owasp_nhi",
        /// OWASP Top 10 for Agentic Applications (2026).
        OwaspAgentic => "owasp_agentic",
        /// NIST Cybersecurity Framework 2.0.
        NistCsf => "nist_csf",
        /// NIST AI Risk Management Framework 1.0 (AI 100-1).
        NistAiRmf => "nist_ai_rmf",
        /// CSA MAESTRO, the agentic AI threat-modelling framework's layers.
        CsaMaestro => "csa_maestro",
    }
}

impl Framework {
    pub fn title(self) -> &'static str {
        match self {
            Framework::OwaspNhi => "OWASP Top 10 for Non-Human Identities",
            Framework::OwaspAgentic => "OWASP Top 10 for Agentic Applications",
            Framework::NistCsf => "NIST Cybersecurity Framework 2.0",
            Framework::NistAiRmf => "NIST AI Risk Management Framework",
            Framework::CsaMaestro => "CSA MAESTRO",
        }
    }

    /// The name charts and tables use.
    pub fn short(self) -> &'static str {
        match self {
            Framework::OwaspNhi => "OWASP NHI Top 10",
            Framework::OwaspAgentic => "OWASP Agentic Top 10",
            Framework::NistCsf => "NIST CSF 2.0",
            Framework::NistAiRmf => "NIST AI RMF",
            Framework::CsaMaestro => "CSA MAESTRO",
        }
    }
}

str_enum! {
    pub enum Status {
        Met => "met",
        Partial => "partial",
        NotMet => "not_met",
        /// Outside what software can show (physical access); not scored.
        NotApplicable => "not_applicable",
    }
}

impl Status {
    /// What the status counts towards a score out of 1; `None` when it is not scored.
    pub fn weight(self) -> Option<f64> {
        match self {
            Status::Met => Some(1.0),
            Status::Partial => Some(0.5),
            Status::NotMet => Some(0.0),
            Status::NotApplicable => None,
        }
    }
}

/// One question asked of the posture, and its answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Check {
    pub status: Status,
    /// What was asked, in a line ("live identities whose sponsor departed").
    pub label: String,
    /// What was found ("3 of 120 live identities").
    pub detail: String,
    /// How many fail it.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub count: u64,
    /// The identities or accounts that fail it, the first [`posture::NAMED`] of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// One framework entry, as aim's live data answers it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Control {
    pub framework: Framework,
    /// The framework's own id (`NHI1`, `ASI03`, `PR.AA-05`, `GOVERN 1.6`, `L7`).
    pub id: String,
    pub title: String,
    pub status: Status,
    pub checks: Vec<Check>,
}

impl Control {
    fn new(framework: Framework, id: &str, title: &str, checks: Vec<Check>) -> Control {
        Control {
            framework,
            id: id.to_owned(),
            title: title.to_owned(),
            status: combine(&checks),
            checks,
        }
    }
}

impl Control {
    /// What the control counts towards a score out of 1: the mean of its checks' weights, so
    /// fixing one check of several moves the score; `None` when nothing in it is scored.
    pub fn weight(&self) -> Option<f64> {
        let weights: Vec<f64> = self
            .checks
            .iter()
            .filter_map(|k| k.status.weight())
            .collect();
        if weights.is_empty() {
            return self.status.weight();
        }
        Some(weights.iter().sum::<f64>() / weights.len() as f64)
    }
}

/// Met when every check is, not met when none is (and some is not met), partial otherwise.
fn combine(checks: &[Check]) -> Status {
    let scored: Vec<Status> = checks
        .iter()
        .map(|c| c.status)
        .filter(|s| *s != Status::NotApplicable)
        .collect();
    if scored.is_empty() {
        Status::NotApplicable
    } else if scored.iter().all(|s| *s == Status::Met) {
        Status::Met
    } else if scored.iter().all(|s| *s == Status::NotMet) {
        Status::NotMet
    } else {
        Status::Partial
    }
}

/// A framework's score out of 100: the mean of its controls' weights (each the mean of its
/// checks': met 1, partial ½, not met 0), and how many controls are met, partial, not met.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Score {
    pub framework: Framework,
    pub score: f64,
    pub met: u32,
    pub partial: u32,
    pub not_met: u32,
}

/// Every control, the score of each framework, and the overall score (the mean of every
/// control's weight, over all frameworks).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Evaluation {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub at: Timestamp,
    pub score: f64,
    pub frameworks: Vec<Score>,
    pub controls: Vec<Control>,
}

/// Reads `posture` against every framework.
pub fn evaluate(posture: &Posture) -> Evaluation {
    let controls = catalog::controls(posture);
    let frameworks = Framework::ALL
        .iter()
        .map(|f| score(*f, controls.iter().filter(|c| c.framework == *f)))
        .collect();
    let all = score(Framework::OwaspNhi, controls.iter());
    Evaluation {
        at: posture.at,
        score: all.score,
        frameworks,
        controls,
    }
}

fn score<'a>(framework: Framework, controls: impl Iterator<Item = &'a Control>) -> Score {
    let mut s = Score {
        framework,
        score: 0.0,
        met: 0,
        partial: 0,
        not_met: 0,
    };
    let mut total = 0.0;
    let mut scored = 0u32;
    for c in controls {
        match c.status {
            Status::Met => s.met += 1,
            Status::Partial => s.partial += 1,
            Status::NotMet => s.not_met += 1,
            Status::NotApplicable => {}
        }
        if let Some(w) = c.weight() {
            total += w;
            scored += 1;
        }
    }
    s.score = if scored == 0 {
        100.0
    } else {
        (total / f64::from(scored) * 1000.0).round() / 10.0
    };
    s
}
