//! The HTTP server, its shared state, recording, and the turn bookkeeping every wire
//! format shares.

use std::collections::{BTreeMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use rswe_protocol::Usage;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::prompt::{InputTokens, Prompt, PromptCache, cache_seed};
use crate::script::{Block, ErrorKind, Failure, Script, Settings, StopReason, StreamFault, Turn};
use crate::{anthropic, bedrock, openai};

/// Which wire format a request used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Api {
    Anthropic,
    #[serde(rename = "openai")]
    OpenAi,
    Bedrock,
}

impl Api {
    fn tool_id_prefix(self) -> &'static str {
        match self {
            Api::Anthropic => "toolu_fake_",
            Api::OpenAi => "call_fake_",
            Api::Bedrock => "tooluse_fake_",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Api::Anthropic => "anthropic",
            Api::OpenAi => "openai",
            Api::Bedrock => "bedrock",
        }
    }
}

/// One request the server received, and what it made of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedRequest {
    pub api: Api,
    /// The request path as sent (still percent-encoded).
    pub path: String,
    /// Header names lowercased; repeated headers joined with ", ".
    pub headers: BTreeMap<String, String>,
    /// The parsed JSON body (`null` when it was not JSON).
    pub body: Value,
    pub stream: bool,
    /// The model the request named (Bedrock: the decoded model id from the path).
    pub model: String,
    /// The usage the server reported (or would have, for a faulted stream); `None` when
    /// it answered with an error.
    pub usage: Option<Usage>,
    /// The HTTP status the server answered with.
    pub status: u16,
    /// Consistency checks this request failed.
    pub violations: Vec<String>,
    /// When the request arrived, in microseconds since the Unix epoch.
    #[serde(default)]
    pub received_at_us: u64,
}

impl RecordedRequest {
    pub(crate) fn new(api: Api, path: &str, headers: &HeaderMap) -> Self {
        let mut map: BTreeMap<String, String> = BTreeMap::new();
        for (name, value) in headers {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            map.entry(name.as_str().to_ascii_lowercase())
                .and_modify(|v| {
                    v.push_str(", ");
                    v.push_str(&value);
                })
                .or_insert(value);
        }
        RecordedRequest {
            api,
            path: path.to_owned(),
            headers: map,
            body: Value::Null,
            stream: false,
            model: String::new(),
            usage: None,
            status: 0,
            violations: Vec::new(),
            received_at_us: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_micros() as u64)
                .unwrap_or(0),
        }
    }

    /// A header's value by (case-insensitive) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(&name.to_ascii_lowercase()).map(String::as_str)
    }
}

/// Errors starting the server.
#[derive(Debug, thiserror::Error)]
pub enum FakeServerError {
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// What the server decided to do with a well-formed, authenticated model request.
pub(crate) enum Outcome {
    /// A consistency check failed: the format's 400 invalid-request error.
    Rejected(String),
    /// The simulated input exceeds the context window.
    ContextWindow { tokens: u64, limit: u64 },
    /// No turn left.
    Exhausted,
    /// A scripted error.
    Fail { failure: Failure, tokens: u64, limit: u64 },
    /// A scripted answer.
    Respond(Box<Reply>),
}

/// A scripted answer resolved for one request: ids assigned, tokens counted.
pub(crate) struct Reply {
    /// Unique per server; used for message ids.
    pub seq: u64,
    pub model: String,
    /// Every tool use has `Some` id.
    pub content: Vec<Block>,
    pub stop_reason: StopReason,
    pub input: InputTokens,
    pub output_tokens: u64,
    pub fault: Option<StreamFault>,
    pub delay: Option<Duration>,
    pub chunk_chars: usize,
    pub event_delay: Duration,
}

impl Reply {
    pub fn usage(&self) -> Usage {
        Usage {
            input_tokens: self.input.uncached(),
            output_tokens: self.output_tokens,
            cache_read_tokens: self.input.cache_read,
            cache_write_tokens: self.input.cache_write,
        }
    }
}

/// How the format caches prompts.
#[derive(Clone, Copy)]
pub(crate) enum CacheMode {
    Explicit,
    Automatic,
}

struct ServerState {
    settings: Settings,
    turns: VecDeque<Turn>,
    requests: Vec<RecordedRequest>,
    cache: PromptCache,
    next_seq: u64,
}

pub(crate) struct Shared {
    state: Mutex<ServerState>,
    /// Woken whenever a request is recorded.
    recorded: tokio::sync::Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, ServerState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a request the server refused before looking at the script.
    pub fn record(&self, mut rec: RecordedRequest, status: StatusCode, violation: Option<String>) {
        rec.status = status.as_u16();
        if let Some(v) = violation {
            tracing::warn!(api = ?rec.api, violation = %v, "fake model: request violation");
            rec.violations.push(v);
        }
        self.lock().requests.push(rec);
        self.recorded.notify_waiters();
    }

