//! Socket Mode intake: events arrive over a WebSocket the app opens itself, so no public URL is needed.
//!
//! The loop: `POST {api_url}/apps.connections.open` with the app-level token (`xapp-…`) gives a one-time `wss://`
//! URL; the socket then carries a `hello`, envelopes (`events_api`, `slash_commands`, `interactive`), and
//! `disconnect` notices. Every envelope is acknowledged with `{"envelope_id":"…"}` within Slack's 3 seconds: when the
//! handler returns, or after [`SocketTimings::ack_deadline`] if it is slow (the handler keeps running). A dropped
//! socket or a `disconnect` (other than `link_disabled`) opens a new connection with backoff; `link_disabled` means
//! Socket Mode was turned off for the app, which ends [`run`] with an error.
//!
//! See <https://api.slack.com/apis/socket-mode>.

use std::panic::AssertUnwindSafe;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use futures::stream::SplitSink;
use futures::{FutureExt, SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep, sleep_until, timeout};
use tokio_tungstenite::tungstenite::{Bytes, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;
type Sink = SplitSink<Socket, Message>;

/// An `events_api` envelope's payload (the same JSON as an Events API request body), with what Socket Mode says
/// about its delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct SocketEvent {
    /// The envelope's id, as acknowledged; a redelivery comes in a new envelope (dedupe on the payload's `event_id`).
    pub envelope_id: String,
    /// The Events API body: `{"type":"event_callback","event_id":…,"event":{…},…}`.
    pub payload: Value,
    /// 0 for a first delivery; Slack's count of earlier attempts otherwise.
    pub retry_attempt: u32,
}

/// What the intake does with an event; it must return quickly (persist, then answer): the envelope is acknowledged
/// when it returns `true`, or after 2.5 s, whichever comes first (the work goes on then, but Slack has its ack).
/// `false` means the event could not be recorded: it stays unacknowledged, so Slack delivers it again.
///
/// Each envelope is handled on its own task, so events can be handled concurrently and out of order.
#[async_trait::async_trait]
pub trait SocketHandler: Send + Sync {
    async fn handle(&self, event: SocketEvent) -> bool;
}

/// Where to reach Slack and with which app-level token.
#[derive(Clone)]
pub struct SocketModeConfig {
    /// The Web API base, `SLACK_API_URL`, e.g. `https://slack.com/api` (a trailing `/` is ignored).
    pub api_url: String,
    /// The app-level token, `SLACK_APP_TOKEN`: `xapp-…` with the `connections:write` scope.
    pub app_token: String,
}

impl SocketModeConfig {
    pub fn new(api_url: impl Into<String>, app_token: impl Into<String>) -> Self {
        Self { api_url: api_url.into(), app_token: app_token.into() }
    }
}

impl std::fmt::Debug for SocketModeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketModeConfig").field("api_url", &self.api_url).field("app_token", &"<redacted>").finish()
    }
}

/// Time bounds of the intake. [`Default`] is what production uses; tests shorten them.
#[derive(Debug, Clone)]
pub struct SocketTimings {
    /// The whole `apps.connections.open` call (request and response body).
    pub open_timeout: Duration,
    /// The WebSocket handshake (TCP, TLS, HTTP upgrade).
    pub connect_timeout: Duration,
    /// Any single frame written (ack, ping, close).
    pub write_timeout: Duration,
    /// Silence after which a ping is sent.
    pub idle_ping: Duration,
    /// How long a ping may go unanswered (by anything) before the connection counts as dropped.
    pub pong_timeout: Duration,
    /// When an envelope whose handler has not returned yet is acknowledged anyway (Slack allows 3 s).
    pub ack_deadline: Duration,
    /// The first delay before reconnecting; doubled on each quick failure, up to `backoff_max`.
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    /// A connection that lasted this long resets the backoff to `backoff_initial`.
    pub stable_after: Duration,
}

