//! The GitHub REST API client: repositories and permissions, forks, pull requests, comments,
//! reactions.
//!
//! Every call goes to `{api_url}/{path}`, the path joined onto the base so a GitHub
//! Enterprise Server base (`https://ghe.example.com/api/v3`) works as well as
//! [`DEFAULT_API_URL`]. The token is sent as `Authorization: Bearer` (a header marked
//! sensitive) and nowhere else: not in URLs, bodies, logs, or error messages.
//!
//! Rate limits are honoured: a `429`, or a `403` with `x-ratelimit-remaining: 0` or a
//! `retry-after`, waits until `x-ratelimit-reset` (or `retry-after`) and tries again, when
//! that is at most [`MAX_RATE_LIMIT_WAIT`] away; otherwise it is [`GitHubError::RateLimited`].
//! Server errors and failed connections are retried after a backoff starting at 0.5 s and
//! doubling. A call makes at most [`MAX_ATTEMPTS`] attempts. A request that may have been
//! applied (a `5xx` answer or a timeout after it was sent) is only repeated when repeating
//! it is harmless (reads, forks, reactions), so a comment or a pull request is never created
//! twice.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap, HeaderValue, RETRY_AFTER, USER_AGENT};
use reqwest::{Client, Method, StatusCode, Url};
use serde::Deserialize;
use serde_json::{Value, json};

/// github.com's REST API.
pub const DEFAULT_API_URL: &str = "https://api.github.com";
/// The REST API version requested (`X-GitHub-Api-Version`).
pub const API_VERSION: &str = "2022-11-28";
/// The longest a connection may take to open.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest one attempt (response included) may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Attempts per call, the first included.
pub const MAX_ATTEMPTS: u32 = 4;
/// The longest a rate limit is waited out; a later reset fails the call instead.
pub const MAX_RATE_LIMIT_WAIT: Duration = Duration::from_secs(60);
/// The first backoff after a server error or a failed connection; it doubles each time.
const BACKOFF_START: Duration = Duration::from_millis(500);
/// The largest error message kept from an answer.
const MAX_MESSAGE_CHARS: usize = 500;

/// A GitHub API failure, worded so a person knows what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum GitHubError {
    /// The API URL or the token cannot be used at all.
    #[error("invalid GitHub configuration: {message}")]
    Config { message: String },
    /// 404: GitHub answers so both for what does not exist and for what the token may not see.
    #[error(
        "{what} does not exist or the token cannot see it: check the name and that the token (or the App's \
         installation) has access"
    )]
    NotFound { what: String },
    /// 403: the token lacks a permission.
    #[error("GitHub refused {what}: {message}")]
    Forbidden { what: String, message: String },
    /// 401: the token is wrong, expired or revoked.
    #[error("GitHub rejected the token ({message}) for {what}: check GITHUB_TOKEN")]
    Unauthorized { what: String, message: String },
    /// 422: the request is well-formed but GitHub will not do it.
    #[error("GitHub would not do {what}: {}", describe_validation(.message, .errors))]
    Validation { what: String, message: String, errors: Vec<String> },
    /// Rate-limited, with a reset too far away (or too many attempts).
    #[error("{what}: GitHub's rate limit is exhausted{}", match .retry_after {
        Some(wait) => format!("; it resets in {} s", wait.as_secs()),
        None => String::new(),
    })]
    RateLimited { what: String, retry_after: Option<Duration> },
    /// Any other unsuccessful status.
    #[error("{what}: GitHub answered HTTP {status}{}", if .message.is_empty() { String::new() } else { format!(": {}", .message) })]
    Http { what: String, status: u16, message: String },
    /// No answer: the connection failed or timed out.
    #[error("{what}: cannot reach GitHub: {message}")]
    Network { what: String, message: String },
    /// A successful answer that is not what the API documents.
    #[error("{what}: unexpected answer from GitHub: {message}")]
    BadResponse { what: String, message: String },
}

