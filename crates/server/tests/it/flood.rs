//! Abuse cannot exhaust aim: a flood of refused requests from one source costs a few audit
//! records (every refusal still counted in them), an oversized body is 413 on every route,
//! and a client that sends its headers slowly is cut off.

use std::time::Duration;

use aim_testkit::TestServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn a_flood_of_refusals_is_counted_not_written_one_by_one() {
    for backend in aim_testkit::Backend::enabled() {
        eprintln!("backend: {backend:?}");
        let s = TestServer::start_with(backend, |c| {
            c.limits.refusals_per_window = 5;
            c.limits.refusal_window_seconds = 1;
        })
        .await;
        let before = crate::fixtures::event_count(&s).await;
        let http = reqwest::Client::new();
        let flood = 300;
        for _ in 0..flood {
            let r = http
                .get(format!("{}/v1/identities", s.base))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 401);
        }
        // The window ends; the next refusal (or the flusher) writes its summary.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let r = http
            .get(format!("{}/v1/identities", s.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        let events = s.db.store.events(0, 100_000).await.unwrap();
        let refusals: Vec<_> = events
            .iter()
            .filter(|e| e.action.as_str() == "request.refused")
            .collect();
        let written = crate::fixtures::event_count(&s).await - before;
        assert!(
            written <= 12,
            "{written} records for {} refusals",
            flood + 1
        );
        let counted: u64 = refusals
            .iter()
            .map(|e| e.detail["count"].as_u64().unwrap_or(1))
            .sum();
        assert_eq!(counted, flood + 1, "every refusal is counted on the record");
        let summary = refusals
            .iter()
            .find(|e| e.detail["count"].is_u64())
            .unwrap();
        assert_eq!(summary.detail["codes"]["unauthenticated"], flood - 5);
        s.stop().await;
    }
}

#[tokio::test]
async fn an_oversized_body_is_413_on_the_token_endpoint_too() {
    let s = TestServer::start_with(aim_testkit::Backend::Sqlite, |c| {
        c.body_limit_bytes = 1024;
    })
    .await;
    let big = "x".repeat(4096);
    let r = reqwest::Client::new()
        .post(format!("{}/oauth/token", s.base))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_assertion", &big),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["code"], "body_too_large");
    s.stop().await;
}

#[tokio::test]
async fn a_client_that_sends_headers_slowly_is_cut_off() {
    let s = TestServer::start_with(aim_testkit::Backend::Sqlite, |c| {
        c.limits.header_timeout_seconds = 1;
    })
    .await;
    let addr = s.base.trim_start_matches("http://").to_owned();
    let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
    conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // ... and never finishes its headers. The server closes the connection.
    let mut buf = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), conn.read_to_end(&mut buf)).await;
    assert!(closed.is_ok(), "the connection was held open");
    // A well-behaved client is still served.
    let r = reqwest::get(format!("{}/healthz", s.base)).await.unwrap();
    assert!(r.status().is_success());
    s.stop().await;
}
