//! The policy set in force on this replica: compiled from the newest stored version,
//! swapped whole when a new version is applied here or seen (by polling) from another
//! replica. Decisions read it without touching the store.

use std::sync::Arc;

use aim_api::policies::Content;
use aim_enforce::Snapshot;
use aim_policy::{Compiled, Engine, Problem, Source};
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
    /// The schema extensions `schema` was loaded with (gateways compile against them too).
    extensions: Vec<Source>,
    active: Snapshot<Active>,
}

/// The files and links of a stored version.
pub fn content_of(v: &PolicyVersion) -> Result<Content, String> {
    Ok(Content {
        sources: serde_json::from_value(v.sources.clone()).map_err(|e| e.to_string())?,
        links: serde_json::from_value(v.links.clone()).map_err(|e| e.to_string())?,
    })
}

impl Policies {
    /// aim's schema with the configured extensions, and the newest stored version.
    pub async fn load(store: &DynStore, extensions: &[Source]) -> anyhow::Result<Self> {
        let schema = aim_policy::schema::load(extensions)
            .map_err(|p| anyhow::anyhow!("the policy schema extension is invalid: {}", list(&p)))?;
        let empty = Engine::new(schema.clone(), compile(&schema, &Content::default())?)
            .map_err(anyhow::Error::msg)?;
        let policies = Policies {
            schema,
            extensions: extensions.to_vec(),
            active: Snapshot::new(Active {
                version: 0,
                engine: empty,
            }),
        };
        policies.refresh(store).await?;
        Ok(policies)
    }

    pub fn extensions(&self) -> &[Source] {
        &self.extensions
    }

    pub fn schema(&self) -> &aim_policy::schema::AimSchema {
        &self.schema
    }

    pub fn active(&self) -> Arc<Active> {
        self.active.current()
    }

    /// Compiles `content` against this replica's schema.
    pub fn compile(&self, content: &Content) -> Result<Compiled, Vec<Problem>> {
        aim_policy::compile(&self.schema, &content.sources, &content.links)
    }

    /// Puts `engine` in force as `version`, unless a newer one already is.
    pub fn install(&self, version: i64, engine: Engine) {
        self.active
            .replace_if(Active { version, engine }, |new, old| {
                new.version > old.version
            });
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
        let content = content_of(&v).map_err(anyhow::Error::msg)?;
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
