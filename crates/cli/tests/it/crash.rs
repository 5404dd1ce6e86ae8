//! `aim serve` killed with SIGKILL at random moments while writes are in flight: after each
//! restart the chain verifies and every write that was acknowledged is there, with its
//! event. The writes are of both kinds SQLite takes: registry changes (humans added, group
//! commit on sqlx's connection) and decisions (appends, written whole by the log writer on
//! its own connection), at once. `AIM_CRASH_ROUNDS` sets the number of kills (20 by
//! default; more for a long run).

use std::io::{Read, Write};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::process::{AIM, Serve};

fn aim(addr: &str, token: &str, args: &[&str]) -> (i32, String) {
    let out = Command::new(AIM)
        .args(args)
        .env("AIM_ADDR", addr)
        .env("AIM_TOKEN", token)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn verify(dir: &std::path::Path) -> (i32, String, String) {
    let out = Command::new(AIM)
        .args(["audit", "verify", "--data-dir"])
        .arg(dir.join("aim-data"))
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `POST /v1/authorize` as the admin, about the human `principal`, with `request_id`: true
/// when aim answered 200, i.e. the decision is on the record.
fn decide(addr: &str, token: &str, principal: &str, request_id: &str) -> bool {
    let body = format!(
        r#"{{"action":"read","principal":{{"human":"{principal}"}},"resource":{{"type":"Resource","id":"crm/1","system":"crm","attrs":{{"type":"note","sensitivity":"internal"}}}}}}"#
    );
    let request = format!(
        "POST /v1/authorize HTTP/1.1\r\nHost: aim\r\nAuthorization: Bearer {token}\r\n\
         X-Request-Id: {request_id}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let Ok(mut conn) = std::net::TcpStream::connect(addr.trim_start_matches("http://")) else {
        return false;
    };
    let mut answer = String::new();
    conn.write_all(request.as_bytes()).is_ok()
        && conn.read_to_string(&mut answer).is_ok()
        && answer.starts_with("HTTP/1.1 200")
}

/// `count` threads, each calling `write(thread, n)` for n = 0, 1, ... until `stop`, keeping
/// in `kept` what each call says was acknowledged.
fn load(
    count: usize,
    stop: &Arc<AtomicBool>,
    kept: &Arc<Mutex<Vec<String>>>,
    write: impl Fn(usize, usize) -> Option<String> + Send + Sync + 'static,
) -> Vec<std::thread::JoinHandle<()>> {
    let write = Arc::new(write);
    (0..count)
        .map(|w| {
            let (stop, kept, write) = (stop.clone(), kept.clone(), write.clone());
            std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    if let Some(done) = write(w, n) {
                        kept.lock().unwrap().push(done);
                    }
                    n += 1;
                }
            })
        })
        .collect()
}

#[test]
fn sigkill_under_load_loses_no_acknowledged_write() {
    let rounds: usize = std::env::var("AIM_CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("crash test: {rounds} rounds, seed {seed}");
    let mut rng = seed;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let dir = tempfile::tempdir().unwrap();
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let decided = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut token = String::new();
    let mut admin = String::new();
    for round in 0..rounds {
        let serve = Serve::start(dir.path());
        if token.is_empty() {
            token = serve.token();
            let (code, humans) = aim(&serve.addr, &token, &["human", "list", "-o", "json"]);
            assert_eq!(code, 0, "{humans}");
            let humans: serde_json::Value = serde_json::from_str(&humans).unwrap();
            admin = humans[0]["id"].as_str().unwrap().to_owned();
        }
        let (code, out, err) = verify(dir.path());
        assert_eq!(
            code, 0,
            "round {round}: chain broken after restart\n{out}{err}"
        );
        let stop = Arc::new(AtomicBool::new(false));
        let (addr, tok, who) = (serve.addr.clone(), token.clone(), admin.clone());
        // Exit 0 means the server answered 201: the write is acknowledged.
        let add =
            move |name: &str| aim(&addr, &tok, &["human", "add", name, "--role", "sponsor"]).0 == 0;
        let (addr, tok) = (serve.addr.clone(), token.clone());
        let ask = move |id: &str| decide(&addr, &tok, &who, id);
        let mut threads = load(3, &stop, &acknowledged, move |w, n| {
            let user = format!("r{round}-w{w}-{n}@example.com");
            add(&user).then_some(user)
        });
        threads.extend(load(2, &stop, &decided, move |w, n| {
            let id = format!("crash-r{round}-d{w}-{n}");
            ask(&id).then_some(id)
        }));
        std::thread::sleep(Duration::from_millis(50 + next() % 400));
        drop(serve); // SIGKILL, with writes in flight
        stop.store(true, Ordering::Relaxed);
        for t in threads {
            t.join().unwrap();
        }
    }
    // After the last kill: everything acknowledged is there, each with its event.
    let serve = Serve::start(dir.path());
    let (code, out, err) = verify(dir.path());
    assert_eq!(code, 0, "{out}{err}");
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() >= rounds,
        "the load did write: {} acknowledged",
        acknowledged.len()
    );
    let (code, listed) = aim(
        &serve.addr,
        &token,
        &["human", "list", "--all", "--limit", "1000", "-o", "json"],
    );
    assert_eq!(code, 0);
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    let names: std::collections::HashSet<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|h| h["user_name"].as_str())
        .collect();
    let (code, events) = aim(
        &serve.addr,
        &token,
        &[
            "audit",
            "list",
            "--action",
            "human.created",
            "--all",
            "--limit",
            "1000",
            "-o",
            "json",
        ],
    );
    assert_eq!(code, 0);
    let events: serde_json::Value = serde_json::from_str(&events).unwrap();
    let created: std::collections::HashSet<String> = events
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["detail"]["user_name"].as_str().map(str::to_owned))
        .collect();
    for user in &acknowledged {
        assert!(
            names.contains(user.as_str()),
            "acknowledged {user} is missing"
        );
        assert!(created.contains(user), "acknowledged {user} has no event");
    }
    let decided = decided.lock().unwrap().clone();
    assert!(
        decided.len() >= rounds,
        "the load decided: {} acknowledged",
        decided.len()
    );
    let (code, records) = aim(
        &serve.addr,
        &token,
        &[
            "audit", "list", "--action", "decision", "--all", "--limit", "1000", "-o", "json",
        ],
    );
    assert_eq!(code, 0);
    let records: serde_json::Value = serde_json::from_str(&records).unwrap();
    let recorded: std::collections::HashSet<&str> = records
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["request_id"].as_str())
        .collect();
    for id in &decided {
        assert!(
            recorded.contains(id.as_str()),
            "acknowledged decision {id} is not on the record"
        );
    }
    eprintln!(
        "crash test: {} acknowledged writes and {} acknowledged decisions survived {rounds} kills",
        acknowledged.len(),
        decided.len()
    );
}
