//! The AWS IAM credential report (`aws iam generate-credential-report`, then
//! `get-credential-report`): one CSV row per IAM user, plus the root account's row.
//!
//! Read by header name, never by position: reports from before 2015 have no
//! `access_key_N_last_used_*` columns (their keys' use is then unknown, not "never"). The
//! sentinels: `N/A` (no such credential, or never used), `no_information` (not used since
//! AWS began tracking in October 2014: unknown), `not_supported` (the root row's password
//! dates). Each access key, certificate and console password becomes a credential of its
//! own, so findings name the key (`access_key_2`), not just the user.
//!
//! The CLI's output (`{"Content": "<base64>", "ReportFormat": "text/csv", ...}`) is read too;
//! being one JSON document, it is decoded whole, while the CSV itself streams.

use std::io::{BufRead, BufReader, Read};

use aim_domain::discovery::{Account, AccountKind, Credential, CredentialKind, LastUse};
use base64::Engine;

use crate::ReadError;
use crate::values;

/// The user name the report gives the root account.
pub const ROOT: &str = "<root_account>";

/// Column positions, by header name.
#[derive(Debug, Default)]
struct Columns {
    user: usize,
    arn: usize,
    created: usize,
    password_enabled: Option<usize>,
    password_last_used: Option<usize>,
    password_last_changed: Option<usize>,
    mfa_active: Option<usize>,
    keys: [Slot; 2],
    certs: [Slot; 2],
    names: Vec<String>,
}

/// One access key's or certificate's columns.
#[derive(Debug, Default, Clone)]
struct Slot {
    active: Option<usize>,
    rotated: Option<usize>,
    last_used: Option<usize>,
}

impl Columns {
    fn from_header(header: &csv::StringRecord) -> Result<Columns, ReadError> {
        let find = |name: &str| header.iter().position(|h| h.trim() == name);
        let need = |name: &str| {
            find(name).ok_or_else(|| {
                ReadError::Format(format!(
                    "this is not an AWS IAM credential report: it has no `{name}` column \
                     (its header: {})",
                    header.iter().take(8).collect::<Vec<_>>().join(",")
                ))
            })
        };
        let slot = |prefix: &str, n: u8| Slot {
            active: find(&format!("{prefix}_{n}_active")),
            rotated: find(&format!("{prefix}_{n}_last_rotated")),
            last_used: find(&format!("{prefix}_{n}_last_used_date")),
        };
        Ok(Columns {
            user: need("user")?,
            arn: need("arn")?,
            created: need("user_creation_time")?,
            password_enabled: find("password_enabled"),
            password_last_used: find("password_last_used"),
            password_last_changed: find("password_last_changed"),
            mfa_active: find("mfa_active"),
            keys: [slot("access_key", 1), slot("access_key", 2)],
            certs: [slot("cert", 1), slot("cert", 2)],
            names: header.iter().map(|h| h.trim().to_owned()).collect(),
        })
    }
}

/// The rows of one report, as accounts, in file order.
pub struct Report<R: Read> {
    csv: csv::Reader<R>,
    columns: Columns,
    record: csv::StringRecord,
    row: u64,
}

impl<R: Read> std::fmt::Debug for Report<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Report").field("row", &self.row).finish()
    }
}

/// Opens a report in either form: the CSV, or the JSON `get-credential-report` prints.
pub fn open<R: Read + Send + 'static>(
    source: R,
) -> Result<Report<Box<dyn Read + Send>>, ReadError> {
    let mut buffered = BufReader::with_capacity(256 * 1024, source);
    let first = buffered
        .fill_buf()?
        .iter()
        .copied()
        .find(|b| !b.is_ascii_whitespace());
    let input: Box<dyn Read + Send> = if first == Some(b'{') {
        Box::new(std::io::Cursor::new(decode_json(buffered)?))
    } else {
        Box::new(buffered)
    };
    Report::new(input)
}

/// The CSV inside `{"Content": "<base64>", ...}`.
fn decode_json(r: impl Read) -> Result<Vec<u8>, ReadError> {
    #[derive(serde::Deserialize)]
    struct Envelope {
        #[serde(rename = "Content")]
        content: String,
        #[serde(rename = "ReportFormat", default)]
        format: Option<String>,
    }
    let e: Envelope = serde_json::from_reader(r).map_err(|e| {
        ReadError::Format(format!(
            "this JSON is not the output of `aws iam get-credential-report` \
             (an object with a base64 `Content`): {e}"
        ))
    })?;
    if let Some(f) = e.format.filter(|f| f != "text/csv") {
        return Err(ReadError::Format(format!(
            "the report's format is `{f}`; aim reads `text/csv`"
        )));
    }
    let compact: String = e
        .content
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact)
        .map_err(|e| ReadError::Format(format!("the report's `Content` is not base64: {e}")))
}

impl<R: Read> Report<R> {
    /// Reads the header; the rows follow as the iterator is drawn.
    pub fn new(source: R) -> Result<Report<R>, ReadError> {
        let mut csv = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(false)
            .from_reader(source);
        let header = csv
            .headers()
            .map_err(|e| ReadError::Format(format!("reading the report's header: {e}")))?
            .clone();
        Ok(Report {
            csv,
            columns: Columns::from_header(&header)?,
            record: csv::StringRecord::new(),
            row: 1,
        })
    }

