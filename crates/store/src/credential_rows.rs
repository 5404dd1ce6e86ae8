//! Rows of the credential tables, read generically over both backends, and the SELECTs
//! that produce them (see `credentials.rs`).

use aim_domain::agent_key::{AgentKey, Revocation};
use aim_domain::ids::{IdentityId, TaskId};
use aim_domain::task::Task;
use aim_domain::time::Timestamp;
use sqlx::ColumnIndex;

use crate::StoreError;
use crate::credentials::{SigningKeyRow, TokenContext};
use crate::rows::AimRow;

/// The column names an agent key is read from: its own, or aliased in a join.
pub(crate) struct KeyCols([&'static str; 9]);

pub(crate) const KEY_COLS: KeyCols = KeyCols([
    "identity_id",
    "kid",
    "jwk",
    "alg",
    "label",
    "created_at",
    "created_by",
    "revoked_at",
    "last_used_at",
]);
const JOINED_KEY_COLS: KeyCols = KeyCols([
    "k_identity_id",
    "k_kid",
    "k_jwk",
    "k_alg",
    "k_label",
    "k_created_at",
    "k_created_by",
    "k_revoked_at",
    "k_last_used_at",
]);

pub(crate) fn agent_key_from_row<'r, R: AimRow<'r>>(r: &'r R) -> Result<AgentKey, StoreError>
where
    &'r str: ColumnIndex<R>,
{
    agent_key_from(r, &KEY_COLS)
}

fn agent_key_from<'r, R: AimRow<'r>>(r: &'r R, c: &KeyCols) -> Result<AgentKey, StoreError>
where
    &'r str: ColumnIndex<R>,
{
    let c = &c.0;
    Ok(AgentKey {
        identity_id: IdentityId::from_uuid(r.uuid(c[0])?),
        kid: r.text(c[1])?,
        jwk: serde_json::from_str(&r.text(c[2])?)
            .map_err(|e| StoreError::Corrupt(format!("agent_keys.jwk: {e}")))?,
        alg: r.text(c[3])?,
        label: r.text(c[4])?,
        created_at: Timestamp::from_millis(r.int(c[5])?),
        created_by: r.text(c[6])?,
        revoked_at: r.opt_int(c[7])?.map(Timestamp::from_millis),
        last_used_at: r.opt_int(c[8])?.map(Timestamp::from_millis),
    })
}

/// The column names a task is read from: its own, or aliased in a join.
pub(crate) struct TaskCols([&'static str; 11]);

const TASK_COLS: TaskCols = TaskCols([
    "id",
    "identity_id",
    "purpose",
    "systems",
    "subject",
    "triggered_by",
    "state",
    "opened_at",
    "deadline",
    "ended_at",
    "end_reason",
]);
const JOINED_TASK_COLS: TaskCols = TaskCols([
    "t_id",
    "t_identity_id",
    "t_purpose",
    "t_systems",
    "t_subject",
    "t_triggered_by",
    "t_state",
    "t_opened_at",
    "t_deadline",
    "t_ended_at",
    "t_end_reason",
]);

pub(crate) fn task_from_row<'r, R: AimRow<'r>>(r: &'r R) -> Result<Task, StoreError>
where
    &'r str: ColumnIndex<R>,
{
    task_from(r, &TASK_COLS)
}

fn task_from<'r, R: AimRow<'r>>(r: &'r R, c: &TaskCols) -> Result<Task, StoreError>
where
    &'r str: ColumnIndex<R>,
{
    let c = &c.0;
    let corrupt = |what: &str, e: String| StoreError::Corrupt(format!("tasks.{what}: {e}"));
    Ok(Task {
        id: TaskId::from_uuid(r.uuid(c[0])?),
        identity_id: IdentityId::from_uuid(r.uuid(c[1])?),
        purpose: r.text(c[2])?,
        systems: serde_json::from_str(&r.text(c[3])?)
            .map_err(|e| corrupt("systems", e.to_string()))?,
        subject: r.opt_text(c[4])?,
        triggered_by: r.text(c[5])?,
        state: aim_domain::task::TaskState::parse(&r.text(c[6])?)
            .map_err(|e| corrupt("state", e.to_string()))?,
        opened_at: Timestamp::from_millis(r.int(c[7])?),
        deadline: Timestamp::from_millis(r.int(c[8])?),
        ended_at: r.opt_int(c[9])?.map(Timestamp::from_millis),
        end_reason: r.text(c[10])?,
    })
}

/// `SELECT` for [`CredentialStore::token_context`]: `$1` identity, `$2` kid, `$3` task.
pub(crate) fn token_context_sql() -> &'static str {
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        let identity: Vec<String> = crate::sql::IDENTITY_COLUMNS
            .split(',')
            .map(|c| format!("i.{}", c.trim()))
            .collect();
        let keys: Vec<String> = KEY_COLS
            .0
            .iter()
            .zip(JOINED_KEY_COLS.0)
            .map(|(c, a)| format!("k.{c} AS {a}"))
            .collect();
        let tasks: Vec<String> = TASK_COLS
            .0
            .iter()
            .zip(JOINED_TASK_COLS.0)
            .map(|(c, a)| format!("t.{c} AS {a}"))
            .collect();
        format!(
            "SELECT {}, h.state AS sponsor_state, {}, {} FROM identities i \
             JOIN humans h ON h.id = i.sponsor_id \
             LEFT JOIN agent_keys k ON k.identity_id = i.id AND k.kid = $2 \
             LEFT JOIN tasks t ON t.id = $3 AND t.identity_id = i.id \
             WHERE i.id = $1",
            identity.join(", "),
            keys.join(", "),
            tasks.join(", ")
        )
    });
    &SQL
}

/// [`token_context_sql`] for issuing a token, with `signer_revoked`: whether the signing key
/// `$4` is revoked.
pub(crate) fn issuing_context_sql() -> &'static str {
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        token_context_sql().replacen(
            " FROM identities i",
            ", (SELECT COUNT(*) FROM signing_keys WHERE kid = $4 AND revoked_at IS NOT NULL) AS signer_revoked \
             FROM identities i",
            1,
        )
    });
    &SQL
}

/// [`token_context_sql`] for a token presented to aim: the task by id alone (a sub-agent's
/// token carries its delegator's task), and four more columns, so the whole live state is
/// one read: the latest revocation of the task (`$4`), of the `always` and the `earlier`
/// pairs of kind and value (`$5`, `$6`, ...), and how many of the `delegators` (the ids
/// after the pairs) are active with an active sponsor.
pub(crate) fn live_context_sql(always: usize, earlier: usize, delegators: usize) -> String {
    let base = token_context_sql().replace(
        "LEFT JOIN tasks t ON t.id = $3 AND t.identity_id = i.id",
        "LEFT JOIN tasks t ON t.id = $3",
    );
    let latest = |from: usize, n: usize| {
        if n == 0 {
            return "NULL".to_owned();
        }
        let pairs: Vec<String> = (from..from + n)
            .map(|i| format!("(kind = ${} AND value = ${})", 2 * i + 5, 2 * i + 6))
            .collect();
        format!(
            "(SELECT MAX(at) FROM revocations WHERE {})",
            pairs.join(" OR ")
        )
    };
    let first_id = 2 * (always + earlier) + 5;
    let delegators = if delegators == 0 {
        "CAST(0 AS BIGINT)".to_owned()
    } else {
        let ids: Vec<String> = (first_id..first_id + delegators)
            .map(|i| format!("${i}"))
            .collect();
        format!(
            "(SELECT COUNT(*) FROM identities d JOIN humans dh ON dh.id = d.sponsor_id \
             WHERE d.id IN ({}) AND d.state = 'active' AND dh.state = 'active')",
            ids.join(", ")
        )
    };
    base.replacen(
        " FROM identities i",
        &format!(
            ", (SELECT MAX(at) FROM revocations WHERE kind = 'task' AND value = $4) AS task_revoked_at, \
             {} AS always_revoked_at, {} AS earlier_revoked_at, {delegators} AS delegators_active \
             FROM identities i",
            latest(0, always),
            latest(always, earlier),
        ),
        1,
    )
}

pub(crate) fn token_context_from_row<'r, R: AimRow<'r>>(
    r: &'r R,
) -> Result<TokenContext, StoreError>
where
    &'r str: ColumnIndex<R>,
{
    Ok(TokenContext {
        identity: crate::rows::identity_from_row(r)?,
        sponsor_state: aim_domain::human::HumanState::parse(&r.text("sponsor_state")?)
            .map_err(|e| StoreError::Corrupt(format!("humans.state: {e}")))?,
        key: match r.opt_text("k_kid")? {
            Some(_) => Some(agent_key_from(r, &JOINED_KEY_COLS)?),
            None => None,
        },
        task: match r.opt_uuid("t_id")? {
            Some(_) => Some(task_from(r, &JOINED_TASK_COLS)?),
            None => None,
        },
        signer_revoked: false,
    })
}

pub(crate) fn signing_key_from_row<'r, R: AimRow<'r>>(r: &'r R) -> Result<SigningKeyRow, StoreError>
where
    &'r str: ColumnIndex<R>,
{
    Ok(SigningKeyRow {
        kid: r.text("kid")?,
        alg: r.text("alg")?,
        public_jwk: r.text("public_jwk")?,
        sealed_private: r.bytes("sealed_private")?,
        created_at: Timestamp::from_millis(r.int("created_at")?),
        retire_at: Timestamp::from_millis(r.int("retire_at")?),
        revoked_at: r.opt_int("revoked_at")?.map(Timestamp::from_millis),
    })
}

pub(crate) fn revocation_from_row<'r, R: AimRow<'r>>(r: &'r R) -> Result<Revocation, StoreError>
where
    &'r str: ColumnIndex<R>,
{
    Ok(Revocation {
        epoch: r.int("epoch")?,
        kind: aim_domain::agent_key::RevocationKind::parse(&r.text("kind")?)
            .map_err(|e| StoreError::Corrupt(format!("revocations.kind: {e}")))?,
        value: r.text("value")?,
        at: Timestamp::from_millis(r.int("at")?),
        reason: r.text("reason")?,
        expires_at: Timestamp::from_millis(r.int("expires_at")?),
    })
}

const TASK_COLUMNS: &str = "id, identity_id, purpose, systems, subject, triggered_by, state, \
    opened_at, deadline, ended_at, end_reason";
const AGENT_KEY_COLUMNS: &str =
    "identity_id, kid, jwk, alg, label, created_at, created_by, revoked_at, last_used_at";

pub(crate) fn task_select(rest: &str) -> String {
    format!("SELECT {TASK_COLUMNS} FROM tasks {rest}")
}

pub(crate) fn agent_key_select(rest: &str) -> String {
    format!("SELECT {AGENT_KEY_COLUMNS} FROM agent_keys {rest}")
}

#[cfg(test)]
mod tests {
    use crate::sqlite::SqliteStore;

    /// SQLite's statistics are gathered when a store is small and go stale as it grows. A
    /// plan chosen on them must not scan a table the hot paths sit on: with a registry
    /// analysed at one human, the token's live state once scanned every human (six times
    /// slower at 100 sponsors, and growing with each one). What a store keeps of such
    /// statistics when it opens must not lead there.
    #[tokio::test]
    async fn hot_reads_never_scan_whatever_the_statistics_say() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("aim.db")).await.unwrap();
        let mut conn = store.write_tx().await.unwrap();
        // What ANALYZE writes for tables of one row each, as on a first start.
        let stale = [
            ("humans", "sqlite_autoindex_humans_1", "1 1"),
            ("identities", "sqlite_autoindex_identities_1", "1 1"),
            ("identities", "identities_sponsor", "1 1 1"),
            ("credentials", "credentials_human", "1 1"),
            ("credentials", "sqlite_autoindex_credentials_2", "1 1"),
            ("agent_keys", "sqlite_autoindex_agent_keys_1", "1 1 1"),
            ("tasks", "tasks_identity", "1 1 1"),
        ];
        sqlx::raw_sql("ANALYZE; DELETE FROM sqlite_stat1")
            .execute(&mut *conn)
            .await
            .unwrap();
        for (tbl, idx, stat) in stale {
            sqlx::query("INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES (?, ?, ?)")
                .bind(tbl)
                .bind(idx)
                .bind(stat)
                .execute(&mut *conn)
                .await
                .unwrap();
        }
        crate::sqlite::forget_tiny_statistics(&mut conn)
            .await
            .unwrap();
        sqlx::query("ANALYZE sqlite_schema")
            .execute(&mut *conn)
            .await
            .unwrap();
        let credential = format!(
            "{} WHERE c.secret_hash = $1 AND c.revoked_at IS NULL",
            crate::sql::CREDENTIAL_JOIN
        );
        for sql in [
            super::issuing_context_sql().to_owned(),
            super::live_context_sql(2, 1, 2),
            credential,
        ] {
            let plan: Vec<(i64, i64, i64, String)> =
                sqlx::query_as(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}")))
                    .fetch_all(&mut *conn)
                    .await
                    .unwrap();
            let scans: Vec<&str> = plan
                .iter()
                .map(|(_, _, _, detail)| detail.as_str())
                .filter(|d| d.starts_with("SCAN"))
                .collect();
            assert!(scans.is_empty(), "{scans:?} in the plan of {sql}");
        }
    }

    /// A hot read is prepared once per connection, not once per request: whatever
    /// `ANALYZE` sampled before the store opened (SQLite prepares again, on each new
    /// binding, a statement whose parameters meet an index it holds samples of).
    #[tokio::test]
    async fn hot_reads_are_not_prepared_again_for_each_request() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("aim.db");
        {
            let store = SqliteStore::open(&path).await.unwrap();
            let mut conn = store.write_tx().await.unwrap();
            for n in 0..200 {
                sqlx::query("INSERT INTO revocations (kind, value, at, reason, expires_at) VALUES ('task', $1, 0, 'r', 0)")
                    .bind(format!("t{n}"))
                    .execute(&mut *conn)
                    .await
                    .unwrap();
            }
            sqlx::query("ANALYZE").execute(&mut *conn).await.unwrap();
            let samples: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sqlite_stat4")
                .fetch_one(&mut *conn)
                .await
                .unwrap();
            assert!(samples > 0, "ANALYZE sampled the revocations");
            conn.commit_unrecorded().await.unwrap();
        }
        let _store = SqliteStore::open(&path).await.unwrap();
        let conn = rusqlite::Connection::open(&path).unwrap();
        let mut read = conn.prepare(&super::live_context_sql(0, 0, 0)).unwrap();
        for n in 0..3 {
            let task = format!("t{n}");
            let id = vec![0_u8; 16];
            let mut rows = read.query(rusqlite::params![id, "kid", id, task]).unwrap();
            assert!(rows.next().unwrap().is_none());
        }
        assert_eq!(
            read.get_status(rusqlite::StatementStatus::RePrepare),
            0,
            "prepared again for new values"
        );
    }
}
