//! Decisions taken in the gateway (a batched route's by default, any with `[aim] decide =
//! "gateway"`), the way aim takes them (`aim-enforce`): the token and
//! its DPoP proof verified here against aim's published keys, the live state behind the
//! token read from aim and kept while nothing was revoked (and for half a second at most),
//! the policy set and grants in force at aim compiled here and read again when aim's
//! heartbeat names a newer version; then the decision is put on aim's record and only then
//! answered.
//!
//! ```text
//! token + proof ─► live state (cached) ─► policies ─► grants ─► record at aim ─► answer
//!                                                              (durable: awaited;
//!                                                               batched: queued)
//! ```
//!
//! What needs aim's store in the moment is left to aim (`POST /v1/gateway/authorize`), as
//! before: an approval asked for or spent, a lease on the record a write touches, a sponsor
//! not yet read, a tool whose pinned definition is not the one listed, a key not yet known.
//! A route's `audit = "batched"` queues the record instead of awaiting it: a proof is then
//! single-use at this gateway at once and across gateways when aim takes the record
//! (a replay elsewhere is recorded as `replayed`); what is queued when the gateway dies
//! is lost (at most [`QUEUE`] records, sent within milliseconds under normal operation).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aim_api::gateway::{GatewayAuthorize, GatewayDecision, GatewayRecord};
use aim_client::ClientError;
use aim_domain::human::Human;
use aim_domain::single_use::Claim;
use aim_domain::time::{Clock, SystemClock};
use aim_domain::tool::Tool;
use aim_enforce::amend::Grants;
use aim_enforce::pipeline::{ApprovalLimits, Origin, Refused, Subject};
use aim_enforce::token::Presentation;
use aim_enforce::{Engine, Inactive, LiveCache, Pipeline, Snapshot, TokenRules};
use aim_token::TokenError;
use aim_token::access::{TrustedKeys, Verifier};

use crate::feed::Heard;
use crate::journal::Journal;

mod sources;
use sources::{Live, Store, Unanswered, api};

/// The most batched records waiting to be sent; past it, a batched route awaits its
/// record like any other.
pub const QUEUE: usize = 10_000;
/// Tokens whose signature is kept verified.
const VERIFIED_TOKENS: usize = 10_000;

/// How a route's decisions reach aim's record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Audit {
    /// Durable at aim, with the proof spent, before anything is forwarded.
    #[default]
    Durable,
    /// Queued and sent within milliseconds; forwarded without waiting.
    Batched,
}

/// Where a gateway takes its decisions (`[aim] decide`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Where {
    /// A durable route's decision by aim (its record needs the exchange with aim anyway,
    /// and aim sees every change at once); a batched route's here.
    #[default]
    Auto,
    /// Every decision here that aim's store is not needed for.
    Gateway,
    /// Every decision asked of aim.
    Aim,
}

/// What the gateway decides with, as aim last served it.
#[derive(Debug)]
struct Synced {
    /// Tokens as aim issues them, for this gateway, with the live state behind them.
    rules: TokenRules,
    version: i64,
    engine: Engine,
    grants: Grants,
    approvals: ApprovalLimits,
}

/// Where a request's decision came from.
#[derive(Debug)]
pub enum Decided {
    /// Taken here and on aim's record (or queued for it).
    Here(Box<GatewayDecision>),
    /// Refused here: the token, its proof or its state says no, or aim could not record.
    Refused(ClientError),
    /// For aim to take, and why.
    Aim(&'static str),
}

/// The gateway's own decision point.
#[derive(Debug)]
pub struct Local {
    /// This gateway's resource: the audience its tokens name.
    resource: String,
    clock: Arc<dyn Clock>,
    verifier: Snapshot<Option<Verifier>>,
    state: Snapshot<Option<Synced>>,
    /// Sponsors read with the live state of their identities' tokens, by id.
    sponsors: LiveCache<Human>,
    /// Tools as aim pins them, by `server/name`.
    pins: LiveCache<Tool>,
    /// Proofs spent on batched routes, until their `iat` window closes (ms).
    spent: Mutex<HashMap<String, i64>>,
    queue: tokio::sync::mpsc::Sender<GatewayRecord>,
    queued: Mutex<Option<tokio::sync::mpsc::Receiver<GatewayRecord>>>,
    /// Asks the synchroniser to read aim's keys again (a token named one not known here).
    keys_wanted: tokio::sync::Notify,
    /// `Aim`: every decision is aim's (configured).
    taken: Where,
    /// Where durable routes' records are made durable here, if configured.
    journal: Option<Arc<Journal>>,
}

impl Local {
    /// A decision point for tokens issued for `resource` (this gateway).
    pub fn new(resource: &str) -> Self {
        let (queue, queued) = tokio::sync::mpsc::channel(QUEUE);
        Self {
            resource: resource.to_owned(),
            clock: Arc::new(SystemClock),
            verifier: Snapshot::new(None),
            state: Snapshot::new(None),
            sponsors: LiveCache::default(),
            pins: LiveCache::default(),
            spent: Mutex::new(HashMap::new()),
            queue,
            queued: Mutex::new(Some(queued)),
            keys_wanted: tokio::sync::Notify::new(),
            taken: Where::Auto,
            journal: None,
        }
    }

