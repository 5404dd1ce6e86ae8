//! Checks on user-supplied strings: lengths, character sets, no control characters (so a
//! value can never forge a line in a log, a table or an export).

use crate::error::Refusal;

fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

/// Required free text: trimmed, 1..=max characters, no control characters.
pub fn text(field: &str, value: &str, max: usize) -> Result<String, Refusal> {
    let v = value.trim();
    if v.is_empty() {
        return Err(Refusal::Validation(format!("`{field}` must not be empty")));
    }
    if v.chars().count() > max {
        return Err(Refusal::Validation(format!(
            "`{field}` is longer than {max} characters"
        )));
    }
    if has_control(v) {
        return Err(Refusal::Validation(format!(
            "`{field}` contains control characters"
        )));
    }
    Ok(v.to_owned())
}

/// Optional free text; an empty string counts as absent.
pub fn optional_text(
    field: &str,
    value: Option<String>,
    max: usize,
) -> Result<Option<String>, Refusal> {
    match value {
        None => Ok(None),
        Some(v) if v.trim().is_empty() => Ok(None),
        Some(v) => text(field, &v, max).map(Some),
    }
}

/// A token-like value: 1..=max of `[A-Za-z0-9._:/@+-]`.
pub fn token(field: &str, value: &str, max: usize) -> Result<String, Refusal> {
    let ok = !value.is_empty()
        && value.len() <= max
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._:/@+-".contains(c));
    if !ok {
        return Err(Refusal::Validation(format!(
            "`{field}` value `{}` must be 1 to {max} characters of letters, digits and ._:/@+-",
            value
                .chars()
                .take(64)
                .filter(|c| !c.is_control())
                .collect::<String>()
        )));
    }
    Ok(value.to_owned())
}

/// A user name: 1..=256 characters, no whitespace or control characters.
pub fn user_name(value: &str) -> Result<String, Refusal> {
    let v = value.trim();
    if v.is_empty()
        || v.chars().count() > 256
        || v.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(Refusal::Validation(
            "`user_name` must be 1 to 256 characters without spaces or control characters"
                .to_owned(),
        ));
    }
    Ok(v.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_refused() {
        assert!(text("purpose", "ok\u{1b}[31m", 100).is_err());
        assert!(text("purpose", "line\nbreak", 100).is_err());
        assert_eq!(text("purpose", "  fine  ", 100).unwrap(), "fine");
        assert!(text("purpose", "   ", 100).is_err());
        assert!(text("purpose", &"x".repeat(101), 100).is_err());
    }

    #[test]
    fn tokens() {
        assert!(token("system", "crm.prod", 64).is_ok());
        assert!(token("system", "crm prod", 64).is_err());
        assert!(token("system", "", 64).is_err());
    }

    #[test]
    fn user_names() {
        assert_eq!(
            user_name(" alice@example.com ").unwrap(),
            "alice@example.com"
        );
        assert!(user_name("alice smith").is_err());
        assert!(user_name("").is_err());
    }
}
