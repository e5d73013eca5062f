#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Socket Mode intake against a local fake Slack: an axum `apps.connections.open` and a tungstenite WebSocket server
//! whose connections the tests drive by hand.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use axum::{Json, Router};
use futures::{SinkExt, StreamExt};
use rswe_slack::socket::{
    SocketError, SocketEvent, SocketHandler, SocketModeConfig, SocketStats, SocketTimings, run, run_with,
};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_util::sync::CancellationToken;

const TOKEN: &str = "xapp-1-A111-222-secret";
const WAIT: Duration = Duration::from_secs(5);

async fn within<T>(what: &str, limit: Duration, future: impl Future<Output = T>) -> T {
    match timeout(limit, future).await {
        Ok(value) => value,
        Err(_) => panic!("timed out after {limit:?} waiting for {what}"),
    }
}

/// One `apps.connections.open` call as the fake saw it.
#[derive(Debug)]
struct OpenCall {
    authorization: Option<String>,
}

#[derive(Clone)]
struct HttpState {
    token: String,
    ws_port: u16,
    calls: Arc<Mutex<u64>>,
    opens: mpsc::UnboundedSender<OpenCall>,
    /// Answers given instead of the normal one, first come first served.
    scripted: Arc<Mutex<VecDeque<Value>>>,
}

async fn connections_open(State(state): State<HttpState>, headers: HeaderMap) -> Json<Value> {
    let authorization = headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let n = {
        let mut calls = state.calls.lock().unwrap();
        *calls += 1;
        *calls
    };
    let authorized = authorization.as_deref() == Some(format!("Bearer {}", state.token).as_str());
    state.opens.send(OpenCall { authorization }).unwrap();
    if let Some(answer) = state.scripted.lock().unwrap().pop_front() {
        return Json(answer);
    }
    if !authorized {
        return Json(json!({"ok": false, "error": "invalid_auth"}));
    }
    Json(json!({"ok": true, "url": format!("ws://127.0.0.1:{}/socket?n={n}", state.ws_port)}))
}

/// A WebSocket connection accepted by the fake, driven by the test.
struct Conn {
    ws: WebSocketStream<TcpStream>,
    path: String,
}

impl Conn {
    async fn send(&mut self, value: Value) {
        self.ws.send(Message::text(value.to_string())).await.unwrap();
    }

    async fn hello(&mut self) {
        self.send(json!({
            "type": "hello",
            "num_connections": 1,
            "debug_info": {"host": "applink-fake", "approximate_connection_time": 18060},
            "connection_info": {"app_id": "A111"}
        }))
        .await;
    }

    /// The next text frame from the client, as JSON (pings and pongs skipped).
    async fn recv_json(&mut self) -> Value {
        within("a frame from the client", WAIT, async {
            loop {
                match self.ws.next().await {
                    Some(Ok(Message::Text(text))) => return serde_json::from_str(text.as_str()).unwrap(),
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                    other => panic!("expected a text frame, got {other:?}"),
                }
            }
        })
        .await
    }

    async fn expect_ack(&mut self, envelope_id: &str) {
        assert_eq!(self.recv_json().await, json!({"envelope_id": envelope_id}));
    }
}

fn envelope(envelope_id: &str, kind: &str, payload: Value) -> Value {
    json!({
        "envelope_id": envelope_id,
        "type": kind,
        "payload": payload,
        "accepts_response_payload": false,
        "retry_attempt": 0,
        "retry_reason": ""
    })
}

fn mention(text: &str) -> Value {
    json!({
        "type": "event_callback",
        "team_id": "T1",
        "event_id": format!("Ev-{text}"),
        "event": {"type": "app_mention", "user": "U1", "text": text, "channel": "C1", "ts": "1.000100"}
    })
}

struct FakeSlack {
    api_url: String,
    ws_port: u16,
    opens: mpsc::UnboundedReceiver<OpenCall>,
    conns: mpsc::UnboundedReceiver<Conn>,
    scripted: Arc<Mutex<VecDeque<Value>>>,
}