    /// Checks, counts and consumes a turn for a parsed model request, and records it.
    /// `status_of` gives the HTTP status the format answers the outcome with.
    pub fn process(
        &self,
        mut rec: RecordedRequest,
        violations: Vec<String>,
        prompt: &Prompt,
        mode: CacheMode,
        status_of: impl Fn(&Outcome) -> u16,
    ) -> Outcome {
        let mut state = self.lock();
        let settings = state.settings.clone();
        let total = prompt.total_tokens();
        let outcome = if let Some(first) = violations.first() {
            for v in &violations {
                tracing::warn!(api = ?rec.api, violation = %v, "fake model: request violation");
            }
            Outcome::Rejected(first.clone())
        } else if total > settings.context_window {
            Outcome::ContextWindow { tokens: total, limit: settings.context_window }
        } else {
            match state.turns.pop_front() {
                None => {
                    let v = "fake model script exhausted".to_owned();
                    tracing::warn!(api = ?rec.api, "fake model script exhausted");
                    rec.violations.push(v);
                    Outcome::Exhausted
                }
                Some(Turn::Fail(failure)) => Outcome::Fail { failure, tokens: total, limit: settings.context_window },
                Some(Turn::Respond(response)) => {
                    state.next_seq += 1;
                    let seq = state.next_seq;
                    let now = Instant::now();
                    let ttl = Duration::from_secs(settings.cache_ttl_secs);
                    let seed = cache_seed(rec.api.name(), &rec.model);
                    let input = match mode {
                        CacheMode::Explicit => state.cache.explicit(prompt, seed, now, ttl, settings.cache_min_tokens),
                        CacheMode::Automatic => state.cache.automatic(prompt, seed, now, ttl),
                    };
                    let stop_reason = response.effective_stop_reason();
                    let mut content = response.content;
                    for (n, block) in content.iter_mut().enumerate() {
                        if let Block::ToolUse { id, .. } = block
                            && id.is_none()
                        {
                            *id = Some(format!("{}{seq}_{n}", rec.api.tool_id_prefix()));
                        }
                    }
                    let output_tokens = response.output_tokens.unwrap_or_else(|| {
                        crate::prompt::bytes_tokens(serde_json::to_vec(&content).map_or(0, |b| b.len()))
                    });
                    let reply = Reply {
                        seq,
                        model: rec.model.clone(),
                        content,
                        stop_reason,
                        input,
                        output_tokens,
                        fault: response.fault,
                        delay: response.delay_ms.map(Duration::from_millis),
                        chunk_chars: settings.stream_chunk_chars.max(1),
                        event_delay: Duration::from_millis(settings.event_delay_ms),
                    };
                    rec.usage = Some(reply.usage());
                    Outcome::Respond(Box::new(reply))
                }
            }
        };
        rec.violations.extend(violations);
        rec.status = status_of(&outcome);
        state.requests.push(rec);
        self.recorded.notify_waiters();
        outcome
    }
}

/// A fake model provider on 127.0.0.1 replaying a [`Script`].
///
/// Dropping it (or [`FakeModelServer::shutdown`]) stops the server.
pub struct FakeModelServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    served: crate::served::Served,
}