    /// Makes durable routes' records durable in `journal` (when there is one) rather than
    /// at aim before the call goes on.
    pub fn journaling(mut self, journal: Option<Arc<Journal>>) -> Self {
        self.journal = journal;
        self
    }

    /// The journal durable routes' records go to, if any.
    pub fn journal(&self) -> Option<Arc<Journal>> {
        self.journal.clone()
    }

    /// Where this gateway takes its decisions.
    pub fn taken(&self) -> Where {
        self.taken
    }

    /// Takes decisions where `taken` says (`[aim] decide`).
    pub fn deciding(mut self, taken: Where) -> Self {
        self.taken = taken;
        self
    }

    /// Decides by `clock` (tests: aim's own fake clock).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Whether this gateway has what it decides with: aim's policy set, grants and keys.
    pub fn ready(&self) -> bool {
        self.taken == Where::Aim
            || (self.state.current().is_some() && self.verifier.current().is_some())
    }

    /// Decides `asked` here if everything it needs is here; else says it is for aim.
    pub async fn decide(
        &self,
        aim: &aim_client::Client,
        heard: &Heard,
        asked: &GatewayAuthorize,
        request_id: &str,
        audit: Audit,
    ) -> Decided {
        let awaits_aim = audit == Audit::Durable && self.journal.is_none();
        if self.taken == Where::Aim || (self.taken == Where::Auto && awaits_aim) {
            return Decided::Aim("configured");
        }
        if asked.question.approval_id.is_some() {
            return Decided::Aim("approval");
        }
        let state = self.state.current();
        let Some(state) = state.as_ref().as_ref() else {
            return Decided::Aim("not_synced");
        };
        let verifier = self.verifier.current();
        let Some(verifier) = verifier.as_ref().as_ref() else {
            return Decided::Aim("no_keys");
        };
        let generation = heard.epoch() as u64;
        if let Some(tool) = &asked.tool {
            match self.pinned(aim, tool, generation).await {
                Ok(true) => {}
                Ok(false) => return Decided::Aim("tool_not_pinned"),
                Err(e) => return Decided::Refused(e),
            }
        }
        let now = self.clock.now();
        let live = Live {
            aim,
            heard,
            sponsors: &self.sponsors,
            request_id,
        };
        let presented = Presentation {
            token: &asked.token,
            proof: asked.proof.as_deref(),
            method: &asked.method,
            url: &asked.url,
        };
        let (agent, proof) = match state
            .rules
            .check_request(&live, verifier, presented, now)
            .await
        {
            Ok(checked) => checked,
            Err(Inactive::Token(TokenError::UnknownKey)) => {
                self.keys_wanted.notify_one();
                return Decided::Aim("unknown_key");
            }
            Err(Inactive::Source(e)) => return Decided::Refused(e),
            Err(e) => return Decided::Refused(api(401, e.code(), e.to_string())),
        };
        let who = Subject::agent(&agent);
        let store = Store {
            local: self,
            aim,
            request_id,
            audit,
            generation,
        };
        let pipeline = Pipeline {
            store: &store,
            engine: &state.engine,
            version: Some(state.version),
            grants: &state.grants,
            approvals: state.approvals,
        };
        let origin = Origin {
            request_id,
            source: asked.question.call.ip.as_deref().unwrap_or_default(),
        };
        match pipeline
            .rule(&who, &asked.question, origin, proof, now)
            .await
        {
            Ok(ruled) => Decided::Here(Box::new(GatewayDecision {
                identity: agent.identity,
                task: agent.task,
                jti: agent.claims.jti.clone(),
                act: who.trail.act.clone(),
                answer: ruled.answer,
            })),
            Err(Refused::Store(Unanswered::ForAim(why))) => Decided::Aim(why),
            Err(Refused::Store(Unanswered::Aim(e))) => Decided::Refused(e),
            Err(Refused::Replayed) => Decided::Refused(api(
                401,
                "dpop_replayed",
                "this DPoP proof was already used".into(),
            )),
            Err(Refused::Query(e)) => Decided::Refused(api(400, e.code(), e.to_string())),
            Err(Refused::TooManyPending { .. }) => Decided::Aim("approval"),
        }
    }

