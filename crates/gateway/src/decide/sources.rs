//! Where the gateway's decision point reads what it does not hold: the live state behind
//! tokens from aim, and the pipeline's store (a sponsor read with the live state; a lease
//! or an approval only aim can answer; the record, durable at aim or queued for it).

use aim_api::gateway::{GatewayLive, GatewayRecord};
use aim_client::ClientError;
use aim_domain::approval::{ActionApproval, ApprovedAction, Spent};
use aim_domain::event::Event;
use aim_domain::human::Human;
use aim_domain::ids::{ApprovalId, HumanId, IdentityId, TaskId};
use aim_domain::lease::{Lease, Record};
use aim_domain::live::{Hangs, LiveContext};
use aim_domain::single_use::Claim;
use aim_domain::time::Timestamp;
use aim_enforce::pipeline::DecisionStore;
use aim_enforce::{LiveCache, LiveSource};

use super::{Audit, Local};
use crate::feed::Heard;

pub(super) fn api(status: u16, code: &str, message: String) -> ClientError {
    ClientError::Api {
        status,
        code: code.to_owned(),
        message,
    }
}

/// The live state behind tokens, from aim; the generation is the revocation epoch heard.
pub(super) struct Live<'a> {
    pub(super) aim: &'a aim_client::Client,
    pub(super) heard: &'a Heard,
    pub(super) sponsors: &'a LiveCache<Human>,
    pub(super) request_id: &'a str,
}

impl LiveSource for Live<'_> {
    type Error = ClientError;

    fn generation(&self) -> u64 {
        self.heard.epoch() as u64
    }

    async fn live_context(
        &self,
        identity: IdentityId,
        task: TaskId,
        hangs: &Hangs<'_>,
    ) -> Result<Option<LiveContext>, ClientError> {
        let generation = self.generation();
        let owned = |names: &[(aim_domain::agent_key::RevocationKind, &str)]| {
            names.iter().map(|(k, v)| (*k, (*v).to_owned())).collect()
        };
        let asked = GatewayLive {
            identity,
            task,
            always: owned(&hangs.always),
            earlier: owned(&hangs.earlier),
            delegators: hangs.delegators.clone(),
        };
        let read = self.aim.gateway_live(&asked, self.request_id).await?;
        if let Some(sponsor) = read.sponsor {
            self.sponsors
                .put(&sponsor.id.to_string(), sponsor, generation);
        }
        Ok(read.context)
    }
}

/// Why the pipeline got no answer from this gateway's store.
#[derive(Debug, thiserror::Error)]
pub(super) enum Unanswered {
    /// Only aim can answer this in the moment.
    #[error("for aim to decide: {0}")]
    ForAim(&'static str),
    #[error(transparent)]
    Aim(ClientError),
}

/// The pipeline's store at a gateway: what it holds, else aim.
pub(super) struct Store<'a> {
    pub(super) local: &'a Local,
    pub(super) aim: &'a aim_client::Client,
    pub(super) request_id: &'a str,
    pub(super) audit: Audit,
    pub(super) generation: u64,
}

impl DecisionStore for Store<'_> {
    type Error = Unanswered;

    async fn human(&self, id: HumanId) -> Result<Option<Human>, Unanswered> {
        match self.local.sponsors.get(&id.to_string(), self.generation) {
            Some(h) => Ok(Some(h)),
            None => Err(Unanswered::ForAim("sponsor")),
        }
    }

    // A lease is taken at aim by another agent at any moment: only aim knows.
    async fn held_lease(&self, _: &Record, _: Timestamp) -> Result<Option<Lease>, Unanswered> {
        Err(Unanswered::ForAim("lease"))
    }

    async fn approval(&self, _: ApprovalId) -> Result<Option<ActionApproval>, Unanswered> {
        Err(Unanswered::ForAim("approval"))
    }

    async fn open_approval_for(
        &self,
        _: &ApprovedAction,
        _: Timestamp,
    ) -> Result<Option<ActionApproval>, Unanswered> {
        Err(Unanswered::ForAim("approval"))
    }

    async fn insert_approval(
        &self,
        _: &ActionApproval,
        _: u32,
        _: Timestamp,
        _: &Event,
    ) -> Result<bool, Unanswered> {
        Err(Unanswered::ForAim("approval"))
    }

    async fn spend_approval(
        &self,
        _: &ActionApproval,
        _: Timestamp,
        _: &Event,
        _: Vec<Claim>,
    ) -> Result<Spent, Unanswered> {
        Err(Unanswered::ForAim("approval"))
    }

    async fn record(&self, event: &Event, claims: Vec<Claim>) -> Result<Option<i64>, Unanswered> {
        let record = GatewayRecord {
            event: event.clone(),
            claims,
        };
        let journal = self.local.journal.as_ref();
        if self.audit == Audit::Durable && journal.is_none() {
            return self.durable(record).await;
        }
        if !self.local.spend_here(&record.claims) {
            return Ok(None);
        }
        if let (Audit::Durable, Some(journal)) = (self.audit, journal) {
            return match journal.append(&record).await {
                Ok(()) => Ok(Some(0)),
                // A journal that cannot take it: aim must, before the call goes on.
                Err(e) => {
                    tracing::warn!(error = %e, request_id = self.request_id, "the journal refused a record; recording it at aim");
                    self.durable(record).await
                }
            };
        }
        match self.local.queue.try_send(record) {
            Ok(()) => Ok(Some(0)),
            // Full: this one waits for aim like a durable route's.
            Err(e) => self.durable(e.into_inner()).await,
        }
    }
}

impl Store<'_> {
    async fn durable(&self, record: GatewayRecord) -> Result<Option<i64>, Unanswered> {
        match self.aim.gateway_record(&record, self.request_id).await {
            Ok(r) => Ok(r.seqs.first().copied()),
            Err(ClientError::Api { status: 409, .. }) => Ok(None),
            Err(e) => Err(Unanswered::Aim(e)),
        }
    }
}