fn describe_validation(message: &str, errors: &[String]) -> String {
    if errors.is_empty() { message.to_owned() } else { errors.join("; ") }
}

/// A repository, as `GET /repos/{owner}/{repo}` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repository {
    pub owner: String,
    pub name: String,
    pub default_branch: String,
    /// Whether the token may push to it (`permissions.push`).
    pub can_push: bool,
    pub private: bool,
    pub html_url: String,
    /// The repository it was forked from, as `(owner, name)`.
    pub parent: Option<(String, String)>,
}

impl Repository {
    /// `owner/name`.
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.owner, self.name)
    }
}

/// What `create_pull_request` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPullRequest {
    pub title: String,
    pub body: String,
    /// The branch with the changes: `branch`, or `owner:branch` from a fork.
    pub head: String,
    /// The branch to merge into.
    pub base: String,
    pub draft: bool,
}

/// A pull request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequest {
    pub number: u64,
    pub html_url: String,
    /// `owner:branch`.
    pub head: String,
    /// The base branch.
    pub base: String,
    pub title: String,
    pub draft: bool,
}

/// A GitHub REST API client. Cloning is cheap (the connection pool is shared).
#[derive(Clone)]
pub struct GitHubApi {
    http: Client,
    /// The base, without a trailing slash.
    base: String,
    auth: HeaderValue,
}

impl fmt::Debug for GitHubApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GitHubApi").field("api_url", &self.base).finish_non_exhaustive()
    }
}

/// One request: what it is (for messages), where, and whether repeating it is harmless.
struct Call<'a> {
    what: &'a str,
    method: Method,
    url: Url,
    body: Option<Value>,
    idempotent: bool,
}

