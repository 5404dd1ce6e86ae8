//! LDAP and Active Directory: service accounts read with a bind, base DNs and a filter.
//!
//! Each entry is an account keyed by its DN: `sAMAccountName` (or `cn`) its name,
//! `userAccountControl` its state (disabled, password not required, password never expires,
//! trusted for delegation, no Kerberos pre-authentication), `servicePrincipalName` makes it
//! Kerberoastable, `pwdLastSet` dates its password and `lastLogonTimestamp` its last logon
//! (both Windows FILETIMEs: 100 ns since 1601), `accountExpires` its end, `memberOf` its
//! groups (privileged ones named by `--privileged-group`, Domain Admins and the other
//! built-in administrators by default), `managedBy` its owner (that entry's `mail`,
//! `userPrincipalName` or `sAMAccountName`). Managed service accounts
//! (`msDS-ManagedServiceAccount`, `msDS-GroupManagedServiceAccount`) have passwords the
//! directory rotates: never stale.
//!
//! `lastLogonTimestamp` is replicated only when it is older than
//! `msDS-LogonTimeSyncInterval` days (14 unless the domain says otherwise, read from each
//! base's domain object when there is one): [`read`] reports the interval so the importer can
//! refuse a dormancy threshold within it. Results are paged (500 entries a page).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use aim_domain::discovery::{
    Account, AccountKind, Credential, CredentialKind, Flag, Group, LastUse,
};
use aim_domain::time::Timestamp;
use ldap3::adapters::{Adapter, EntriesOnly, PagedResults};
use ldap3::{LdapConnAsync, LdapConnSettings, Scope, SearchEntry};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::ReadError;

/// The default filter: managed service accounts, and user accounts with a service
/// principal name (what a directory uses service accounts for).
pub const DEFAULT_FILTER: &str = "(|(objectClass=msDS-ManagedServiceAccount)\
(objectClass=msDS-GroupManagedServiceAccount)(&(objectClass=user)(servicePrincipalName=*)))";

/// Groups whose members administer the domain.
pub const PRIVILEGED_GROUPS: &[&str] = &[
    "Domain Admins",
    "Enterprise Admins",
    "Schema Admins",
    "Administrators",
    "Account Operators",
    "Backup Operators",
    "Server Operators",
    "Print Operators",
    "DnsAdmins",
    "Group Policy Creator Owners",
    "Key Admins",
    "Enterprise Key Admins",
];

const ATTRIBUTES: &[&str] = &[
    "sAMAccountName",
    "cn",
    "objectClass",
    "userAccountControl",
    "servicePrincipalName",
    "pwdLastSet",
    "lastLogonTimestamp",
    "accountExpires",
    "whenCreated",
    "memberOf",
    "managedBy",
    "description",
];

// userAccountControl bits.
const ACCOUNTDISABLE: u32 = 0x2;
const PASSWD_NOTREQD: u32 = 0x20;
const DONT_EXPIRE_PASSWORD: u32 = 0x1_0000;
const TRUSTED_FOR_DELEGATION: u32 = 0x8_0000;
const DONT_REQ_PREAUTH: u32 = 0x40_0000;

/// Where and how to read.
#[derive(Clone)]
pub struct Directory {
    /// `ldaps://dc.corp.example` or `ldap://...` (with `starttls`).
    pub url: String,
    pub starttls: bool,
    pub bind_dn: Option<String>,
    pub password: Option<String>,
    pub bases: Vec<String>,
    pub filter: String,
    pub privileged_groups: Vec<String>,
    /// Trust only this CA (PEM) for ldaps or StartTLS.
    pub ca_pem: Option<Vec<u8>>,
}

impl std::fmt::Debug for Directory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // INVARIANT: the bind password is never printed.
        f.debug_struct("Directory")
            .field("url", &self.url)
            .field("bind_dn", &self.bind_dn)
            .field("bases", &self.bases)
            .finish_non_exhaustive()
    }
}

/// What a directory held.
#[derive(Debug)]
pub struct Found {
    pub accounts: Vec<Result<Account, ReadError>>,
    /// The largest `msDS-LogonTimeSyncInterval` the bases' domain objects set, if any.
    pub logon_sync_days: Option<u32>,
}

fn ldap_error(what: &str, e: impl std::fmt::Display) -> ReadError {
    ReadError::Format(format!("{what}: {e}"))
}

/// A Windows FILETIME (100 ns since 1601-01-01 UTC) as an instant; 0 and the largest value
/// mean "never" (`None`).
pub fn filetime(v: &str) -> Result<Option<Timestamp>, String> {
    let n: i64 = v.trim().parse().map_err(|_| {
        format!(
            "`{}` is not a FILETIME",
            v.chars().take(32).collect::<String>()
        )
    })?;
    if n <= 0 || n == i64::MAX {
        return Ok(None);
    }
    Ok(Some(Timestamp::from_millis(
        n / 10_000 - 11_644_473_600_000,
    )))
}

