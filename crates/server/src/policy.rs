//! The policy set in force on this replica: compiled from the newest stored version,
//! swapped whole when a new version is applied here or seen (by polling) from another
//! replica. Decisions read it without touching the store.

use std::sync::{Arc, RwLock};

use aim_policy::{Compiled, Engine, Link, Problem, Source};
use aim_store::{DynStore, PolicyVersion};
use cedar_policy::Schema;

/// A compiled version, ready to decide.
#[derive(Debug)]
pub struct Active {
    /// 0 before any version is applied: nothing is permitted.
    pub version: i64,
    pub engine: Engine,
}

#[derive(Debug)]
pub struct Policies {
    schema: aim_policy::schema::AimSchema,
    active: RwLock<Arc<Active>>,
}

/// A version's files and links, as applied.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
pub struct Content {
    pub sources: Vec<Source>,
    #[serde(default)]
    pub links: Vec<Link>,
}

impl Content {
    pub fn of(v: &PolicyVersion) -> Result<Self, String> {
        Ok(Content {
            sources: serde_json::from_value(v.sources.clone()).map_err(|e| e.to_string())?,
            links: serde_json::from_value(v.links.clone()).map_err(|e| e.to_string())?,
        })
    }

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

impl Policies {
    /// aim's schema with the configured extensions, and the newest stored version.
    pub async fn load(store: &DynStore, extensions: &[Source]) -> anyhow::Result<Self> {
        let schema = aim_policy::schema::load(extensions)
            .map_err(|p| anyhow::anyhow!("the policy schema extension is invalid: {}", list(&p)))?;
        let empty = Engine::new(schema.clone(), compile(&schema, &Content::empty())?)
            .map_err(anyhow::Error::msg)?;
        let policies = Policies {
            schema,
            active: RwLock::new(Arc::new(Active {
                version: 0,
                engine: empty,
            })),
        };
        policies.refresh(store).await?;
        Ok(policies)
    }

    pub fn schema(&self) -> &aim_policy::schema::AimSchema {
        &self.schema
    }

    pub fn active(&self) -> Arc<Active> {
        match self.active.read() {
            Ok(a) => a.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Compiles `content` against this replica's schema.
    pub fn compile(&self, content: &Content) -> Result<Compiled, Vec<Problem>> {
        aim_policy::compile(&self.schema, &content.sources, &content.links)
    }

    /// Puts `engine` in force as `version`, unless a newer one already is.
    pub fn install(&self, version: i64, engine: Engine) {
        let mut guard = match self.active.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        if version > guard.version {
            *guard = Arc::new(Active { version, engine });
        }
    }

    /// Loads the newest stored version if it is newer than the one in force. A stored
    /// version that no longer compiles (the schema extension changed under it) keeps the
    /// one in force and is reported.
    pub async fn refresh(&self, store: &DynStore) -> anyhow::Result<()> {
        let latest = store.latest_policy_version().await?;
        if latest <= self.active().version {
            return Ok(());
        }
        let Some(v) = store.policy_version(Some(latest)).await? else {
            return Ok(());
        };
        let content = Content::of(&v).map_err(anyhow::Error::msg)?;
        let compiled = self.compile(&content).map_err(|p| {
            anyhow::anyhow!(
                "stored policy version {} does not compile against this schema: {}",
                v.version,
                list(&p)
            )
        })?;
        let engine = Engine::new(self.schema.clone(), compiled).map_err(anyhow::Error::msg)?;
        self.install(v.version, engine);
        Ok(())
    }
}

impl Content {
    fn empty() -> Self {
        Content {
            sources: Vec::new(),
            links: Vec::new(),
        }
    }
}

fn compile(schema: &Schema, content: &Content) -> anyhow::Result<Compiled> {
    aim_policy::compile(schema, &content.sources, &content.links)
        .map_err(|p| anyhow::anyhow!("{}", list(&p)))
}

fn list(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Picks up versions applied on other replicas, every five seconds.
pub async fn background(state: crate::AppState) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
    tick.tick().await;
    loop {
        tick.tick().await;
        if let Err(e) = state.policies.refresh(&state.store).await {
            tracing::error!(error = %e, "could not refresh the policy set");
        }
    }
}
