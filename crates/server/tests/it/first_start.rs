//! Several replicas started at the same moment on an empty database: exactly one
//! bootstraps the first admin, and they end up with one token signing key and one audit
//! checkpoint key between them (issue 13: 2 of 12 such starts failed with a duplicate
//! admin). Run many times, since a race shows only sometimes.

use std::sync::Arc;

use aim_server::{Config, Server};
use aim_testkit::Backend;
use aim_testkit::db::EmptyDatabase;
use base64::Engine;

const REPLICAS: usize = 3;

async fn start_one(
    db: &EmptyDatabase,
    kek: &str,
) -> anyhow::Result<(Server, aim_server::Startup, tempfile::TempDir)> {
    let dir = tempfile::tempdir()?;
    let mut config = Config {
        listen: "127.0.0.1:0".parse()?,
        data_dir: dir.path().to_path_buf(),
        sweep_interval_seconds: 0,
        checkpoint_interval_seconds: 0,
        ..Config::default()
    };
    config.tokens.kek = Some(kek.to_owned());
    let store = db.open().await?;
    let (server, startup) = Server::prepare_with_store(
        &config,
        store,
        "replica".into(),
        Arc::new(aim_domain::SystemClock),
    )
    .await?;
    Ok((server, startup, dir))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_starting_together_bootstrap_once_and_share_their_keys() {
    for backend in Backend::enabled() {
        for trial in 0..50 {
            let db = EmptyDatabase::new(backend).await;
            let kek = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(aim_token::kek::Kek::generate_bytes().unwrap());
            let started =
                futures_util::future::join_all((0..REPLICAS).map(|_| start_one(&db, &kek))).await;
            let mut servers = Vec::new();
            for s in started {
                let (server, startup, dir) = s.unwrap_or_else(|e| {
                    panic!("{backend:?} trial {trial}: a replica failed: {e:#}")
                });
                servers.push((server, startup, dir));
            }
            let bootstrapped = servers
                .iter()
                .filter(|(_, s, _)| s.bootstrap.is_some())
                .count();
            assert_eq!(
                bootstrapped, 1,
                "{backend:?} trial {trial}: one replica bootstraps"
            );
            let store = db.open().await.unwrap();
            let humans = store
                .list_humans(&Default::default(), None, 10)
                .await
                .unwrap();
            assert_eq!(humans.len(), 1, "{backend:?} trial {trial}: one admin");
            let keys = store.signing_keys().await.unwrap();
            assert_eq!(
                keys.len(),
                1,
                "{backend:?} trial {trial}: one token signing key"
            );
            let checkpoint_keys = store.checkpoint_keys().await.unwrap();
            assert_eq!(
                checkpoint_keys.len(),
                1,
                "{backend:?} trial {trial}: one checkpoint key"
            );
            for (server, ..) in &servers {
                assert_eq!(
                    server.state.signer.public_key(),
                    checkpoint_keys[0].public_key
                );
                assert_eq!(server.state.tokens.keys.current().signer.kid(), keys[0].kid);
            }
            drop(servers);
            db.cleanup().await;
        }
    }
}
