//! TLS everywhere, with a CA made in the test: aim serves HTTPS (and picks up a renewed
//! certificate), fetches a federation JWKS and delivers its webhook over HTTPS trusting
//! only the CA it was given, and refuses plain-HTTP outbound URLs to other hosts.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aim_server::serve::{CertFiles, ConnectionLimits, serve};
use aim_testkit::TestServer;
use aim_testkit::pki::Pki;
use serde_json::{Value, json};

/// `router` served over HTTPS on loopback with `pki`'s certificate; its base URL.
async fn https(router: axum::Router, pki: &Pki) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let files = CertFiles::load(&pki.cert_file, &pki.key_file).unwrap();
    let limits = ConnectionLimits {
        max_connections: 64,
        header_timeout: Duration::from_secs(5),
    };
    tokio::spawn(serve(
        listener,
        router,
        Some(files),
        limits,
        std::future::pending(),
    ));
    format!("https://{addr}")
}

#[tokio::test]
async fn aim_serves_https_to_clients_that_trust_its_ca() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    for backend in aim_testkit::Backend::enabled() {
        eprintln!("backend: {backend:?}");
        let s = TestServer::start_tls(backend, pki.ca_pem.as_bytes(), |c| {
            c.tls.cert_file = Some(pki.cert_file.clone());
            c.tls.key_file = Some(pki.key_file.clone());
        })
        .await;
        assert!(s.base.starts_with("https://"), "{}", s.base);
        assert_eq!(s.admin.ready().await.unwrap().status, "ready");
        let meta = s.admin.authorization_server().await.unwrap();
        assert!(meta.issuer.starts_with("https://"), "{meta:?}");
        // A client that does not trust the CA gets nowhere; nor does plain HTTP.
        assert!(reqwest::get(format!("{}/healthz", s.base)).await.is_err());
        let plain = s.base.replacen("https://", "http://", 1);
        let plain_ok = reqwest::get(format!("{plain}/healthz"))
            .await
            .is_ok_and(|r| r.status().is_success());
        assert!(!plain_ok, "no plain HTTP on the HTTPS port");
        s.stop().await;
    }
}

#[tokio::test]
async fn a_renewed_certificate_is_picked_up_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let files = CertFiles::load(&pki.cert_file, &pki.key_file).unwrap();
    assert!(!files.reload_if_changed().unwrap(), "nothing changed yet");
    std::thread::sleep(Duration::from_millis(20));
    // A half-written renewal (the key not yet there) leaves the old pair in use.
    std::fs::write(&pki.key_file, "-----BEGIN PRIVATE KEY-----\n").unwrap();
    assert!(files.reload_if_changed().is_err());
    pki.issue_server();
    assert!(files.reload_if_changed().unwrap());
}

/// A JWKS with one Ed25519 key, `k1`.
fn jwks() -> Value {
    json!({ "keys": [{ "kty": "OKP", "crv": "Ed25519", "kid": "k1", "alg": "EdDSA",
        "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo" }] })
}

/// A workload token naming `k1` with a signature that does not verify: with the keys
/// fetched the answer is `bad_signature`; without them, `issuer_keys_unavailable`.
fn forged(issuer: &str) -> String {
    use base64::Engine;
    let b64 = |v: Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string().as_bytes())
    };
    format!(
        "{}.{}.{}",
        b64(json!({ "alg": "EdDSA", "kid": "k1" })),
        b64(json!({ "iss": issuer, "sub": "w", "aud": "aim", "exp": 4_000_000_000_i64 })),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([7u8; 64])
    )
}

/// A trusted issuer `iss` whose JWKS is at `jwks_url`, trusting only `ca_file` if given.
fn issuer(
    iss: &str,
    jwks_url: &str,
    ca_file: Option<std::path::PathBuf>,
) -> aim_server::config::FederationConfig {
    aim_server::config::FederationConfig {
        issuer: iss.into(),
        jwks_url: jwks_url.into(),
        audience: "aim".into(),
        claim: "sub".into(),
        identities: Default::default(),
        refetch_seconds: 0,
        ca_file,
    }
}

/// Trades a forged workload token of `iss` at the token endpoint; the refusal's code.
async fn trade_forged(s: &TestServer, iss: &str) -> String {
    let r = s
        .client(None)
        .oauth_token(
            &[
                ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                ("assertion", forged(iss).as_str()),
                ("task_id", "01a22b40-0000-7000-8000-000000000000"),
            ],
            None,
        )
        .await;
    crate::fixtures::code(r)
}

