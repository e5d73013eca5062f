//! The Slack Web API client: posting, reactions, uploads, downloads, Socket Mode URLs.
//!
//! Every call is `POST {base}/{method}` with the token as `Authorization: Bearer`, JSON
//! arguments where Slack takes them and form fields where it requires them
//! (`files.getUploadURLExternal`, `users.info`, and the argument-less methods). Slack's
//! `{"ok": false, "error": ...}` becomes [`SlackError::Api`], whose message says what to do.
//!
//! Rate limits are honoured: a `429` waits its `Retry-After` (at most a minute) and tries
//! again; server errors and failed connections are retried after a short exponential
//! backoff. A call makes at most [`MAX_ATTEMPTS`] attempts and waits at most
//! [`MAX_TOTAL_WAIT`] between them. A request that may have reached Slack (a timeout, a
//! dropped connection) is only retried for methods that are safe to repeat, so a message is
//! never posted twice.
//!
//! Calls that post into a channel (messages, uploads, reactions) are serialized per
//! channel in the order they were made: one channel's messages never overtake each other,
//! while different channels proceed in parallel (one channel being rate-limited does not
//! hold up another).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use reqwest::{Client, Method, StatusCode, Url};
use serde_json::{Value, json};
use tokio::sync::OwnedMutexGuard;

/// Slack's Web API.
pub const DEFAULT_API_URL: &str = "https://slack.com/api";

/// The longest a connection may take to open.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest a Web API call (one attempt, response included) may take.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest an upload or a download (one attempt) may take.
pub const TRANSFER_TIMEOUT: Duration = Duration::from_secs(120);
/// Attempts per call, the first included.
pub const MAX_ATTEMPTS: u32 = 5;
/// The longest one `Retry-After` is waited.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// The longest one call waits between its attempts, in all.
pub const MAX_TOTAL_WAIT: Duration = Duration::from_secs(120);
/// The first backoff after a server error or a failed connection; it doubles each time.
const BACKOFF_START: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(8);
/// The largest Web API answer read.
const MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;
/// Cached display names, at most.
const MAX_CACHED_USERS: usize = 2048;

/// Who the bot is (`auth.test`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BotIdentity {
    /// The bot user's id (`U…`): how mentions of the bot look (`<@U…>`).
    pub user_id: String,
    pub team_id: String,
    /// The bot's id (`B…`): messages the bot posted carry it.
    pub bot_id: Option<String>,
}

/// A failed Slack call; the message says what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum SlackError {
    /// Slack answered `ok: false`.
    #[error("Slack {method} failed: {error}{hint}", hint = api_hint(.method, .error, .needed.as_deref()))]
    Api {
        method: String,
        /// Slack's `error`, e.g. `channel_not_found`, `not_in_channel`, `invalid_auth`.
        error: String,
        /// For `missing_scope`: the scope(s) the call needs.
        needed: Option<String>,
    },
    /// An HTTP status other than success (after the retries, for a 5xx).
    #[error("Slack {method} answered HTTP {status}{hint}", hint = http_hint(.status))]
    Http { method: String, status: u16 },
    /// No answer: the connection failed or timed out.
    #[error("cannot reach Slack ({method}): {message}")]
    Network { method: String, message: String },
    /// Still rate-limited after the retries.
    #[error("Slack {method} is rate-limited: Slack asks to wait {}s more; try again later", .retry_after.as_secs())]
    RateLimited { method: String, retry_after: Duration },
    /// A file larger than allowed.
    #[error("the file is larger than {max_bytes} bytes")]
    TooLarge { max_bytes: usize },
    /// An answer that is not what Slack answers.
    #[error("Slack {method} answered unexpectedly: {message}")]
    BadResponse { method: String, message: String },
    /// A configuration (or argument) the client cannot work with.
    #[error("Slack configuration: {0}")]
    Config(String),
}

impl SlackError {
    /// Slack's `error` for [`SlackError::Api`].
    pub fn api_error(&self) -> Option<&str> {
        match self {
            SlackError::Api { error, .. } => Some(error),
            _ => None,
        }
    }

    /// True when the token is wrong, revoked or lacks a scope: retrying cannot help.
    pub fn is_auth(&self) -> bool {
        matches!(
            self.api_error(),
            Some(
                "invalid_auth"
                    | "not_authed"
                    | "account_inactive"
                    | "token_revoked"
                    | "token_expired"
                    | "missing_scope"
                    | "not_allowed_token_type"
            )
        )
    }
}

