//! A fake Slack Web API for tests: [`FakeSlack`].
//!
//! An HTTP server on `127.0.0.1:0` that speaks the Slack Web API wire format (`POST
//! /api/{method}`, JSON or form-encoded arguments, `{"ok": true|false, "error": ...}`
//! answers, `429` + `Retry-After` when rate-limited), serves the external upload flow and
//! `url_private` downloads, and records every call so tests can assert on requests.
//!
//! Like the real API it checks the bearer token (the bot token for every method, the
//! app-level token for `apps.connections.open`) and answers `not_authed`, `invalid_auth`
//! or `not_allowed_token_type`; and the methods Slack only takes form-encoded
//! (`files.getUploadURLExternal`, `users.info`) ignore a JSON body, as Slack does.
//!
//! Besides the Web API methods, two pseudo-methods are recorded in [`FakeSlack::calls`]:
//! [`UPLOAD_URL`] (the bytes posted to an upload URL; the body records `file_id` and
//! `length`) and [`URL_PRIVATE`] (a file download; the body records `file`).

use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use bytes::Bytes;
use serde_json::{Map, Value, json};
use tokio::sync::watch;

/// The bot token [`FakeSlack::start`] accepts.
pub const BOT_TOKEN: &str = "xoxb-test";
/// The app-level token [`FakeSlack::start`] accepts for `apps.connections.open`.
pub const APP_TOKEN: &str = "xapp-test";
/// `auth.test`'s `user_id`.
pub const BOT_USER_ID: &str = "U0BOT";
/// `auth.test`'s `team_id`.
pub const TEAM_ID: &str = "T0TEAM";
/// `auth.test`'s `bot_id`.
pub const BOT_ID: &str = "B0BOT";
/// The pseudo-method recorded for bytes posted to an upload URL.
pub const UPLOAD_URL: &str = "upload_url";
/// The pseudo-method recorded for a `url_private` download.
pub const URL_PRIVATE: &str = "url_private";

/// Methods Slack takes only as form fields or query parameters: a JSON body is ignored.
const FORM_ONLY: &[&str] = &["files.getUploadURLExternal", "users.info"];

/// The methods the fake answers; anything else is `unknown_method`.
const KNOWN: &[&str] = &[
    "auth.test",
    "chat.postMessage",
    "reactions.add",
    "files.getUploadURLExternal",
    "files.completeUploadExternal",
    "users.info",
    "apps.connections.open",
];

/// The largest upload the fake accepts.
const MAX_UPLOAD: usize = 64 * 1024 * 1024;

/// One call the fake received, in arrival order.
#[derive(Debug, Clone, PartialEq)]
pub struct SlackCall {
    /// The Web API method (`chat.postMessage`, ...), or [`UPLOAD_URL`] / [`URL_PRIVATE`].
    pub method: String,
    /// The bearer token of the `Authorization` header (or a `token` form field).
    pub token: Option<String>,
    /// The arguments: the JSON body, or the form fields and query parameters as a JSON
    /// object of strings.
    pub body: Value,
    /// The request's `Content-Type`.
    pub content_type: Option<String>,
    /// The HTTP status the fake answered with (200 also for `ok: false`).
    pub status: u16,
    /// When the request arrived.
    pub at: Instant,
}

impl SlackCall {
    /// A string argument of the body.
    pub fn arg(&self, name: &str) -> Option<&str> {
        self.body.get(name).and_then(Value::as_str)
    }
}

/// A file shared with `files.completeUploadExternal`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadedFile {
    pub id: String,
    /// The filename given to `files.getUploadURLExternal`.
    pub filename: String,
    /// The bytes posted to the upload URL.
    pub bytes: Vec<u8>,
    /// `channel_id`.
    pub channel: Option<String>,
    pub thread_ts: Option<String>,
    pub initial_comment: Option<String>,
    pub title: Option<String>,
}

/// A fake Slack Web API; dropping it stops the server.
pub struct FakeSlack {
    addr: SocketAddr,
    shared: Arc<Shared>,
    served: crate::served::Served,
}

impl std::fmt::Debug for FakeSlack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeSlack").field("addr", &self.addr).finish_non_exhaustive()
    }
}

struct Upload {
    filename: String,
    length: u64,
    bytes: Option<Vec<u8>>,
}

