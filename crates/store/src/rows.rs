//! Rows as plain columns, and their conversion to and from domain types. Generic over the
//! backend: the same code decodes a SQLite row and a PostgreSQL row.

use std::collections::BTreeMap;

use aim_domain::event::{Actor, ActorKind, Event, Outcome, Trail};
use aim_domain::human::{Credential, Human, HumanState, Role};
use aim_domain::identity::{Autonomy, Identity, IdentityKind};
use aim_domain::ids::{CredentialId, HumanId, IdentityId};
use aim_domain::lifecycle::{LifecycleState, StateCause};
use aim_domain::risk::{DataSensitivity, Level, RiskAssessment, RiskTier};
use aim_domain::time::Timestamp;
use sqlx::{ColumnIndex, Decode, Row, Type};
use uuid::Uuid;

use crate::error::StoreError;

/// The bounds a backend's rows must meet for the column types aim uses.
pub(crate) trait AimRow<'r>: Row
where
    &'r str: ColumnIndex<Self>,
{
    fn text(&'r self, col: &'r str) -> Result<String, sqlx::Error>;
    fn opt_text(&'r self, col: &'r str) -> Result<Option<String>, sqlx::Error>;
    fn int(&'r self, col: &'r str) -> Result<i64, sqlx::Error>;
    fn opt_int(&'r self, col: &'r str) -> Result<Option<i64>, sqlx::Error>;
    fn uuid(&'r self, col: &'r str) -> Result<Uuid, sqlx::Error>;
    fn opt_uuid(&'r self, col: &'r str) -> Result<Option<Uuid>, sqlx::Error>;
    fn boolean(&'r self, col: &'r str) -> Result<bool, sqlx::Error>;
    fn bytes(&'r self, col: &'r str) -> Result<Vec<u8>, sqlx::Error>;
}

