//! Risk tier from what an identity can reach: how critical it is, how sensitive the data it
//! handles, and the impact of its misuse. Explainable: every tier comes with its reasons.

use serde::{Deserialize, Serialize};

str_enum! {
    /// Low / medium / high, used for criticality and impact.
    pub enum Level {
        Low => "low",
        Medium => "medium",
        High => "high",
    }
}

str_enum! {
    /// The most sensitive class of data an identity handles.
    pub enum DataSensitivity {
        Public => "public",
        Internal => "internal",
        Confidential => "confidential",
        Restricted => "restricted",
    }
}

str_enum! {
    pub enum RiskTier {
        Low => "low",
        Medium => "medium",
        High => "high",
    }
}

/// A tier and the reasons that produced it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RiskAssessment {
    pub tier: RiskTier,
    pub reasons: Vec<String>,
}

/// The rules, in order:
/// * **high** if criticality is high, impact is high, or the data is restricted; or if two
///   of the three inputs are at their medium level or above and the data is confidential;
/// * **medium** if any input is at its medium level or above (criticality or impact medium,
///   data confidential);
/// * **low** otherwise.
pub fn assess(criticality: Level, sensitivity: DataSensitivity, impact: Level) -> RiskAssessment {
    let mut high = Vec::new();
    if criticality == Level::High {
        high.push("criticality is high".to_owned());
    }
    if impact == Level::High {
        high.push("impact is high".to_owned());
    }
    if sensitivity == DataSensitivity::Restricted {
        high.push("handles restricted data".to_owned());
    }
    let mut medium = Vec::new();
    if criticality == Level::Medium {
        medium.push("criticality is medium".to_owned());
    }
    if impact == Level::Medium {
        medium.push("impact is medium".to_owned());
    }
    if sensitivity == DataSensitivity::Confidential {
        medium.push("handles confidential data".to_owned());
    }
    if !high.is_empty() {
        return RiskAssessment {
            tier: RiskTier::High,
            reasons: high,
        };
    }
    if medium.len() == 3 {
        let mut reasons = medium;
        reasons.push("all three factors are medium or above".to_owned());
        return RiskAssessment {
            tier: RiskTier::High,
            reasons,
        };
    }
    if !medium.is_empty() {
        return RiskAssessment {
            tier: RiskTier::Medium,
            reasons: medium,
        };
    }
    RiskAssessment {
        tier: RiskTier::Low,
        reasons: vec![format!(
            "criticality {criticality}, impact {impact} and {sensitivity} data are all low"
        )],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use DataSensitivity as D;
    use Level as L;
    use proptest::prelude::*;

    #[test]
    fn table() {
        let cases = [
            (L::Low, D::Public, L::Low, RiskTier::Low),
            (L::Low, D::Internal, L::Low, RiskTier::Low),
            (L::Medium, D::Internal, L::Low, RiskTier::Medium),
            (L::Low, D::Confidential, L::Low, RiskTier::Medium),
            (L::Low, D::Internal, L::Medium, RiskTier::Medium),
            (L::Medium, D::Confidential, L::Low, RiskTier::Medium),
            (L::Medium, D::Confidential, L::Medium, RiskTier::High),
            (L::High, D::Public, L::Low, RiskTier::High),
            (L::Low, D::Restricted, L::Low, RiskTier::High),
            (L::Low, D::Public, L::High, RiskTier::High),
        ];
        for (c, d, i, want) in cases {
            let got = assess(c, d, i);
            assert_eq!(
                got.tier, want,
                "criticality {c}, {d}, impact {i}: {:?}",
                got.reasons
            );
            assert!(!got.reasons.is_empty());
        }
    }

    #[test]
    fn reasons_name_every_high_factor() {
        let a = assess(L::High, D::Restricted, L::High);
        assert_eq!(a.reasons.len(), 3, "{:?}", a.reasons);
    }

    fn level() -> impl Strategy<Value = L> {
        prop::sample::select(L::ALL)
    }
    fn sens() -> impl Strategy<Value = D> {
        prop::sample::select(D::ALL)
    }

    proptest! {
        /// Raising any one input never lowers the tier.
        #[test]
        fn monotone(c in level(), d in sens(), i in level(), c2 in level(), d2 in sens(), i2 in level()) {
            let lo = assess(c.min(c2), d.min(d2), i.min(i2)).tier;
            let hi = assess(c.max(c2), d.max(d2), i.max(i2)).tier;
            prop_assert!(lo <= hi);
        }
    }
}
