//! aim's runtime decisions, without IO: the Cedar schema every policy is validated against,
//! strict compilation of policy files with file/line/column errors, a scope index that
//! evaluates only the policies that can apply, aim's own task-scoping rules, and
//! `@approval` annotations that turn an allow into a request for a human.
//!
//! # Layout
//! - [`schema`] — the published schema and deployments' extensions
//! - [`compile`] — policy text to a validated, flattened set
//! - [`slice`] — the scope index
//! - [`decide`] — one decision

pub mod compile;
pub mod decide;
pub mod schema;
pub mod slice;

pub use compile::{Compiled, Link, Problem, Source, compile};
pub use decide::{Call, Decision, Effect, Engine, Principal, Query, QueryError, Target};
