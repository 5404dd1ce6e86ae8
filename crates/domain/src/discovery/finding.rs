//! What a finding says: its kind, how bad it is, where in the OWASP Top 10 for Non-Human
//! Identities (2025) it falls, and the evidence behind it; and the thresholds the rules use.

use serde::{Deserialize, Serialize};

use crate::error::Refusal;

str_enum! {
    /// The OWASP Top 10 for Non-Human Identities, 2025.
    pub enum Nhi {
        /// NHI1: Improper Offboarding.
        Nhi1 => "NHI1",
        /// NHI2: Secret Leakage.
        Nhi2 => "NHI2",
        /// NHI3: Vulnerable Third-Party NHI.
        Nhi3 => "NHI3",
        /// NHI4: Insecure Authentication.
        Nhi4 => "NHI4",
        /// NHI5: Overprivileged NHI.
        Nhi5 => "NHI5",
        /// NHI6: Insecure Cloud Deployment Configurations.
        Nhi6 => "NHI6",
        /// NHI7: Long-Lived Secrets.
        Nhi7 => "NHI7",
        /// NHI8: Environment Isolation.
        Nhi8 => "NHI8",
        /// NHI9: NHI Reuse.
        Nhi9 => "NHI9",
        /// NHI10: Human Use of NHI.
        Nhi10 => "NHI10",
    }
}

impl Nhi {
    pub fn title(self) -> &'static str {
        match self {
            Nhi::Nhi1 => "Improper Offboarding",
            Nhi::Nhi2 => "Secret Leakage",
            Nhi::Nhi3 => "Vulnerable Third-Party NHI",
            Nhi::Nhi4 => "Insecure Authentication",
            Nhi::Nhi5 => "Overprivileged NHI",
            Nhi::Nhi6 => "Insecure Cloud Deployment Configurations",
            Nhi::Nhi7 => "Long-Lived Secrets",
            Nhi::Nhi8 => "Environment Isolation",
            Nhi::Nhi9 => "NHI Reuse",
            Nhi::Nhi10 => "Human Use of NHI",
        }
    }
}

str_enum! {
    pub enum Severity {
        Low => "low",
        Medium => "medium",
        High => "high",
        Critical => "critical",
    }
}

str_enum! {
    pub enum FindingKind {
        /// No owner, an owner who departed, or an owner aim does not know.
        Orphaned => "orphaned",
        /// Enabled, used once, not for longer than the dormancy threshold.
        Dormant => "dormant",
        /// Enabled, older than the dormancy threshold, never used.
        NeverUsed => "never_used",
        /// Past its expiry date and still enabled.
        ExpiredEnabled => "expired_enabled",
        /// A credential older than the rotation threshold, rotated at least once.
        StaleCredential => "stale_credential",
        /// A credential in place since the account was created, older than the rotation
        /// threshold.
        NeverRotated => "never_rotated",
        /// Two active credentials of one kind (access keys): one is usually forgotten.
        TwoActiveKeys => "two_active_keys",
        /// A password that never expires, on an account whose password is not rotated by
        /// the directory.
        PasswordNeverExpires => "password_never_expires",
        /// Administrator or wildcard permissions, a cluster-admin binding, a privileged group,
        /// unconstrained delegation.
        OverPrivileged => "over_privileged",
        /// Joined a privileged group since the previous import.
        PrivilegeAdded => "privilege_added",
        /// Linked to a registry identity that has not used some of its registered systems
        /// in aim's record for 90 days.
        UnusedPermissions => "unused_permissions",
        /// Weak authentication a directory allows: no password required, no Kerberos
        /// pre-authentication, a service principal name on a password account.
        WeakAuthentication => "weak_authentication",
        /// A person signs in with it: a console password or interactive logons.
        HumanUse => "human_use",
        /// The same owner, purpose and permissions under different names, or one vendor's
        /// bot under several identities.
        Duplicate => "duplicate",
        /// One credential on accounts in different environments.
        SharedAcrossEnvironments => "shared_across_environments",
    }
}

