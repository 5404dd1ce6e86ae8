//! Audit sinks: every record, in order, to a file, a syslog collector (RFC 5424 over TCP
//! with octet-counting framing, or UDP) or an HTTP webhook; or, for a `caep` sink, the
//! records that cut an identity off as Shared Signals (see [`crate::signals`]). Each sink's last acknowledged
//! sequence number is stored, so a sink that was down catches up from there and nothing is
//! skipped; a batch is acknowledged only after the sink took it (the file synced, the TCP
//! write flushed on a connection the collector has not closed, the webhook answered 2xx).
//! UDP has no acknowledgement: a datagram sent is taken as delivered.

use std::time::Duration;

use aim_domain::event::{Event, Outcome};
use aim_store::DynStore;
use anyhow::Context;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpStream, UdpSocket};

use crate::config::{SinkConfig, SinkFormat, Transport};

fn render(format: SinkFormat, e: &Event) -> String {
    match format {
        SinkFormat::Jsonl => serde_json::to_string(e).unwrap_or_default(),
        SinkFormat::Ocsf => aim_api::export::ocsf(e).to_string(),
        SinkFormat::Cef => aim_api::export::cef(e),
    }
}

/// RFC 5424: facility authpriv (10); warning for refusals and denials, notice for a hold for
/// approval, informational otherwise.
fn syslog_line(format: SinkFormat, e: &Event) -> String {
    let severity = match e.outcome {
        Outcome::Denied | Outcome::Deny => 4,
        Outcome::ApprovalRequired => 5,
        Outcome::Success | Outcome::Allow => 6,
    };
    let pri = 10 * 8 + severity;
    // MSGID is the action: printable ASCII without spaces, at most 32 (RFC 5424 §6.2.7).
    let msgid = e.action.as_str();
    format!(
        "<{pri}>1 {} - aim - {msgid} [aim@32473 seq=\"{}\"] {}",
        e.at,
        e.seq,
        render(format, e)
    )
}

/// A connection kept between batches.
enum Conn {
    None,
    Tcp(TcpStream),
    Udp(UdpSocket),
}

struct Delivery {
    config: SinkConfig,
    conn: Conn,
    http: reqwest::Client,
    store: DynStore,
    tokens: std::sync::Arc<crate::tokens::TokenService>,
    /// A webhook sink's signing key, derived from its secret once.
    key: Option<aws_lc_rs::hmac::Key>,
}

impl Delivery {
    async fn deliver(&mut self, batch: &[Event]) -> anyhow::Result<()> {
        match &self.config {
            SinkConfig::File { path, format, .. } => {
                let mut text = String::new();
                for e in batch {
                    text.push_str(&render(*format, e));
                    text.push('\n');
                }
                let mut f = tokio::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .await?;
                f.write_all(text.as_bytes()).await?;
                f.sync_data().await?;
            }
            SinkConfig::Syslog {
                address,
                transport: Transport::Tcp,
                format,
                ..
            } => {
                if let Conn::Tcp(s) = &self.conn
                    && closed_by_peer(s)
                {
                    self.conn = Conn::None;
                }
                if !matches!(self.conn, Conn::Tcp(_)) {
                    self.conn = Conn::Tcp(TcpStream::connect(address).await?);
                }
                let Conn::Tcp(stream) = &mut self.conn else {
                    anyhow::bail!("no connection")
                };
                let mut frames = Vec::new();
                for e in batch {
                    let line = syslog_line(*format, e);
                    frames.extend_from_slice(format!("{} {line}", line.len()).as_bytes());
                }
                let written = async {
                    stream.write_all(&frames).await?;
                    stream.flush().await
                }
                .await;
                if let Err(e) = written {
                    self.conn = Conn::None;
                    return Err(e.into());
                }
            }
            SinkConfig::Syslog {
                address,
                transport: Transport::Udp,
                format,
                ..
            } => {
                if !matches!(self.conn, Conn::Udp(_)) {
                    let socket = UdpSocket::bind("0.0.0.0:0").await?;
                    socket.connect(address).await?;
                    self.conn = Conn::Udp(socket);
                }
                let Conn::Udp(socket) = &self.conn else {
                    anyhow::bail!("no socket")
                };
                for e in batch {
                    socket.send(syslog_line(*format, e).as_bytes()).await?;
                }
            }
            SinkConfig::Webhook { url, name, .. } => {
                let key = self
                    .key
                    .as_ref()
                    .context("no signing key for the webhook")?;
                let resp = post_signed(&self.http, url, key, name, batch).await?;
                anyhow::ensure!(
                    resp.status().is_success(),
                    "webhook answered {}",
                    resp.status()
                );
            }
            SinkConfig::Caep { .. } => {
                for e in batch {
                    self.push_set(e).await?;
                }
            }
        }
        Ok(())
    }

