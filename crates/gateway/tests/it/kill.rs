//! The kill switch at the gateways: a lock made on one replica reaches the gateways of
//! every replica, each acknowledges it, and the lock's answer says so; a gateway cut off
//! from aim refuses everything after its staleness limit and recovers by itself.

use std::sync::{Arc, Mutex};

use aim_testkit::Backend;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::harness::{GatewaySpec, Setup, start_gateway};

#[tokio::test]
async fn a_lock_on_one_replica_is_applied_by_the_gateways_of_both() {
    // Two replicas share one database: PostgreSQL only (`.ci/run` always sets it up).
    let Some(backend) = Backend::enabled()
        .into_iter()
        .find(|b| *b == Backend::Postgres)
    else {
        panic!("this test needs PostgreSQL: set AIM_TEST_DATABASE_URL");
    };
    let s = Setup::start_with(backend, MCP).await;
    // A second gateway behind the same name, asking the other replica.
    let resources = vec![s.gateway.clone()];
    let replica = s.aim.replica_with(|c| c.tokens.resources = resources).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let second = format!("http://{}", listener.local_addr().unwrap());
    let spec = GatewaySpec {
        aim: replica,
        resource: s.gateway.clone(),
        upstream: s.upstream,
        extra: MCP.replace("UPSTREAM", &s.upstream.port().to_string()),
    };
    start_gateway(&s.aim, "gw-2", listener, &spec, s.dir.path()).await;
    let a = &s.agent;
    for at in [&s.gateway, &second] {
        let (status, _, body) = a.call_via(at, &s.gateway, "GET", "/crm/records/1").await;
        assert_eq!(status, 200, "{at}: {body}");
    }
    // And an MCP stream open through each.
    let mut streams = Vec::new();
    for at in [&s.gateway, &second] {
        let proof = a.proof("GET", &format!("{}/mcp/crm", s.gateway));
        let mut open = a
            .http
            .get(format!("{at}/mcp/crm"))
            .header("authorization", format!("DPoP {}", a.token))
            .header("dpop", proof)
            .header("accept", "text/event-stream")
            .send()
            .await
            .unwrap();
        assert_eq!(open.status(), 200, "{at}");
        assert!(
            open.chunk().await.unwrap().is_some(),
            "{at}: the stream flows"
        );
        streams.push(open);
    }

    let locked = s
        .aim
        .admin
        .lock_identity(a.identity.id, "incident 42: exfiltration suspected")
        .await
        .unwrap();
    assert_eq!(locked.identity.state.as_str(), "locked");
    let g = &locked.gateways;
    assert_eq!((g.acknowledged, g.connected), (2, 2), "{g:?}");
    assert!(
        g.to_string()
            .starts_with("acknowledged by 2 of 2 gateways in "),
        "{g}"
    );

    for (at, mut open) in [&s.gateway, &second].into_iter().zip(streams) {
        let ended = tokio::time::timeout(std::time::Duration::from_secs(5), async {
            while let Ok(Some(_)) = open.chunk().await {}
        })
        .await;
        assert!(ended.is_ok(), "{at}: the locked agent's stream is closed");
    }
    let before = s.seen().len();
    for at in [&s.gateway, &second] {
        let (status, _, body) = a.call_via(at, &s.gateway, "GET", "/crm/records/1").await;
        assert_eq!(
            (status, body["code"].as_str()),
            (401, Some("token_revoked")),
            "{at}: {body}"
        );
    }
    assert_eq!(
        s.seen().len(),
        before,
        "nothing reached the upstream after the lock"
    );
    s.aim.stop().await;
}

/// An MCP server (the recording upstream's `/mcp`) behind each gateway.
const MCP: &str = r#"
[upstreams.crm_mcp]
url = "http://127.0.0.1:UPSTREAM/mcp"
allow_addresses = ["127.0.0.1/32"]

[mcp.crm]
upstream = "crm_mcp"
path = "/mcp/crm"
"#;