    /// The cell in column `i` of the current row ("" past its end).
    fn get(&self, i: usize) -> &str {
        self.record.get(i).unwrap_or("")
    }

    /// The named column's cell, if the report has the column.
    fn cell(&self, name: &str, i: Option<usize>) -> Option<(String, &str)> {
        i.map(|i| (name.to_owned(), self.get(i)))
    }

    fn account(&self) -> Result<Account, String> {
        let c = &self.columns;
        let user = self.get(c.user).trim().to_owned();
        let arn = self.get(c.arn).trim().to_owned();
        if user.is_empty() || arn.is_empty() {
            return Err("`user` and `arn` must not be empty".to_owned());
        }
        let root = user == ROOT;
        let created = values::optional_date(self.get(c.created))
            .map_err(|e| format!("column `user_creation_time`: {e}"))?;
        let password = column(
            self.cell("password_enabled", c.password_enabled),
            values::boolean,
        )?
        .unwrap_or(false);
        let credentials = self.credentials(password)?;
        let machine_credential = credentials
            .iter()
            .any(|c| c.active && c.kind != CredentialKind::ConsolePassword);
        let kind = if root {
            AccountKind::Root
        } else if password && !machine_credential {
            AccountKind::Human
        } else {
            AccountKind::ServiceUser
        };
        let mut attributes: std::collections::BTreeMap<String, serde_json::Value> = c
            .names
            .iter()
            .enumerate()
            .map(|(i, name)| (name.clone(), self.get(i).into()))
            .collect();
        if let Some(account) = arn.split(':').nth(4).filter(|a| !a.is_empty()) {
            attributes.insert("aws_account".to_owned(), account.into());
        }
        if let Some(i) = c.mfa_active {
            let mfa = values::boolean(self.get(i)).unwrap_or(false);
            attributes.insert("mfa_active".to_owned(), mfa.into());
        }
        Ok(Account {
            key: arn,
            name: if root { "root".to_owned() } else { user },
            kind,
            enabled: root || credentials.iter().any(|c| c.active),
            owner: None,
            purpose: None,
            vendor: None,
            environment: None,
            created,
            last_used: LastUse::Unknown,
            expires: None,
            credentials,
            permissions: Vec::new(),
            groups: Vec::new(),
            systems: Vec::new(),
            flags: Vec::new(),
            attributes,
        })
    }

    /// The console password (when enabled), each access key and each certificate the user
    /// has or had.
    fn credentials(&self, password: bool) -> Result<Vec<Credential>, String> {
        let c = &self.columns;
        let mut out = Vec::new();
        if password {
            out.push(Credential {
                id: "password".to_owned(),
                kind: CredentialKind::ConsolePassword,
                active: true,
                created: column(
                    self.cell("password_last_changed", c.password_last_changed),
                    values::optional_date,
                )?
                .flatten(),
                last_used: column(
                    self.cell("password_last_used", c.password_last_used),
                    values::last_use,
                )?
                .unwrap_or_default(),
                expires: None,
                rotates_itself: false,
                fingerprint: None,
            });
        }
        let slots = c
            .keys
            .iter()
            .map(|s| ("access_key", CredentialKind::AccessKey, s));
        let certs = c
            .certs
            .iter()
            .map(|s| ("cert", CredentialKind::Certificate, s));
        for (n, (prefix, kind, slot)) in slots.chain(certs).enumerate() {
            let id = format!("{prefix}_{}", n % 2 + 1);
            let active = column(
                self.cell(&format!("{id}_active"), slot.active),
                values::boolean,
            )?
            .unwrap_or(false);
            let rotated = column(
                self.cell(&format!("{id}_last_rotated"), slot.rotated),
                values::optional_date,
            )?
            .flatten();
            // No date and not active: the user never had this credential.
            if !active && rotated.is_none() {
                continue;
            }
            // A report from before AWS tracked key use has no such column: unknown, not
            // never. Certificates' use is never reported.
            let last_used = match (kind, slot.last_used) {
                (CredentialKind::AccessKey, Some(i)) => column(
                    self.cell(&format!("{id}_last_used_date"), Some(i)),
                    values::last_use,
                )?
                .unwrap_or_default(),
                _ => LastUse::Unknown,
            };
            out.push(Credential {
                id,
                kind,
                active,
                created: rotated,
                last_used,
                expires: None,
                rotates_itself: false,
                fingerprint: None,
            });
        }
        Ok(out)
    }
}

/// A column's value parsed, the column named in the error; `None` if the report lacks it.
fn column<T>(
    cell: Option<(String, &str)>,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<Option<T>, String> {
    cell.map(|(name, v)| parse(v).map_err(|e| format!("column `{name}`: {e}")))
        .transpose()
}

impl<R: Read> Iterator for Report<R> {
    type Item = Result<Account, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        match crate::values::next_row(&mut self.csv, &mut self.record, &mut self.row)? {
            Ok(at) => Some(self.account().map_err(|m| ReadError::record(at, m))),
            Err(e) => Some(Err(e)),
        }
    }
}
