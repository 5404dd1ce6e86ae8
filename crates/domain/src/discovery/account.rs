//! A discovered account as every importer hands it over, whatever the source: what it is,
//! who owns it, its credentials with their ages and last use, what it may do, and the
//! source's own attributes kept as they were read.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::Refusal;
use crate::time::Timestamp;
use crate::validate;

str_enum! {
    /// The format a source is read from.
    pub enum SourceKind {
        /// LDAP / Active Directory, read with a bind and a filter.
        Ldap => "ldap",
        /// `aws iam get-credential-report` (CSV, or the API's JSON with base64 content).
        AwsCredentialReport => "aws-credential-report",
        /// `aws iam get-account-authorization-details` (JSON).
        AwsAuthorization => "aws-authorization",
        /// `kubectl get sa,rolebindings,clusterrolebindings,secrets -A -o json`.
        Kubernetes => "kubernetes",
        /// Any CSV, with a column mapping.
        Csv => "csv",
    }
}

str_enum! {
    /// What kind of account a source holds.
    pub enum AccountKind {
        /// A user account used by a machine (a directory service account, an IAM user with
        /// access keys).
        ServiceUser => "service_user",
        /// An account a person uses (an IAM user with only a console password): counted,
        /// never reported as a machine identity.
        Human => "human",
        /// A role assumed by workloads (IAM role).
        Role => "role",
        /// A Kubernetes service account.
        ServiceAccount => "service_account",
        /// An AD managed service account (`msDS-ManagedServiceAccount`) or group managed
        /// service account (`msDS-GroupManagedServiceAccount`): the directory rotates its
        /// password.
        ManagedServiceAccount => "managed_service_account",
        /// The cloud account's root user.
        Root => "root",
        /// A SaaS bot or integration.
        Bot => "bot",
        /// A bare API key with no account around it.
        ApiKey => "api_key",
        Other => "other",
    }
}

impl AccountKind {
    /// Whether the account is a machine identity (everything but a person's account).
    pub fn is_machine(self) -> bool {
        self != AccountKind::Human
    }
}

str_enum! {
    pub enum CredentialKind {
        /// A cloud access key (its id, never its secret).
        AccessKey => "access_key",
        /// A password a machine signs in with (directory accounts).
        Password => "password",
        /// A password for an interactive console.
        ConsolePassword => "console_password",
        /// A bearer token (a Kubernetes service-account token secret, a bot token).
        Token => "token",
        ApiKey => "api_key",
        Certificate => "certificate",
        SshKey => "ssh_key",
    }
}

str_enum! {
    /// Account state a source reports that bears on findings.
    pub enum Flag {
        /// AD `PASSWD_NOTREQD`: the account may have an empty password.
        PasswordNotRequired => "password_not_required",
        /// AD `DONT_EXPIRE_PASSWORD`.
        PasswordNeverExpires => "password_never_expires",
        /// AD `TRUSTED_FOR_DELEGATION`: unconstrained Kerberos delegation.
        TrustedForDelegation => "trusted_for_delegation",
        /// AD `DONT_REQ_PREAUTH`: AS-REP roastable.
        NoPreauthentication => "no_preauthentication",
        /// The account has a service principal name: Kerberoastable.
        ServicePrincipalName => "service_principal_name",
        /// The source saw a person sign in interactively with this account.
        InteractiveLogon => "interactive_logon",
    }
}

/// When a credential or account was last used, as far as the source knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LastUse {
    /// The source says it was never used.
    Never,
    /// The source does not know (`no_information`, not tracked, not replicated yet).
    #[default]
    Unknown,
    At(Timestamp),
    /// Not used since this instant, if ever: the source only looks back so far (an IAM
    /// role's last use is reported for the trailing 400 days).
    Before(Timestamp),
}

impl LastUse {
    pub fn at(self) -> Option<Timestamp> {
        match self {
            LastUse::At(t) => Some(t),
            _ => None,
        }
    }

    /// The later of two: a known use beats none, "never" beats "unknown" only when both
    /// sources say so, and two "not since" bounds give the later one.
    pub fn latest(self, other: LastUse) -> LastUse {
        match (self, other) {
            (LastUse::At(a), LastUse::At(b)) => LastUse::At(a.max(b)),
            (LastUse::At(a), _) | (_, LastUse::At(a)) => LastUse::At(a),
            (LastUse::Unknown, _) | (_, LastUse::Unknown) => LastUse::Unknown,
            (LastUse::Before(a), LastUse::Before(b)) => LastUse::Before(a.max(b)),
            (LastUse::Before(a), LastUse::Never) | (LastUse::Never, LastUse::Before(a)) => {
                LastUse::Before(a)
            }
            (LastUse::Never, LastUse::Never) => LastUse::Never,
        }
    }
}