/// What to do about Slack's `error` (empty when there is nothing to add).
fn api_hint(method: &str, error: &str, needed: Option<&str>) -> String {
    let app_token = method == "apps.connections.open";
    let hint: String = match error {
        "not_in_channel" => "the bot is not in the channel: invite the bot to the channel (/invite @rswe)".into(),
        "channel_not_found" => {
            "the channel does not exist or the bot cannot see it: check the channel id, and for a private channel \
             invite the bot to the channel (/invite @rswe)"
                .into()
        }
        "is_archived" => "the channel is archived: unarchive it or use another channel".into(),
        "invalid_auth" | "not_authed" | "account_inactive" | "token_revoked" | "token_expired" if app_token => {
            "Slack does not accept the app-level token: check SLACK_APP_TOKEN (an xapp- token with the \
             connections:write scope, from Basic Information > App-Level Tokens)"
                .into()
        }
        "invalid_auth" | "not_authed" | "account_inactive" | "token_revoked" | "token_expired" => {
            "Slack does not accept the bot token: check SLACK_BOT_TOKEN (the xoxb- Bot User OAuth Token from \
             OAuth & Permissions; reinstall the app if it was revoked)"
                .into()
        }
        "not_allowed_token_type" if app_token => {
            "SLACK_APP_TOKEN must be an app-level token (xapp-...), not a bot token".into()
        }
        "not_allowed_token_type" => "SLACK_BOT_TOKEN must be a bot token (xoxb-...)".into(),
        "missing_scope" => format!(
            "the app lacks the {} scope: add it to the app (OAuth & Permissions > Bot Token Scopes) and reinstall \
             the app to the workspace",
            needed.unwrap_or("required")
        ),
        "msg_too_long" => "the message is too long for Slack: split it".into(),
        "no_text" => "the message is empty".into(),
        "restricted_action" | "restricted_action_read_only_channel" | "restricted_action_thread_only_channel" => {
            "a workspace or channel setting does not let the bot post here".into()
        }
        "ekm_access_denied" => "workspace administrators have suspended posting".into(),
        "file_uploads_disabled" | "file_uploads_except_images_disabled" | "file_upload_size_restricted" => {
            "the workspace's settings forbid this upload".into()
        }
        "missing_argument" if method == "files.getUploadURLExternal" => "Slack does not accept empty files".into(),
        "message_not_found" => "the message was deleted or the bot cannot see it".into(),
        "ratelimited" => "Slack is rate-limiting the app: try again later".into(),
        "internal_error" | "fatal_error" | "service_unavailable" | "request_timeout" => {
            "a problem on Slack's side: try again later (https://slack-status.com)".into()
        }
        _ => String::new(),
    };
    if hint.is_empty() { hint } else { format!(" ({hint})") }
}

fn http_hint(status: &u16) -> &'static str {
    match *status {
        401 | 403 => " (check SLACK_BOT_TOKEN)",
        404 => " (check SLACK_API_URL)",
        500..=599 => " (a problem on Slack's side: try again later)",
        _ => "",
    }
}

/// A Slack Web API client; cheap to clone (the clones share connections and the
/// per-channel order).
#[derive(Clone)]
pub struct SlackApi {
    inner: Arc<Inner>,
}

struct Inner {
    http: Client,
    /// Without a trailing slash.
    base: String,
    /// Where files and uploads may be fetched from with the bot token, besides `*.slack.com`.
    base_origin: String,
    /// `Bearer xoxb-...`, marked sensitive.
    bot_auth: HeaderValue,
    channels: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
    users: Mutex<HashMap<String, String>>,
}

impl std::fmt::Debug for SlackApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlackApi").field("base_url", &self.inner.base).finish_non_exhaustive()
    }
}

