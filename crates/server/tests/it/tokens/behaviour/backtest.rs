//! The recorded history replayed through the detectors, before a detector enforces.

use super::*;

/// A detector kept observing finds the spike but leaves it alone; the backtest with it
/// enforced says it would have stepped it up, and with the rules in force agrees with
/// every recorded verdict.
#[tokio::test]
async fn an_observing_detector_is_backtested_before_it_enforces() {
    for backend in aim_testkit::Backend::enabled() {
        let s = TestServer::start_with(backend, |c| {
            c.behaviour.learning_days = 0;
            c.behaviour.learning_events = 30;
            c.behaviour.observe = vec![aim_domain::baseline::detect::Detector::RateSpike];
        })
        .await;
        backtested(&s).await;
        s.stop().await;
    }
}

async fn backtested(s: &TestServer) {
    let c = cast(s).await;
    apply(s, PERMIT_ALL).await;
    let agent = line_agent(s, &c, "agt-line-7", Level::Medium).await;
    let (_, task) = task(s, &agent).await;
    let token = ordinary(s, &agent, &task, 40).await;
    for i in 0..30 {
        let body = json!({ "action": "read", "resource": target("sensors", &format!("line-{}", i % 5), "internal") });
        let (_, d) = ask(s, &agent.key, &token, &body, None).await;
        assert_eq!(d["decision"], "allow", "observed only: {d}");
    }
    let spike = findings(s, &agent).await.pop().unwrap();
    assert_eq!(
        (
            spike.detail["response"].as_str(),
            spike.detail["anomalies"][0]["detector"].as_str()
        ),
        (Some("observe"), Some("rate_spike"))
    );

    let (status, live) = post(s, "/v1/behaviour/backtest", &s.admin_token, &json!({})).await;
    assert_eq!(status, 200, "{live}");
    assert_eq!(live["same_rules"], true);
    assert_eq!(live["replayed"], 70);
    assert_eq!(
        (live["matched"].as_u64(), live["mismatched"].as_u64()),
        (Some(70), Some(0)),
        "{live}"
    );
    assert_eq!(
        (live["would_step_up"].as_u64(), live["stepped_up"].as_u64()),
        (Some(0), Some(0))
    );

    let enforced = json!({ "enforce": ["rate_spike"] });
    let (_, what_if) = post(s, "/v1/behaviour/backtest", &s.admin_token, &enforced).await;
    assert_eq!(what_if["same_rules"], false);
    assert_eq!(
        (
            what_if["would_step_up"].as_u64(),
            what_if["stepped_up"].as_u64(),
            what_if["would_lock"].as_u64()
        ),
        (Some(1), Some(0), Some(0)),
        "{what_if}"
    );
    let f = what_if["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["would"] == "step_up")
        .unwrap();
    assert_eq!(
        (f["live"].as_str(), f["identity_name"].as_str()),
        (Some("observe"), Some("agt-line-7"))
    );
    assert_eq!(f["seq"].as_i64(), spike.detail["decision_seq"].as_i64());
    // Outside the window, nothing is reported (the history is still replayed).
    s.clock.advance_millis(60_000);
    let (_, later) = post(
        s,
        "/v1/behaviour/backtest",
        &s.admin_token,
        &json!({ "enforce": ["rate_spike"], "window_ms": 1 }),
    )
    .await;
    assert_eq!(
        (later["in_window"].as_u64(), later["would_step_up"].as_u64()),
        (Some(0), Some(0)),
        "{later}"
    );
    // Only an admin backtests; a bad window is refused.
    let sponsor = c.sponsor_client.token().unwrap().to_owned();
    assert_eq!(
        post(s, "/v1/behaviour/backtest", &sponsor, &json!({}))
            .await
            .0,
        403
    );
    let (status, bad) = post(
        s,
        "/v1/behaviour/backtest",
        &s.admin_token,
        &json!({ "window_ms": 0 }),
    )
    .await;
    assert_eq!((status, bad["code"].as_str()), (400, Some("bad_window")));
    let (status, _) = post(
        s,
        "/v1/behaviour/backtest",
        &s.admin_token,
        &json!({ "window_ms": i64::MAX }),
    )
    .await;
    assert_eq!(status, 400);
}