    /// Pushes the SET for `e`, if it is a signal (RFC 8935: the receiver answers 202).
    async fn push_set(&self, e: &Event) -> anyhow::Result<()> {
        let SinkConfig::Caep {
            url,
            audience,
            authorization_env,
            ..
        } = &self.config
        else {
            return Ok(());
        };
        let Some((kind, identity_id)) = crate::signals::event_of(e) else {
            return Ok(());
        };
        let spiffe = match aim_domain::ids::IdentityId::parse(&identity_id) {
            Ok(id) => self
                .store
                .identity(id)
                .await?
                .map(|i| self.tokens.subject(&i)),
            Err(_) => None,
        };
        let set = crate::signals::Set {
            issuer: &self.tokens.issuer,
            audience: audience.as_deref().unwrap_or(url),
            identity_id: &identity_id,
            spiffe,
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let claims = crate::signals::claims(e, kind, &set, now);
        let token = self
            .tokens
            .keys
            .current()
            .signer
            .sign("secevent+jwt", &claims)
            .map_err(|e| anyhow::anyhow!("signing a SET: {e}"))?;
        let mut req = self
            .http
            .post(url)
            .header("content-type", "application/secevent+jwt")
            .header("accept", "application/json")
            .body(token);
        if let Some(var) = authorization_env {
            req = req.header("authorization", std::env::var(var).unwrap_or_default());
        }
        let resp = req.send().await?;
        let status = resp.status();
        if !status.is_success() {
            let body = crate::outbound::body_capped(resp, 1024)
                .await
                .unwrap_or_default();
            anyhow::bail!(
                "the CAEP receiver answered {status}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        Ok(())
    }
}

/// Posts `batch` to an audit webhook, signed as Standard Webhooks specifies; the id names
/// the records, so a batch sent again after a failure has the id it had (receivers
/// de-duplicate on it).
async fn post_signed(
    http: &reqwest::Client,
    url: &str,
    key: &aws_lc_rs::hmac::Key,
    sink: &str,
    batch: &[Event],
) -> anyhow::Result<reqwest::Response> {
    let body = serde_json::to_string(batch)?;
    let (first, last) = (
        batch.first().map_or(0, |e| e.seq),
        batch.last().map_or(0, |e| e.seq),
    );
    let id = format!("aim-{sink}-{first}-{last}");
    Ok(
        crate::decisions::webhook::signed(http.post(url), key, &id, body)
            .send()
            .await?,
    )
}

/// Whether the collector closed the connection (a FIN waits to be read).
fn closed_by_peer(s: &TcpStream) -> bool {
    let mut buf = [0u8; 1];
    matches!(s.try_read(&mut buf), Ok(0))
}

/// Delivers every record to one sink, forever, resuming from its stored position.
pub async fn deliver(
    store: DynStore,
    tokens: std::sync::Arc<crate::tokens::TokenService>,
    config: SinkConfig,
) {
    let name = config.name().to_owned();
    let ca = match &config {
        SinkConfig::Webhook { ca_file, .. } | SinkConfig::Caep { ca_file, .. } => ca_file.clone(),
        _ => None,
    };
    let http = match crate::outbound::client(ca.as_deref(), Duration::from_secs(10)) {
        Ok(h) => h,
        Err(e) => {
            tracing::error!(sink = %name, error = %e, "the sink's HTTPS client cannot be built; nothing is delivered to it");
            return;
        }
    };
    // `Config::check` refused a webhook sink whose secret makes no key.
    let key = match &config {
        SinkConfig::Webhook { secret, .. } => match crate::decisions::webhook::key(secret) {
            Ok(k) => Some(k),
            Err(e) => {
                tracing::error!(sink = %name, error = %e, "the sink's signing secret is unusable; nothing is delivered to it");
                return;
            }
        },
        _ => None,
    };
    let mut d = Delivery {
        config,
        conn: Conn::None,
        http,
        store: store.clone(),
        tokens,
        key,
    };
    let mut backoff = Duration::from_millis(100);
    loop {
        let batch = match store.sink_position(&name).await {
            Ok(pos) => store.events(pos, 500).await,
            Err(e) => Err(e),
        };
        let batch = match batch {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(sink = %name, error = %e, "audit sink cannot read the log");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let Some(last) = batch.last().map(|e| e.seq) else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        match d.deliver(&batch).await {
            Ok(()) => {
                backoff = Duration::from_millis(100);
                if let Err(e) = store.set_sink_position(&name, last).await {
                    tracing::error!(sink = %name, error = %e, "audit sink position not saved; the batch will be sent again");
                }
            }
            Err(e) => {
                tracing::warn!(sink = %name, error = %e, retry_in_ms = backoff.as_millis() as u64, "audit sink is down");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aim_domain::event::{Actor, AuditAction};
    use aim_domain::time::Timestamp;

    /// A denied decision is what an analyst filters syslog for: it is a warning, as a
    /// refused request is, and a hold for approval a notice.
    #[test]
    fn denials_are_warnings() {
        let at = Timestamp::from_millis(1_000);
        let line = |outcome| {
            let e = Event::new(
                at,
                Actor::system("t"),
                AuditAction::Decision,
                "Resource",
                "x",
            )
            .outcome(outcome);
            syslog_line(SinkFormat::Jsonl, &e)
        };
        assert!(line(Outcome::Deny).starts_with("<84>1 "));
        assert!(line(Outcome::Denied).starts_with("<84>1 "));
        assert!(line(Outcome::ApprovalRequired).starts_with("<85>1 "));
        assert!(line(Outcome::Allow).starts_with("<86>1 "));
        assert!(line(Outcome::Allow).contains(" aim - decision [aim@32473"));
    }
}
