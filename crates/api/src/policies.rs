//! `/v1/policies`: a policy set's content as it is applied, stored and tried out, and the
//! history of versions.

use aim_domain::policy_file::{Link, Source};
use serde::{Deserialize, Serialize};

/// A version's files and links, as applied.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Content {
    pub sources: Vec<Source>,
    #[serde(default)]
    pub links: Vec<Link>,
}

impl Content {
    /// Hex SHA-256 over the canonical JSON of the files and links.
    pub fn digest(&self) -> String {
        use sha2::Digest;
        let json = serde_json::json!({ "sources": self.sources, "links": self.links });
        sha2::Sha256::digest(json.to_string().as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// A whole policy set: `sources` (`[{"name", "text"}]`, the Cedar files) and `links`
/// (`[{"id", "template", "principal", "resource"}]`), with a comment.
#[derive(Debug, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ApplyBody {
    #[serde(flatten)]
    pub content: Content,
    #[serde(default)]
    pub comment: String,
    /// The version this change was made against; refused (`policy_changed`) if another
    /// version was applied since. Without it, the version in force when the request
    /// arrives.
    #[serde(default)]
    pub expected_version: Option<i64>,
}

#[derive(Debug, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RollbackBody {
    /// The version whose content comes back, as a new version.
    pub version: i64,
    #[serde(default)]
    pub comment: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Applied {
    pub version: i64,
    pub digest: String,
    /// Policies in force, templates' links included.
    pub policies: usize,
    pub templates: usize,
}

/// One line of the history, without the files.
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VersionSummary {
    pub version: i64,
    pub digest: String,
    pub created_at: aim_domain::time::Timestamp,
    pub created_by: String,
    pub comment: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_of: Option<i64>,
    pub files: Vec<String>,
}

/// One version of the policy set, whole: what `GET /v1/policies` (the version in force)
/// and `GET /v1/policies/versions/{version}` answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PolicySetVersion {
    /// 0 before any apply: nothing is permitted.
    pub version: i64,
    #[serde(flatten)]
    pub content: Content,
    pub digest: String,
    pub created_at: aim_domain::time::Timestamp,
    pub created_by: String,
    pub comment: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_of: Option<i64>,
}
