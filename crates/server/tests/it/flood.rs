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

/// A TCP forwarder to PostgreSQL that can be cut: every connection through it dropped, and
/// new ones refused, as when the database host goes away.
async fn cuttable_proxy(
    target: std::net::SocketAddr,
) -> (u16, std::sync::Arc<tokio::sync::Notify>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let cut = std::sync::Arc::new(tokio::sync::Notify::new());
    let on_cut = cut.clone();
    tokio::spawn(async move {
        let mut conns = tokio::task::JoinSet::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok((mut inbound, _)) = accepted else { continue };
                    conns.spawn(async move {
                        let mut out = tokio::net::TcpStream::connect(target).await?;
                        tokio::io::copy_bidirectional(&mut inbound, &mut out).await
                    });
                }
                () = on_cut.notified() => {
                    conns.abort_all();
                    return;
                }
            }
        }
    });
    (port, cut)
}

/// PostgreSQL goes away: a request waits at most `database_wait_ms` for a connection and
/// is answered 503 `store_unavailable`, nothing changed, instead of queueing.
#[tokio::test]
async fn with_the_database_gone_a_request_fails_fast() {
    if !aim_testkit::Backend::enabled().contains(&aim_testkit::Backend::Postgres) {
        return;
    }
    let t = aim_testkit::TestStore::new(aim_testkit::Backend::Postgres).await;
    let (url, schema) = t.pg_schema().unwrap();
    // postgres://user@host:port/db: the same database and schema, through the proxy.
    let (head, rest) = url.split_once('@').unwrap();
    let (host, db) = rest.split_once('/').unwrap();
    let (port, cut) = cuttable_proxy(host.parse().unwrap()).await;
    let through = format!("{head}@127.0.0.1:{port}/{db}?options=-c%20search_path%3D{schema}");
    let wait = Duration::from_millis(500);
    let store = aim_store::postgres::PgStore::connect_url_waiting(&through, wait)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = aim_server::Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.path().to_path_buf(),
        sweep_interval_seconds: 0,
        checkpoint_interval_seconds: 0,
        ..aim_server::Config::default()
    };
    let clock = std::sync::Arc::new(aim_domain::time::SystemClock);
    let (server, startup) = aim_server::Server::prepare_with_store(
        &config,
        std::sync::Arc::new(store),
        "pg".into(),
        clock,
    )
    .await
    .unwrap();
    let token = startup.bootstrap.unwrap().secret;
    tokio::spawn(server.run(std::future::pending()));
    let admin = aim_client::Client::new(&format!("http://{}", startup.addr), Some(token));
    admin.identities(&Vec::new()).await.unwrap();

    cut.notify_one();
    let started = std::time::Instant::now();
    let e = admin.identities(&Vec::new()).await.unwrap_err();
    let took = started.elapsed();
    assert_eq!(
        (e.status(), e.code()),
        (Some(503), Some("store_unavailable"))
    );
    // Bounded by the wait (with room for a loaded machine), not by the old 5 s.
    assert!(took < Duration::from_secs(3), "answered after {took:?}");
    t.cleanup().await;
}
