//! The storage conformance suite: every case runs on SQLite and, when
//! `AIM_TEST_DATABASE_URL` is set, on PostgreSQL (and fails if that is unreachable).

mod conformance;
mod fixtures;