/// A GeneralizedTime (`20240115100000.0Z`, `20240115100000Z`).
fn generalized(v: &str) -> Result<Timestamp, String> {
    let digits: String = v.chars().take_while(char::is_ascii_digit).collect();
    if digits.len() < 14 {
        return Err(format!("`{v}` is not a GeneralizedTime"));
    }
    let iso = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &digits[0..4],
        &digits[4..6],
        &digits[6..8],
        &digits[8..10],
        &digits[10..12],
        &digits[12..14]
    );
    Timestamp::parse(&iso).map_err(|e| e.to_string())
}

/// The first value of an attribute, looked up case-insensitively (as LDAP names are).
fn first<'a>(attrs: &'a HashMap<String, Vec<String>>, name: &str) -> Option<&'a str> {
    all(attrs, name).first().map(String::as_str)
}

fn all<'a>(attrs: &'a HashMap<String, Vec<String>>, name: &str) -> &'a [String] {
    attrs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map_or(&[], |(_, v)| v.as_slice())
}

/// The CN of a DN (`CN=Domain Admins,CN=Users,...` → `Domain Admins`).
fn cn(dn: &str) -> &str {
    dn.split(',')
        .next()
        .and_then(|rdn| rdn.split_once('='))
        .map_or(dn, |(_, v)| v.trim())
}

/// One entry as an account; `owners` names the humans `managedBy` DNs point at.
pub fn account(
    entry: &SearchEntry,
    privileged: &[String],
    owners: &HashMap<String, String>,
) -> Result<Account, String> {
    let a = &entry.attrs;
    let field = |name: &str, e: String| format!("{name}: {e}");
    let uac: u32 = match first(a, "userAccountControl") {
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| field("userAccountControl", format!("`{v}` is not a number")))?,
        None => 0,
    };
    let classes = all(a, "objectClass");
    let managed = classes.iter().any(|c| {
        c.eq_ignore_ascii_case("msDS-ManagedServiceAccount")
            || c.eq_ignore_ascii_case("msDS-GroupManagedServiceAccount")
    });
    let spns = all(a, "servicePrincipalName");
    let mut flags = Vec::new();
    for (bit, flag) in [
        (PASSWD_NOTREQD, Flag::PasswordNotRequired),
        (DONT_EXPIRE_PASSWORD, Flag::PasswordNeverExpires),
        (TRUSTED_FOR_DELEGATION, Flag::TrustedForDelegation),
        (DONT_REQ_PREAUTH, Flag::NoPreauthentication),
    ] {
        if uac & bit != 0 {
            flags.push(flag);
        }
    }
    if !spns.is_empty() {
        flags.push(Flag::ServicePrincipalName);
    }
    let when = |name: &str| -> Result<Option<Timestamp>, String> {
        first(a, name)
            .map(filetime)
            .transpose()
            .map(Option::flatten)
            .map_err(|e| field(name, e))
    };
    let password_set = when("pwdLastSet")?;
    let last_logon = when("lastLogonTimestamp")?;
    let created = first(a, "whenCreated")
        .map(generalized)
        .transpose()
        .map_err(|e| field("whenCreated", e))?;
    let groups = all(a, "memberOf")
        .iter()
        .map(|dn| Group {
            name: cn(dn).to_owned(),
            privileged: privileged.iter().any(|p| p.eq_ignore_ascii_case(cn(dn))),
        })
        .collect();
    let mut attributes = BTreeMap::new();
    for (k, v) in a {
        let value = match v.as_slice() {
            [one] => serde_json::Value::from(one.clone()),
            many => serde_json::Value::from(many.to_vec()),
        };
        attributes.insert(k.clone(), value);
    }
    let name = first(a, "sAMAccountName")
        .or_else(|| first(a, "cn"))
        .unwrap_or_else(|| cn(&entry.dn));
    Ok(Account {
        key: entry.dn.clone(),
        name: name.trim_end_matches('$').to_owned(),
        kind: if managed {
            AccountKind::ManagedServiceAccount
        } else {
            AccountKind::ServiceUser
        },
        enabled: uac & ACCOUNTDISABLE == 0,
        owner: first(a, "managedBy").and_then(|dn| owners.get(&dn.to_lowercase()).cloned()),
        purpose: first(a, "description").map(str::to_owned),
        vendor: None,
        environment: None,
        created,
        // Absent: the account never logged on (as far as replication tells).
        last_used: last_logon.map_or(LastUse::Never, LastUse::At),
        expires: when("accountExpires")?,
        credentials: vec![Credential {
            id: "password".to_owned(),
            kind: CredentialKind::Password,
            active: uac & ACCOUNTDISABLE == 0,
            // pwdLastSet 0: "must change at next logon", the date unknown.
            created: password_set,
            last_used: LastUse::Unknown,
            expires: None,
            rotates_itself: managed,
            fingerprint: None,
        }],
        permissions: Vec::new(),
        groups,
        systems: Vec::new(),
        flags,
        attributes,
    })
}