impl GitHubApi {
    /// A client for the API at `api_url` (e.g. [`DEFAULT_API_URL`] or
    /// `https://ghe.example.com/api/v3`) authenticating with `token`.
    pub fn new(api_url: &str, token: &str) -> Result<GitHubApi, GitHubError> {
        let base = api_url.trim().trim_end_matches('/').to_owned();
        let parsed = Url::parse(&base)
            .map_err(|e| GitHubError::Config { message: format!("the API URL {base:?} is not a URL: {e}") })?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.query().is_some() {
            return Err(GitHubError::Config {
                message: format!("the API URL {base:?} must be an http(s) URL without a query"),
            });
        }
        let token = token.trim();
        if token.is_empty() {
            return Err(GitHubError::Config { message: "the token is empty: set GITHUB_TOKEN".to_owned() });
        }
        let mut auth = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| GitHubError::Config {
            message: "the token contains characters a header cannot carry: check GITHUB_TOKEN".to_owned(),
        })?;
        auth.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static("application/vnd.github+json"));
        headers.insert("x-github-api-version", HeaderValue::from_static(API_VERSION));
        headers.insert(USER_AGENT, HeaderValue::from_static("rswe"));
        let http = Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .default_headers(headers)
            .build()
            .map_err(|e| GitHubError::Config { message: format!("cannot build the HTTP client: {e}") })?;
        Ok(GitHubApi { http, base, auth })
    }

    /// The API base URL, without a trailing slash.
    pub fn api_url(&self) -> &str {
        &self.base
    }

    /// `GET /repos/{owner}/{repo}`.
    pub async fn repository(&self, owner: &str, name: &str) -> Result<Repository, GitHubError> {
        let what = format!("repository {owner}/{name}");
        let url = self.url(&["repos", owner, name], &[])?;
        let answer = self.call(Call { what: &what, method: Method::GET, url, body: None, idempotent: true }).await?;
        parse_repository(&what, answer)
    }

    /// `GET /user`: the token's login.
    pub async fn authenticated_user(&self) -> Result<String, GitHubError> {
        let what = "the token's user";
        let url = self.url(&["user"], &[])?;
        let answer = self.call(Call { what, method: Method::GET, url, body: None, idempotent: true }).await?;
        #[derive(Deserialize)]
        struct User {
            login: String,
        }
        Ok(decode::<User>(what, answer)?.login)
    }

    /// `POST /repos/{owner}/{repo}/forks`, into `organization` or the token's account.
    /// GitHub forks asynchronously: the answer names the fork, which may take a moment to fill.
    pub async fn create_fork(
        &self,
        owner: &str,
        name: &str,
        organization: Option<&str>,
    ) -> Result<Repository, GitHubError> {
        let what = format!("forking {owner}/{name}");
        let url = self.url(&["repos", owner, name, "forks"], &[])?;
        let body = match organization {
            Some(org) => json!({ "organization": org }),
            None => json!({}),
        };
        // Forking an already forked repository answers the existing fork: harmless to repeat.
        let answer =
            self.call(Call { what: &what, method: Method::POST, url, body: Some(body), idempotent: true }).await?;
        parse_repository(&what, answer)
    }

    /// `POST /repos/{owner}/{repo}/pulls`.
    pub async fn create_pull_request(
        &self,
        owner: &str,
        name: &str,
        request: &NewPullRequest,
    ) -> Result<PullRequest, GitHubError> {
        let what = format!("creating a pull request from {} into {owner}/{name}:{}", request.head, request.base);
        let url = self.url(&["repos", owner, name, "pulls"], &[])?;
        let body = json!({
            "title": request.title,
            "body": request.body,
            "head": request.head,
            "base": request.base,
            "draft": request.draft,
        });
        let answer =
            self.call(Call { what: &what, method: Method::POST, url, body: Some(body), idempotent: false }).await?;
        parse_pull_request(&what, answer)
    }

    /// `GET /repos/{owner}/{repo}/pulls?head=…&state=open`: the open pull request from `head`
    /// (`owner:branch`, or a branch of this repository), if any.
    pub async fn find_pull_request(
        &self,
        owner: &str,
        name: &str,
        head: &str,
    ) -> Result<Option<PullRequest>, GitHubError> {
        let head = if head.contains(':') { head.to_owned() } else { format!("{owner}:{head}") };
        let what = format!("looking for a pull request from {head} in {owner}/{name}");
        let url = self.url(&["repos", owner, name, "pulls"], &[("head", &head), ("state", "open")])?;
        let answer = self.call(Call { what: &what, method: Method::GET, url, body: None, idempotent: true }).await?;
        let Value::Array(pulls) = answer else {
            return Err(GitHubError::BadResponse { what, message: "not a list".to_owned() });
        };
        pulls.into_iter().next().map(|pull| parse_pull_request(&what, pull)).transpose()
    }

    /// `POST /repos/{owner}/{repo}/issues/{number}/comments`; the comment's id.
    pub async fn comment(&self, owner: &str, name: &str, number: u64, body: &str) -> Result<u64, GitHubError> {
        let what = format!("commenting on {owner}/{name}#{number}");
        let number = number.to_string();
        let url = self.url(&["repos", owner, name, "issues", &number, "comments"], &[])?;
        let body = json!({ "body": body });
        let answer =
            self.call(Call { what: &what, method: Method::POST, url, body: Some(body), idempotent: false }).await?;
        #[derive(Deserialize)]
        struct Comment {
            id: u64,
        }
        Ok(decode::<Comment>(&what, answer)?.id)
    }

    /// `POST /repos/{owner}/{repo}/issues/comments/{comment_id}/reactions` with `content`
    /// (`eyes`, `+1`, `rocket`, ...). Reacting twice is harmless (GitHub keeps one).
    pub async fn react_to_comment(
        &self,
        owner: &str,
        name: &str,
        comment_id: u64,
        content: &str,
    ) -> Result<(), GitHubError> {
        let what = format!("reacting {content:?} to comment {comment_id} in {owner}/{name}");
        let id = comment_id.to_string();
        let url = self.url(&["repos", owner, name, "issues", "comments", &id, "reactions"], &[])?;
        let body = json!({ "content": content });
        self.call(Call { what: &what, method: Method::POST, url, body: Some(body), idempotent: true }).await?;
        Ok(())
    }

    /// `GET /repos/{owner}/{repo}/collaborators/{login}/permission`: `admin`, `maintain`,
    /// `write`, `triage`, `read` or `none` (the role name when GitHub gives it, which
    /// distinguishes `maintain` and `triage` from the legacy `write` and `read`).
    pub async fn permission(&self, owner: &str, name: &str, login: &str) -> Result<String, GitHubError> {
        let what = format!("{login}'s permission on {owner}/{name}");
        let url = self.url(&["repos", owner, name, "collaborators", login, "permission"], &[])?;
        let answer = self.call(Call { what: &what, method: Method::GET, url, body: None, idempotent: true }).await?;
        #[derive(Deserialize)]
        struct Permission {
            permission: String,
            #[serde(default)]
            role_name: Option<String>,
        }
        let permission = decode::<Permission>(&what, answer)?;
        let role = permission
            .role_name
            .filter(|r| matches!(r.as_str(), "admin" | "maintain" | "write" | "triage" | "read" | "none"));
        Ok(role.unwrap_or(permission.permission))
    }

    /// `{base}/{segments…}?{query}`, every segment and query value percent-encoded.
    fn url(&self, segments: &[&str], query: &[(&str, &str)]) -> Result<Url, GitHubError> {
        let mut url = self.base.clone();
        for segment in segments {
            url.push('/');
            if segment.is_empty() || segment.chars().all(|c| c == '.') {
                // `.` and `..` would be resolved away, walking out of the intended path.
                return Err(GitHubError::Config { message: format!("{segment:?} is not a valid name") });
            }
            url.push_str(&encode(segment));
        }
        for (i, (key, value)) in query.iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.push_str(&encode(key));
            url.push('=');
            url.push_str(&encode(value));
        }
        Url::parse(&url)
            .map_err(|e| GitHubError::Config { message: format!("cannot build a URL on {}: {e}", self.base) })
    }

    /// Sends `call`, retrying as the module documentation says; the JSON answer (or
    /// `null` for an empty one).
    async fn call(&self, call: Call<'_>) -> Result<Value, GitHubError> {
        let what = call.what;
        let mut backoff = BACKOFF_START;
        let mut attempt = 1;
        loop {
            let last = attempt >= MAX_ATTEMPTS;
            let mut request =
                self.http.request(call.method.clone(), call.url.clone()).header(AUTHORIZATION, &self.auth);
            if let Some(body) = &call.body {
                request = request.json(body);
            }
            let wait = match request.send().await {
                Err(e) => {
                    let message = describe(&e);
                    // A request that may have reached GitHub is repeated only when that is harmless.
                    let retryable = e.is_connect() || (call.idempotent && (e.is_timeout() || e.is_request()));
                    if last || !retryable {
                        tracing::warn!(github.call = what, attempt, error = %message, "github: call failed");
                        return Err(GitHubError::Network { what: what.to_owned(), message });
                    }
                    tracing::warn!(github.call = what, attempt, error = %message, "github: call failed, retrying");
                    next_backoff(&mut backoff)
                }
                Ok(response) => {
                    let status = response.status();
                    if status.is_success() {
                        tracing::debug!(github.call = what, attempt, status = status.as_u16(), "github: call");
                        let bytes = response.bytes().await.map_err(|e| GitHubError::Network {
                            what: what.to_owned(),
                            message: format!("reading the answer: {}", describe(&e)),
                        })?;
                        if bytes.iter().all(u8::is_ascii_whitespace) {
                            return Ok(Value::Null);
                        }
                        return serde_json::from_slice(&bytes).map_err(|e| GitHubError::BadResponse {
                            what: what.to_owned(),
                            message: format!("not JSON: {e}"),
                        });
                    }
                    if let Some(wait) = rate_limit_wait(status, response.headers()) {
                        if last || wait > MAX_RATE_LIMIT_WAIT {
                            tracing::warn!(
                                github.call = what,
                                attempt,
                                wait_s = wait.as_secs(),
                                "github: rate-limited"
                            );
                            return Err(GitHubError::RateLimited { what: what.to_owned(), retry_after: Some(wait) });
                        }
                        tracing::warn!(
                            github.call = what,
                            attempt,
                            wait_ms = wait.as_millis() as u64,
                            "github: rate-limited, waiting for the reset"
                        );
                        wait
                    } else if status.is_server_error() && call.idempotent && !last {
                        tracing::warn!(
                            github.call = what,
                            attempt,
                            status = status.as_u16(),
                            "github: server error, retrying"
                        );
                        next_backoff(&mut backoff)
                    } else {
                        let headers = response.headers().clone();
                        let body = response.bytes().await.unwrap_or_default();
                        let error = error_for(what, status, &headers, &body);
                        tracing::warn!(github.call = what, attempt, status = status.as_u16(), "github: {error}");
                        return Err(error);
                    }
                }
            };
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }
}