impl<'r, R> AimRow<'r> for R
where
    R: Row,
    &'r str: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    Uuid: Decode<'r, R::Database> + Type<R::Database>,
    bool: Decode<'r, R::Database> + Type<R::Database>,
    Vec<u8>: Decode<'r, R::Database> + Type<R::Database>,
{
    fn text(&'r self, col: &'r str) -> Result<String, sqlx::Error> {
        self.try_get(col)
    }
    fn opt_text(&'r self, col: &'r str) -> Result<Option<String>, sqlx::Error> {
        self.try_get(col)
    }
    fn int(&'r self, col: &'r str) -> Result<i64, sqlx::Error> {
        self.try_get(col)
    }
    fn opt_int(&'r self, col: &'r str) -> Result<Option<i64>, sqlx::Error> {
        self.try_get(col)
    }
    fn uuid(&'r self, col: &'r str) -> Result<Uuid, sqlx::Error> {
        self.try_get(col)
    }
    fn opt_uuid(&'r self, col: &'r str) -> Result<Option<Uuid>, sqlx::Error> {
        self.try_get(col)
    }
    fn boolean(&'r self, col: &'r str) -> Result<bool, sqlx::Error> {
        self.try_get(col)
    }
    fn bytes(&'r self, col: &'r str) -> Result<Vec<u8>, sqlx::Error> {
        self.try_get(col)
    }
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

fn ts(v: i64) -> Timestamp {
    Timestamp::from_millis(v)
}

fn opt_ts(v: Option<i64>) -> Option<Timestamp> {
    v.map(Timestamp::from_millis)
}

pub(crate) fn roles_to_text(roles: &[Role]) -> String {
    roles
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

pub(crate) fn human_from_row<'r, R: AimRow<'r>>(r: &'r R) -> Result<Human, StoreError>
where
    &'r str: ColumnIndex<R>,
{
    let roles = r.text("roles")?;
    let roles = roles
        .split(',')
        .filter(|s| !s.is_empty())
        .map(Role::parse)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| corrupt("humans.roles", e))?;
    Ok(Human {
        id: HumanId::from_uuid(r.uuid("id")?),
        user_name: r.text("user_name")?,
        display_name: r.opt_text("display_name")?,
        email: r.opt_text("email")?,
        external_id: r.opt_text("external_id")?,
        roles,
        groups: r
            .text("member_of")?
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        state: HumanState::parse(&r.text("state")?).map_err(|e| corrupt("humans.state", e))?,
        created_at: ts(r.int("created_at")?),
        updated_at: ts(r.int("updated_at")?),
        departed_at: opt_ts(r.opt_int("departed_at")?),
        deleted_at: opt_ts(r.opt_int("deleted_at")?),
        version: r.int("version")?,
    })
}

pub(crate) fn credential_from_row<'r, R: AimRow<'r>>(r: &'r R) -> Result<Credential, StoreError>
where
    &'r str: ColumnIndex<R>,
{
    Ok(Credential {
        id: CredentialId::from_uuid(r.uuid("cred_id")?),
        human_id: HumanId::from_uuid(r.uuid("human_id")?),
        label: r.text("label")?,
        created_at: ts(r.int("cred_created_at")?),
        last_used_at: opt_ts(r.opt_int("last_used_at")?),
        revoked_at: opt_ts(r.opt_int("revoked_at")?),
    })
}

pub(crate) fn identity_from_row<'r, R: AimRow<'r>>(r: &'r R) -> Result<Identity, StoreError>
where
    &'r str: ColumnIndex<R>,
{
    fn json<T: serde::de::DeserializeOwned>(col: &str, s: &str) -> Result<T, StoreError> {
        serde_json::from_str(s).map_err(|e| corrupt(col, e))
    }
    fn e<T>(col: &str, v: Result<T, aim_domain::error::InvalidEnum>) -> Result<T, StoreError> {
        v.map_err(|x| corrupt(col, x))
    }
    let systems: Vec<String> = json("identities.systems", &r.text("systems")?)?;
    let labels: BTreeMap<String, String> = json("identities.labels", &r.text("labels")?)?;
    let reasons: Vec<String> = json("identities.risk_reasons", &r.text("risk_reasons")?)?;
    Ok(Identity {
        id: IdentityId::from_uuid(r.uuid("id")?),
        name: r.text("name")?,
        kind: e("kind", IdentityKind::parse(&r.text("kind")?))?,
        autonomy: e("autonomy", Autonomy::parse(&r.text("autonomy")?))?,
        sponsor_id: HumanId::from_uuid(r.uuid("sponsor_id")?),
        owner_team: r.opt_text("owner_team")?,
        purpose: r.text("purpose")?,
        systems,
        data_sensitivity: e(
            "data_sensitivity",
            DataSensitivity::parse(&r.text("data_sensitivity")?),
        )?,
        criticality: e("criticality", Level::parse(&r.text("criticality")?))?,
        impact: e("impact", Level::parse(&r.text("impact")?))?,
        labels,
        risk: RiskAssessment {
            tier: e("risk_tier", RiskTier::parse(&r.text("risk_tier")?))?,
            reasons,
        },
        state: e("state", LifecycleState::parse(&r.text("state")?))?,
        state_cause: e("state_cause", StateCause::parse(&r.text("state_cause")?))?,
        state_reason: r.text("state_reason")?,
        state_changed_at: ts(r.int("state_changed_at")?),
        created_at: ts(r.int("created_at")?),
        created_by: HumanId::from_uuid(r.uuid("created_by")?),
        decided_by: r.opt_uuid("decided_by")?.map(HumanId::from_uuid),
        decided_at: opt_ts(r.opt_int("decided_at")?),
        expires_at: ts(r.int("expires_at")?),
        last_seen_at: opt_ts(r.opt_int("last_seen_at")?),
        last_attested_at: opt_ts(r.opt_int("last_attested_at")?),
        attestation_due_at: opt_ts(r.opt_int("attestation_due_at")?),
        dormant: r.boolean("dormant")?,
        orphaned_since: opt_ts(r.opt_int("orphaned_since")?),
        possible_duplicate: r.boolean("possible_duplicate")?,
        updated_at: ts(r.int("updated_at")?),
        version: r.int("version")?,
        pending_change: match r.opt_text("pending_change")? {
            Some(text) => Some(
                serde_json::from_str(&text)
                    .map_err(|e| StoreError::Corrupt(format!("identities.pending_change: {e}")))?,
            ),
            None => None,
        },
        bearer_reason: r.opt_text("bearer_reason")?,
    })
}

pub(crate) fn event_from_row<'r, R: AimRow<'r>>(r: &'r R) -> Result<Event, StoreError>
where
    &'r str: ColumnIndex<R>,
{
    let detail = r.text("detail")?;
    Ok(Event {
        seq: r.int("seq")?,
        at: ts(r.int("at")?),
        actor: Actor {
            kind: ActorKind::parse(&r.text("actor_kind")?)
                .map_err(|e| corrupt("events.actor_kind", e))?,
            id: r.text("actor_id")?,
        },
        action: aim_domain::event::AuditAction::parse(&r.text("action")?)
            .map_err(|e| StoreError::Corrupt(format!("events.action: {e}")))?,
        target_type: r.text("target_type")?,
        target_id: r.text("target_id")?,
        outcome: Outcome::parse(&r.text("outcome")?).map_err(|e| corrupt("events.outcome", e))?,
        reason: r.text("reason")?,
        detail: serde_json::from_str(&detail).map_err(|e| corrupt("events.detail", e))?,
        request_id: r.text("request_id")?,
        source: r.text("source")?,
        trail: Trail {
            act: serde_json::from_str(&r.text("act")?).map_err(|e| corrupt("events.act", e))?,
            task_id: r.text("task_id")?,
            session_id: r.text("session_id")?,
            jti: r.text("jti")?,
            triggered_by: r.text("triggered_by")?,
            policies: serde_json::from_str(&r.text("policies")?)
                .map_err(|e| corrupt("events.policies", e))?,
            model_decision: match r.text("model_decision")?.as_str() {
                "" => None,
                m => {
                    Some(serde_json::from_str(m).map_err(|e| corrupt("events.model_decision", e))?)
                }
            },
        },
        prev_hash: aim_domain::audit::to_hex(&r.bytes("prev_hash")?),
        hash: aim_domain::audit::to_hex(&r.bytes("hash")?),
    })
}

/// JSON text of a value the domain built (lists and maps of strings cannot fail to encode).
pub(crate) fn json_text<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".to_owned())
}

/// A record kept as one JSON document (approvals, grants).
pub(crate) fn doc_from_row<'r, R, T>(r: &'r R, table: &str) -> Result<T, StoreError>
where
    R: AimRow<'r>,
    &'r str: sqlx::ColumnIndex<R>,
    T: serde::de::DeserializeOwned,
{
    serde_json::from_str(&r.text("doc")?)
        .map_err(|e| StoreError::Corrupt(format!("{table}.doc: {e}")))
}

/// A record as the JSON document it is kept as.
pub(crate) fn doc<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt(format!("encoding a record: {e}")))
}
