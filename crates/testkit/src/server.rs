//! `aim serve` in-process on 127.0.0.1:0, on a fresh store, with a fake clock.

use std::sync::Arc;

use aim_client::Client;
use aim_domain::human::{Human, NewHuman, Role};
use aim_domain::time::{FakeClock, Timestamp};
use aim_server::{Config, Server};
use tokio::task::JoinHandle;

use crate::db::{Backend, TestStore};

#[derive(Debug)]
pub struct TestServer {
    pub base: String,
    pub admin: Client,
    pub admin_token: String,
    pub clock: FakeClock,
    pub db: TestStore,
    /// The private CA the server's certificate is from, when it serves HTTPS.
    pub ca: Option<Vec<u8>>,
    task: JoinHandle<()>,
}

/// The instant every test server starts at.
pub fn start_time() -> Timestamp {
    Timestamp::parse("2026-03-01T09:00:00Z").expect("valid")
}

impl TestServer {
    pub async fn start(backend: Backend) -> TestServer {
        Self::start_with(backend, |_| {}).await
    }

    /// Starts with the default config changed by `tweak` (sweeps never run by themselves).
    pub async fn start_with(backend: Backend, tweak: impl FnOnce(&mut Config)) -> TestServer {
        Self::start_inner(backend, None, tweak).await
    }

    /// As [`TestServer::start_with`] for a `tweak` that serves HTTPS with a certificate
    /// from the private CA `ca_pem`: the clients trust only that CA.
    pub async fn start_tls(
        backend: Backend,
        ca_pem: &[u8],
        tweak: impl FnOnce(&mut Config),
    ) -> TestServer {
        Self::start_inner(backend, Some(ca_pem.to_vec()), tweak).await
    }

    async fn start_inner(
        backend: Backend,
        ca: Option<Vec<u8>>,
        tweak: impl FnOnce(&mut Config),
    ) -> TestServer {
        let db = TestStore::new(backend).await;
        let mut config = Config {
            listen: "127.0.0.1:0".parse().expect("addr"),
            data_dir: db.dir.path().to_path_buf(),
            sweep_interval_seconds: 0,
            checkpoint_interval_seconds: 0,
            ..Config::default()
        };
        // Tests count refusals one by one; the flood test sets its own limit.
        config.limits.refusals_per_window = 100_000;
        tweak(&mut config);
        let clock = FakeClock::at(start_time());
        let (server, startup) = Server::prepare_with_store(
            &config,
            db.store.clone(),
            format!("{backend:?}"),
            Arc::new(clock.clone()),
        )
        .await
        .expect("server prepares");
        let token = startup
            .bootstrap
            .expect("a fresh store bootstraps an admin")
            .secret;
        let task = tokio::spawn(async move {
            server
                .run(std::future::pending())
                .await
                .expect("server runs");
        });
        let scheme = if config.tls.cert_file.is_some() {
            "https"
        } else {
            "http"
        };
        let base = format!("{scheme}://{}", startup.addr);
        let client = |token: Option<String>| match &ca {
            Some(pem) => Client::with_ca(&base, token, pem).expect("a client trusting the CA"),
            None => Client::new(&base, token),
        };
        TestServer {
            admin: client(Some(token.clone())),
            ca,
            admin_token: token,
            base,
            clock,
            db,
            task,
        }
    }

    /// A client with `token`, or with none.
    pub fn client(&self, token: Option<&str>) -> Client {
        match &self.ca {
            Some(pem) => Client::with_ca(&self.base, token.map(str::to_owned), pem)
                .expect("a client trusting the CA"),
            None => Client::new(&self.base, token.map(str::to_owned)),
        }
    }

    /// A new human with `roles` and a client holding their fresh credential.
    pub async fn human(&self, user_name: &str, roles: &[Role]) -> (Human, Client) {
        let human = self
            .admin
            .create_human(&NewHuman {
                user_name: user_name.into(),
                display_name: None,
                email: Some(format!("{user_name}@example.com")),
                external_id: None,
                roles: roles.to_vec(),
                groups: Vec::new(),
            })
            .await
            .expect("create human");
        let issued = self
            .admin
            .create_credential(human.id, "test")
            .await
            .expect("credential");
        (human, self.client(Some(&issued.secret)))
    }

    /// A second `aim serve` on the same database, with its own data dir (and so its own
    /// checkpoint key), behind the same issuer URL as this one (as replicas behind one load
    /// balancer are: tokens and DPoP proofs name this server's URL); returns its base URL.
    /// It stops when the test's runtime ends.
    pub async fn replica(&self) -> String {
        self.replica_with(|_| {}).await
    }

    /// As [`TestServer::replica`], its config changed by `tweak` first.
    pub async fn replica_with(&self, tweak: impl FnOnce(&mut Config)) -> String {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config {
            listen: "127.0.0.1:0".parse().expect("addr"),
            data_dir: dir.path().to_path_buf(),
            sweep_interval_seconds: 0,
            checkpoint_interval_seconds: 0,
            ..Config::default()
        };
        config.tokens.issuer = Some(self.base.clone());
        // The same key-encryption key, so both sign with the keys in the database.
        config.tokens.kek_file = Some(self.db.dir.path().join("kek"));
        tweak(&mut config);
        let store = self.db.second_store().await;
        let (server, startup) = Server::prepare_with_store(
            &config,
            store,
            "replica".into(),
            Arc::new(self.clock.clone()),
        )
        .await
        .expect("replica prepares");
        assert!(
            startup.bootstrap.is_none(),
            "a replica never bootstraps a second admin"
        );
        tokio::spawn(async move {
            let _dir = dir;
            server
                .run(std::future::pending())
                .await
                .expect("replica runs");
        });
        format!("http://{}", startup.addr)
    }

    pub async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
        self.db.cleanup().await;
    }
}
