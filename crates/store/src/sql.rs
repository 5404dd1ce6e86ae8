//! The SQL both backends run, written once: column lists, statements, and the WHERE
//! clauses of list queries built with `$n` placeholders.

/// Columns of `identities`, in the bind order of `bind_identity!`.
pub(crate) const IDENTITY_COLUMNS: &str = "id, name, kind, autonomy, sponsor_id, owner_team, \
    purpose, systems, data_sensitivity, criticality, impact, labels, risk_tier, risk_reasons, \
    state, state_cause, state_reason, state_changed_at, created_at, created_by, decided_by, \
    decided_at, expires_at, last_seen_at, last_attested_at, attestation_due_at, \
    last_activity_at, dormant, orphaned_since, possible_duplicate, duplicate_key, updated_at, \
    version, pending_change, bearer_reason";

pub(crate) const INSERT_IDENTITY: &str = "INSERT INTO identities (id, name, kind, autonomy, \
    sponsor_id, owner_team, purpose, systems, data_sensitivity, criticality, impact, labels, \
    risk_tier, risk_reasons, state, state_cause, state_reason, state_changed_at, created_at, \
    created_by, decided_by, decided_at, expires_at, last_seen_at, last_attested_at, \
    attestation_due_at, last_activity_at, dormant, orphaned_since, possible_duplicate, \
    duplicate_key, updated_at, version, pending_change, bearer_reason) VALUES ($1, $2, $3, $4, \
    $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, \
    $24, $25, $26, $27, $28, $29, $30, $31, $32, $33, $34, $35)";

pub(crate) const UPDATE_IDENTITY: &str = "UPDATE identities SET name = $2, kind = $3, \
    autonomy = $4, sponsor_id = $5, owner_team = $6, purpose = $7, systems = $8, \
    data_sensitivity = $9, criticality = $10, impact = $11, labels = $12, risk_tier = $13, \
    risk_reasons = $14, state = $15, state_cause = $16, state_reason = $17, \
    state_changed_at = $18, created_at = $19, created_by = $20, decided_by = $21, \
    decided_at = $22, expires_at = $23, last_seen_at = $24, last_attested_at = $25, \
    attestation_due_at = $26, last_activity_at = $27, dormant = $28, orphaned_since = $29, \
    possible_duplicate = $30, duplicate_key = $31, updated_at = $32, version = $33, \
    pending_change = $34, bearer_reason = $35 WHERE id = $1 AND version = $36";

pub(crate) const HUMAN_COLUMNS: &str = "id, user_name, display_name, email, external_id, roles, \
    state, created_at, updated_at, departed_at, deleted_at, version, member_of";

pub(crate) const INSERT_HUMAN: &str = "INSERT INTO humans (id, user_name, user_name_key, \
    display_name, email, external_id, roles, state, created_at, updated_at, departed_at, \
    deleted_at, version, member_of) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, \
    $13, $14)";

pub(crate) const UPDATE_HUMAN: &str = "UPDATE humans SET user_name = $2, user_name_key = $3, \
    display_name = $4, email = $5, external_id = $6, roles = $7, state = $8, created_at = $9, \
    updated_at = $10, departed_at = $11, deleted_at = $12, version = $13, member_of = $14 \
    WHERE id = $1 AND version = $15";

/// How many humans can act as admins now.
pub(crate) const ACTIVE_ADMINS: &str = "SELECT COUNT(*) FROM humans WHERE state = 'active' \
    AND deleted_at IS NULL AND (',' || roles || ',') LIKE '%,admin,%'";

const INSERT_EVENTS: &str = "INSERT INTO events (seq, at, actor_kind, actor_id, action, \
    target_type, target_id, outcome, reason, detail, request_id, source, act, task_id, \
    session_id, jti, triggered_by, policies, model_decision, prev_hash, hash) VALUES ";

/// The columns `INSERT_EVENTS` takes per record.
const EVENT_BINDS: usize = 21;

/// The row counts a multi-row event insert comes in: a batch is split into these, so only
/// seven statements are ever prepared (64 rows are 1,344 parameters, well within both
/// databases' limits).
pub(crate) const INSERT_CHUNKS: [usize; 7] = [64, 32, 16, 8, 4, 2, 1];

/// The multi-row inserts aim batches.
#[derive(Debug, Clone, Copy)]
pub(crate) enum MultiInsert {
    /// Audit records.
    Events,
    /// Single-use ids; those already there are skipped, the new ones returned.
    UsedIds,
}

impl MultiInsert {
    fn parts(self) -> (&'static str, usize, &'static str) {
        match self {
            MultiInsert::Events => (INSERT_EVENTS, EVENT_BINDS, ""),
            MultiInsert::UsedIds => (
                "INSERT INTO used_ids (id, expires_at) VALUES ",
                2,
                " ON CONFLICT (expires_at, id) DO NOTHING RETURNING id",
            ),
        }
    }
}

