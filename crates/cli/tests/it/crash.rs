//! `aim serve` killed with SIGKILL at random moments while writes are in flight: after each
//! restart the chain verifies and every write that was acknowledged is there, with its
//! event. `AIM_CRASH_ROUNDS` sets the number of kills (20 by default; more for a long run).

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
    let mut token = String::new();
    for round in 0..rounds {
        let serve = Serve::start(dir.path());
        if token.is_empty() {
            token = serve.token();
        }
        let (code, out, err) = verify(dir.path());
        assert_eq!(
            code, 0,
            "round {round}: chain broken after restart\n{out}{err}"
        );
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..3)
            .map(|w| {
                let (addr, token, stop, acknowledged) = (
                    serve.addr.clone(),
                    token.clone(),
                    stop.clone(),
                    acknowledged.clone(),
                );
                std::thread::spawn(move || {
                    let mut n = 0;
                    while !stop.load(Ordering::Relaxed) {
                        let user = format!("r{round}-w{w}-{n}@example.com");
                        n += 1;
                        // Exit 0 means the server answered 201: the write is acknowledged.
                        if aim(&addr, &token, &["human", "add", &user, "--role", "sponsor"]).0 == 0
                        {
                            acknowledged.lock().unwrap().push(user);
                        }
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(50 + next() % 400));
        drop(serve); // SIGKILL, with writes in flight
        stop.store(true, Ordering::Relaxed);
        for w in writers {
            w.join().unwrap();
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
    eprintln!(
        "crash test: {} acknowledged writes survived {rounds} kills",
        acknowledged.len()
    );
}