/// How long to wait before retrying a rate-limited answer; `None` when it is not one.
fn rate_limit_wait(status: StatusCode, headers: &HeaderMap) -> Option<Duration> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    let retry_after = header(RETRY_AFTER.as_str()).and_then(|v| v.parse::<u64>().ok()).map(Duration::from_secs);
    let exhausted = header("x-ratelimit-remaining") == Some("0");
    let limited = status == StatusCode::TOO_MANY_REQUESTS
        || (status == StatusCode::FORBIDDEN && (exhausted || retry_after.is_some()));
    if !limited {
        return None;
    }
    if let Some(wait) = retry_after {
        return Some(wait);
    }
    let reset = header("x-ratelimit-reset").and_then(|v| v.parse::<u64>().ok());
    let wait = match reset {
        Some(reset) => {
            let reset = UNIX_EPOCH + Duration::from_secs(reset);
            reset.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO)
        }
        // GitHub's advice for a secondary limit without either header: wait a minute.
        None => MAX_RATE_LIMIT_WAIT,
    };
    // The reset is whole seconds: a little slack so the retry lands after it.
    Some(wait + Duration::from_millis(100))
}

/// The error for an unsuccessful, non-retried answer.
fn error_for(what: &str, status: StatusCode, headers: &HeaderMap, body: &[u8]) -> GitHubError {
    let answer: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let mut message = answer.get("message").and_then(Value::as_str).map(str::to_owned).unwrap_or_else(|| {
        let text = String::from_utf8_lossy(body);
        text.trim().to_owned()
    });
    if message.chars().count() > MAX_MESSAGE_CHARS {
        message = message.chars().take(MAX_MESSAGE_CHARS).collect::<String>() + "…";
    }
    let what = what.to_owned();
    match status {
        StatusCode::NOT_FOUND => GitHubError::NotFound { what },
        StatusCode::UNAUTHORIZED => {
            let message = if message.is_empty() { "401".to_owned() } else { message };
            GitHubError::Unauthorized { what, message }
        }
        StatusCode::FORBIDDEN => {
            // GitHub names the permissions a fine-grained token or an App lacks in this header.
            let needed = headers.get("x-accepted-github-permissions").and_then(|v| v.to_str().ok());
            let mut message = if message.is_empty() { "forbidden".to_owned() } else { message };
            match needed {
                Some(needed) if !needed.trim().is_empty() => {
                    message.push_str(&format!(" (the token needs the permission: {})", needed.trim()));
                }
                _ => message.push_str(" (check the token's permissions on the repository)"),
            }
            GitHubError::Forbidden { what, message }
        }
        StatusCode::UNPROCESSABLE_ENTITY => {
            let errors = answer
                .get("errors")
                .and_then(Value::as_array)
                .map(|errors| errors.iter().filter_map(validation_error).collect())
                .unwrap_or_default();
            GitHubError::Validation { what, message, errors }
        }
        _ => GitHubError::Http { what, status: status.as_u16(), message },
    }
}