/// What a request sends.
enum Payload {
    Json(Value),
    Form(Vec<(&'static str, String)>),
    Bytes(Bytes),
    None,
}

/// One HTTP exchange, retried as [`SlackApi::send`] says.
struct Exchange<'a> {
    /// The Web API method, or what the request is (`file upload`), for errors and logs.
    label: &'a str,
    method: Method,
    url: &'a str,
    auth: Option<&'a HeaderValue>,
    payload: Payload,
    timeout: Duration,
    /// Safe to send twice: retried even when the first attempt may have reached Slack.
    idempotent: bool,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `Bearer <token>`, validated and marked sensitive (never shown by `Debug`).
fn bearer(token: &str, variable: &str) -> Result<HeaderValue, SlackError> {
    let token = token.trim();
    if token.is_empty() {
        return Err(SlackError::Config(format!("{variable} is empty")));
    }
    let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| SlackError::Config(format!("{variable} contains characters a token cannot contain")))?;
    value.set_sensitive(true);
    Ok(value)
}

impl SlackApi {
    /// A client for the Web API at `base_url` (`SLACK_API_URL`, by default
    /// [`DEFAULT_API_URL`]) acting with `bot_token` (`SLACK_BOT_TOKEN`, `xoxb-…`).
    pub fn new(base_url: &str, bot_token: &str) -> Result<SlackApi, SlackError> {
        let base = base_url.trim().trim_end_matches('/');
        let parsed =
            Url::parse(base).map_err(|e| SlackError::Config(format!("SLACK_API_URL {base:?} is not a URL: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.cannot_be_a_base() {
            return Err(SlackError::Config(format!("SLACK_API_URL {base:?} must be an http(s) URL")));
        }
        if bot_token.trim().starts_with("xapp-") {
            return Err(SlackError::Config(
                "SLACK_BOT_TOKEN is an app-level token (xapp-...); it must be the bot token (xoxb-...) from \
                 OAuth & Permissions"
                    .into(),
            ));
        }
        let bot_auth = bearer(bot_token, "SLACK_BOT_TOKEN")?;
        let http = Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(CALL_TIMEOUT)
            .user_agent(concat!("rswe/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SlackError::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(SlackApi {
            inner: Arc::new(Inner {
                http,
                base: base.to_owned(),
                base_origin: parsed.origin().ascii_serialization(),
                bot_auth,
                channels: Arc::default(),
                users: Mutex::default(),
            }),
        })
    }

    /// The Web API base URL, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.inner.base
    }

    /// `auth.test`: who the bot is.
    pub async fn auth_test(&self) -> Result<BotIdentity, SlackError> {
        let method = "auth.test";
        let answer = self.call(method, None, Payload::Form(Vec::new()), true).await?;
        Ok(BotIdentity {
            user_id: required_str(method, &answer, "user_id")?,
            team_id: required_str(method, &answer, "team_id")?,
            bot_id: answer.get("bot_id").and_then(Value::as_str).map(str::to_owned),
        })
    }

    /// `chat.postMessage`: `text` (mrkdwn) in `channel`, in the thread of `thread_ts` when
    /// given, without link previews; the new message's `ts`.
    pub async fn post_message(&self, channel: &str, thread_ts: Option<&str>, text: &str) -> Result<String, SlackError> {
        let method = "chat.postMessage";
        let _turn = self.channel_turn(channel).await;
        let mut body = json!({"channel": channel, "text": text, "mrkdwn": true, "unfurl_links": false});
        if let Some(thread_ts) = thread_ts {
            body["thread_ts"] = Value::from(thread_ts);
        }
        let answer = self.call(method, None, Payload::Json(body), false).await?;
        required_str(method, &answer, "ts")
    }

    /// `reactions.add`: the emoji `name` (with or without colons) on the message `ts`;
    /// `already_reacted` is success.
    pub async fn add_reaction(&self, channel: &str, ts: &str, name: &str) -> Result<(), SlackError> {
        let _turn = self.channel_turn(channel).await;
        let body = json!({"channel": channel, "timestamp": ts, "name": name.trim_matches(':')});
        match self.call("reactions.add", None, Payload::Json(body), true).await {
            Ok(_) => Ok(()),
            Err(SlackError::Api { error, .. }) if error == "already_reacted" => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Shares a file in `channel` (in the thread of `thread_ts` when given) with an optional
    /// comment, the way Slack wants it now: `files.getUploadURLExternal`, the bytes posted to
    /// the URL it gives, then `files.completeUploadExternal`.
    ///
    /// Slack shares the file asynchronously: it may appear in the channel a moment after
    /// this returns (and after a message posted right after).
    pub async fn upload_file(
        &self,
        channel: &str,
        thread_ts: Option<&str>,
        filename: &str,
        bytes: Vec<u8>,
        comment: Option<&str>,
    ) -> Result<(), SlackError> {
        let _turn = self.channel_turn(channel).await;

        let method = "files.getUploadURLExternal";
        let form = vec![("filename", filename.to_owned()), ("length", bytes.len().to_string())];
        let answer = self.call(method, None, Payload::Form(form), true).await?;
        let upload_url = required_str(method, &answer, "upload_url")?;
        let file_id = required_str(method, &answer, "file_id")?;

        let label = "file upload";
        let url = Url::parse(&upload_url)
            .map_err(|e| SlackError::BadResponse { method: method.into(), message: format!("upload_url: {e}") })?;
        // The URL is pre-signed; the token goes along only to Slack itself.
        let auth = self.trusted(&url).then_some(&self.inner.bot_auth);
        let exchange = Exchange {
            label,
            method: Method::POST,
            url: url.as_str(),
            auth,
            payload: Payload::Bytes(Bytes::from(bytes)),
            timeout: TRANSFER_TIMEOUT,
            idempotent: true,
        };
        let response = self.send(exchange).await?;
        let status = response.status();
        if !status.is_success() {
            return Err(SlackError::Http { method: label.into(), status: status.as_u16() });
        }

        let mut body = json!({"files": [{"id": file_id, "title": filename}], "channel_id": channel});
        if let Some(thread_ts) = thread_ts {
            body["thread_ts"] = Value::from(thread_ts);
        }
        if let Some(comment) = comment {
            body["initial_comment"] = Value::from(comment);
        }
        self.call("files.completeUploadExternal", None, Payload::Json(body), false).await?;
        Ok(())
    }

    /// Downloads a file a person attached (its `url_private`) with the bot token, refusing
    /// more than `max_bytes`. The URL must be Slack's (`https://*.slack.com`, or the API's
    /// own origin): the bot token is never sent anywhere else.
    pub async fn download_file(&self, url: &str, max_bytes: usize) -> Result<Vec<u8>, SlackError> {
        let label = "file download";
        let parsed = Url::parse(url).map_err(|e| SlackError::Config(format!("not a file URL ({e}): {url}")))?;
        if !self.trusted(&parsed) {
            return Err(SlackError::Config(format!(
                "refusing to send the bot token to {}: not a Slack file URL",
                parsed.host_str().unwrap_or("an unknown host")
            )));
        }
        let exchange = Exchange {
            label,
            method: Method::GET,
            url: parsed.as_str(),
            auth: Some(&self.inner.bot_auth),
            payload: Payload::None,
            timeout: TRANSFER_TIMEOUT,
            idempotent: true,
        };
        let response = self.send(exchange).await?;
        let status = response.status();
        if !status.is_success() {
            return Err(SlackError::Http { method: label.into(), status: status.as_u16() });
        }
        // Without access Slack redirects to its sign-in page instead of failing.
        let html = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim_start().starts_with("text/html"));
        if html && response.url().path() != parsed.path() {
            return Err(SlackError::Api {
                method: label.into(),
                error: "missing_scope".into(),
                needed: Some("files:read".into()),
            });
        }
        read_limited(label, response, max_bytes).await
    }

    /// `apps.connections.open` with the app-level token (`SLACK_APP_TOKEN`, `xapp-…`): a
    /// Socket Mode WebSocket URL (valid for one connection, briefly).
    pub async fn open_socket_connection(&self, app_token: &str) -> Result<String, SlackError> {
        let method = "apps.connections.open";
        if app_token.trim().starts_with("xoxb-") || app_token.trim().starts_with("xoxp-") {
            return Err(SlackError::Config(
                "SLACK_APP_TOKEN must be an app-level token (xapp-..., Basic Information > App-Level Tokens, with \
                 the connections:write scope), not an OAuth token"
                    .into(),
            ));
        }
        let auth = bearer(app_token, "SLACK_APP_TOKEN")?;
        let answer = self.call(method, Some(&auth), Payload::Form(Vec::new()), true).await?;
        required_str(method, &answer, "url")
    }

    /// `users.info`: the name people see for `user` (display name, else real name, else
    /// user name), remembered.
    pub async fn user_name(&self, user: &str) -> Result<String, SlackError> {
        if let Some(name) = lock(&self.inner.users).get(user) {
            return Ok(name.clone());
        }
        let method = "users.info";
        let answer = self.call(method, None, Payload::Form(vec![("user", user.to_owned())]), true).await?;
        let info = answer.get("user").unwrap_or(&Value::Null);
        let name = [
            info.pointer("/profile/display_name"),
            info.pointer("/profile/real_name"),
            info.get("real_name"),
            info.get("name"),
        ]
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::trim)
        .find(|name| !name.is_empty())
        .unwrap_or(user)
        .to_owned();
        let mut users = lock(&self.inner.users);
        if users.len() >= MAX_CACHED_USERS {
            users.clear();
        }
        users.insert(user.to_owned(), name.clone());
        Ok(name)
    }

    /// Waits for this channel's earlier calls; the channel is this caller's until the
    /// returned turn is dropped.
    async fn channel_turn(&self, channel: &str) -> ChannelTurn {
        let mutex = lock(&self.inner.channels).entry(channel.to_owned()).or_default().clone();
        // tokio's mutex is fair: callers get the channel in the order they asked.
        let guard = mutex.clone().lock_owned().await;
        ChannelTurn { guard: Some(guard), mutex, channel: channel.to_owned(), channels: self.inner.channels.clone() }
    }

    /// May the bot token go to `url`? Slack's own hosts over https, and the API's origin.
    fn trusted(&self, url: &Url) -> bool {
        if url.origin().ascii_serialization() == self.inner.base_origin {
            return true;
        }
        url.scheme() == "https"
            && url.host_str().is_some_and(|host| host == "slack.com" || host.ends_with(".slack.com"))
    }

    /// A Web API call: its answer when `ok` is true.
    async fn call(
        &self,
        method: &str,
        auth: Option<&HeaderValue>,
        payload: Payload,
        idempotent: bool,
    ) -> Result<Value, SlackError> {
        let url = format!("{}/{method}", self.inner.base);
        let exchange = Exchange {
            label: method,
            method: Method::POST,
            url: &url,
            auth: Some(auth.unwrap_or(&self.inner.bot_auth)),
            payload,
            timeout: CALL_TIMEOUT,
            idempotent,
        };
        let response = self.send(exchange).await?;
        let status = response.status();
        let body = read_limited(method, response, MAX_ANSWER_BYTES).await?;
        let answer: Value = match serde_json::from_slice(&body) {
            Ok(answer) => answer,
            Err(_) if !status.is_success() => {
                return Err(SlackError::Http { method: method.into(), status: status.as_u16() });
            }
            Err(e) => {
                return Err(SlackError::BadResponse { method: method.into(), message: format!("not JSON: {e}") });
            }
        };
        if let Some(warning) = answer.get("warning").and_then(Value::as_str) {
            tracing::debug!(slack.method = method, warning, "slack: warning");
        }
        match answer.get("ok").and_then(Value::as_bool) {
            Some(true) => Ok(answer),
            Some(false) => {
                let error = answer.get("error").and_then(Value::as_str).unwrap_or("unknown_error").to_owned();
                let needed = answer.get("needed").and_then(Value::as_str).map(str::to_owned);
                tracing::debug!(slack.method = method, error = %error, "slack: ok false");
                Err(SlackError::Api { method: method.into(), error, needed })
            }
            None if !status.is_success() => Err(SlackError::Http { method: method.into(), status: status.as_u16() }),
            None => Err(SlackError::BadResponse { method: method.into(), message: "no \"ok\" field".into() }),
        }
    }

    /// Sends `exchange`, retrying rate limits (after `Retry-After`), server errors and
    /// failed connections (after a backoff); any other answer is returned as is.
    async fn send(&self, exchange: Exchange<'_>) -> Result<reqwest::Response, SlackError> {
        let label = exchange.label;
        let mut waited = Duration::ZERO;
        let mut backoff = BACKOFF_START;
        let mut attempt = 1;
        loop {
            let started = Instant::now();
            let result = self.request(&exchange).send().await;
            let elapsed_ms = started.elapsed().as_millis() as u64;
            let last = attempt >= MAX_ATTEMPTS;
            let wait = match result {
                Ok(response) if response.status() == StatusCode::TOO_MANY_REQUESTS => {
                    let retry_after = retry_after(&response);
                    if last || waited + retry_after > MAX_TOTAL_WAIT {
                        tracing::warn!(
                            slack.method = label,
                            attempt,
                            retry_after_s = retry_after.as_secs(),
                            "slack: rate-limited, giving up"
                        );
                        return Err(SlackError::RateLimited { method: label.into(), retry_after });
                    }
                    tracing::warn!(
                        slack.method = label,
                        attempt,
                        retry_after_s = retry_after.as_secs(),
                        "slack: rate-limited, retrying"
                    );
                    retry_after
                }
                Ok(response) if response.status().is_server_error() => {
                    let status = response.status().as_u16();
                    if last || waited + backoff > MAX_TOTAL_WAIT {
                        tracing::warn!(slack.method = label, attempt, status, "slack: server error, giving up");
                        return Err(SlackError::Http { method: label.into(), status });
                    }
                    tracing::warn!(
                        slack.method = label,
                        attempt,
                        status,
                        backoff_ms = backoff.as_millis() as u64,
                        "slack: server error, retrying"
                    );
                    next_backoff(&mut backoff)
                }
                Ok(response) => {
                    tracing::debug!(
                        slack.method = label,
                        attempt,
                        status = response.status().as_u16(),
                        elapsed_ms,
                        "slack: call"
                    );
                    return Ok(response);
                }
                Err(e) => {
                    let message = describe(&e, exchange.timeout);
                    // A request that may have reached Slack is repeated only when that is harmless.
                    let retryable = e.is_connect() || (exchange.idempotent && (e.is_timeout() || e.is_request()));
                    if last || !retryable || waited + backoff > MAX_TOTAL_WAIT {
                        tracing::warn!(slack.method = label, attempt, error = %message, "slack: call failed");
                        return Err(SlackError::Network { method: label.into(), message });
                    }
                    let backoff_ms = backoff.as_millis() as u64;
                    tracing::warn!(
                        slack.method = label,
                        attempt,
                        error = %message,
                        backoff_ms,
                        "slack: call failed, retrying"
                    );
                    next_backoff(&mut backoff)
                }
            };
            tokio::time::sleep(wait).await;
            waited += wait;
            attempt += 1;
        }
    }

    fn request(&self, exchange: &Exchange<'_>) -> reqwest::RequestBuilder {
        let mut request = self.inner.http.request(exchange.method.clone(), exchange.url).timeout(exchange.timeout);
        if let Some(auth) = exchange.auth {
            request = request.header(AUTHORIZATION, auth.clone());
        }
        match &exchange.payload {
            Payload::Json(body) => request
                .header(CONTENT_TYPE, "application/json; charset=utf-8")
                .body(serde_json::to_vec(body).unwrap_or_default()),
            Payload::Form(fields) => {
                request.header(CONTENT_TYPE, "application/x-www-form-urlencoded").body(form_encode(fields))
            }
            Payload::Bytes(bytes) => request.header(CONTENT_TYPE, "application/octet-stream").body(bytes.clone()),
            Payload::None => request,
        }
    }
}

/// A channel's turn: held while a call into the channel runs.
struct ChannelTurn {
    guard: Option<OwnedMutexGuard<()>>,
    mutex: Arc<tokio::sync::Mutex<()>>,
    channel: String,
    channels: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
}

impl Drop for ChannelTurn {
    fn drop(&mut self) {
        drop(self.guard.take());
        // Forget the channel's mutex when nobody else holds or awaits it (the map and this
        // turn hold the only references; new callers need the map's lock to get one).
        let mut channels = lock(&self.channels);
        if Arc::strong_count(&self.mutex) == 2 {
            channels.remove(&self.channel);
        }
    }
}

fn required_str(method: &str, answer: &Value, field: &str) -> Result<String, SlackError> {
    answer
        .get(field)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| SlackError::BadResponse { method: method.into(), message: format!("no \"{field}\"") })
}

/// `Retry-After` in seconds (1 when absent or unreadable), at most [`MAX_RETRY_AFTER`].
fn retry_after(response: &reqwest::Response) -> Duration {
    let seconds = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(1);
    Duration::from_secs(seconds).min(MAX_RETRY_AFTER)
}

/// The current backoff; doubles the next one.
fn next_backoff(backoff: &mut Duration) -> Duration {
    let current = *backoff;
    *backoff = (current * 2).min(BACKOFF_MAX);
    current
}

/// A network error with its causes, without its URL (upload URLs are pre-signed).
fn describe(error: &reqwest::Error, timeout: Duration) -> String {
    if error.is_timeout() {
        return format!("no answer within {} s", timeout.as_secs());
    }
    let mut message = String::new();
    let mut source: Option<&dyn std::error::Error> = Some(error);
    while let Some(e) = source {
        let text = match e.downcast_ref::<reqwest::Error>() {
            Some(e) if e.url().is_some() => {
                // `without_url` takes the error by value; render the kind by hand instead.
                if e.is_connect() {
                    "cannot connect".to_owned()
                } else if e.is_request() {
                    "error sending the request".to_owned()
                } else if e.is_body() || e.is_decode() {
                    "error reading the answer".to_owned()
                } else {
                    "HTTP error".to_owned()
                }
            }
            _ => e.to_string(),
        };
        if !message.contains(&text) {
            if !message.is_empty() {
                message.push_str(": ");
            }
            message.push_str(&text);
        }
        source = e.source();
    }
    message
}

/// The body, refusing more than `max_bytes` (before reading when the length is announced).
async fn read_limited(label: &str, mut response: reqwest::Response, max_bytes: usize) -> Result<Vec<u8>, SlackError> {
    let announced =
        response.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|length| length > max_bytes as u64) {
        return Err(SlackError::TooLarge { max_bytes });
    }
    let mut body = Vec::with_capacity(announced.map_or(0, |l| l as usize));
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > max_bytes {
                    return Err(SlackError::TooLarge { max_bytes });
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(e) => {
                return Err(SlackError::Network { method: label.into(), message: describe(&e, TRANSFER_TIMEOUT) });
            }
        }
    }
}

