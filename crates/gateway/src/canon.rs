//! A request path checked once, before anything decides on it or forwards it. aim does
//! not rewrite a path into a "canonical" one (a rewrite is a second interpretation the
//! upstream may not share); it refuses every path two parsers could read differently, so
//! the bytes it decides on are the bytes it forwards, and the upstream reads the same
//! segments the route matched:
//!
//! * `.` and `..` segments, and empty ones (`//`) inside the path;
//! * a percent-encoded unreserved character (`%2E`, `%41`: should be literal), an encoded
//!   `/` or `\`, a control character, lower-case hex digits, a `%` not followed by two
//!   hex digits;
//! * anything outside ASCII once decoded (Unicode lookalikes: `／`, `ｃrm`, `%C0%AE`);
//! * `;` (matrix parameters, read as a separator by some servers and not by others) and
//!   `\`.
//!
//! Letter case is checked where it matters, against the route's template
//! ([`crate::route`]).

/// Why a path was refused; the code is `non_canonical_path`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the path is not canonical: {0}")]
pub struct NotCanonical(pub &'static str);

/// A path that passed: the segments as the upstream will decode them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    pub segments: Vec<String>,
}

/// Checks `raw` (the request target's path, as received) and decodes its segments.
pub fn path(raw: &str) -> Result<Path, NotCanonical> {
    let Some(rest) = raw.strip_prefix('/') else {
        return Err(NotCanonical("it does not start with `/`"));
    };
    if rest.is_empty() {
        return Ok(Path {
            segments: Vec::new(),
        });
    }
    let parts: Vec<&str> = rest.split('/').collect();
    let last = parts.len() - 1;
    let mut segments = Vec::with_capacity(parts.len());
    for (i, part) in parts.iter().enumerate() {
        if part.is_empty() && i != last {
            return Err(NotCanonical("it has an empty segment (`//`)"));
        }
        if *part == "." || *part == ".." {
            return Err(NotCanonical("it has a `.` or `..` segment"));
        }
        segments.push(segment(part)?);
    }
    Ok(Path { segments })
}

/// One segment decoded, refused if two readers could disagree about it.
pub fn segment(raw: &str) -> Result<String, NotCanonical> {
    let bytes = raw.as_bytes();
    let mut out = String::with_capacity(raw.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let (Some(hi), Some(lo)) = (bytes.get(i + 1), bytes.get(i + 2)) else {
                return Err(NotCanonical("a `%` is not followed by two hex digits"));
            };
            let (Some(h), Some(l)) = (upper_hex(*hi), upper_hex(*lo)) else {
                return Err(NotCanonical(
                    "a `%` is not followed by two upper-case hex digits",
                ));
            };
            let decoded = h * 16 + l;
            if unreserved(decoded) {
                return Err(NotCanonical(
                    "an unreserved character is percent-encoded (`%2E`, `%41`)",
                ));
            }
            match decoded {
                b'/' | b'\\' => return Err(NotCanonical("it encodes `/` or `\\`")),
                0x00..=0x1f | 0x7f => return Err(NotCanonical("it encodes a control character")),
                0x80..=0xff => {
                    return Err(NotCanonical(
                        "it encodes a character outside ASCII (lookalikes are refused)",
                    ));
                }
                _ => out.push(char::from(decoded)),
            }
            i += 3;
            continue;
        }
        if !(unreserved(b) || b"!$&'()*+,=:@".contains(&b)) {
            return Err(NotCanonical(
                "it holds a character a path may not hold literally (`;`, `\\`, space, non-ASCII...)",
            ));
        }
        out.push(char::from(b));
        i += 1;
    }
    Ok(out)
}

fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn upper_hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(raw: &str) -> Vec<String> {
        path(raw).unwrap_or_else(|e| panic!("{raw}: {e}")).segments
    }

    #[test]
    fn plain_paths_pass_and_decode() {
        assert_eq!(ok("/"), Vec::<String>::new());
        assert_eq!(ok("/crm/records/42"), ["crm", "records", "42"]);
        assert_eq!(ok("/crm/records/"), ["crm", "records", ""]);
        assert_eq!(ok("/a%20b/c:d@e"), ["a b", "c:d@e"]);
        assert_eq!(ok("/x%3Fy"), ["x?y"]);
    }

    #[test]
    fn every_ambiguous_path_is_refused() {
        for raw in [
            "crm",
            "/crm//records",
            "/crm/../admin",
            "/crm/./records",
            "/crm/%2E%2E/admin",
            "/crm/%2e%2e/admin",
            "/crm/%2Frecords",
            "/crm%5Cadmin",
            "/crm/%41",
            "/crm/%3f",
            "/crm/%",
            "/crm/%4",
            "/crm/%GG",
            "/crm/%00",
            "/crm/%C0%AE%C0%AE/admin",
            "/%EF%BC%8Fadmin",
            "/crm;jsessionid=1/records",
            "/crm\\admin",
            "/crm/ab\u{ff0f}cd",
            "/\u{0441}rm/records",
        ] {
            assert!(path(raw).is_err(), "{raw} passed");
        }
    }
}