impl Default for SocketTimings {
    fn default() -> Self {
        Self {
            open_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(5),
            idle_ping: Duration::from_secs(30),
            pong_timeout: Duration::from_secs(10),
            ack_deadline: Duration::from_millis(2500),
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(30),
            stable_after: Duration::from_secs(30),
        }
    }
}

/// Observability for tests and doctor: counters over the life of one [`run_with`].
#[derive(Debug, Default)]
pub struct SocketStats {
    connections_opened: AtomicU64,
    envelopes_received: AtomicU64,
    envelopes_acked: AtomicU64,
    connected: AtomicBool,
}

impl SocketStats {
    /// WebSocket connections established so far (each after its own `apps.connections.open`).
    pub fn connections_opened(&self) -> u64 {
        self.connections_opened.load(Ordering::Relaxed)
    }

    /// Envelopes received, of any type.
    pub fn envelopes_received(&self) -> u64 {
        self.envelopes_received.load(Ordering::Relaxed)
    }

    /// Acknowledgements written to the socket.
    pub fn envelopes_acked(&self) -> u64 {
        self.envelopes_acked.load(Ordering::Relaxed)
    }

    /// Whether the current connection got Slack's `hello` and has not ended.
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }
}

/// Why Socket Mode intake stopped (other than shutdown); each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    #[error(
        "Slack rejected the app token ({code}): check SLACK_APP_TOKEN, which must be an app-level token (xapp-…) \
         with the connections:write scope (the app's Basic Information page, App-Level Tokens)"
    )]
    InvalidAppToken { code: String },
    #[error(
        "Slack turned Socket Mode off for this app (disconnect: link_disabled): enable it again in the app's \
         settings (Socket Mode), or receive events over HTTP with the Events API instead"
    )]
    LinkDisabled,
    #[error("could not set up the HTTP client for Slack: {0}")]
    HttpClient(String),
}

/// Runs until `shutdown` fires or Slack disables Socket Mode (Err then, with what to do). Every connection attempt,
/// read and write is bounded in time.
pub async fn run(
    config: SocketModeConfig,
    handler: Arc<dyn SocketHandler>,
    shutdown: CancellationToken,
) -> Result<(), SocketError> {
    run_with(config, handler, shutdown, Arc::default(), SocketTimings::default()).await
}

/// [`run`], counting into `stats` and with explicit `timings`.
pub async fn run_with(
    config: SocketModeConfig,
    handler: Arc<dyn SocketHandler>,
    shutdown: CancellationToken,
    stats: Arc<SocketStats>,
    timings: SocketTimings,
) -> Result<(), SocketError> {
    let http = reqwest::Client::builder().build().map_err(|e| SocketError::HttpClient(e.to_string()))?;
    let open_url = format!("{}/apps.connections.open", config.api_url.trim_end_matches('/'));
    let intake = Intake { handler, stats, timings };
    let mut backoff = intake.timings.backoff_initial;
    loop {
        let attempt = tokio::select! {
            biased;
            () = shutdown.cancelled() => return Ok(()),
            attempt = connect(&http, &open_url, &config.app_token, &intake.timings) => attempt,
        };
        let mut delay = backoff;
        match attempt {
            Ok(socket) => {
                let count = intake.stats.connections_opened.fetch_add(1, Ordering::Relaxed) + 1;
                debug!(connection = count, "Socket Mode socket open");
                let started = Instant::now();
                let end = intake.session(socket, &shutdown).await;
                intake.stats.connected.store(false, Ordering::Relaxed);
                match end {
                    SessionEnd::Shutdown => return Ok(()),
                    SessionEnd::LinkDisabled => {
                        error!("Slack disabled Socket Mode for this app (link_disabled)");
                        return Err(SocketError::LinkDisabled);
                    }
                    SessionEnd::Refresh(reason) | SessionEnd::Reconnect(reason) => {
                        if started.elapsed() >= intake.timings.stable_after {
                            backoff = intake.timings.backoff_initial;
                            delay = backoff;
                        }
                        info!(%reason, delay_ms = delay.as_millis(), "Socket Mode connection ended; reconnecting");
                    }
                }
            }
            Err(OpenError::Fatal(e)) => {
                error!(error = %e, "Socket Mode cannot connect");
                return Err(e);
            }
            Err(OpenError::Retry { reason, after }) => {
                if let Some(after) = after {
                    delay = delay.max(after.min(MAX_RETRY_AFTER));
                }
                warn!(%reason, delay_ms = delay.as_millis(), "Socket Mode connection attempt failed; retrying");
            }
        }
        tokio::select! {
            biased;
            () = shutdown.cancelled() => return Ok(()),
            () = sleep(delay) => {}
        }
        backoff = backoff.saturating_mul(2).min(intake.timings.backoff_max);
    }
}

