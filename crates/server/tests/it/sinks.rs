//! Audit sinks against real receivers on loopback: a syslog collector over TCP and a
//! webhook. Every record arrives exactly once and in order, also after the receivers were
//! down for a while.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aim_domain::human::NewHuman;
use aim_server::config::{SinkConfig, SinkFormat, Transport};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

type Seen = Arc<Mutex<Vec<i64>>>;

/// A syslog collector: reads octet-counted RFC 5424 frames and records each `seq`. Its
/// connections live in a `JoinSet` owned by this task, so aborting the task closes them all.
async fn syslog_receiver(listener: TcpListener, seen: Seen) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let Ok((mut socket, _)) = listener.accept().await else {
            return;
        };
        let seen = seen.clone();
        connections.spawn(async move {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            loop {
                let Ok(n) = socket.read(&mut chunk).await else {
                    return;
                };
                if n == 0 {
                    return;
                }
                buf.extend_from_slice(&chunk[..n]);
                // Frames: "<len> <message>".
                while let Some(sp) = buf.iter().position(|b| *b == b' ') {
                    let len: usize = std::str::from_utf8(&buf[..sp]).unwrap().parse().unwrap();
                    if buf.len() < sp + 1 + len {
                        break;
                    }
                    let msg = String::from_utf8(buf[sp + 1..sp + 1 + len].to_vec()).unwrap();
                    buf.drain(..sp + 1 + len);
                    assert!(msg.starts_with('<') && msg.contains(" aim "), "{msg}");
                    let seq = msg
                        .split("seq=\"")
                        .nth(1)
                        .unwrap()
                        .split('"')
                        .next()
                        .unwrap()
                        .parse()
                        .unwrap();
                    seen.lock().unwrap().push(seq);
                }
            }
        });
    }
}

/// The audit webhook's signing secret (24 bytes, base64).
const HOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// Checks a Standard Webhooks signature as a receiver would, from the spec: HMAC-SHA256
/// over `<id>.<timestamp>.<body>` with the secret's bytes, base64, after `v1,`.
fn signed_by_hook_secret(headers: &axum::http::HeaderMap, body: &[u8]) -> bool {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let h = |k: &str| {
        headers
            .get(k)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let key = b64
        .decode(HOOK_SECRET.trim_start_matches("whsec_"))
        .unwrap();
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &key);
    let mut message = format!("{}.{}.", h("webhook-id"), h("webhook-timestamp")).into_bytes();
    message.extend_from_slice(body);
    let expected = format!("v1,{}", b64.encode(aws_lc_rs::hmac::sign(&key, &message)));
    !h("webhook-id").is_empty() && h("webhook-signature").split(' ').any(|s| s == expected)
}

/// A webhook receiver: records the `seq` of every record of every batch while `up`, and
/// answers 503 (recording nothing) while down; a batch without a valid signature is
/// refused (401) and recorded nowhere.
async fn webhook_receiver(
    listener: TcpListener,
    seen: Seen,
    up: Arc<std::sync::atomic::AtomicBool>,
) {
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let (seen, up) = (seen.clone(), up.clone());
                async move {
                    if !up.load(std::sync::atomic::Ordering::SeqCst) {
                        return axum::http::StatusCode::SERVICE_UNAVAILABLE;
                    }
                    if !signed_by_hook_secret(&headers, &body) {
                        return axum::http::StatusCode::UNAUTHORIZED;
                    }
                    let batch: Vec<serde_json::Value> = serde_json::from_slice(&body).unwrap();
                    seen.lock()
                        .unwrap()
                        .extend(batch.iter().map(|e| e["seq"].as_i64().unwrap()));
                    axum::http::StatusCode::OK
                }
            },
        ),
    );
    let _ = axum::serve(listener, app).await;
}