impl FakeSlack {
    async fn start() -> Self {
        let ws_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let ws_port = ws_listener.local_addr().unwrap().port();
        let (conns_tx, conns) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = ws_listener.accept().await else { return };
                let conns_tx = conns_tx.clone();
                tokio::spawn(async move {
                    let mut path = String::new();
                    #[allow(clippy::result_large_err)] // the signature is tungstenite's
                    let callback = |request: &Request, response: Response| {
                        path = request.uri().to_string();
                        Ok(response)
                    };
                    if let Ok(ws) = tokio_tungstenite::accept_hdr_async(tcp, callback).await {
                        let _ = conns_tx.send(Conn { ws, path });
                    }
                });
            }
        });

        let (opens_tx, opens) = mpsc::unbounded_channel();
        let scripted = Arc::new(Mutex::new(VecDeque::new()));
        let state = HttpState {
            token: TOKEN.to_owned(),
            ws_port,
            calls: Arc::default(),
            opens: opens_tx,
            scripted: Arc::clone(&scripted),
        };
        let app = Router::new().route("/api/apps.connections.open", post(connections_open)).with_state(state);
        let http_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let api_url = format!("http://{}/api", http_listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(http_listener, app).await.unwrap() });
        Self { api_url, ws_port, opens, conns, scripted }
    }

    fn config(&self, token: &str) -> SocketModeConfig {
        SocketModeConfig { api_url: self.api_url.clone(), app_token: token.to_owned() }
    }

    async fn next_open(&mut self) -> OpenCall {
        within("an apps.connections.open call", WAIT, self.opens.recv()).await.unwrap()
    }

    /// The next WebSocket connection, after checking it followed its own `apps.connections.open`.
    async fn next_conn(&mut self, n: u64) -> Conn {
        let open = self.next_open().await;
        assert_eq!(open.authorization.as_deref(), Some(format!("Bearer {TOKEN}").as_str()));
        let conn = within("a WebSocket connection", WAIT, self.conns.recv()).await.unwrap();
        assert_eq!(conn.path, format!("/socket?n={n}"));
        conn
    }
}

/// Records every event; with `hang`, never returns from `handle`.
struct Recorder {
    events: mpsc::UnboundedSender<SocketEvent>,
    hang: bool,
}

#[async_trait::async_trait]
impl SocketHandler for Recorder {
    async fn handle(&self, event: SocketEvent) -> bool {
        self.events.send(event).unwrap();
        if self.hang {
            std::future::pending::<()>().await;
        }
        true
    }
}

struct Running {
    task: JoinHandle<Result<(), SocketError>>,
    shutdown: CancellationToken,
    stats: Arc<SocketStats>,
    events: mpsc::UnboundedReceiver<SocketEvent>,
}

impl Running {
    fn start(config: SocketModeConfig, hang: bool, timings: SocketTimings) -> Self {
        let (events_tx, events) = mpsc::unbounded_channel();
        let handler = Arc::new(Recorder { events: events_tx, hang });
        let shutdown = CancellationToken::new();
        let stats = Arc::new(SocketStats::default());
        let task = tokio::spawn(run_with(config, handler, shutdown.clone(), Arc::clone(&stats), timings));
        Self { task, shutdown, stats, events }
    }

    async fn next_event(&mut self) -> SocketEvent {
        within("an event at the handler", WAIT, self.events.recv()).await.unwrap()
    }

    async fn finished(self) -> (Result<(), SocketError>, Arc<SocketStats>) {
        let result = within("run to return", WAIT, self.task).await.unwrap();
        (result, self.stats)
    }

    async fn stop(self) -> Arc<SocketStats> {
        self.shutdown.cancel();
        let (result, stats) = self.finished().await;
        result.unwrap();
        stats
    }
}

#[tokio::test]
async fn events_api_envelope_reaches_the_handler_and_is_acked() {
    let mut slack = FakeSlack::start().await;
    let mut running = Running::start(slack.config(TOKEN), false, SocketTimings::default());
    let mut conn = slack.next_conn(1).await;
    conn.hello().await;

    conn.send(envelope("s-1", "slash_commands", json!({"command": "/rswe", "text": "hi"}))).await;
    conn.expect_ack("s-1").await;

    let mut retried = envelope("e-1", "events_api", mention("hello there"));
    retried["retry_attempt"] = json!(2);
    retried["retry_reason"] = json!("timeout");
    conn.send(retried).await;
    let event = running.next_event().await;
    assert_eq!(event, SocketEvent { envelope_id: "e-1".into(), payload: mention("hello there"), retry_attempt: 2 });
    conn.expect_ack("e-1").await;

    conn.send(envelope("i-1", "interactive", json!({"type": "block_actions"}))).await;
    conn.expect_ack("i-1").await;
    conn.send(envelope("e-2", "events_api", mention("second"))).await;
    assert_eq!(running.next_event().await.envelope_id, "e-2", "only events_api envelopes reach the handler");
    conn.expect_ack("e-2").await;

    let stats = running.stop().await;
    assert_eq!(stats.connections_opened(), 1);
    assert_eq!(stats.envelopes_received(), 4);
    assert_eq!(stats.envelopes_acked(), 4);
    assert!(slack.opens.try_recv().is_err(), "one apps.connections.open call");
}