/// The longest `Retry-After` honoured from a rate-limited `apps.connections.open`.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// `ok:false` errors that no retry can fix: the token is wrong, revoked, or not an app-level token.
const FATAL_OPEN_ERRORS: &[&str] = &[
    "invalid_auth",
    "not_authed",
    "account_inactive",
    "token_revoked",
    "token_expired",
    "not_allowed_token_type",
    "missing_scope",
];

enum OpenError {
    Fatal(SocketError),
    Retry { reason: String, after: Option<Duration> },
}

impl OpenError {
    fn retry(reason: impl Into<String>) -> Self {
        Self::Retry { reason: reason.into(), after: None }
    }
}

/// Asks Slack for a WebSocket URL and connects to it.
async fn connect(
    http: &reqwest::Client,
    open_url: &str,
    token: &str,
    timings: &SocketTimings,
) -> Result<Socket, OpenError> {
    let url = match timeout(timings.open_timeout, open_connection(http, open_url, token)).await {
        Ok(url) => url?,
        Err(_) => {
            return Err(OpenError::retry(format!("apps.connections.open timed out after {:?}", timings.open_timeout)));
        }
    };
    // The URL carries a one-time ticket: it is not logged.
    match timeout(timings.connect_timeout, tokio_tungstenite::connect_async(url.as_str())).await {
        Ok(Ok((socket, _response))) => Ok(socket),
        Ok(Err(e)) => Err(OpenError::retry(format!("WebSocket connection failed: {e}"))),
        Err(_) => Err(OpenError::retry(format!("WebSocket connection timed out after {:?}", timings.connect_timeout))),
    }
}

async fn open_connection(http: &reqwest::Client, open_url: &str, token: &str) -> Result<String, OpenError> {
    let response = http
        .post(open_url)
        .bearer_auth(token)
        .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .send()
        .await
        .map_err(|e| OpenError::retry(format!("apps.connections.open failed: {e}")))?;
    let status = response.status();
    if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
        let after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        return Err(OpenError::Retry { reason: "apps.connections.open rate limited".into(), after });
    }
    if !status.is_success() {
        return Err(OpenError::retry(format!("apps.connections.open answered HTTP {status}")));
    }
    let body: Value = response
        .json()
        .await
        .map_err(|e| OpenError::retry(format!("apps.connections.open answered unreadable JSON: {e}")))?;
    if body.get("ok").and_then(Value::as_bool) == Some(true) {
        return match body.get("url").and_then(Value::as_str) {
            Some(url) if url.starts_with("wss://") || url.starts_with("ws://") => Ok(url.to_owned()),
            _ => Err(OpenError::retry("apps.connections.open answered no WebSocket URL")),
        };
    }
    let code = body.get("error").and_then(Value::as_str).unwrap_or("unknown_error").to_owned();
    if FATAL_OPEN_ERRORS.contains(&code.as_str()) {
        return Err(OpenError::Fatal(SocketError::InvalidAppToken { code }));
    }
    Err(OpenError::retry(format!("apps.connections.open answered error {code}")))
}