#[derive(Default)]
struct FakeState {
    calls: Vec<SlackCall>,
    /// Per method: how many more calls answer 429, and the `Retry-After` seconds.
    rate_limits: HashMap<String, (usize, u64)>,
    /// Per method: how many more calls answer the HTTP status.
    http_errors: HashMap<String, (usize, u16)>,
    /// Per method: the `ok: false` answer every call gets.
    failures: HashMap<String, Value>,
    /// `url_private` files by key.
    files: HashMap<String, Vec<u8>>,
    uploads: HashMap<String, Upload>,
    uploaded: Vec<UploadedFile>,
    reactions: HashSet<(String, String, String)>,
    users: HashMap<String, String>,
    socket_url: Option<String>,
    next_ts: u64,
    next_file: u64,
}

struct Shared {
    state: Mutex<FakeState>,
    /// Bumped whenever a call is recorded.
    changed: watch::Sender<u64>,
    bot_token: String,
    app_token: String,
    /// `http://127.0.0.1:PORT`
    base: String,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, FakeState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn record(&self, state: &mut FakeState, call: SlackCall) {
        tracing::debug!(method = %call.method, status = call.status, "fake slack: call");
        state.calls.push(call);
        self.changed.send_modify(|n| *n += 1);
    }
}

impl FakeSlack {
    /// Starts the fake on `127.0.0.1:0` with the tokens [`BOT_TOKEN`] and [`APP_TOKEN`].
    ///
    /// # Panics
    ///
    /// When no local port can be bound.
    pub async fn start() -> FakeSlack {
        Self::start_with_tokens(BOT_TOKEN, APP_TOKEN).await
    }

    /// Starts the fake on `127.0.0.1:0`, accepting these tokens.
    ///
    /// # Panics
    ///
    /// When no local port can be bound.
    pub async fn start_with_tokens(bot_token: &str, app_token: &str) -> FakeSlack {
        let listener = match tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await {
            Ok(listener) => listener,
            Err(e) => panic!("fake slack: cannot bind 127.0.0.1:0: {e}"),
        };
        let addr = match listener.local_addr() {
            Ok(addr) => addr,
            Err(e) => panic!("fake slack: no local address: {e}"),
        };
        let shared = Arc::new(Shared {
            state: Mutex::new(FakeState { next_ts: 1, next_file: 1, ..FakeState::default() }),
            changed: watch::Sender::new(0),
            bot_token: bot_token.to_owned(),
            app_token: app_token.to_owned(),
            base: format!("http://{addr}"),
        });
        let app = Router::new()
            .route("/api/{method}", any(api))
            .route("/upload/v1/{file_id}", post(upload).layer(DefaultBodyLimit::max(MAX_UPLOAD)))
            .route("/files-pri/{key}/{name}", get(download))
            .route("/signin", get(signin))
            .with_state(shared.clone());
        let served = crate::served::Served::start(listener, addr, app, "fake slack");
        FakeSlack { addr, shared, served }
    }

    /// The Web API base URL, `http://127.0.0.1:PORT/api` (methods are `{api_url}/{method}`).
    pub fn api_url(&self) -> String {
        format!("{}/api", self.shared.base)
    }

    /// The bot token the fake accepts.
    pub fn bot_token(&self) -> &str {
        &self.shared.bot_token
    }

    /// The app-level token the fake accepts for `apps.connections.open`.
    pub fn app_token(&self) -> &str {
        &self.shared.app_token
    }

    /// Every call so far, in arrival order.
    pub fn calls(&self) -> Vec<SlackCall> {
        self.shared.lock().calls.clone()
    }

    /// The calls to `method` so far, in arrival order.
    pub fn calls_to(&self, method: &str) -> Vec<SlackCall> {
        self.shared.lock().calls.iter().filter(|c| c.method == method).cloned().collect()
    }

