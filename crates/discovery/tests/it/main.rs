//! The importers against real sources: an OpenLDAP `slapd` seeded with Active Directory's
//! attributes stands in for a domain controller, and what it holds is imported into a real
//! aim server.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod ldap;
mod slapd;
