//! Any CSV inventory (SaaS bots, API key lists, a spreadsheet of service accounts), read
//! through a mapping from aim's fields to the file's column names: `key=Bot ID`,
//! `owner=Owner e-mail`, `last_used=Last active`. Unmapped columns are kept as attributes.
//! A row with a credential column describes one credential (an API key): its use and expiry
//! are the credential's; without one they are the account's. A credential's age is only
//! what the `credential_created` column says (the account's creation date is not taken for
//! it: a key may have been rotated since).

use std::collections::BTreeMap;
use std::io::Read;

use aim_domain::discovery::{
    Account, AccountKind, Credential, CredentialKind, Group, LastUse, Permission,
};

use crate::ReadError;
use crate::values;

macro_rules! fields {
    ($($variant:ident => $name:literal: $doc:literal),+ $(,)?) => {
        /// A field of a discovered account a column can fill.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
        pub enum Field { $($variant),+ }

        impl Field {
            pub const ALL: &'static [(Field, &'static str, &'static str)] =
                &[$((Field::$variant, $name, $doc)),+];
        }
    };
}

fields! {
    Key => "key": "what identifies the account for good (required)",
    Name => "name": "its name (default: the key)",
    Kind => "kind": "service_user, bot, api_key, service_account, role, ... (default: --kind)",
    Enabled => "enabled": "true/false, yes/no, active/disabled (default: true)",
    Owner => "owner": "the owning human's user name or e-mail",
    Purpose => "purpose": "what it is for",
    Vendor => "vendor": "the vendor of a third-party bot",
    Environment => "environment": "prod, staging, ...",
    Created => "created": "when it was created (RFC 3339 or YYYY-MM-DD)",
    LastUsed => "last_used": "when it was last used; empty or `never` for never",
    Expires => "expires": "when it expires",
    Credential => "credential": "the id of its credential (a key id, never the secret)",
    CredentialKind => "credential_kind": "api_key, token, access_key, password, ... (default: api_key)",
    CredentialCreated => "credential_created": "when the credential was issued or last rotated (unmapped: unknown, never called stale)",
    Fingerprint => "fingerprint": "a hash of the secret: the same value on two rows is one shared credential",
    Permissions => "permissions": "grants, separated by `;` (`repo:write;admin:*`)",
    Groups => "groups": "groups, separated by `;`",
    Systems => "systems": "systems it reaches, separated by `;`",
}

/// Which column fills which field, and the kind of rows that do not say.
#[derive(Debug, Clone)]
pub struct Mapping {
    columns: BTreeMap<Field, String>,
    pub kind: AccountKind,
}

impl Mapping {
    /// Parses a mapping file: one `field=Column` per line; blank lines and lines starting
    /// with `#` are skipped.
    pub fn parse_lines(text: &str, kind: AccountKind) -> Result<Mapping, ReadError> {
        let pairs: Vec<String> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_owned)
            .collect();
        Mapping::parse(&pairs, kind)
    }

    /// Parses `field=Column` pairs; `key` is required.
    pub fn parse(pairs: &[String], kind: AccountKind) -> Result<Mapping, ReadError> {
        let mut columns = BTreeMap::new();
        for pair in pairs {
            let (field, column) = pair
                .split_once('=')
                .ok_or_else(|| ReadError::Format(format!("`{pair}` is not `field=Column`")))?;
            let field = Field::ALL
                .iter()
                .find(|(_, name, _)| *name == field.trim())
                .map(|(f, _, _)| *f)
                .ok_or_else(|| {
                    ReadError::Format(format!(
                        "`{}` is not a field; the fields are: {}",
                        field.trim(),
                        Field::ALL
                            .iter()
                            .map(|(_, n, _)| *n)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })?;
            if columns.insert(field, column.trim().to_owned()).is_some() {
                return Err(ReadError::Format(format!(
                    "`{}` is mapped twice",
                    field_name(field)
                )));
            }
        }
        if !columns.contains_key(&Field::Key) {
            return Err(ReadError::Format(
                "map the column that identifies each account: `--map key=Column`".to_owned(),
            ));
        }
        Ok(Mapping { columns, kind })
    }
}

fn field_name(f: Field) -> &'static str {
    Field::ALL
        .iter()
        .find(|(g, _, _)| *g == f)
        .map_or("?", |(_, n, _)| n)
}

/// The rows of one CSV, as accounts.
pub struct Rows<R: Read> {
    csv: csv::Reader<R>,
    at: BTreeMap<Field, usize>,
    names: Vec<String>,
    kind: AccountKind,
    record: csv::StringRecord,
    row: u64,
}

impl<R: Read> std::fmt::Debug for Rows<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rows").field("row", &self.row).finish()
    }
}