    /// The first call to `method` (already recorded or still to come) that satisfies
    /// `predicate`; `None` when `timeout` passes first.
    pub async fn wait_for_call(
        &self,
        method: &str,
        predicate: impl Fn(&SlackCall) -> bool,
        timeout: Duration,
    ) -> Option<SlackCall> {
        // Subscribing before looking means no call recorded in between is missed.
        let mut changes = self.shared.changed.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let found = self.shared.lock().calls.iter().find(|c| c.method == method && predicate(c)).cloned();
            if found.is_some() {
                return found;
            }
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => return None,
            }
        }
    }

    /// The next `times` calls to `method` answer `429 Too Many Requests` with
    /// `Retry-After: retry_after_secs`.
    pub fn rate_limit(&self, method: &str, times: usize, retry_after_secs: u64) {
        self.shared.lock().rate_limits.insert(method.to_owned(), (times, retry_after_secs));
    }

    /// The next `times` calls to `method` answer HTTP `status` (e.g. 500, 503) with a
    /// plain-text body.
    pub fn http_error(&self, method: &str, times: usize, status: u16) {
        self.shared.lock().http_errors.insert(method.to_owned(), (times, status));
    }

    /// Calls to `method` answer `{"ok": false, "error": error}` from now on.
    pub fn fail(&self, method: &str, error: &str) {
        self.fail_with(method, json!({"ok": false, "error": error}));
    }

    /// Calls to `method` answer `response` (HTTP 200) from now on, e.g.
    /// `{"ok": false, "error": "missing_scope", "needed": "chat:write"}`.
    pub fn fail_with(&self, method: &str, response: Value) {
        self.shared.lock().failures.insert(method.to_owned(), response);
    }

    /// Calls to `method` are answered normally again.
    pub fn recover(&self, method: &str) {
        self.shared.lock().failures.remove(method);
    }

    /// Serves `bytes` at a `url_private`-like URL (which requires the bot token, as
    /// Slack's does) and returns that URL.
    pub fn add_file(&self, name: &str, bytes: Vec<u8>) -> String {
        let mut state = self.shared.lock();
        let key = format!("{TEAM_ID}-F{:09}", state.next_file);
        state.next_file += 1;
        state.files.insert(key.clone(), bytes);
        format!("{}/files-pri/{key}/{}", self.shared.base, encode_path_segment(name))
    }

    /// The files shared with `files.completeUploadExternal`, in order.
    pub fn uploaded_files(&self) -> Vec<UploadedFile> {
        self.shared.lock().uploaded.clone()
    }

    /// The name `users.info` gives `user` (default `Person <id>`).
    pub fn set_user_name(&self, user: &str, real_name: &str) {
        self.shared.lock().users.insert(user.to_owned(), real_name.to_owned());
    }

    /// The WebSocket URL `apps.connections.open` answers with.
    pub fn set_socket_url(&self, url: String) {
        self.shared.lock().socket_url = Some(url);
    }

    /// Stops accepting connections and waits (briefly) for open ones to finish.
    pub async fn shutdown(mut self) {
        self.served.stop().await;
    }
}

/// `POST /api/{method}`.
async fn api(
    State(shared): State<Arc<Shared>>,
    Path(method): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let at = Instant::now();
    let content_type = header_str(&headers, header::CONTENT_TYPE);
    let is_json = content_type.as_deref().is_some_and(|c| c.starts_with("application/json"));

    // The arguments: query parameters, then form fields or the JSON body.
    let mut args = Map::new();
    if let Some(query) = uri.query() {
        for (k, v) in parse_form(query.as_bytes()) {
            args.insert(k, Value::String(v));
        }
    }
    let mut invalid_json = false;
    let mut form_token = None;
    if is_json {
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(fields)) => {
                // Slack ignores a JSON body on the methods it takes only as form fields.
                if !FORM_ONLY.contains(&method.as_str()) {
                    args.extend(fields);
                }
            }
            Ok(_) | Err(_) => invalid_json = !body.is_empty(),
        }
    } else {
        for (k, v) in parse_form(&body) {
            if k == "token" {
                form_token = Some(v);
            } else {
                args.insert(k, Value::String(v));
            }
        }
    }
    let token = bearer(&headers).or(form_token);
    // Record what was sent (a JSON body as sent, even when Slack would ignore it).
    let recorded_body = match (is_json, serde_json::from_slice::<Value>(&body)) {
        (true, Ok(v)) => v,
        _ => Value::Object(args.clone()),
    };

    let mut state = shared.lock();
    let mut call =
        SlackCall { method: method.clone(), token: token.clone(), body: recorded_body, content_type, status: 200, at };

    if let Some((remaining, secs)) = state.rate_limits.get_mut(&method)
        && *remaining > 0
    {
        *remaining -= 1;
        let secs = *secs;
        call.status = 429;
        shared.record(&mut state, call);
        let mut response =
            (StatusCode::TOO_MANY_REQUESTS, axum::Json(json!({"ok": false, "error": "ratelimited"}))).into_response();
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        return response;
    }
    if let Some((remaining, status)) = state.http_errors.get_mut(&method)
        && *remaining > 0
    {
        *remaining -= 1;
        let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        call.status = status.as_u16();
        shared.record(&mut state, call);
        return (status, "fake slack: injected server error").into_response();
    }

    let answer = if !KNOWN.contains(&method.as_str()) {
        err("unknown_method")
    } else if invalid_json {
        err("invalid_json")
    } else if let Some(e) = check_token(&shared, &method, token.as_deref()) {
        err(e)
    } else if let Some(failure) = state.failures.get(&method) {
        failure.clone()
    } else {
        answer(&shared, &mut state, &method, &args)
    };
    shared.record(&mut state, call);
    axum::Json(answer).into_response()
}