/// A TCP hop between a gateway and aim that the test can cut (every connection dropped,
/// new ones refused) and restore: a network partition.
struct Cable {
    addr: String,
    cut: Arc<Mutex<bool>>,
    live: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Cable {
    async fn to(target: String) -> Cable {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = format!("http://{}", listener.local_addr().unwrap());
        let cut = Arc::new(Mutex::new(false));
        let live: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (c, l) = (cut.clone(), live.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                if *c.lock().unwrap() {
                    continue;
                }
                let target = target.clone();
                let hop = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                l.lock().unwrap().push(hop);
            }
        });
        Cable { addr, cut, live }
    }

    fn cut(&self) {
        *self.cut.lock().unwrap() = true;
        for hop in self.live.lock().unwrap().drain(..) {
            hop.abort();
        }
    }

    fn restore(&self) {
        *self.cut.lock().unwrap() = false;
    }
}

#[tokio::test]
async fn a_gateway_cut_off_from_aim_refuses_everything_and_recovers_by_itself() {
    let s = Setup::start(Backend::Sqlite).await;
    let cable = Cable::to(s.aim.base.trim_start_matches("http://").to_owned()).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let cut_off = format!("http://{}", listener.local_addr().unwrap());
    let spec = GatewaySpec {
        aim: cable.addr.clone(),
        resource: s.gateway.clone(),
        upstream: s.upstream,
        extra: String::new(),
    };
    let heard = start_gateway(&s.aim, "gw-cut", listener, &spec, s.dir.path()).await;
    let admin = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let readyz = format!("http://{}/readyz", admin.local_addr().unwrap());
    let metrics = readyz.replace("/readyz", "/metrics");
    tokio::spawn(aim_gateway::admin::serve(
        heard.clone(),
        Default::default(),
        admin,
    ));
    let ready = || async { reqwest::get(&readyz).await.unwrap().status().as_u16() };
    let scraped = || async { reqwest::get(&metrics).await.unwrap().text().await.unwrap() };
    assert!(scraped().await.contains("aim_gateway_stale 0"));
    assert_eq!(ready().await, 200);
    let a = &s.agent;
    let call = || a.call_via(&cut_off, &s.gateway, "GET", "/crm/records/1");
    assert_eq!(call().await.0, 200);

    cable.cut();
    // The staleness limit of these tests is 1.5 s: after it, everything is refused and
    // the answer says why.
    tokio::time::sleep(std::time::Duration::from_millis(1800)).await;
    assert!(heard.stale().is_some());
    let (status, _, body) = call().await;
    assert_eq!(
        (status, body["code"].as_str()),
        (503, Some("gateway_stale")),
        "{body}"
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("has not heard from aim"),
        "{body}"
    );
    assert_eq!(ready().await, 503, "a load balancer routes around it");
    assert!(
        scraped().await.contains("aim_gateway_stale 1"),
        "and an alert fires"
    );

    cable.restore();
    crate::harness::until_heard(&heard).await;
    let (status, _, body) = call().await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(ready().await, 200);
    s.aim.stop().await;
}

#[tokio::test]
async fn the_emergency_stop_locks_every_agent_and_says_who_applied_it() {
    let s = Setup::start(Backend::Sqlite).await;
    let a = &s.agent;
    assert_eq!(
        a.call_via(&s.gateway, &s.gateway, "GET", "/crm/records/1")
            .await
            .0,
        200
    );
    // A reason is required: it is written on every identity's record.
    let e = s.aim.admin.lock_all_agents("  ").await.unwrap_err();
    assert_eq!(e.code(), Some("reason_required"));
    let stopped = s
        .aim
        .admin
        .lock_all_agents("incident 7: all agents stop")
        .await
        .unwrap();
    assert_eq!(stopped.locked, 1, "{stopped:?}");
    assert!(stopped.failed.is_empty());
    assert_eq!(
        (stopped.gateways.acknowledged, stopped.gateways.connected),
        (1, 1)
    );
    let identity = s.aim.admin.identity(a.identity.id).await.unwrap();
    assert_eq!(identity.state.as_str(), "locked");
    let (status, _, body) = a
        .call_via(&s.gateway, &s.gateway, "GET", "/crm/records/1")
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("token_revoked")),
        "{body}"
    );
    // Only an admin stops everything.
    let e = s
        .sponsor
        .lock_all_agents("not mine to stop")
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(403));
    s.aim.stop().await;
}