impl<R: Read> Rows<R> {
    /// Reads the header and checks every mapped column is in it.
    pub fn new(source: R, mapping: &Mapping) -> Result<Rows<R>, ReadError> {
        let mut csv = csv::ReaderBuilder::new()
            .has_headers(true)
            .from_reader(source);
        let header = csv
            .headers()
            .map_err(|e| ReadError::Format(format!("reading the header: {e}")))?
            .clone();
        let names: Vec<String> = header.iter().map(|h| h.trim().to_owned()).collect();
        let mut at = BTreeMap::new();
        for (field, column) in &mapping.columns {
            let i = names.iter().position(|n| n == column).ok_or_else(|| {
                ReadError::Format(format!(
                    "`{}` is mapped to the column `{column}`, which the file does not have \
                     (its columns: {})",
                    field_name(*field),
                    names.join(", ")
                ))
            })?;
            at.insert(*field, i);
        }
        Ok(Rows {
            csv,
            at,
            names,
            kind: mapping.kind,
            record: csv::StringRecord::new(),
            row: 1,
        })
    }

    fn get(&self, f: Field) -> Option<&str> {
        self.at
            .get(&f)
            .and_then(|i| self.record.get(*i))
            .and_then(values::present)
    }

    fn parse<T>(
        &self,
        f: Field,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Option<T>, String> {
        self.get(f)
            .map(parse)
            .transpose()
            .map_err(|e| format!("column `{}` ({}): {e}", self.columns_name(f), field_name(f)))
    }

    fn columns_name(&self, f: Field) -> &str {
        self.at
            .get(&f)
            .and_then(|i| self.names.get(*i))
            .map_or("", String::as_str)
    }

    fn list(&self, f: Field) -> Vec<String> {
        self.get(f)
            .map(|v| {
                v.split(';')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }

    fn account(&self) -> Result<Account, String> {
        let key = self
            .get(Field::Key)
            .ok_or("the key column is empty")?
            .to_owned();
        let kind = self
            .parse(Field::Kind, |v| {
                AccountKind::parse(v).map_err(|e| e.to_string())
            })?
            .unwrap_or(self.kind);
        let created = self.parse(Field::Created, values::date)?;
        // A mapped last-use column left empty means never; an unmapped one, unknown.
        let last_used = match self.at.get(&Field::LastUsed) {
            None => LastUse::Unknown,
            Some(_) => self
                .parse(Field::LastUsed, values::last_use)?
                .unwrap_or(LastUse::Never),
        };
        let expires = self.parse(Field::Expires, values::date)?;
        let mut credentials = Vec::new();
        let mut account_use = last_used;
        if let Some(id) = self.get(Field::Credential) {
            credentials.push(Credential {
                id: id.to_owned(),
                kind: self
                    .parse(Field::CredentialKind, |v| {
                        CredentialKind::parse(v).map_err(|e| e.to_string())
                    })?
                    .unwrap_or(CredentialKind::ApiKey),
                active: true,
                created: self.parse(Field::CredentialCreated, values::date)?,
                last_used,
                expires,
                rotates_itself: false,
                fingerprint: self.get(Field::Fingerprint).map(str::to_owned),
            });
            account_use = LastUse::Unknown;
        }
        let mapped: Vec<usize> = self.at.values().copied().collect();
        let attributes = self
            .names
            .iter()
            .enumerate()
            .filter(|(i, _)| !mapped.contains(i))
            .map(|(i, n)| (n.clone(), self.record.get(i).unwrap_or("").into()))
            .collect();
        Ok(Account {
            name: self.get(Field::Name).unwrap_or(&key).to_owned(),
            key,
            kind,
            enabled: self.parse(Field::Enabled, values::boolean)?.unwrap_or(true),
            owner: self.get(Field::Owner).map(str::to_owned),
            purpose: self.get(Field::Purpose).map(str::to_owned),
            vendor: self.get(Field::Vendor).map(str::to_owned),
            environment: self.get(Field::Environment).map(str::to_owned),
            created,
            last_used: account_use,
            expires: if credentials.is_empty() {
                expires
            } else {
                None
            },
            credentials,
            permissions: self
                .list(Field::Permissions)
                .into_iter()
                .map(|action| Permission {
                    action,
                    resource: None,
                    via: None,
                    admin: false,
                })
                .collect(),
            groups: self
                .list(Field::Groups)
                .into_iter()
                .map(|name| Group {
                    name,
                    privileged: false,
                })
                .collect(),
            systems: self.list(Field::Systems),
            flags: Vec::new(),
            attributes,
        })
    }
}

impl<R: Read> Iterator for Rows<R> {
    type Item = Result<Account, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        match crate::values::next_row(&mut self.csv, &mut self.record, &mut self.row)? {
            Ok(at) => Some(self.account().map_err(|m| ReadError::record(at, m))),
            Err(e) => Some(Err(e)),
        }
    }
}