#[tokio::test]
async fn a_slow_handler_still_gets_its_envelope_acked() {
    let mut slack = FakeSlack::start().await;
    let mut running = Running::start(slack.config(TOKEN), true, SocketTimings::default());
    let mut conn = slack.next_conn(1).await;
    conn.hello().await;

    let sent = Instant::now();
    conn.send(envelope("e-slow", "events_api", mention("take your time"))).await;
    assert_eq!(running.next_event().await.envelope_id, "e-slow");
    // Acks do not queue behind the handler: a later envelope is acknowledged first.
    conn.send(envelope("s-1", "slash_commands", json!({"command": "/rswe"}))).await;
    conn.expect_ack("s-1").await;
    conn.expect_ack("e-slow").await;
    let elapsed = sent.elapsed();
    assert!(elapsed >= Duration::from_secs(2), "acked at the deadline, not before: {elapsed:?}");
    assert!(elapsed <= WAIT, "acked within Slack's window: {elapsed:?}");

    running.stop().await;
}

#[tokio::test]
async fn a_refresh_disconnect_opens_a_new_connection() {
    let mut slack = FakeSlack::start().await;
    let mut running = Running::start(slack.config(TOKEN), false, SocketTimings::default());
    let mut first = slack.next_conn(1).await;
    first.hello().await;
    first
        .send(json!({"type": "disconnect", "reason": "refresh_requested", "debug_info": {"host": "applink-fake"}}))
        .await;
    let _ = first.ws.close(None).await;

    let mut second = slack.next_conn(2).await;
    second.hello().await;
    second.send(envelope("e-2", "events_api", mention("after refresh"))).await;
    let event = running.next_event().await;
    assert_eq!((event.envelope_id.as_str(), event.payload), ("e-2", mention("after refresh")));
    second.expect_ack("e-2").await;

    let stats = running.stop().await;
    assert_eq!(stats.connections_opened(), 2);
}

#[tokio::test]
async fn a_dropped_connection_is_reopened() {
    let mut slack = FakeSlack::start().await;
    let mut running = Running::start(slack.config(TOKEN), false, SocketTimings::default());
    let mut first = slack.next_conn(1).await;
    first.hello().await;
    first.send(envelope("e-1", "events_api", mention("one"))).await;
    assert_eq!(running.next_event().await.envelope_id, "e-1");
    first.expect_ack("e-1").await;
    drop(first); // no close frame: the TCP connection just ends

    let mut second = slack.next_conn(2).await;
    second.hello().await;
    second.send(envelope("e-2", "events_api", mention("two"))).await;
    assert_eq!(running.next_event().await.envelope_id, "e-2");
    second.expect_ack("e-2").await;

    let stats = running.stop().await;
    assert_eq!(stats.connections_opened(), 2);
}

#[tokio::test]
async fn a_failed_open_is_retried() {
    let mut slack = FakeSlack::start().await;
    slack.scripted.lock().unwrap().push_back(json!({"ok": false, "error": "internal_error"}));
    let mut running = Running::start(slack.config(TOKEN), false, SocketTimings::default());
    slack.next_open().await;

    let mut conn = slack.next_conn(2).await;
    conn.hello().await;
    conn.send(envelope("e-1", "events_api", mention("finally"))).await;
    assert_eq!(running.next_event().await.envelope_id, "e-1");
    conn.expect_ack("e-1").await;
    running.stop().await;
}

#[tokio::test]
async fn a_failed_tls_handshake_is_retried() {
    let mut slack = FakeSlack::start().await;
    // The plain WebSocket server cannot speak TLS: this exercises the wss:// path (rustls set-up included) to a failure.
    let wss = format!("wss://127.0.0.1:{}/socket", slack.ws_port);
    slack.scripted.lock().unwrap().push_back(json!({"ok": true, "url": wss}));
    let mut running = Running::start(slack.config(TOKEN), false, SocketTimings::default());
    slack.next_open().await;

    let mut conn = slack.next_conn(2).await;
    conn.hello().await;
    conn.send(envelope("e-1", "events_api", mention("over plain ws"))).await;
    assert_eq!(running.next_event().await.envelope_id, "e-1");
    conn.expect_ack("e-1").await;
    let stats = running.stop().await;
    assert_eq!(stats.connections_opened(), 1);
}