async fn wait_for(seen: &Seen, upto: i64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while seen.lock().unwrap().last().copied().unwrap_or(0) < upto {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for record {upto}: {:?}",
            seen.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn exactly_once_in_order(seen: &Seen, upto: i64) {
    let seen = seen.lock().unwrap().clone();
    let mut counts = BTreeMap::new();
    for s in &seen {
        *counts.entry(*s).or_insert(0) += 1;
    }
    assert!(counts.values().all(|c| *c == 1), "duplicates: {counts:?}");
    assert_eq!(
        seen,
        (1..=upto).collect::<Vec<_>>(),
        "every record, in order"
    );
}

async fn add_humans(s: &aim_testkit::TestServer, prefix: &str, n: usize) {
    for i in 0..n {
        let new = NewHuman {
            user_name: format!("{prefix}{i}@example.com"),
            display_name: None,
            email: None,
            external_id: None,
            roles: vec![],
            groups: Vec::new(),
        };
        s.admin.create_human(&new).await.unwrap();
    }
}

#[tokio::test]
async fn syslog_and_webhook_get_every_record_once_in_order_across_an_outage() {
    for backend in aim_testkit::Backend::enabled() {
        eprintln!("backend: {backend:?}");
        let syslog = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let hook = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (syslog_addr, hook_addr) = (syslog.local_addr().unwrap(), hook.local_addr().unwrap());
        let (syslog_seen, hook_seen): (Seen, Seen) = Default::default();
        let hook_up = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let mut syslog_task: JoinHandle<()> =
            tokio::spawn(syslog_receiver(syslog, syslog_seen.clone()));
        let hook_task = tokio::spawn(webhook_receiver(hook, hook_seen.clone(), hook_up.clone()));
        let s = aim_testkit::TestServer::start_with(backend, |c| {
            c.audit_sinks = vec![
                SinkConfig::Syslog {
                    name: "siem".into(),
                    address: syslog_addr.to_string(),
                    transport: Transport::Tcp,
                    format: SinkFormat::Jsonl,
                },
                SinkConfig::Webhook {
                    name: "hook".into(),
                    url: format!("http://{hook_addr}/hook"),
                    secret: HOOK_SECRET.into(),
                    ca_file: None,
                },
            ];
        })
        .await;
        add_humans(&s, "before", 5).await;
        let head = s.admin.audit_head().await.unwrap().seq;
        wait_for(&syslog_seen, head).await;
        wait_for(&hook_seen, head).await;

        // Both receivers go down (the collector's socket closed, the webhook answering 503);
        // records keep coming and none gets through.
        syslog_task.abort();
        let _ = syslog_task.await;
        hook_up.store(false, std::sync::atomic::Ordering::SeqCst);
        let before = head;
        add_humans(&s, "during", 10).await;
        tokio::time::sleep(Duration::from_millis(800)).await;
        assert_eq!(
            syslog_seen.lock().unwrap().len() as i64,
            before,
            "the collector was really down"
        );
        assert_eq!(
            hook_seen.lock().unwrap().len() as i64,
            before,
            "the webhook was really down"
        );

        // They come back and catch up.
        let syslog = TcpListener::bind(syslog_addr).await.unwrap();
        syslog_task = tokio::spawn(syslog_receiver(syslog, syslog_seen.clone()));
        hook_up.store(true, std::sync::atomic::Ordering::SeqCst);
        add_humans(&s, "after", 5).await;
        let head = s.admin.audit_head().await.unwrap().seq;
        wait_for(&syslog_seen, head).await;
        wait_for(&hook_seen, head).await;
        exactly_once_in_order(&syslog_seen, head);
        exactly_once_in_order(&hook_seen, head);
        syslog_task.abort();
        hook_task.abort();
        s.stop().await;
    }
}

/// A file sink: every record appended, one line each, in order.
#[tokio::test]
async fn a_file_sink_gets_every_record_in_order() {
    for backend in aim_testkit::Backend::enabled() {
        let out = tempfile::tempdir().unwrap();
        let path = out.path().join("audit.cef");
        let p = path.clone();
        let s = aim_testkit::TestServer::start_with(backend, move |c| {
            c.audit_sinks = vec![SinkConfig::File {
                name: "local".into(),
                path: p,
                format: SinkFormat::Cef,
            }];
        })
        .await;
        add_humans(&s, "file", 3).await;
        let head = s.admin.audit_head().await.unwrap().seq;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            if text.lines().count() as i64 >= head {
                let seqs: Vec<i64> = text
                    .lines()
                    .map(|l| {
                        l.split("externalId=")
                            .nth(1)
                            .unwrap()
                            .split(' ')
                            .next()
                            .unwrap()
                            .parse()
                            .unwrap()
                    })
                    .collect();
                assert_eq!(seqs, (1..=head).collect::<Vec<_>>());
                assert!(text.lines().all(|l| l.starts_with("CEF:0|aim|aim|")));
                break;
            }
            assert!(Instant::now() < deadline, "file sink too slow: {text}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        s.stop().await;
    }
}
