//! How fast a lock reaches the gateways: two `aim serve` replicas on one PostgreSQL (in this
//! process, through `aim-testkit`), an `aim gateway` connected to each, and `--locks` locks
//! (each undone by an unlock) made on the first replica. Each lock's answer carries the time
//! from its commit to the last gateway's acknowledgement; this prints their distribution.
//!
//! ```sh
//! AIM_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test \
//!   cargo run --release -p aim-bench --bin lock-propagation -- --locks 100
//! ```

use aim_domain::Clock;
use aim_domain::human::Role;
use aim_testkit::{Backend, TestServer};
use clap::Parser;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
struct Args {
    /// How many locks to make.
    #[arg(long, default_value_t = 100)]
    locks: usize,
    /// Put both gateways on the first replica (where the locks are made) instead of one on
    /// each: tells the cross-replica hop (NOTIFY) from the rest.
    #[arg(long)]
    same_replica: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        Backend::enabled().contains(&Backend::Postgres),
        "set AIM_TEST_DATABASE_URL to a PostgreSQL database: two replicas share it"
    );
    let aim = TestServer::start(Backend::Postgres).await;
    let replica = if args.same_replica {
        aim.base.clone()
    } else {
        aim.replica().await
    };
    let dir = tempfile::tempdir()?;
    for (name, url) in [("gw-a", aim.base.clone()), ("gw-b", replica)] {
        gateway(&aim, name, &url, dir.path()).await?;
    }
    // Both have acknowledged once: both count as connected.
    while aim.db.store.gateway_acks().await?.len() < 2 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let (sponsor, sponsor_client) = aim.human("sam", &[Role::Sponsor]).await;
    let (_, approver) = aim.human("ava", &[Role::Approver]).await;
    let request = aim_testkit::fixtures::low_risk_request(
        "agt-locked-often",
        sponsor.id,
        aim.clock.now().plus_days(30),
    );
    let identity = sponsor_client.request_identity(&request).await?;
    approver
        .identity_action(identity.id, "approve", "ok")
        .await?;

    let mut millis = Vec::with_capacity(args.locks);
    let mut short = 0;
    for n in 0..args.locks {
        let locked = aim
            .admin
            .lock_identity(identity.id, &format!("drill {n}"))
            .await?;
        let g = locked.gateways;
        if g.acknowledged < 2 || g.connected < 2 {
            short += 1;
        }
        millis.push(g.millis);
        aim.admin
            .identity_action(identity.id, "unlock", "drill over")
            .await?;
    }
    millis.sort_by(f64::total_cmp);
    let at =
        |q: f64| millis[((millis.len() as f64 * q).ceil() as usize).clamp(1, millis.len()) - 1];
    println!(
        "locks {} · commit → last of 2 gateways acknowledged: p50 {:.1} ms · p90 {:.1} ms · p99 {:.1} ms · max {:.1} ms · not acknowledged by both: {short}",
        millis.len(),
        at(0.5),
        at(0.9),
        at(0.99),
        at(1.0)
    );
    aim.stop().await;
    Ok(())
}

/// A gateway with no routes, following the feed of the aim at `url`.
async fn gateway(
    aim: &TestServer,
    name: &str,
    url: &str,
    dir: &std::path::Path,
) -> anyhow::Result<()> {
    let (_, client) = aim.human(name, &[Role::Gateway]).await;
    let credential = dir.join(name);
    std::fs::write(&credential, client.token().unwrap_or_default())?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let config = dir.join(format!("{name}.toml"));
    std::fs::write(
        &config,
        format!(
            "listen = \"{}\"\nresource = \"http://gateway.test\"\nallow_plain_http = true\n[aim]\nurl = \"{url}\"\ncredential_file = \"{}\"\n",
            listener.local_addr()?,
            credential.display()
        ),
    )?;
    let gateway = aim_gateway::Gateway::new(aim_gateway::config::Config::load(&config)?)
        .map_err(anyhow::Error::msg)?;
    tokio::spawn(aim_gateway::serve(
        gateway,
        listener,
        std::future::pending(),
    ));
    Ok(())
}