impl Serialize for LastUse {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            LastUse::Never => s.serialize_str("never"),
            LastUse::Unknown => s.serialize_str("unknown"),
            LastUse::At(t) => t.serialize(s),
            LastUse::Before(t) => s.serialize_str(&format!("before:{t}")),
        }
    }
}

impl<'de> Deserialize<'de> for LastUse {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        match s.as_ref() {
            "never" => Ok(LastUse::Never),
            "unknown" => Ok(LastUse::Unknown),
            t if t.starts_with("before:") => Timestamp::parse(&t["before:".len()..])
                .map(LastUse::Before)
                .map_err(serde::de::Error::custom),
            t => Timestamp::parse(t)
                .map(LastUse::At)
                .map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for LastUse {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some(
                "`never`, `unknown`, an RFC 3339 instant, or `before:` and an instant (not used since, if ever)",
            ))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for LastUse {}

/// One credential of an account: never its secret, only what identifies and dates it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Credential {
    /// What names it in the source: an access key id, `password`, a secret's name.
    pub id: String,
    pub kind: CredentialKind,
    #[serde(default = "yes")]
    pub active: bool,
    /// When it was created or last rotated.
    #[serde(default)]
    pub created: Option<Timestamp>,
    #[serde(default)]
    pub last_used: LastUse,
    #[serde(default)]
    pub expires: Option<Timestamp>,
    /// The source rotates it by itself (a gMSA password, a bound projected token): never
    /// stale.
    #[serde(default)]
    pub rotates_itself: bool,
    /// A hash of the secret, when the source has one: the same value on two accounts is one
    /// credential shared between them.
    #[serde(default)]
    pub fingerprint: Option<String>,
}

fn yes() -> bool {
    true
}

/// One thing the account may do, as its source grants it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Permission {
    /// `s3:GetObject`, `iam:*`, `*`, `get pods`.
    pub action: String,
    /// `arn:aws:s3:::logs/*`, `*`, `namespace/payments`; absent when the source does not
    /// say (a CSV of scopes).
    #[serde(default)]
    pub resource: Option<String>,
    /// Where it comes from: a policy, a role binding, a group.
    #[serde(default)]
    pub via: Option<String>,
    /// The source names it a full administrator grant (`AdministratorAccess`,
    /// `cluster-admin`), whatever its action says.
    #[serde(default)]
    pub admin: bool,
}

impl Permission {
    /// Every action on every resource, or a grant the source calls administrator.
    pub fn is_admin(&self) -> bool {
        self.admin
            || (matches!(self.action.as_str(), "*" | "*:*")
                && self.resource.as_deref().is_none_or(|r| r == "*"))
    }

    /// A wildcard in the action (`s3:*`, `iam:Put*`) or on every resource.
    pub fn is_wildcard(&self) -> bool {
        self.action.contains('*') || self.resource.as_deref() == Some("*")
    }
}

/// A group the account belongs to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Group {
    pub name: String,
    /// A group that administers the source (`Domain Admins`, `system:masters`).
    #[serde(default)]
    pub privileged: bool,
}

/// A machine identity as a source describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Account {
    /// What identifies it in its source for good: an ARN, a DN, `namespace/name`.
    pub key: String,
    pub name: String,
    pub kind: AccountKind,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// The human who owns it, as the source names them (user name or e-mail).
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default)]
    pub purpose: Option<String>,
    /// The vendor of a third-party bot or integration.
    #[serde(default)]
    pub vendor: Option<String>,
    /// `prod`, `staging`: what the account (and a credential shared with others) reaches.
    #[serde(default)]
    pub environment: Option<String>,
    #[serde(default)]
    pub created: Option<Timestamp>,
    /// Use of the account itself, beside its credentials' (a role's last assumption, a
    /// directory logon).
    #[serde(default)]
    pub last_used: LastUse,
    #[serde(default)]
    pub expires: Option<Timestamp>,
    #[serde(default)]
    pub credentials: Vec<Credential>,
    #[serde(default)]
    pub permissions: Vec<Permission>,
    #[serde(default)]
    pub groups: Vec<Group>,
    /// Systems it reaches, as names aim's registry uses.
    #[serde(default)]
    pub systems: Vec<String>,
    #[serde(default)]
    pub flags: Vec<Flag>,
    /// The source's own attributes, as read (for the evidence and the operator).
    #[serde(default)]
    pub attributes: BTreeMap<String, serde_json::Value>,
}

/// Bounds on what one account may carry: a source that exceeds them is malformed or
/// hostile, and the import says which account and which bound.
pub const MAX_CREDENTIALS: usize = 64;
pub const MAX_PERMISSIONS: usize = 4096;
pub const MAX_GROUPS: usize = 1024;
pub const MAX_SYSTEMS: usize = 256;
pub const MAX_ATTRIBUTES_BYTES: usize = 64 * 1024;