    /// Whether the definition of `tool` this gateway listed is the one aim pins.
    async fn pinned(
        &self,
        aim: &aim_client::Client,
        tool: &aim_api::tools::ToolRef,
        generation: u64,
    ) -> Result<bool, ClientError> {
        let Some(hash) = tool.hash.as_deref() else {
            return Ok(false);
        };
        let key = format!("{}/{}", tool.server, tool.name);
        let found = match self.pins.get(&key, generation) {
            Some(t) => t,
            None => match aim.tool(&tool.server, &tool.name).await {
                Ok(view) => {
                    self.pins.put(&key, view.tool.clone(), generation);
                    view.tool
                }
                Err(ClientError::Api { status: 404, .. }) => return Ok(false),
                Err(e) => return Err(e),
            },
        };
        Ok(found.allows(Some(hash)))
    }

    /// Reads aim's policy set and grants and puts them in force here, unless what is in
    /// force is as new.
    pub async fn sync_state(&self, aim: &aim_client::Client) -> Result<(), String> {
        let state = aim.gateway_state().await.map_err(|e| e.to_string())?;
        let current = self.state.current();
        if let Some(now) = current.as_ref()
            && now.version == state.policy_version
            && now.grants.revision == state.grants_revision
        {
            return Ok(());
        }
        let engine = aim_enforce::policies::compile(&state.schema, &state.policies)
            .map_err(|e| format!("policy version {}: {e}", state.policy_version))?;
        let synced = Synced {
            rules: TokenRules::new(&state.issuer, &self.resource, &[]),
            version: state.policy_version,
            engine,
            grants: Grants {
                revision: state.grants_revision,
                grants: state.grants,
            },
            approvals: ApprovalLimits {
                ttl_seconds: state.approval_ttl_seconds,
                max_pending_per_identity: state.max_pending_approvals,
            },
        };
        tracing::info!(
            policy_version = synced.version,
            grants_revision = synced.grants.revision,
            "deciding with aim's policy set and grants"
        );
        self.state.replace(Some(synced));
        Ok(())
    }

    /// Reads aim's published keys.
    pub async fn sync_keys(&self, aim: &aim_client::Client) -> Result<(), String> {
        let jwks = aim.jwks().await.map_err(|e| e.to_string())?;
        let keys = TrustedKeys::from_jwks(&jwks).map_err(|e| e.to_string())?;
        self.verifier
            .replace(Some(Verifier::new(keys, VERIFIED_TOKENS)));
        Ok(())
    }

    /// Keeps the policy set, grants and keys as aim has them, for as long as the gateway
    /// runs: at once, when the heartbeat names a newer version, when a token names an
    /// unknown key (at most every 5 s), and every minute.
    pub async fn follow(self: Arc<Self>, aim: aim_client::Client, heard: Arc<Heard>) {
        if self.taken == Where::Aim {
            return;
        }
        let mut versions = heard.versions();
        loop {
            if let Err(e) = self.sync_state(&aim).await {
                tracing::warn!(error = %e, "could not read aim's policy set and grants; decisions go to aim");
            }
            if let Err(e) = self.sync_keys(&aim).await {
                tracing::warn!(error = %e, "could not read aim's keys");
            }
            tokio::select! {
                _ = versions.changed() => {}
                () = self.keys_wanted.notified() => {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                }
                () = tokio::time::sleep(Duration::from_secs(60)) => {}
            }
        }
    }

