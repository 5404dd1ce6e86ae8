//! Versioned migrations, embedded in the binary: one folder per backend, applied at start.

use std::borrow::Cow;

use sqlx::migrate::{Migration, MigrationType, Migrator};

/// (version, description, SQL) of each SQLite migration, in order.
const SQLITE: &[(i64, &str, &str)] = &[
    (
        1,
        "registry",
        include_str!("../migrations/sqlite/0001_registry.sql"),
    ),
    (
        2,
        "event trail",
        include_str!("../migrations/sqlite/0002_event_trail.sql"),
    ),
    (
        3,
        "credentials",
        include_str!("../migrations/sqlite/0003_credentials.sql"),
    ),
    (
        4,
        "join tokens",
        include_str!("../migrations/sqlite/0004_join_tokens.sql"),
    ),
    (
        5,
        "events actor index for humans only",
        include_str!("../migrations/sqlite/0005_events_actor_human.sql"),
    ),
    (
        6,
        "policy versions",
        include_str!("../migrations/sqlite/0006_policies.sql"),
    ),
    (
        7,
        "runtime: human groups, approvals, grants, leases",
        include_str!("../migrations/sqlite/0007_runtime.sql"),
    ),
    (
        8,
        "identities: a pending change waiting for an approver; bearer opt-in",
        include_str!("../migrations/sqlite/0008_pending_change.sql"),
    ),
    (
        9,
        "checkpoint keys shared by replicas; when agent keys were last used",
        include_str!("../migrations/sqlite/0009_checkpoint_keys.sql"),
    ),
    (
        10,
        "groups provisioned over SCIM",
        include_str!("../migrations/sqlite/0010_scim_groups.sql"),
    ),
    (
        11,
        "single-use ids keyed by expiry: one b-tree, written at its end",
        include_str!("../migrations/sqlite/0011_used_ids_by_expiry.sql"),
    ),
    (
        12,
        "what each gateway last acknowledged of the revocation list",
        include_str!("../migrations/sqlite/0012_gateway_acks.sql"),
    ),
    (
        13,
        "MCP tools seen through gateways, and their pinned definitions",
        include_str!("../migrations/sqlite/0013_mcp_tools.sql"),
    ),
    (
        14,
        "credentials for upstreams, sealed",
        include_str!("../migrations/sqlite/0014_upstream_secrets.sql"),
    ),
    (
        15,
        "behavioural baselines",
        include_str!("../migrations/sqlite/0015_baselines.sql"),
    ),
    (
        16,
        "discovery: imports, discovered accounts and their views",
        include_str!("../migrations/sqlite/0016_discovery.sql"),
    ),
    (
        17,
        "compliance reports, for the posture's trend",
        include_str!("../migrations/sqlite/0017_compliance_reports.sql"),
    ),
    (
        18,
        "a source's discovered accounts in id order",
        include_str!("../migrations/sqlite/0018_discovered_by_source.sql"),
    ),
];

/// (version, description, SQL) of each PostgreSQL migration, in order.
const POSTGRES: &[(i64, &str, &str)] = &[
    (
        1,
        "registry",
        include_str!("../migrations/postgres/0001_registry.sql"),
    ),
    (
        2,
        "event trail",
        include_str!("../migrations/postgres/0002_event_trail.sql"),
    ),
    (
        3,
        "credentials",
        include_str!("../migrations/postgres/0003_credentials.sql"),
    ),
    (
        4,
        "join tokens",
        include_str!("../migrations/postgres/0004_join_tokens.sql"),
    ),
    (
        5,
        "events actor index for humans only",
        include_str!("../migrations/postgres/0005_events_actor_human.sql"),
    ),
    (
        6,
        "policy versions",
        include_str!("../migrations/postgres/0006_policies.sql"),
    ),
    (
        7,
        "runtime: human groups, approvals, grants, leases",
        include_str!("../migrations/postgres/0007_runtime.sql"),
    ),
    (
        8,
        "identities: a pending change waiting for an approver; bearer opt-in",
        include_str!("../migrations/postgres/0008_pending_change.sql"),
    ),
    (
        9,
        "checkpoint keys shared by replicas; when agent keys were last used",
        include_str!("../migrations/postgres/0009_checkpoint_keys.sql"),
    ),
    (
        10,
        "groups provisioned over SCIM",
        include_str!("../migrations/postgres/0010_scim_groups.sql"),
    ),
    (
        11,
        "single-use ids keyed by expiry: one b-tree, written at its end",
        include_str!("../migrations/postgres/0011_used_ids_by_expiry.sql"),
    ),
    (
        12,
        "what each gateway last acknowledged of the revocation list",
        include_str!("../migrations/postgres/0012_gateway_acks.sql"),
    ),
    (
        13,
        "MCP tools seen through gateways, and their pinned definitions",
        include_str!("../migrations/postgres/0013_mcp_tools.sql"),
    ),
    (
        14,
        "credentials for upstreams, sealed",
        include_str!("../migrations/postgres/0014_upstream_secrets.sql"),
    ),
    (
        15,
        "behavioural baselines",
        include_str!("../migrations/postgres/0015_baselines.sql"),
    ),
    (
        16,
        "discovery: imports, discovered accounts and their views",
        include_str!("../migrations/postgres/0016_discovery.sql"),
    ),
    (
        17,
        "compliance reports, for the posture's trend",
        include_str!("../migrations/postgres/0017_compliance_reports.sql"),
    ),
    (
        18,
        "a source's discovered accounts in id order",
        include_str!("../migrations/postgres/0018_discovered_by_source.sql"),
    ),
];

fn migrator(list: &'static [(i64, &'static str, &'static str)]) -> Migrator {
    Migrator::with_migrations(
        list.iter()
            .map(|(v, d, sql)| {
                Migration::new(
                    *v,
                    Cow::Borrowed(*d),
                    MigrationType::Simple,
                    sqlx::SqlStr::from_static(sql),
                    false,
                )
            })
            .collect(),
    )
}

pub(crate) fn sqlite() -> Migrator {
    migrator(SQLITE)
}

pub(crate) fn postgres() -> Migrator {
    migrator(POSTGRES)
}