impl Account {
    /// The account with its text checked (lengths, no control characters) and its lists
    /// within bounds.
    pub fn checked(mut self) -> Result<Account, Refusal> {
        self.key = validate::text("key", &self.key, 2048)?;
        self.name = validate::text("name", &self.name, 512)?;
        self.owner = validate::optional_text("owner", self.owner, 320)?;
        self.purpose = validate::optional_text("purpose", self.purpose, 1024)?;
        self.vendor = validate::optional_text("vendor", self.vendor, 256)?;
        self.environment = validate::optional_text("environment", self.environment, 128)?;
        bound("credentials", self.credentials.len(), MAX_CREDENTIALS)?;
        bound("permissions", self.permissions.len(), MAX_PERMISSIONS)?;
        bound("groups", self.groups.len(), MAX_GROUPS)?;
        bound("systems", self.systems.len(), MAX_SYSTEMS)?;
        for c in &mut self.credentials {
            c.id = validate::text("credentials[].id", &c.id, 512)?;
            c.fingerprint = validate::optional_text("fingerprint", c.fingerprint.take(), 256)?;
        }
        for p in &mut self.permissions {
            p.action = validate::text("permissions[].action", &p.action, 512)?;
            p.resource =
                validate::optional_text("permissions[].resource", p.resource.take(), 2048)?;
            p.via = validate::optional_text("permissions[].via", p.via.take(), 512)?;
        }
        for g in &mut self.groups {
            g.name = validate::text("groups[].name", &g.name, 512)?;
        }
        for s in &mut self.systems {
            *s = validate::text("systems[]", s, 256)?;
        }
        let raw = serde_json::to_string(&self.attributes).map_or(usize::MAX, |s| s.len());
        if raw > MAX_ATTRIBUTES_BYTES {
            return Err(Refusal::Validation(format!(
                "the attributes of `{}` take {raw} bytes, more than {MAX_ATTRIBUTES_BYTES}",
                self.key
            )));
        }
        Ok(self)
    }

    /// The latest use of the account or any of its credentials.
    pub fn last_use(&self) -> LastUse {
        self.credentials
            .iter()
            .filter(|c| c.active)
            .map(|c| c.last_used)
            .fold(self.last_used, LastUse::latest)
    }

    /// The active credentials.
    pub fn active(&self) -> impl Iterator<Item = &Credential> {
        self.credentials.iter().filter(|c| c.active)
    }

    pub fn has(&self, flag: Flag) -> bool {
        self.flags.contains(&flag)
    }

    /// Folds what another view of the same account adds (an authorization export beside a
    /// credential report): `other` fills what this one lacks and adds its credentials,
    /// permissions and groups.
    pub fn merge(mut self, other: &Account) -> Account {
        // What only some views can tell: a person's account, the root user.
        if self.kind != AccountKind::Root
            && matches!(other.kind, AccountKind::Human | AccountKind::Root)
        {
            self.kind = other.kind;
        }
        self.owner = self.owner.or_else(|| other.owner.clone());
        self.purpose = self.purpose.or_else(|| other.purpose.clone());
        self.vendor = self.vendor.or_else(|| other.vendor.clone());
        self.environment = self.environment.or_else(|| other.environment.clone());
        self.created = match (self.created, other.created) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.expires = self.expires.or(other.expires);
        self.enabled = self.enabled && other.enabled;
        self.last_used = self.last_used.latest(other.last_used);
        add_missing(&mut self.credentials, &other.credentials, |a, b| {
            a.id == b.id
        });
        add_missing(&mut self.permissions, &other.permissions, |a, b| a == b);
        add_missing(&mut self.groups, &other.groups, |a, b| a.name == b.name);
        add_missing(&mut self.systems, &other.systems, |a, b| a == b);
        add_missing(&mut self.flags, &other.flags, |a, b| a == b);
        for (k, v) in &other.attributes {
            self.attributes
                .entry(k.clone())
                .or_insert_with(|| v.clone());
        }
        self
    }
}

/// Appends each item of `from` that `into` has no `same` of.
fn add_missing<T: Clone>(into: &mut Vec<T>, from: &[T], same: impl Fn(&T, &T) -> bool) {
    for item in from {
        if !into.iter().any(|o| same(o, item)) {
            into.push(item.clone());
        }
    }
}

fn bound(field: &str, n: usize, max: usize) -> Result<(), Refusal> {
    if n > max {
        return Err(Refusal::Validation(format!(
            "`{field}` has {n} entries, more than {max}"
        )));
    }
    Ok(())
}
