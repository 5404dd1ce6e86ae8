//! Opaque ids. Every id is a UUIDv7 (time-ordered, random), parsed at the edge and never
//! passed around as a bare string.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(value_type = String, format = Uuid))]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh random, time-ordered id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            pub fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            pub fn as_uuid(&self) -> Uuid {
                self.0
            }

            /// Parses the canonical hyphenated form.
            pub fn parse(s: &str) -> Result<Self, InvalidId> {
                Uuid::try_parse(s).map(Self).map_err(|_| InvalidId(s.chars().take(64).collect()))
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = InvalidId;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }
    };
}

id_type!(
    /// A registered non-human identity.
    IdentityId
);
id_type!(
    /// A human known to aim.
    HumanId
);
id_type!(
    /// An API credential held by a human.
    CredentialId
);

id_type!(
    /// A task: one unit of work an agent was given, the scope its credentials are cut to.
    TaskId
);

id_type!(
    /// A pending (or decided) human approval of one exact action.
    ApprovalId
);

id_type!(
    /// A grant of actions on resources to an identity or a group.
    GrantId
);

id_type!(
    /// An exclusive, short-lived right of one identity to write one record.
    LeaseId
);

id_type!(
    /// One import of a discovery source.
    ImportId
);

id_type!(
    /// A discovered account, kept across the imports of its source.
    AccountId
);

id_type!(
    /// One compliance report, kept for the posture's trend.
    ReportId
);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a valid id (expected a UUID)")]
pub struct InvalidId(pub String);