    /// Sends queued records of batched routes to aim, as many at once as queued while
    /// the last request was out; a refused request is tried again (the records wait, the
    /// queue fills, and calls wait for their own record once it is full).
    pub async fn ship(&self, aim: aim_client::Client) {
        let Some(mut queue) = self.queued.lock().ok().and_then(|mut q| q.take()) else {
            return;
        };
        let mut batch = Vec::new();
        while crate::proxy::next_batch(&mut queue, &mut batch).await {
            crate::journal::send(&aim, &batch, "batched").await;
            batch.clear();
        }
    }

    /// Marks the proofs in `claims` spent here; false if one was spent before.
    fn spend_here(&self, claims: &[Claim]) -> bool {
        let Ok(mut spent) = self.spent.lock() else {
            return false;
        };
        let now = self.clock.now().as_millis();
        if spent.len() > 100_000 {
            spent.retain(|_, until| *until > now);
        }
        if claims
            .iter()
            .any(|c| spent.get(&c.id).is_some_and(|until| *until > now))
        {
            return false;
        }
        for c in claims {
            spent.insert(c.id.clone(), c.expires_at.as_millis());
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asked() -> GatewayAuthorize {
        GatewayAuthorize {
            token: "t".into(),
            proof: None,
            method: "GET".into(),
            url: "http://gw.example/crm/1".into(),
            question: aim_api::authorize::AuthorizeBody::default(),
            tool: None,
        }
    }

    #[tokio::test]
    async fn nothing_is_decided_here_before_aims_state_is_read_or_when_told_to_ask_aim() {
        let aim = aim_client::Client::new("http://127.0.0.1:9", None);
        let heard = Heard::new(Duration::from_secs(5));
        let asked = asked();
        let local = Local::new("http://gw.example").deciding(Where::Gateway);
        assert!(!local.ready());
        let durable = local.decide(&aim, &heard, &asked, "r", Audit::Durable);
        assert!(matches!(durable.await, Decided::Aim("not_synced")));
        let asking = Local::new("http://gw.example").deciding(Where::Aim);
        assert!(asking.ready(), "a gateway that asks aim needs nothing read");
        let batched = asking.decide(&aim, &heard, &asked, "r", Audit::Batched);
        assert!(matches!(batched.await, Decided::Aim("configured")));
        // By default a durable route's decision is aim's, a batched route's the gateway's.
        let auto = Local::new("http://gw.example");
        let durable = auto.decide(&aim, &heard, &asked, "r", Audit::Durable);
        assert!(matches!(durable.await, Decided::Aim("configured")));
        let batched = auto.decide(&aim, &heard, &asked, "r", Audit::Batched);
        assert!(matches!(batched.await, Decided::Aim("not_synced")));
        // With a journal, a durable route's record waits for this gateway's disk, not for
        // aim: its decision is taken here too.
        let dir = tempfile::tempdir().unwrap();
        let journal = Arc::new(Journal::open(dir.path()).unwrap());
        let journaling = Local::new("http://gw.example").journaling(Some(journal));
        let durable = journaling.decide(&aim, &heard, &asked, "r", Audit::Durable);
        assert!(matches!(durable.await, Decided::Aim("not_synced")));
    }

    #[test]
    fn a_proof_is_spent_once_here_until_its_window_closes() {
        let local = Local::new("http://gw.example");
        let now = SystemClock.now();
        let claim = |id: &str, until: aim_domain::time::Timestamp| Claim {
            id: id.into(),
            expires_at: until,
        };
        assert!(local.spend_here(&[claim("dpop:k:1", now.plus_seconds(60))]));
        assert!(!local.spend_here(&[claim("dpop:k:1", now.plus_seconds(60))]));
        // One whose window has closed may be seen again (aim refuses its `iat` anyway).
        assert!(local.spend_here(&[claim("dpop:k:2", now.plus_seconds(-1))]));
        assert!(local.spend_here(&[claim("dpop:k:2", now.plus_seconds(60))]));
    }
}
