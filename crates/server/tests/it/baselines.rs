//! Baselines held in memory: saved, read back after they leave memory, and never lost to a
//! save racing a call.

use aim_domain::baseline::watch::Seen;
use aim_domain::decision::Target;
use aim_server::behaviour::{Baselines, BehaviourConfig};
use aim_testkit::{Backend, TestStore};

fn t0() -> aim_domain::Timestamp {
    aim_domain::Timestamp::from_millis(1_800_000_000_000)
}

fn identity() -> aim_domain::identity::Identity {
    let request = aim_testkit::fixtures::low_risk_request(
        "agt-memory",
        aim_domain::ids::HumanId::new(),
        t0().plus_days(30),
    );
    request
        .into_identity(
            aim_domain::ids::IdentityId::new(),
            aim_domain::ids::HumanId::new(),
            t0(),
            &aim_domain::naming::NamingPolicy::default(),
            &aim_domain::governance::GovernanceConfig::default(),
        )
        .unwrap()
}

fn call(at: aim_domain::Timestamp) -> Seen {
    let target = Target {
        kind: "Resource".into(),
        id: "crm/customers/1".into(),
        system: "crm".into(),
        ..Target::default()
    };
    Seen::of(
        at,
        "read",
        &target,
        None,
        Some("jkt"),
        Some("10.0.0.1"),
        false,
    )
}

#[tokio::test]
async fn an_idle_saved_profile_leaves_memory_and_comes_back_from_the_store() {
    for backend in Backend::enabled() {
        let t = TestStore::new(backend).await;
        let identity = identity();
        let b = Baselines::new(BehaviourConfig::default(), t.store.clone());
        for i in 0..3 {
            b.watch(&identity, &call(t0().plus_seconds(i)))
                .await
                .unwrap();
        }
        assert_eq!(b.held(), 1);
        // Saved, but its identity called a minute ago: it stays.
        b.save(t0().plus_seconds(60)).await.unwrap();
        assert_eq!(b.held(), 1);
        // Idle for 15 minutes and saved: it goes, and comes back whole.
        b.save(t0().plus_seconds(16 * 60)).await.unwrap();
        assert_eq!(b.held(), 0);
        let back = b.profile(identity.id).await.unwrap().unwrap();
        assert_eq!(back.events, 3);
        let v = b
            .watch(&identity, &call(t0().plus_seconds(17 * 60)))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(v.n, 3, "it goes on where it was");
        // Learnt from since its last save: it stays until saved.
        b.save(t0().plus_seconds(17 * 60)).await.unwrap();
        b.watch(&identity, &call(t0().plus_seconds(18 * 60)))
            .await
            .unwrap();
        let later = t0().plus_seconds(60 * 60);
        assert_eq!(b.held(), 1);
        b.save(later).await.unwrap();
        assert_eq!(b.held(), 0);
        assert_eq!(b.profile(identity.id).await.unwrap().unwrap().events, 5);
        t.cleanup().await;
    }
}

/// A stop saves what was learnt since the last save: a restart does not lose it.
#[tokio::test]
async fn a_stop_saves_what_was_learnt_since_the_last_save() {
    for backend in Backend::enabled() {
        let t = TestStore::new(backend).await;
        let mut config = aim_server::config::Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            sweep_interval_seconds: 0,
            checkpoint_interval_seconds: 0,
            ..aim_server::config::Config::default()
        };
        let dir = tempfile::tempdir().unwrap();
        config.data_dir = dir.path().to_owned();
        config.behaviour.save_seconds = 3600;
        let clock = aim_domain::time::FakeClock::at(t0());
        let (server, _) = aim_server::Server::prepare_with_store(
            &config,
            t.store.clone(),
            format!("{backend:?}"),
            std::sync::Arc::new(clock),
        )
        .await
        .unwrap();
        let baselines = server.state.behaviour.clone();
        let identity = identity();
        for i in 0..4 {
            baselines
                .watch(&identity, &call(t0().plus_seconds(i)))
                .await
                .unwrap();
        }
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let running = tokio::spawn(server.run(async move {
            let _ = stopped.await;
        }));
        assert_eq!(
            t.store.baseline(identity.id).await.unwrap(),
            None,
            "not saved yet"
        );
        stop.send(()).unwrap();
        running.await.unwrap().unwrap();
        let saved = t
            .store
            .baseline(identity.id)
            .await
            .unwrap()
            .expect("saved at stop");
        let profile: aim_domain::baseline::profile::Profile = serde_json::from_str(&saved).unwrap();
        assert_eq!(profile.events, 4);
        t.cleanup().await;
    }
}