/// `application/x-www-form-urlencoded`.
fn form_encode(fields: &[(&str, String)]) -> String {
    let mut out = String::new();
    for (i, (name, value)) in fields.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        encode_component(&mut out, name);
        out.push('=');
        encode_component(&mut out, value);
    }
    out
}

fn encode_component(out: &mut String, text: &str) {
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => out.push(char::from(b)),
            b' ' => out.push('+'),
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_encoding() {
        let fields = vec![("filename", "a b&c=d/é.txt".to_owned()), ("length", "12".to_owned())];
        assert_eq!(form_encode(&fields), "filename=a+b%26c%3Dd%2F%C3%A9.txt&length=12");
    }

    #[test]
    fn hints() {
        let e = SlackError::Api { method: "chat.postMessage".into(), error: "not_in_channel".into(), needed: None };
        assert!(e.to_string().contains("/invite @rswe"), "{e}");
        let e = SlackError::Api {
            method: "chat.postMessage".into(),
            error: "missing_scope".into(),
            needed: Some("chat:write".into()),
        };
        assert!(e.to_string().contains("chat:write"), "{e}");
        let e = SlackError::Api { method: "apps.connections.open".into(), error: "invalid_auth".into(), needed: None };
        assert!(e.to_string().contains("SLACK_APP_TOKEN"), "{e}");
        let e = SlackError::Api { method: "x".into(), error: "something_new".into(), needed: None };
        assert_eq!(e.to_string(), "Slack x failed: something_new");
    }

    #[test]
    fn tokens_stay_out_of_debug() {
        let api = SlackApi::new(DEFAULT_API_URL, "xoxb-secret").unwrap_or_else(|e| panic!("{e}"));
        assert!(!format!("{api:?}").contains("secret"));
        assert!(matches!(SlackApi::new(DEFAULT_API_URL, "xapp-1"), Err(SlackError::Config(_))));
        assert!(matches!(SlackApi::new(DEFAULT_API_URL, " "), Err(SlackError::Config(_))));
        assert!(matches!(SlackApi::new("slack.com", "xoxb-1"), Err(SlackError::Config(_))));
    }

    #[test]
    fn trusted_hosts() {
        let api = SlackApi::new("http://127.0.0.1:9/api", "xoxb-1").unwrap_or_else(|e| panic!("{e}"));
        let ok = |u: &str| api.trusted(&Url::parse(u).unwrap_or_else(|e| panic!("{e}")));
        assert!(ok("https://files.slack.com/files-pri/T1-F1/x.png"));
        assert!(ok("http://127.0.0.1:9/files-pri/T1-F1/x.png"));
        assert!(!ok("http://files.slack.com/files-pri/T1-F1/x.png"));
        assert!(!ok("https://files.slack.com.evil.example/x"));
        assert!(!ok("http://127.0.0.1:10/x"));
    }
}