/// `INSERT ... VALUES (...), (...)` for `rows` rows (one of `INSERT_CHUNKS`), with `$n`
/// placeholders, or with plain `?` when `anonymous` (SQLite: sqlx-sqlite looks each
/// numbered placeholder up by name, which costs time quadratic in their number).
pub(crate) fn multi_insert(what: MultiInsert, rows: usize, anonymous: bool) -> &'static str {
    fn build(what: MultiInsert, anonymous: bool) -> Vec<String> {
        let (prefix, binds, suffix) = what.parts();
        INSERT_CHUNKS
            .iter()
            .map(|&rows| {
                let mut sql = prefix.to_owned();
                for r in 0..rows {
                    sql.push_str(if r == 0 { "(" } else { ", (" });
                    let first = r * binds + 1;
                    let list: Vec<String> = (first..first + binds)
                        .map(|n| {
                            if anonymous {
                                "?".to_owned()
                            } else {
                                format!("${n}")
                            }
                        })
                        .collect();
                    sql.push_str(&list.join(", "));
                    sql.push(')');
                }
                sql.push_str(suffix);
                sql
            })
            .collect()
    }
    use std::sync::LazyLock;
    static SQL: LazyLock<[[Vec<String>; 2]; 2]> = LazyLock::new(|| {
        [
            [
                build(MultiInsert::Events, false),
                build(MultiInsert::Events, true),
            ],
            [
                build(MultiInsert::UsedIds, false),
                build(MultiInsert::UsedIds, true),
            ],
        ]
    });
    let index = INSERT_CHUNKS
        .iter()
        .position(|&r| r == rows)
        .unwrap_or(INSERT_CHUNKS.len() - 1);
    &SQL[what as usize][usize::from(anonymous)][index]
}

/// Takes the next `$1` sequence numbers (returning the last) and the previous hash, and
/// locks the head until commit.
/// Records a single-use id; no row is changed if it was used before.
pub(crate) const USE_ONCE: &str = "INSERT INTO used_ids (id, expires_at) VALUES ($1, $2) \
    ON CONFLICT (expires_at, id) DO NOTHING";

pub(crate) const ADVANCE_HEAD: &str =
    "UPDATE chain_head SET seq = seq + $1 WHERE id = 1 RETURNING seq, hash";

pub(crate) const SET_HEAD_HASH: &str = "UPDATE chain_head SET hash = $1 WHERE id = 1";

pub(crate) const EVENT_COLUMNS: &str = "seq, at, actor_kind, actor_id, action, target_type, \
    target_id, outcome, reason, detail, request_id, source, act, task_id, session_id, jti, \
    triggered_by, policies, model_decision, prev_hash, hash";

pub(crate) const INSERT_CREDENTIAL: &str = "INSERT INTO credentials (id, human_id, secret_hash, \
    label, created_at, last_used_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7)";

pub(crate) const CREDENTIAL_JOIN: &str = "SELECT c.id AS cred_id, c.human_id, c.label, \
    c.created_at AS cred_created_at, c.last_used_at, c.revoked_at, h.id, h.user_name, \
    h.display_name, h.email, h.external_id, h.roles, h.state, h.created_at, h.updated_at, \
    h.departed_at, h.deleted_at, h.version, h.member_of FROM credentials c JOIN humans h ON h.id = c.human_id";

/// The live states, as SQL.
pub(crate) const LIVE_STATES: &str = "('requested', 'active', 'suspended', 'locked')";

/// A value bound into dynamically built SQL.
#[derive(Clone)]
pub(crate) enum Bind {
    Text(String),
    Int(i64),
    Uuid(uuid::Uuid),
}

/// A WHERE clause under construction: each `?` in a condition becomes the next `$n`.
#[derive(Default)]
pub(crate) struct Where {
    clauses: Vec<String>,
    pub(crate) binds: Vec<Bind>,
}

impl Where {
    pub(crate) fn bound(&mut self, condition: &str, b: Bind) {
        self.binds.push(b);
        self.clauses
            .push(condition.replace('?', &format!("${}", self.binds.len())));
    }

    pub(crate) fn plain(&mut self, condition: &str) {
        self.clauses.push(condition.to_owned());
    }

    /// ` WHERE a AND b`, or nothing.
    pub(crate) fn sql(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.clauses.join(" AND "))
        }
    }
}

