use std::sync::Arc;

use aim_domain::Clock;
use aim_domain::governance::GovernanceConfig;
use aim_domain::naming::NamingPolicy;
use aim_store::DynStore;

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct AppState {
    pub store: DynStore,
    pub clock: Arc<dyn Clock>,
    pub governance: Arc<GovernanceConfig>,
    pub naming: Arc<NamingPolicy>,
    /// Signs audit checkpoints.
    pub signer: Arc<crate::checkpoint::Signer>,
    /// Issues and checks tokens.
    pub tokens: Arc<crate::tokens::TokenService>,
    /// The policy set in force.
    pub policies: Arc<crate::policy::Policies>,
    /// Live grants, the approvals config and webhook.
    pub decisions: Arc<crate::decisions::Decisions>,
    /// Behavioural baselines of the identities deciding here.
    pub behaviour: Arc<crate::behaviour::Baselines>,
    /// Where the first-start credential lives and how long it outlives a second admin.
    pub bootstrap: Arc<crate::config::BootstrapPolicy>,
    /// Refused requests per source: recorded one by one up to a point, then counted.
    pub refusals: Arc<crate::refusals::Refusals>,
    /// The revocation feed gateways follow.
    pub feed: Arc<crate::feed::Feed>,
    /// What the compliance report reads from the config.
    pub reporting: Arc<crate::config::ReportSettings>,
    /// What Prometheus scrapes from the admin listener.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Humans' credentials as resolved (by the secret's hash), used while the store's
    /// generation has not moved, for at most half a second: a gateway presents its
    /// credential on every call it asks about.
    pub callers:
        Arc<aim_enforce::LiveCache<(aim_domain::human::Credential, aim_domain::human::Human)>>,
    /// The lease held on a record, or none, as read for write decisions (same rule).
    pub held_leases: Arc<aim_enforce::LiveCache<Option<aim_domain::lease::Lease>>>,
    /// MCP tools' pinned and last-seen definitions, as read for each tool call (same rule:
    /// a definition seen or approved is a write).
    pub tools: Arc<aim_enforce::LiveCache<Option<aim_domain::tool::Tool>>>,
}