/// One entry of a 422's `errors`: its message, or what GitHub says about which field.
fn validation_error(error: &Value) -> Option<String> {
    if let Some(text) = error.as_str() {
        return Some(text.to_owned());
    }
    if let Some(message) = error.get("message").and_then(Value::as_str) {
        return Some(message.to_owned());
    }
    let field = |name: &str| error.get(name).and_then(Value::as_str).unwrap_or_default();
    let text = format!("{} {} {}", field("resource"), field("field"), field("code"));
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    (!text.is_empty()).then_some(text)
}

fn decode<T: serde::de::DeserializeOwned>(what: &str, answer: Value) -> Result<T, GitHubError> {
    serde_json::from_value(answer)
        .map_err(|e| GitHubError::BadResponse { what: what.to_owned(), message: e.to_string() })
}

fn parse_repository(what: &str, answer: Value) -> Result<Repository, GitHubError> {
    #[derive(Deserialize)]
    struct Owner {
        login: String,
    }
    #[derive(Deserialize, Default)]
    struct Permissions {
        #[serde(default)]
        push: bool,
    }
    #[derive(Deserialize)]
    struct Parent {
        name: String,
        owner: Owner,
    }
    #[derive(Deserialize)]
    struct Repo {
        name: String,
        owner: Owner,
        #[serde(default)]
        default_branch: Option<String>,
        #[serde(default)]
        permissions: Option<Permissions>,
        #[serde(default)]
        private: bool,
        #[serde(default)]
        html_url: String,
        #[serde(default)]
        parent: Option<Parent>,
    }
    let repo = decode::<Repo>(what, answer)?;
    Ok(Repository {
        owner: repo.owner.login,
        name: repo.name,
        // An empty repository (or a fork still being made) may have none yet.
        default_branch: repo.default_branch.unwrap_or_default(),
        can_push: repo.permissions.unwrap_or_default().push,
        private: repo.private,
        html_url: repo.html_url,
        parent: repo.parent.map(|p| (p.owner.login, p.name)),
    })
}

