//! The token and DPoP proof an agent presented to a gateway, checked for the gateway's
//! resource (RFC 8707 audience, RFC 9449 `htu`), and what a gateway says cleaned before it
//! goes on the record. Shared by the gateway and tools routes.

use aim_enforce::token::{Agent, Inactive, Presentation, UnspentProof};
use axum::http::StatusCode;

use crate::error::ApiError;
use crate::state::AppState;
use crate::tokens::check::Source;

/// `s` without control characters, at most `max` of them: what a gateway says goes on the
/// record, never a forged line.
pub(crate) fn clean(s: &str, max: usize) -> String {
    s.chars().filter(|c| !c.is_control()).take(max).collect()
}

/// The resource (one of `tokens.resources`) whose URL `url` is under: the token's audience
/// must be that resource.
fn resource_of<'a>(resources: &'a [String], url: &str) -> Option<&'a str> {
    resources
        .iter()
        .filter(|r| {
            let base = r.trim_end_matches('/');
            url.strip_prefix(base)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(['/', '?']))
        })
        .max_by_key(|r| r.len())
        .map(String::as_str)
}

/// The agent behind a token and proof presented to a gateway at `url`: the token checked
/// for the audience `url` is under (RFC 8707), the proof for `method` and `url` (not spent).
pub(crate) async fn presented(
    s: &AppState,
    token: &str,
    proof: Option<&str>,
    method: &str,
    url: &str,
) -> Result<(Agent, Option<UnspentProof>), ApiError> {
    let resources = &s.tokens.rules.resources;
    let Some(audience) = resource_of(resources, url) else {
        return Err(ApiError::bad_request(
            "unknown_resource",
            format!("{url:?} is not under any resource aim issues tokens for (tokens.resources)"),
        ));
    };
    let ring = s.tokens.keys.current();
    let presented = Presentation {
        token,
        proof,
        method,
        url,
    };
    match s
        .tokens
        .rules
        .check_request_for(
            audience,
            &Source::of(s),
            &ring.verifier,
            presented,
            s.clock.now(),
        )
        .await
    {
        Ok(checked) => Ok(checked),
        Err(Inactive::Source(e)) => Err(e.into()),
        Err(e) => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            e.code(),
            e.to_string(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::resource_of;

    #[test]
    fn a_url_belongs_to_the_longest_resource_it_is_under() {
        let resources = vec![
            "https://gw.example".to_owned(),
            "https://gw.example/mcp/".to_owned(),
        ];
        assert_eq!(
            resource_of(&resources, "https://gw.example/crm/1"),
            Some("https://gw.example")
        );
        assert_eq!(
            resource_of(&resources, "https://gw.example/mcp/crm"),
            Some("https://gw.example/mcp/")
        );
        assert_eq!(resource_of(&resources, "https://gw.example.evil/x"), None);
        assert_eq!(resource_of(&resources, "https://gw.exampleX"), None);
        assert_eq!(
            resource_of(&resources, "https://gw.example"),
            Some("https://gw.example")
        );
    }
}
