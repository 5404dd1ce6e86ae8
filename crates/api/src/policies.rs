//! A policy set's content as it is applied, stored and tried out.

use aim_domain::policy_file::{Link, Source};
use serde::{Deserialize, Serialize};

/// A version's files and links, as applied.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
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
