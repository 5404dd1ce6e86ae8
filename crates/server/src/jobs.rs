//! Background work, all started here: each job is a function of the handles it uses, run by
//! [`every`] on its period, with its failures logged and retried on the next tick. A job
//! never holds the server's whole state unless the operation it runs needs it (the sweep).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use aim_domain::Clock;
use aim_domain::event::{Actor, AuditAction, Event, Trail};
use aim_domain::sweep::SweepReport;
use aim_domain::time::Timestamp;
use aim_store::{DynStore, StoreError};

use crate::state::AppState;

/// When a job first runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum First {
    /// At once, then every period.
    Now,
    /// After one period.
    AfterOnePeriod,
}

/// Runs `job` every `period` from `first`, logging a failure under `name`; never returns.
/// A run that overruns its period delays the next one rather than piling up.
pub fn every<F, Fut, E>(period: Duration, name: &'static str, first: First, mut job: F)
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), E>> + Send,
    E: std::fmt::Display,
{
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        if first == First::AfterOnePeriod {
            tick.tick().await;
        }
        loop {
            tick.tick().await;
            if let Err(e) = job().await {
                tracing::error!(job = name, error = %e, "background job failed; retrying next tick");
            }
        }
    });
}

/// What the operator configured to run besides the jobs every server runs.
#[derive(Debug, Default)]
pub struct Plan {
    pub sweep_every: Option<Duration>,
    pub checkpoint_every: Option<Duration>,
    pub report_every: Option<Duration>,
    pub reassess_every: Option<Duration>,
    pub sinks: Vec<crate::config::SinkConfig>,
    pub tls: Option<Arc<crate::serve::CertFiles>>,
}

/// Starts every background job of a server.
pub fn start(state: &AppState, plan: Plan) {
    let (store, clock) = (state.store.clone(), state.clock.clone());
    tokio::spawn(crate::feed::follow(store.clone(), state.feed.clone()));
    // Policy versions, grants and signing keys changed on other replicas.
    let policies = state.policies.clone();
    let s = store.clone();
    every(
        FIVE_SECONDS,
        "policy refresh",
        First::AfterOnePeriod,
        move || {
            let (policies, s) = (policies.clone(), s.clone());
            async move { policies.refresh(&s).await }
        },
    );
    let decisions = state.decisions.clone();
    let (s, c) = (store.clone(), clock.clone());
    every(
        FIVE_SECONDS,
        "grants refresh",
        First::AfterOnePeriod,
        move || {
            let (decisions, s, now) = (decisions.clone(), s.clone(), c.now());
            async move { decisions.refresh_grants(&s, now).await }
        },
    );
    let tokens = state.tokens.clone();
    let c = clock.clone();
    every(
        Duration::from_secs(60),
        "signing keys refresh",
        First::AfterOnePeriod,
        move || {
            let (tokens, now) = (tokens.clone(), c.now());
            async move { tokens.keys.refresh(now).await }
        },
    );
    let refusals = state.refusals.clone();
    let (s, c) = (store.clone(), clock.clone());
    every(
        refusals.window(),
        "refusal summaries",
        First::AfterOnePeriod,
        move || {
            let (refusals, s, now) = (refusals.clone(), s.clone(), c.now());
            async move {
                refusals.flush(&s, now).await;
                Ok::<(), StoreError>(())
            }
        },
    );
    let (baselines, c) = (state.behaviour.clone(), clock.clone());
    every(
        Duration::from_secs(baselines.config().save_seconds),
        "baseline saves",
        First::AfterOnePeriod,
        move || {
            let (baselines, now) = (baselines.clone(), c.now());
            async move { baselines.save(now).await }
        },
    );
    let (s, c) = (store.clone(), clock.clone());
    every(FIVE_SECONDS, "task deadlines", First::Now, move || {
        let (s, c) = (s.clone(), c.clone());
        async move { end_overdue_and_forget(&s, c.as_ref()).await }
    });
    start_planned(state, plan);
}

const FIVE_SECONDS: Duration = Duration::from_secs(5);

fn start_planned(state: &AppState, plan: Plan) {
    for sink in plan.sinks {
        tokio::spawn(crate::sinks::deliver(
            state.store.clone(),
            state.tokens.clone(),
            sink,
        ));
    }
    if let Some(period) = plan.checkpoint_every {
        let (signer, s, c) = (
            state.signer.clone(),
            state.store.clone(),
            state.clock.clone(),
        );
        every(period, "audit checkpoint", First::Now, move || {
            let (signer, s, now) = (signer.clone(), s.clone(), c.now());
            async move { signer.checkpoint(&s, now).await.map(|_| ()) }
        });
    }
    if let Some(period) = plan.report_every {
        // Looked at often, made once a period: a restart or another replica's report
        // moves the next one rather than doubling it.
        let state = state.clone();
        every(
            period.min(Duration::from_secs(600)),
            "scheduled compliance report",
            First::Now,
            move || {
                let state = state.clone();
                async move { crate::report::scheduled(&state, period).await.map(|_| ()) }
            },
        );
    }
    if let Some(period) = plan.reassess_every {
        let state = state.clone();
        every(
            period,
            "discovery reassessment",
            First::AfterOnePeriod,
            move || {
                let state = state.clone();
                async move {
                    match crate::discovery::reassess::spawn(&state, None).await {
                        Ok(done) => done.map(|_| ()).map_err(|e| e.to_string()),
                        Err(e) => Err(format!("the reassessment's task failed: {e}")),
                    }
                }
            },
        );
    }
    if let Some(period) = plan.sweep_every {
        let state = state.clone();
        every(period, "sweep", First::Now, move || {
            let state = state.clone();
            async move { crate::registry::sweeps::run(&state).await.map(log_sweep) }
        });
    }
    if let Some(files) = plan.tls {
        every(
            FIVE_SECONDS,
            "TLS certificate reload",
            First::Now,
            move || {
                let files = files.clone();
                async move {
                    if files.reload_if_changed()? {
                        tracing::info!(cert = %files.cert.display(), "TLS certificate reloaded");
                    }
                    Ok::<(), anyhow::Error>(())
                }
            },
        );
    }
}

fn log_sweep(r: SweepReport) {
    let nothing = SweepReport {
        examined: r.examined,
        ..Default::default()
    };
    if r != nothing {
        tracing::info!(?r, "sweep changed identities");
    }
}

/// Ends every open task past its deadline, then forgets single-use ids whose use has
/// expired (they are kept only as long as what used them could be presented).
async fn end_overdue_and_forget(store: &DynStore, clock: &dyn Clock) -> Result<(), StoreError> {
    let ended = end_overdue(store, clock.now()).await;
    let forgotten = store.forget_used(clock.now()).await;
    ended.and(forgotten).map(|_| ())
}

/// Ends every open task past its deadline at `now`; returns how many.
pub async fn end_overdue(store: &DynStore, now: Timestamp) -> Result<usize, StoreError> {
    let mut ended = 0;
    for task in store.overdue_tasks(now, 500).await? {
        let event = Event::new(
            now,
            Actor::system("deadline"),
            AuditAction::TaskEnded,
            "task",
            task.id,
        )
        .reason("deadline passed")
        .trail(Trail {
            task_id: task.id.to_string(),
            triggered_by: task.triggered_by.clone(),
            ..Trail::default()
        });
        if store
            .end_task(task.id, now, "deadline passed", &event)
            .await?
        {
            ended += 1;
        }
    }
    Ok(ended)
}