#[tokio::test]
async fn federation_fetches_its_jwks_over_https_trusting_only_the_pinned_ca() {
    const ISSUER: &str = "https://cluster.example";
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let router =
        axum::Router::new().route("/jwks", axum::routing::get(|| async { axum::Json(jwks()) }));
    let jwks_url = format!("{}/jwks", https(router, &pki).await);
    for (pinned, expected) in [(true, "bad_signature"), (false, "issuer_keys_unavailable")] {
        for backend in aim_testkit::Backend::enabled() {
            let s = TestServer::start_with(backend, |c| {
                c.tokens.federation = vec![issuer(
                    ISSUER,
                    &jwks_url,
                    pinned.then(|| pki.ca_file.clone()),
                )];
            })
            .await;
            assert_eq!(trade_forged(&s, ISSUER).await, expected, "pinned: {pinned}");
            s.stop().await;
        }
    }
}

#[tokio::test]
async fn plain_http_outbound_to_another_host_is_refused_at_start() {
    let mut config = aim_server::Config::default();
    config.approvals.webhook_url = Some("http://chatops.example/aim".into());
    config.approvals.webhook_secret = Some("whsec_MDEyMzQ1Njc4OWFiY2RlZg==".into());
    let e = config.check().unwrap_err();
    assert!(e.to_string().contains("allow_insecure_http"), "{e}");
    config.tls.allow_insecure_http = true;
    config.check().unwrap();
    config.tls.allow_insecure_http = false;
    config.approvals.webhook_url = Some("http://127.0.0.1:9/aim".into());
    config.check().unwrap();
}

/// The approval webhook is delivered over HTTPS to a receiver whose CA aim was given.
#[tokio::test]
async fn approval_webhook_goes_over_https_to_a_pinned_ca() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let got: Arc<Mutex<Vec<String>>> = Arc::default();
    let keep = got.clone();
    let router = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: String| {
            let keep = keep.clone();
            async move {
                keep.lock().unwrap().push(body);
                "ok"
            }
        }),
    );
    let url = format!("{}/hook", https(router, &pki).await);
    for backend in aim_testkit::Backend::enabled() {
        let s = TestServer::start_with(backend, |c| {
            c.approvals.webhook_url = Some(url.clone());
            c.approvals.webhook_secret =
                Some("whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=".into());
            c.approvals.webhook_ca_file = Some(pki.ca_file.clone());
        })
        .await;
        let before = got.lock().unwrap().len();
        crate::tokens::ask_for_an_approval(&s).await;
        aim_testkit::eventually("the webhook is delivered over HTTPS", || async {
            (got.lock().unwrap().len() > before).then_some(())
        })
        .await;
        let bodies = got.lock().unwrap().clone();
        assert!(bodies.len() > before, "delivered over HTTPS");
        assert!(bodies.last().unwrap().contains("approval.requested"));
        s.stop().await;
    }
}

/// An issuer whose JWKS endpoint answers with megabytes, or fails: aim reads at most 64 KiB,
/// and after a failure does not fetch again for a while, however many tokens arrive.
#[tokio::test]
async fn a_hostile_jwks_is_capped_and_failures_back_off() {
    const ISSUER: &str = "https://hostile.example";
    let fetches = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = fetches.clone();
    let router = axum::Router::new().route(
        "/jwks",
        axum::routing::get(move || {
            seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            // A valid JWKS holding `k1`, padded to a megabyte: read whole, it would verify
            // the forged token's key and answer `bad_signature`.
            let mut big = jwks();
            big["pad"] = json!("x".repeat(1 << 20));
            async move { axum::Json(big) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let jwks_url = format!("http://{}/jwks", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    let s = TestServer::start_with(aim_testkit::Backend::Sqlite, |c| {
        c.tokens.federation = vec![issuer(ISSUER, &jwks_url, None)];
    })
    .await;
    for _ in 0..20 {
        assert_eq!(trade_forged(&s, ISSUER).await, "issuer_keys_unavailable");
    }
    assert_eq!(
        fetches.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "one failed fetch, then a back-off"
    );
    s.stop().await;
}