impl FindingKind {
    /// The OWASP NHI Top 10 entry this kind falls under.
    pub fn nhi(self) -> Nhi {
        match self {
            FindingKind::Orphaned
            | FindingKind::Dormant
            | FindingKind::NeverUsed
            | FindingKind::ExpiredEnabled => Nhi::Nhi1,
            FindingKind::WeakAuthentication => Nhi::Nhi4,
            FindingKind::OverPrivileged
            | FindingKind::PrivilegeAdded
            | FindingKind::UnusedPermissions => Nhi::Nhi5,
            FindingKind::StaleCredential
            | FindingKind::NeverRotated
            | FindingKind::TwoActiveKeys
            | FindingKind::PasswordNeverExpires => Nhi::Nhi7,
            FindingKind::SharedAcrossEnvironments => Nhi::Nhi8,
            FindingKind::Duplicate => Nhi::Nhi9,
            FindingKind::HumanUse => Nhi::Nhi10,
        }
    }
}

/// One finding about one account, or about one of its credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Finding {
    pub kind: FindingKind,
    pub severity: Severity,
    pub nhi: Nhi,
    /// The credential it is about (an access key id), when it is about one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
    /// What a person reads: what is wrong, with the values.
    pub message: String,
    /// The values that triggered it, by name.
    pub evidence: serde_json::Value,
}

impl Finding {
    /// The same finding but for its message, which is derived text and may count the days
    /// since something (`last used 41 days ago`): nothing to write again for.
    pub fn same_as(&self, other: &Finding) -> bool {
        self.kind == other.kind
            && self.severity == other.severity
            && self.credential == other.credential
            && self.evidence == other.evidence
    }

    pub fn new(kind: FindingKind, severity: Severity, message: String) -> Finding {
        Finding {
            kind,
            severity,
            nhi: kind.nhi(),
            credential: None,
            message,
            evidence: serde_json::Value::Object(serde_json::Map::new()),
        }
    }

    pub fn on(mut self, credential: &str) -> Finding {
        self.credential = Some(credential.to_owned());
        self
    }

    pub fn evidence(mut self, evidence: serde_json::Value) -> Finding {
        self.evidence = evidence;
        self
    }

    /// What identifies the finding on its account across imports: its kind and credential.
    pub fn slot(&self) -> String {
        match &self.credential {
            Some(c) => format!("{}:{c}", self.kind),
            None => self.kind.as_str().to_owned(),
        }
    }
}

/// How many days the rules wait before they call something dormant or stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    /// Unused for longer than this: dormant (30; 90 for directory accounts, whose last
    /// logon is replicated only every ~14 days).
    pub dormant_days: u32,
    /// Credentials older than this: stale or never rotated (90).
    pub rotation_days: u32,
}

/// `lastLogonTimestamp` is replicated between domain controllers only when it is older than
/// `msDS-LogonTimeSyncInterval` (14 days by default, minus up to 5 random days): a dormancy
/// threshold below it would call active accounts dormant.
pub const LDAP_LOGON_SYNC_DAYS: u32 = 14;

impl Thresholds {
    /// The defaults for a source of `kind`.
    pub fn for_source(kind: super::SourceKind) -> Thresholds {
        Thresholds {
            dormant_days: if kind == super::SourceKind::Ldap {
                90
            } else {
                30
            },
            rotation_days: 90,
        }
    }

    /// Refuses thresholds that would report wrong findings for a source of `kind`.
    pub fn checked(self, kind: super::SourceKind) -> Result<Thresholds, Refusal> {
        if self.dormant_days == 0 || self.rotation_days == 0 {
            return Err(Refusal::Validation(
                "`dormant_days` and `rotation_days` must be at least 1".to_owned(),
            ));
        }
        if kind == super::SourceKind::Ldap && self.dormant_days <= LDAP_LOGON_SYNC_DAYS {
            return Err(Refusal::Validation(format!(
                "a dormancy threshold of {} days is too short for a directory: \
                 lastLogonTimestamp is replicated only every {LDAP_LOGON_SYNC_DAYS} days \
                 (msDS-LogonTimeSyncInterval), so an account used {} days ago can still show \
                 an older logon; use more than {LDAP_LOGON_SYNC_DAYS} days (90 is the default)",
                self.dormant_days, self.dormant_days
            )));
        }
        Ok(self)
    }
}