/// The token error Slack would answer, if any.
fn check_token(shared: &Shared, method: &str, token: Option<&str>) -> Option<&'static str> {
    let (expected, other) = if method == "apps.connections.open" {
        (&shared.app_token, &shared.bot_token)
    } else {
        (&shared.bot_token, &shared.app_token)
    };
    match token {
        None | Some("") => Some("not_authed"),
        Some(t) if t == expected => None,
        Some(t) if t == other => Some("not_allowed_token_type"),
        Some(_) => Some("invalid_auth"),
    }
}

fn answer(shared: &Shared, state: &mut FakeState, method: &str, args: &Map<String, Value>) -> Value {
    let arg = |name: &str| args.get(name).and_then(value_str).filter(|s| !s.is_empty());
    match method {
        "auth.test" => json!({
            "ok": true,
            "url": "https://fake-team.slack.com/",
            "team": "Fake Team",
            "user": "rswe",
            "team_id": TEAM_ID,
            "user_id": BOT_USER_ID,
            "bot_id": BOT_ID,
            "is_enterprise_install": false,
        }),
        "chat.postMessage" => {
            let Some(channel) = arg("channel") else { return err("channel_not_found") };
            let text = arg("text");
            if text.is_none() && args.get("blocks").is_none() {
                return err("no_text");
            }
            let ts = next_ts(state);
            let mut message = json!({
                "type": "message",
                "user": BOT_USER_ID,
                "bot_id": BOT_ID,
                "text": text.unwrap_or_default(),
                "ts": ts,
            });
            if let Some(thread_ts) = arg("thread_ts") {
                message["thread_ts"] = Value::String(thread_ts);
            }
            json!({"ok": true, "channel": channel, "ts": ts, "message": message})
        }
        "reactions.add" => {
            let (Some(channel), Some(timestamp)) = (arg("channel"), arg("timestamp")) else {
                return err("no_item_specified");
            };
            let Some(name) = arg("name") else { return err("invalid_name") };
            if state.reactions.insert((channel, timestamp, name)) {
                json!({"ok": true})
            } else {
                err("already_reacted")
            }
        }
        "files.getUploadURLExternal" => {
            let (Some(filename), Some(length)) = (arg("filename"), arg("length")) else {
                return err("invalid_arguments");
            };
            let Ok(length) = length.parse::<u64>() else { return err("invalid_arguments") };
            if length == 0 {
                return err("missing_argument");
            }
            let file_id = format!("F{:010}", state.next_file);
            state.next_file += 1;
            state.uploads.insert(file_id.clone(), Upload { filename, length, bytes: None });
            json!({"ok": true, "upload_url": format!("{}/upload/v1/{file_id}", shared.base), "file_id": file_id})
        }
        "files.completeUploadExternal" => {
            // An array in JSON; a JSON-encoded string as a form field.
            let files = match args.get("files") {
                Some(Value::String(s)) => serde_json::from_str::<Value>(s).ok(),
                Some(v) => Some(v.clone()),
                None => None,
            };
            let Some(Value::Array(files)) = files else { return err("invalid_arguments") };
            if files.is_empty() {
                return err("invalid_arguments");
            }
            let mut completed = Vec::new();
            for file in &files {
                let Some(id) = file.get("id").and_then(Value::as_str) else { return err("invalid_arguments") };
                match state.uploads.get(id) {
                    Some(Upload { bytes: Some(_), .. }) => {}
                    _ => return err("file_not_found"),
                }
                completed.push((id.to_owned(), file.get("title").and_then(Value::as_str).map(str::to_owned)));
            }
            let mut answered = Vec::new();
            for (id, title) in completed {
                let Some(upload) = state.uploads.remove(&id) else { return err("file_not_found") };
                let shown_title = title.clone().unwrap_or_else(|| upload.filename.clone());
                answered.push(json!({"id": id, "name": upload.filename, "title": shown_title}));
                state.uploaded.push(UploadedFile {
                    id,
                    filename: upload.filename,
                    bytes: upload.bytes.unwrap_or_default(),
                    channel: arg("channel_id"),
                    thread_ts: arg("thread_ts"),
                    initial_comment: arg("initial_comment"),
                    title,
                });
            }
            json!({"ok": true, "files": answered})
        }
        "users.info" => {
            let Some(user) = arg("user") else { return err("user_not_found") };
            let real_name = state.users.get(&user).cloned().unwrap_or_else(|| format!("Person {user}"));
            json!({
                "ok": true,
                "user": {
                    "id": user,
                    "team_id": TEAM_ID,
                    "name": user.to_lowercase(),
                    "real_name": real_name,
                    "profile": {"real_name": real_name, "display_name": ""},
                },
            })
        }
        "apps.connections.open" => match &state.socket_url {
            Some(url) => json!({"ok": true, "url": url}),
            None => err("no socket url configured"),
        },
        _ => err("unknown_method"),
    }
}