fn parse_pull_request(what: &str, answer: Value) -> Result<PullRequest, GitHubError> {
    #[derive(Deserialize)]
    struct Branch {
        #[serde(default)]
        label: Option<String>,
        #[serde(rename = "ref")]
        name: String,
    }
    #[derive(Deserialize)]
    struct Pull {
        number: u64,
        html_url: String,
        head: Branch,
        base: Branch,
        #[serde(default)]
        title: String,
        #[serde(default)]
        draft: bool,
    }
    let pull = decode::<Pull>(what, answer)?;
    Ok(PullRequest {
        number: pull.number,
        html_url: pull.html_url,
        head: pull.head.label.unwrap_or(pull.head.name),
        base: pull.base.name,
        title: pull.title,
        draft: pull.draft,
    })
}

/// The current backoff; doubles the next one.
fn next_backoff(backoff: &mut Duration) -> Duration {
    let current = *backoff;
    *backoff = current * 2;
    current
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A reqwest error with its causes, without its URL.
fn describe(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        return format!("no answer within {} s", REQUEST_TIMEOUT.as_secs());
    }
    let mut message = String::new();
    let mut source: Option<&dyn std::error::Error> = Some(error);
    while let Some(e) = source {
        let text = match e.downcast_ref::<reqwest::Error>() {
            Some(e) if e.is_connect() => "cannot connect".to_owned(),
            Some(e) if e.is_request() => "error sending the request".to_owned(),
            Some(e) if e.is_body() || e.is_decode() => "error reading the answer".to_owned(),
            Some(_) => "HTTP error".to_owned(),
            None => e.to_string(),
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
