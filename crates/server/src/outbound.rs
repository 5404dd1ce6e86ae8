//! aim's outbound HTTP (federation JWKS, the approval webhook, the webhook sink): rustls,
//! an optional pinned CA per destination, and the rule that a non-loopback `http://` URL
//! is refused at start unless the operator opted in (`[tls] allow_insecure_http`): a JWKS
//! fetched over plain HTTP is a root of trust anyone on the path can replace.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;

/// A client for one destination. With `ca_file`, only that CA (PEM, one or more
/// certificates) is trusted for it; without, the platform's roots are.
pub fn client(ca_file: Option<&Path>, timeout: Duration) -> anyhow::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        // A redirect could lead a JWKS fetch to plain HTTP or elsewhere.
        .redirect(reqwest::redirect::Policy::none());
    if let Some(path) = ca_file {
        let pem =
            std::fs::read(path).with_context(|| format!("reading the CA {}", path.display()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .with_context(|| format!("parsing the CA {}", path.display()))?;
        anyhow::ensure!(
            !certs.is_empty(),
            "{} holds no PEM certificate",
            path.display()
        );
        builder = builder.tls_certs_only(certs);
    }
    builder.build().context("building an HTTPS client")
}

/// Refuses `url` (for `what`) if it is plain HTTP to anything but loopback, unless allowed.
pub fn check_url(what: &str, url: &str, allow_insecure_http: bool) -> anyhow::Result<()> {
    let parsed: reqwest::Url = url
        .parse()
        .with_context(|| format!("{what}: `{url}` is not a URL"))?;
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if allow_insecure_http || is_loopback(&parsed) => Ok(()),
        "http" => anyhow::bail!(
            "{what}: `{url}` is plain HTTP to another host; use https:// (with a pinned `ca_file` if the CA is private), or set `[tls] allow_insecure_http = true` to accept the risk"
        ),
        other => anyhow::bail!("{what}: `{url}` has the scheme `{other}`; use https://"),
    }
}

fn is_loopback(url: &reqwest::Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => host.eq_ignore_ascii_case("localhost"),
    }
}

/// Reads a response body of at most `max` bytes; a larger one is an error, so a hostile or
/// broken endpoint cannot make aim buffer without bound.
pub async fn body_capped(mut resp: reqwest::Response, max: usize) -> anyhow::Result<Vec<u8>> {
    if resp.content_length().is_some_and(|n| n > max as u64) {
        anyhow::bail!("the answer is larger than {max} bytes");
    }
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        if out.len() + chunk.len() > max {
            anyhow::bail!("the answer is larger than {max} bytes");
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_to_loopback_unless_allowed() {
        assert!(check_url("jwks", "https://k8s.internal/jwks", false).is_ok());
        assert!(check_url("jwks", "http://127.0.0.1:8080/jwks", false).is_ok());
        assert!(check_url("jwks", "http://[::1]/jwks", false).is_ok());
        assert!(check_url("jwks", "http://localhost/jwks", false).is_ok());
        let e = check_url("jwks", "http://k8s.internal/jwks", false).unwrap_err();
        assert!(e.to_string().contains("allow_insecure_http"), "{e}");
        assert!(check_url("jwks", "http://k8s.internal/jwks", true).is_ok());
        assert!(check_url("jwks", "ftp://k8s.internal/jwks", true).is_err());
        assert!(check_url("jwks", "not a url", true).is_err());
    }
}