async fn connect(dir: &Directory) -> Result<ldap3::Ldap, ReadError> {
    let mut settings = LdapConnSettings::new()
        .set_conn_timeout(Duration::from_secs(10))
        .set_starttls(dir.starttls);
    if let Some(pem) = &dir.ca_pem {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| ldap_error("reading the CA", e))?;
            roots
                .add(cert)
                .map_err(|e| ldap_error("reading the CA", e))?;
        }
        let config = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        settings = settings.set_config(Arc::new(config));
    }
    let (conn, mut ldap) = LdapConnAsync::with_settings(settings, &dir.url)
        .await
        .map_err(|e| ldap_error(&format!("connecting to {}", dir.url), e))?;
    ldap3::drive!(conn);
    if let Some(dn) = &dir.bind_dn {
        ldap.simple_bind(dn, dir.password.as_deref().unwrap_or(""))
            .await
            .and_then(ldap3::LdapResult::success)
            .map_err(|e| ldap_error(&format!("binding as {dn}"), e))?;
    }
    Ok(ldap)
}

/// Every entry `filter` matches under each base, as accounts.
pub async fn read(dir: &Directory) -> Result<Found, ReadError> {
    let mut ldap = connect(dir).await?;
    let mut entries = Vec::new();
    let mut logon_sync_days = None;
    for base in &dir.bases {
        let adapters: Vec<Box<dyn Adapter<_, _>>> = vec![
            Box::new(EntriesOnly::new()),
            Box::new(PagedResults::new(500)),
        ];
        let mut search = ldap
            .streaming_search_with(
                adapters,
                base,
                Scope::Subtree,
                &dir.filter,
                ATTRIBUTES.to_vec(),
            )
            .await
            .map_err(|e| ldap_error(&format!("searching {base}"), e))?;
        while let Some(entry) = search
            .next()
            .await
            .map_err(|e| ldap_error(&format!("searching {base}"), e))?
        {
            // ldap3 panics on an entry it cannot decode: that is a malformed answer, not a
            // crash.
            let entry =
                std::panic::catch_unwind(|| SearchEntry::construct(entry)).map_err(|_| {
                    ldap_error(&format!("searching {base}"), "an entry aim cannot decode")
                })?;
            entries.push(entry);
        }
        search
            .finish()
            .await
            .success()
            .map_err(|e| ldap_error(&format!("searching {base}"), e))?;
        let (domain, _) = ldap
            .search(
                base,
                Scope::Base,
                "(objectClass=*)",
                vec!["msDS-LogonTimeSyncInterval"],
            )
            .await
            .map_err(|e| ldap_error(&format!("reading {base}"), e))?
            .success()
            .map_err(|e| ldap_error(&format!("reading {base}"), e))?;
        for d in domain {
            let d = SearchEntry::construct(d);
            if let Some(days) = first(&d.attrs, "msDS-LogonTimeSyncInterval")
                .and_then(|v| v.trim().parse::<u32>().ok())
            {
                logon_sync_days = Some(logon_sync_days.map_or(days, |d: u32| d.max(days)));
            }
        }
    }
    let owners = owners(&mut ldap, &entries).await?;
    let _ = ldap.unbind().await;
    let accounts = entries
        .iter()
        .map(|e| {
            account(e, &dir.privileged_groups, &owners).map_err(|m| ReadError::record(&e.dn, m))
        })
        .collect();
    Ok(Found {
        accounts,
        logon_sync_days,
    })
}

/// The human behind each `managedBy` DN: `mail`, else `userPrincipalName`, else
/// `sAMAccountName`; keyed by the lower-cased DN. A DN that does not resolve names no one.
async fn owners(
    ldap: &mut ldap3::Ldap,
    entries: &[SearchEntry],
) -> Result<HashMap<String, String>, ReadError> {
    let mut out = HashMap::new();
    for e in entries {
        let Some(dn) = first(&e.attrs, "managedBy") else {
            continue;
        };
        if out.contains_key(&dn.to_lowercase()) {
            continue;
        }
        let found = ldap
            .search(
                dn,
                Scope::Base,
                "(objectClass=*)",
                vec!["mail", "userPrincipalName", "sAMAccountName"],
            )
            .await
            .map_err(|e| ldap_error(&format!("reading the owner {dn}"), e))?;
        let name = found
            .0
            .into_iter()
            .next()
            .map(SearchEntry::construct)
            .and_then(|o| {
                ["mail", "userPrincipalName", "sAMAccountName"]
                    .iter()
                    .find_map(|k| first(&o.attrs, k).map(str::to_owned))
            });
        if let Some(name) = name {
            out.insert(dn.to_lowercase(), name);
        }
    }
    Ok(out)
}

/// Refuses a dormancy threshold within the domain's own `msDS-LogonTimeSyncInterval` (aim
/// refuses one within the default 14 days whatever the domain says).
pub fn check_threshold(found: &Found, dormant_days: u32) -> Result<(), ReadError> {
    match found.logon_sync_days {
        Some(sync) if dormant_days <= sync => Err(ReadError::Format(format!(
            "a dormancy threshold of {dormant_days} days is too short for this domain: its \
             msDS-LogonTimeSyncInterval is {sync} days, so lastLogonTimestamp may lag a real \
             logon by that long; use more than {sync} days"
        ))),
        _ => Ok(()),
    }
}