impl std::fmt::Debug for FakeModelServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeModelServer").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl FakeModelServer {
    /// Starts the server on `127.0.0.1:0`.
    ///
    /// # Panics
    ///
    /// When no local port can be bound; use [`FakeModelServer::try_start`] to handle that.
    pub async fn start(script: impl Into<Script>) -> FakeModelServer {
        match Self::try_start(script).await {
            Ok(server) => server,
            Err(e) => panic!("fake model server: {e}"),
        }
    }

    /// Starts the server on `127.0.0.1:0`.
    pub async fn try_start(script: impl Into<Script>) -> Result<FakeModelServer, FakeServerError> {
        Self::try_start_on(script, SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await
    }

    /// Starts the server on `addr`.
    pub async fn try_start_on(script: impl Into<Script>, addr: SocketAddr) -> Result<FakeModelServer, FakeServerError> {
        let script = script.into();
        let shared = Arc::new(Shared {
            state: Mutex::new(ServerState {
                settings: script.settings,
                turns: script.turns.into(),
                requests: Vec::new(),
                cache: PromptCache::default(),
                next_seq: 0,
            }),
            recorded: tokio::sync::Notify::new(),
        });
        let listener =
            tokio::net::TcpListener::bind(addr).await.map_err(|source| FakeServerError::Bind { addr, source })?;
        let addr = listener.local_addr().map_err(|source| FakeServerError::Bind { addr, source })?;
        let served = crate::served::Served::start(listener, addr, router(shared.clone()), "fake model server");
        Ok(FakeModelServer { addr, shared, served })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Base URL for Anthropic clients (they append `/v1/messages`).
    pub fn anthropic_base_url(&self) -> String {
        self.base_url()
    }

    /// Base URL for OpenAI clients, with `/v1` (they append `/chat/completions`).
    pub fn openai_base_url(&self) -> String {
        format!("{}/v1", self.base_url())
    }

    /// Endpoint URL for the Bedrock runtime SDK (`endpoint_url`).
    pub fn bedrock_endpoint(&self) -> String {
        self.base_url()
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.clone()
    }

    /// All requests' violations, flattened, in order.
    pub fn violations(&self) -> Vec<String> {
        self.shared.lock().requests.iter().flat_map(|r| r.violations.iter().cloned()).collect()
    }

    /// # Panics
    ///
    /// When any request violated a consistency check (or exhausted the script).
    pub fn assert_no_violations(&self) {
        let violations = self.violations();
        assert!(violations.is_empty(), "fake model server saw violations:\n  {}", violations.join("\n  "));
    }

    /// Waits until at least `count` requests were recorded; false if `timeout` passes first.
    pub async fn wait_for_requests(&self, count: usize, timeout: std::time::Duration) -> bool {
        let wait = async {
            loop {
                let notified = self.shared.recorded.notified();
                if self.shared.lock().requests.len() >= count {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(timeout, wait).await.is_ok()
    }

    pub fn turns_remaining(&self) -> usize {
        self.shared.lock().turns.len()
    }

    /// Appends a turn to the script.
    pub fn push_turn(&self, turn: impl Into<Turn>) {
        self.shared.lock().turns.push_back(turn.into());
    }

    /// Stops accepting connections and waits (briefly) for open ones to finish.
    pub async fn shutdown(mut self) {
        self.served.stop().await;
    }
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/messages", post(anthropic::handle))
        .route("/v1/chat/completions", post(openai::handle))
        .route("/model/{model_id}/converse", post(bedrock::converse))
        .route("/model/{model_id}/converse-stream", post(bedrock::converse_stream))
        .route("/_fake/requests", get(recorded_requests))
        .route("/_fake/violations", get(recorded_violations))
        .fallback(not_found)
        .layer(DefaultBodyLimit::disable())
        .with_state(shared)
}

async fn recorded_requests(State(shared): State<Arc<Shared>>) -> Response {
    axum::Json(shared.lock().requests.clone()).into_response()
}

async fn recorded_violations(State(shared): State<Arc<Shared>>) -> Response {
    let violations: Vec<String> = shared.lock().requests.iter().flat_map(|r| r.violations.iter().cloned()).collect();
    axum::Json(violations).into_response()
}

async fn not_found(uri: axum::http::Uri) -> Response {
    tracing::warn!(path = %uri.path(), "fake model: no such endpoint");
    (
        StatusCode::NOT_FOUND,
        axum::Json(serde_json::json!({"message": format!("fake model server has no endpoint {}", uri.path())})),
    )
        .into_response()
}

/// One step of a response body.
pub(crate) enum Step {
    Data(Bytes),
    Sleep(Duration),
    /// Drop the connection without finishing the body.
    Abort,
}

/// A body that plays the steps; `Abort` makes hyper drop the connection.
pub(crate) fn body_from_steps(steps: Vec<Step>) -> Body {
    let stream = futures::stream::unfold(steps.into_iter(), |mut steps| async move {
        loop {
            match steps.next()? {
                Step::Data(bytes) => return Some((Ok(bytes), steps)),
                Step::Sleep(d) => tokio::time::sleep(d).await,
                Step::Abort => {
                    // Let hyper flush what was sent before the connection goes.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    return Some((Err(std::io::Error::other("fake model: connection cut by script")), steps));
                }
            }
        }
    });
    Body::from_stream(stream)
}

/// The steps of a streamed response: `events` with the reply's fault applied.
/// `garbage(n)` renders a malformed event in place of event `n`; `error(kind)` renders the
/// format's in-stream error.
pub(crate) fn stream_steps(
    events: Vec<Bytes>,
    reply: &Reply,
    garbage: impl FnOnce(usize) -> Bytes,
    error: impl FnOnce(ErrorKind) -> Bytes,
) -> Vec<Step> {
    let mut steps = Vec::with_capacity(events.len() * 2 + 3);
    let limit = match reply.fault {
        None => events.len(),
        Some(
            StreamFault::Cut { after_events }
            | StreamFault::Malformed { after_events }
            | StreamFault::Stall { after_events, .. }
            | StreamFault::MidStreamError { after_events, .. },
        ) => after_events.min(events.len().saturating_sub(1)),
    };
    for (i, event) in events.into_iter().take(limit).enumerate() {
        if i > 0 && !reply.event_delay.is_zero() {
            steps.push(Step::Sleep(reply.event_delay));
        }
        steps.push(Step::Data(event));
    }
    match reply.fault {
        None => {}
        Some(StreamFault::Cut { .. }) => steps.push(Step::Abort),
        Some(StreamFault::Malformed { .. }) => steps.push(Step::Data(garbage(limit))),
        Some(StreamFault::Stall { stall_ms, .. }) => {
            steps.push(Step::Sleep(Duration::from_millis(stall_ms)));
            steps.push(Step::Abort);
        }
        Some(StreamFault::MidStreamError { error: kind, .. }) => {
            steps.push(Step::Data(error(kind)));
        }
    }
    steps
}

/// The steps of a non-streamed body with a fault (mid-stream errors are handled by the
/// format, as an HTTP error): cut sends half the body then drops the connection; malformed
/// sends half the body and garbage; stall waits `stall_ms` then drops the connection.
pub(crate) fn plain_steps(body: Bytes, fault: Option<StreamFault>) -> Vec<Step> {
    let half = body.slice(..body.len() / 2);
    match fault {
        None | Some(StreamFault::MidStreamError { .. }) => vec![Step::Data(body)],
        Some(StreamFault::Cut { .. }) => vec![Step::Data(half), Step::Abort],
        Some(StreamFault::Malformed { .. }) => {
            vec![Step::Data(half), Step::Data(Bytes::from_static(b"\x00<garbage"))]
        }
        Some(StreamFault::Stall { stall_ms, .. }) => {
            vec![Step::Sleep(Duration::from_millis(stall_ms)), Step::Abort]
        }
    }
}

/// Splits `text` into pieces of at most `max_chars` characters, and into at least two
/// pieces when it has two characters or more.
pub(crate) fn split_chunks(text: &str, max_chars: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    if chars.is_empty() {
        return Vec::new();
    }
    let max = max_chars.max(1);
    let size = if chars.len() <= max && chars.len() >= 2 { chars.len().div_ceil(2) } else { max };
    chars.chunks(size).map(|c| c.iter().collect()).collect()
}

/// Seconds since the epoch, for `created` fields.
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The compact JSON of `value` (infallible for `Value`).
pub(crate) fn to_json(value: &Value) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn chunks() {
        assert_eq!(split_chunks("", 4), Vec::<String>::new());
        assert_eq!(split_chunks("a", 4), vec!["a"]);
        assert_eq!(split_chunks("abc", 4), vec!["ab", "c"]);
        assert_eq!(split_chunks("abcdefghij", 4), vec!["abcd", "efgh", "ij"]);
        assert_eq!(split_chunks("ééé", 16), vec!["éé", "é"]);
    }
}
