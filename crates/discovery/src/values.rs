//! The values sources write for dates, booleans and "nothing": each importer's sentinels
//! (`N/A`, `no_information`, `not_supported`) and date forms read one way everywhere.

use aim_domain::discovery::LastUse;
use aim_domain::time::Timestamp;

/// Words sources write for "no value here".
const NOTHING: &[&str] = &["", "N/A", "n/a", "not_supported", "-", "null", "none"];

/// The value, or `None` for a sentinel meaning "no value".
pub fn present(v: &str) -> Option<&str> {
    let v = v.trim();
    (!NOTHING.contains(&v) && v != "no_information").then_some(v)
}

/// A date: RFC 3339 (`2026-01-02T03:04:05+00:00`, `...Z`) or a bare day (`2026-01-02`,
/// midnight UTC).
pub fn date(v: &str) -> Result<Timestamp, String> {
    let v = v.trim();
    if let Ok(t) = Timestamp::parse(v) {
        return Ok(t);
    }
    if v.len() == 10
        && let Ok(t) = Timestamp::parse(&format!("{v}T00:00:00Z"))
    {
        return Ok(t);
    }
    Err(format!(
        "`{}` is not a date (RFC 3339 or YYYY-MM-DD)",
        v.chars().take(64).collect::<String>()
    ))
}

/// An optional date: a sentinel is `None`.
pub fn optional_date(v: &str) -> Result<Option<Timestamp>, String> {
    present(v).map(date).transpose()
}

/// A last-use column: a date, `N/A` for never (the AWS credential report's word for a key or
/// password never used), `no_information` for unknown.
pub fn last_use(v: &str) -> Result<LastUse, String> {
    match v.trim() {
        "no_information" | "not_supported" => Ok(LastUse::Unknown),
        "N/A" | "n/a" | "never" | "" => Ok(LastUse::Never),
        t => date(t).map(LastUse::At),
    }
}

/// A boolean as sources spell it.
pub fn boolean(v: &str) -> Result<bool, String> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "y" | "1" | "enabled" | "active" => Ok(true),
        "false" | "no" | "n" | "0" | "disabled" | "inactive" | "" | "n/a" | "not_supported" => {
            Ok(false)
        }
        other => Err(format!(
            "`{}` is not a boolean (true/false, yes/no, 1/0)",
            other.chars().take(64).collect::<String>()
        )),
    }
}

/// Reads the next CSV row into `record`: `None` at the end, else where it is (`row 12`, the
/// header being row 1), or why it could not be read.
pub(crate) fn next_row<R: std::io::Read>(
    csv: &mut csv::Reader<R>,
    record: &mut csv::StringRecord,
    row: &mut u64,
) -> Option<Result<String, crate::ReadError>> {
    *row += 1;
    let at = format!("row {row}");
    match csv.read_record(record) {
        Ok(false) => None,
        Ok(true) => Some(Ok(at)),
        Err(e) => Some(Err(crate::ReadError::record(at, e.to_string()))),
    }
}