/// `POST /upload/v1/{file_id}`: the raw bytes of an upload started with
/// `files.getUploadURLExternal`.
async fn upload(
    State(shared): State<Arc<Shared>>,
    Path(file_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let at = Instant::now();
    let mut state = shared.lock();
    let mut call = SlackCall {
        method: UPLOAD_URL.to_owned(),
        token: bearer(&headers),
        body: json!({"file_id": file_id, "length": body.len()}),
        content_type: header_str(&headers, header::CONTENT_TYPE),
        status: 200,
        at,
    };
    let response = match state.uploads.get_mut(&file_id) {
        None => (StatusCode::NOT_FOUND, "no such upload".to_owned()),
        Some(upload) if upload.length != body.len() as u64 => (
            StatusCode::BAD_REQUEST,
            format!(
                "expected {} bytes (the length given to files.getUploadURLExternal), got {}",
                upload.length,
                body.len()
            ),
        ),
        Some(upload) => {
            upload.bytes = Some(body.to_vec());
            (StatusCode::OK, format!("OK - {}", body.len()))
        }
    };
    call.status = response.0.as_u16();
    shared.record(&mut state, call);
    response.into_response()
}

/// `GET /files-pri/{key}/{name}`: a file a person attached; without the bot token Slack
/// redirects to its sign-in page.
async fn download(
    State(shared): State<Arc<Shared>>,
    Path((key, _name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let at = Instant::now();
    let token = bearer(&headers);
    let mut state = shared.lock();
    let mut call = SlackCall {
        method: URL_PRIVATE.to_owned(),
        token: token.clone(),
        body: json!({"file": key}),
        content_type: None,
        status: 200,
        at,
    };
    let response = if token.as_deref() != Some(shared.bot_token.as_str()) {
        call.status = 302;
        let mut response = StatusCode::FOUND.into_response();
        if let Ok(location) = HeaderValue::from_str("/signin?redir=%2Ffiles-pri") {
            response.headers_mut().insert(header::LOCATION, location);
        }
        response
    } else {
        match state.files.get(&key) {
            Some(bytes) => ([(header::CONTENT_TYPE, "application/octet-stream")], bytes.clone()).into_response(),
            None => {
                call.status = 404;
                (StatusCode::NOT_FOUND, "file not found").into_response()
            }
        }
    };
    shared.record(&mut state, call);
    response
}

async fn signin() -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        "<!DOCTYPE html><html><head><title>Slack</title></head><body>Sign in to your workspace</body></html>",
    )
        .into_response()
}

fn err(error: &str) -> Value {
    json!({"ok": false, "error": error})
}

/// `1700000000.000100`, `1700000000.000200`, ...
fn next_ts(state: &mut FakeState) -> String {
    let micros = state.next_ts * 100;
    state.next_ts += 1;
    format!("{}.{:06}", 1_700_000_000 + micros / 1_000_000, micros % 1_000_000)
}

/// A string argument; JSON numbers and booleans as their text.
fn value_str(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<String> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_owned())
}

/// `application/x-www-form-urlencoded` pairs.
fn parse_form(input: &[u8]) -> Vec<(String, String)> {
    input
        .split(|&b| b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let mut parts = pair.splitn(2, |&b| b == b'=');
            let key = parts.next().unwrap_or_default();
            let value = parts.next().unwrap_or_default();
            (crate::encoding::percent_decode(key, true), crate::encoding::percent_decode(value, true))
        })
        .collect()
}

fn encode_path_segment(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