enum SessionEnd {
    Shutdown,
    LinkDisabled,
    /// Slack asked for a new connection (or closed this one cleanly); this socket still works.
    Refresh(String),
    /// The connection failed.
    Reconnect(String),
}

struct Intake {
    handler: Arc<dyn SocketHandler>,
    stats: Arc<SocketStats>,
    timings: SocketTimings,
}

impl Intake {
    /// One connection: reads frames, writes acks (from the handler tasks, through a channel) and pings, until the
    /// connection ends.
    async fn session(&self, socket: Socket, shutdown: &CancellationToken) -> SessionEnd {
        let (mut sink, mut stream) = socket.split();
        let (ack_tx, mut ack_rx) = mpsc::unbounded_channel::<String>();
        let mut last_heard = Instant::now();
        let mut ping_sent: Option<Instant> = None;
        let end = loop {
            let deadline = match ping_sent {
                Some(at) => at + self.timings.pong_timeout,
                None => last_heard + self.timings.idle_ping,
            };
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break SessionEnd::Shutdown,
                Some(envelope_id) = ack_rx.recv() => {
                    if let Err(reason) = self.send_ack(&mut sink, &envelope_id).await {
                        break SessionEnd::Reconnect(reason);
                    }
                }
                incoming = stream.next() => {
                    let message = match incoming {
                        None => break SessionEnd::Reconnect("the connection closed".into()),
                        Some(Err(e)) => break SessionEnd::Reconnect(format!("read failed: {e}")),
                        Some(Ok(message)) => message,
                    };
                    last_heard = Instant::now();
                    ping_sent = None;
                    match message {
                        Message::Text(text) => {
                            if let Some(end) = self.on_text(text.as_str(), &ack_tx) {
                                break end;
                            }
                        }
                        Message::Close(frame) => {
                            let reason = frame.map(|f| format!("{} {}", f.code, f.reason)).unwrap_or_default();
                            let reason = format!("Slack closed the connection {reason}").trim_end().to_owned();
                            break SessionEnd::Refresh(reason);
                        }
                        // Pings are answered by tungstenite as the stream is read; pongs only count as "heard".
                        Message::Binary(_) | Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
                    }
                }
                () = sleep_until(deadline) => {
                    if ping_sent.is_some() {
                        break SessionEnd::Reconnect(format!("no pong within {:?}", self.timings.pong_timeout));
                    }
                    if let Err(reason) = self.send(&mut sink, Message::Ping(Bytes::new())).await {
                        break SessionEnd::Reconnect(reason);
                    }
                    ping_sent = Some(Instant::now());
                }
            }
        };
        if let SessionEnd::Reconnect(_) = end {
            return end; // the socket failed: nothing more goes through it
        }
        // Acks already queued still go out (Slack redelivers what stays unacknowledged).
        let flushing = async {
            while let Ok(envelope_id) = ack_rx.try_recv() {
                if self.send_ack(&mut sink, &envelope_id).await.is_err() {
                    break;
                }
            }
        };
        if timeout(self.timings.write_timeout, flushing).await.is_err() {
            debug!("Socket Mode acks not flushed in time");
        }
        // The closing handshake: a close frame, then reading until Slack's close (frames in between are dropped).
        // Dropping the socket with unread data would reset the connection instead.
        let closing = async {
            if sink.close().await.is_ok() {
                while let Some(Ok(_)) = stream.next().await {}
            }
        };
        if timeout(CLOSE_TIMEOUT, closing).await.is_err() {
            debug!("Socket Mode closing handshake not finished in time");
        }
        end
    }

    /// Handles one text frame; `Some` ends the connection.
    fn on_text(&self, text: &str, ack_tx: &mpsc::UnboundedSender<String>) -> Option<SessionEnd> {
        let Ok(mut frame) = serde_json::from_str::<Value>(text) else {
            warn!(len = text.len(), "ignoring a Socket Mode frame that is not JSON");
            return None;
        };
        let kind = frame.get("type").and_then(Value::as_str).unwrap_or_default().to_owned();
        match kind.as_str() {
            "hello" => {
                self.stats.connected.store(true, Ordering::Relaxed);
                let connections = frame.get("num_connections").and_then(Value::as_u64);
                info!(num_connections = connections, "Socket Mode connected");
                return None;
            }
            "disconnect" => {
                let reason = frame.get("reason").and_then(Value::as_str).unwrap_or("unknown");
                if reason == "link_disabled" {
                    return Some(SessionEnd::LinkDisabled);
                }
                return Some(SessionEnd::Refresh(format!("Slack asked to reconnect ({reason})")));
            }
            _ => {}
        }
        let Some(envelope_id) = frame.get("envelope_id").and_then(Value::as_str).map(str::to_owned) else {
            debug!(kind, "ignoring a Socket Mode message");
            return None;
        };
        self.stats.envelopes_received.fetch_add(1, Ordering::Relaxed);
        let retry_attempt = frame.get("retry_attempt").and_then(Value::as_u64).unwrap_or(0);
        let retry_reason = frame.get("retry_reason").and_then(Value::as_str).unwrap_or_default();
        debug!(kind, envelope_id, retry_attempt, retry_reason, "Socket Mode envelope");
        if kind != "events_api" {
            debug!(kind, envelope_id, "acknowledging a Socket Mode envelope that is not handled");
            // The receiver lives in the session that is calling this.
            let _ = ack_tx.send(envelope_id);
            return None;
        }
        let event = SocketEvent {
            envelope_id,
            payload: frame.get_mut("payload").map(Value::take).unwrap_or_default(),
            retry_attempt: u32::try_from(retry_attempt).unwrap_or(u32::MAX),
        };
        tokio::spawn(handle_envelope(Arc::clone(&self.handler), event, ack_tx.clone(), self.timings.ack_deadline));
        None
    }

    async fn send_ack(&self, sink: &mut Sink, envelope_id: &str) -> Result<(), String> {
        let ack = serde_json::json!({ "envelope_id": envelope_id }).to_string();
        self.send(sink, Message::text(ack)).await?;
        self.stats.envelopes_acked.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    async fn send(&self, sink: &mut Sink, message: Message) -> Result<(), String> {
        match timeout(self.timings.write_timeout, sink.send(message)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("write failed: {e}")),
            Err(_) => Err(format!("write timed out after {:?}", self.timings.write_timeout)),
        }
    }
}

/// How long a closing handshake may take.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// Runs the handler; the ack goes out when it returns or at `ack_deadline`, whichever comes first.
async fn handle_envelope(
    handler: Arc<dyn SocketHandler>,
    event: SocketEvent,
    ack_tx: mpsc::UnboundedSender<String>,
    ack_deadline: Duration,
) {
    let envelope_id = event.envelope_id.clone();
    let mut work = pin!(AssertUnwindSafe(handler.handle(event)).catch_unwind());
    let finished = tokio::select! {
        outcome = &mut work => Some(outcome),
        () = sleep(ack_deadline) => None,
    };
    if matches!(finished, Some(Ok(false))) {
        warn!(envelope_id, "an event could not be recorded; left unacknowledged so that Slack sends it again");
    } else if ack_tx.send(envelope_id.clone()).is_err() {
        debug!(envelope_id, "the connection ended before the ack; Slack will redeliver");
    }
    drop(ack_tx);
    let outcome = match finished {
        Some(outcome) => outcome,
        None => {
            debug!(envelope_id, "handler still running at the ack deadline; acknowledged anyway");
            work.await
        }
    };
    if outcome.is_err() {
        error!(envelope_id, "Socket Mode event handler panicked");
    }
}
