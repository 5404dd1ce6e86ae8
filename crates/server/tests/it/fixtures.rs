use aim_client::{Client, ClientError};
use aim_domain::human::{Human, Role};
use aim_domain::identity::{Identity, IdentityRequest};
use aim_domain::ids::HumanId;
use aim_testkit::TestServer;

/// Runs each case on every enabled backend with a fresh server.
#[macro_export]
macro_rules! api_tests {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $name() {
            for backend in aim_testkit::Backend::enabled() {
                eprintln!("backend: {backend:?}");
                let server = aim_testkit::TestServer::start(backend).await;
                cases::$name(&server).await;
                server.stop().await;
            }
        }
    )*};
}

/// A low-risk request for `name` sponsored by `sponsor`, ending in 30 days.
pub fn request(server: &TestServer, name: &str, sponsor: HumanId) -> IdentityRequest {
    aim_testkit::fixtures::low_risk_request(name, sponsor, server.clock_now().plus_days(30))
}

pub trait ClockExt {
    fn clock_now(&self) -> aim_domain::Timestamp;
}

impl ClockExt for TestServer {
    fn clock_now(&self) -> aim_domain::Timestamp {
        use aim_domain::Clock;
        self.clock.now()
    }
}

/// A sponsor, an approver, and their clients.
pub struct Cast {
    pub sponsor: Human,
    pub sponsor_client: Client,
    pub approver: Human,
    pub approver_client: Client,
}

pub async fn cast(server: &TestServer) -> Cast {
    let (sponsor, sponsor_client) = server.human("sam", &[Role::Sponsor]).await;
    let (approver, approver_client) = server.human("ava", &[Role::Approver]).await;
    Cast {
        sponsor,
        sponsor_client,
        approver,
        approver_client,
    }
}

/// Requests `name` as the sponsor and has the approver approve it.
pub async fn active_identity(server: &TestServer, c: &Cast, name: &str) -> Identity {
    active_identity_on(server, c, name, &["crm"]).await
}

/// [`active_identity`] with these registered systems.
pub async fn active_identity_on(
    server: &TestServer,
    c: &Cast,
    name: &str,
    systems: &[&str],
) -> Identity {
    let mut req = request(server, name, c.sponsor.id);
    req.systems = systems.iter().map(|s| (*s).to_owned()).collect();
    let i = c.sponsor_client.request_identity(&req).await.unwrap();
    c.approver_client
        .identity_action(i.id, "approve", "ok")
        .await
        .unwrap()
}

/// The error code of a failed call; panics if it succeeded.
pub fn code<T: std::fmt::Debug>(r: Result<T, ClientError>) -> String {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e
            .code()
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("no code: {e}")),
    }
}

/// How many events the store holds.
pub async fn event_count(server: &TestServer) -> usize {
    server.db.store.events(0, 100_000).await.unwrap().len()
}

/// Every event, oldest first, as an admin reads them over the API.
pub async fn all_events(server: &TestServer) -> Vec<aim_domain::event::Event> {
    server
        .admin
        .audit(&vec![("limit", "1000".into())])
        .await
        .unwrap()
        .items
}

/// The actions recorded on one target, in order.
pub fn actions_on(events: &[aim_domain::event::Event], target: impl ToString) -> Vec<&str> {
    let target = target.to_string();
    events
        .iter()
        .filter(|e| e.target_id == target)
        .map(|e| e.action.as_str())
        .collect()
}