/// The WHERE clause of an identity list query.
pub(crate) fn identity_where(
    f: &crate::IdentityFilter,
    after: Option<&crate::IdentityCursor>,
) -> Where {
    let mut w = Where::default();
    if let Some(s) = f.state {
        w.bound("state = ?", Bind::Text(s.as_str().to_owned()));
    }
    if let Some(k) = f.kind {
        w.bound("kind = ?", Bind::Text(k.as_str().to_owned()));
    }
    if let Some(s) = f.sponsor_id {
        w.bound("sponsor_id = ?", Bind::Uuid(s.as_uuid()));
    }
    if let Some(r) = f.risk_tier {
        w.bound("risk_tier = ?", Bind::Text(r.as_str().to_owned()));
    }
    if let Some(t) = f.expiring_before {
        w.bound("expires_at < ?", Bind::Int(t.as_millis()));
    }
    // Literal, not bound: the partial indexes on these flags apply only to a literal TRUE.
    match f.dormant {
        Some(true) => w.plain("dormant = TRUE"),
        Some(false) => w.plain("dormant = FALSE"),
        None => {}
    }
    match f.possible_duplicate {
        Some(true) => w.plain("possible_duplicate = TRUE"),
        Some(false) => w.plain("possible_duplicate = FALSE"),
        None => {}
    }
    match f.orphaned {
        Some(true) => w.plain("orphaned_since IS NOT NULL"),
        Some(false) => w.plain("orphaned_since IS NULL"),
        None => {}
    }
    if let Some(p) = &f.name_prefix {
        // A range on the unique name index, not LIKE: `%` and `_` in a prefix mean themselves.
        w.bound("name >= ?", Bind::Text(p.clone()));
        let mut upper = p.clone();
        upper.push(char::MAX);
        w.bound("name < ?", Bind::Text(upper));
    }
    if let Some(n) = &f.name {
        w.bound("name = ?", Bind::Text(n.clone()));
    }
    match after {
        Some(crate::IdentityCursor::Id(a)) => w.bound("id > ?", Bind::Uuid(a.as_uuid())),
        Some(crate::IdentityCursor::Name(n)) => w.bound("name > ?", Bind::Text(n.clone())),
        None => {}
    }
    w
}

/// The WHERE clause of a human list query.
pub(crate) fn human_where(
    f: &crate::HumanFilter,
    after: Option<aim_domain::ids::HumanId>,
) -> Where {
    let mut w = Where::default();
    if let Some(u) = &f.user_name {
        w.bound("user_name_key = ?", Bind::Text(u.to_lowercase()));
    }
    if let Some(x) = &f.external_id {
        w.bound("external_id = ?", Bind::Text(x.clone()));
    }
    if let Some(s) = f.state {
        w.bound("state = ?", Bind::Text(s.as_str().to_owned()));
    }
    if !f.include_deleted {
        w.plain("deleted_at IS NULL");
    }
    if let Some(g) = &f.member_of {
        // Group names hold no `%`, `_` or `,` (`validate::token`).
        w.bound(
            "(',' || member_of || ',') LIKE ?",
            Bind::Text(format!("%,{g},%")),
        );
    }
    if let Some(a) = after {
        w.bound("id > ?", Bind::Uuid(a.as_uuid()));
    }
    w
}

/// The WHERE clause of an audit query.
pub(crate) fn audit_where(f: &crate::AuditFilter, after_seq: i64) -> Where {
    let mut w = Where::default();
    w.bound("seq > ?", Bind::Int(after_seq));
    if let Some(i) = f.identity {
        w.plain("target_type = 'identity'");
        w.bound("target_id = ?", Bind::Text(i.to_string()));
    }
    if let Some(h) = f.human {
        let id = h.to_string();
        w.binds.push(Bind::Text(id.clone()));
        let a = w.binds.len();
        w.binds.push(Bind::Text(id));
        let b = w.binds.len();
        w.plain(&format!(
            "((actor_kind = 'human' AND actor_id = ${a}) OR (target_type = 'human' AND target_id = ${b}))"
        ));
    }
    if let Some(t) = f.task {
        w.plain("task_id <> ''");
        w.bound("task_id = ?", Bind::Text(t.to_string()));
    }
    if let Some(j) = &f.jti {
        w.plain("jti <> ''");
        w.bound("jti = ?", Bind::Text(j.clone()));
    }
    if let Some(a) = &f.action {
        w.bound("action = ?", Bind::Text(a.as_str().to_owned()));
    }
    if let Some(o) = f.outcome {
        w.bound("outcome = ?", Bind::Text(o.as_str().to_owned()));
    }
    if let Some(t) = f.since {
        w.bound("at >= ?", Bind::Int(t.as_millis()));
    }
    if let Some(t) = f.until {
        w.bound("at < ?", Bind::Int(t.as_millis()));
    }
    w
}