#[tokio::test]
async fn link_disabled_ends_run_with_an_error() {
    let mut slack = FakeSlack::start().await;
    let running = Running::start(slack.config(TOKEN), false, SocketTimings::default());
    let mut conn = slack.next_conn(1).await;
    conn.hello().await;
    conn.send(json!({"type": "disconnect", "reason": "link_disabled", "debug_info": {"host": "applink-fake"}})).await;

    let (result, stats) = running.finished().await;
    let error = result.unwrap_err();
    assert!(matches!(error, SocketError::LinkDisabled), "{error:?}");
    assert!(error.to_string().contains("Socket Mode"), "{error}");
    assert_eq!(stats.connections_opened(), 1);
    assert!(slack.opens.try_recv().is_err(), "no reconnection");
}

#[tokio::test]
async fn an_invalid_app_token_ends_run_promptly_naming_the_variable() {
    let mut slack = FakeSlack::start().await;
    let (events, _) = mpsc::unbounded_channel();
    let handler = Arc::new(Recorder { events, hang: false });
    // Within one backoff step: the first answer is final.
    let result = within(
        "run to give up on a bad token",
        Duration::from_secs(3),
        run(slack.config("xapp-wrong-token"), handler, CancellationToken::new()),
    )
    .await;
    let error = result.unwrap_err();
    let message = error.to_string();
    assert!(message.contains("SLACK_APP_TOKEN"), "{message}");
    assert!(message.contains("invalid_auth"), "{message}");
    assert!(!message.contains("xapp-wrong-token"), "the token is never shown: {message}");
    let open = slack.next_open().await;
    assert_eq!(open.authorization.as_deref(), Some("Bearer xapp-wrong-token"));
    assert!(slack.opens.try_recv().is_err(), "no retry");
    assert!(!format!("{:?}", slack.config("xapp-wrong-token")).contains("xapp-wrong-token"));
}

#[tokio::test]
async fn shutdown_ends_run_promptly_when_connected() {
    let mut slack = FakeSlack::start().await;
    let mut running = Running::start(slack.config(TOKEN), true, SocketTimings::default());
    let mut conn = slack.next_conn(1).await;
    conn.hello().await;
    // An envelope in flight whose handler never returns does not hold shutdown up.
    conn.send(envelope("e-1", "events_api", mention("busy"))).await;
    assert_eq!(running.next_event().await.envelope_id, "e-1");

    // The fake keeps reading, as Slack would, so the closing handshake completes.
    let reader = tokio::spawn(async move {
        loop {
            match conn.ws.next().await {
                Some(Ok(Message::Close(_))) => return true,
                Some(Ok(_)) => {}
                None | Some(Err(_)) => return false,
            }
        }
    });
    running.shutdown.cancel();
    let (result, _) = within("run to stop", Duration::from_secs(2), running.finished()).await;
    result.unwrap();
    let closing = within("the client's close frame", WAIT, reader).await.unwrap();
    assert!(closing, "the client closes the socket cleanly");
}

#[tokio::test]
async fn shutdown_ends_run_promptly_while_backing_off() {
    let mut slack = FakeSlack::start().await;
    slack.scripted.lock().unwrap().push_back(json!({"ok": false, "error": "internal_error"}));
    let timings = SocketTimings { backoff_initial: Duration::from_secs(60), ..SocketTimings::default() };
    let running = Running::start(slack.config(TOKEN), false, timings);
    slack.next_open().await;

    running.shutdown.cancel();
    let (result, stats) = within("run to stop", Duration::from_secs(2), running.finished()).await;
    result.unwrap();
    assert_eq!(stats.connections_opened(), 0);
}

#[tokio::test]
async fn an_unanswered_ping_counts_as_a_drop() {
    let mut slack = FakeSlack::start().await;
    let timings = SocketTimings {
        idle_ping: Duration::from_millis(200),
        pong_timeout: Duration::from_secs(1),
        backoff_initial: Duration::from_millis(50),
        ..SocketTimings::default()
    };
    let running = Running::start(slack.config(TOKEN), false, timings);
    // The first connection is never read, so the client's ping gets no pong.
    let mut silent = slack.next_conn(1).await;
    silent.hello().await;

    let mut second = slack.next_conn(2).await;
    second.hello().await;
    // Read, so tungstenite answers each ping; the connection then stays up for ping after ping.
    for _ in 0..2 {
        let message = within("a ping from the client", WAIT, second.ws.next()).await;
        assert!(matches!(message, Some(Ok(Message::Ping(_)))), "{message:?}");
    }
    let stats = running.stop().await;
    assert_eq!(stats.connections_opened(), 2);
    drop(silent);
}
