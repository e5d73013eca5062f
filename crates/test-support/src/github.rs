//! A fake GitHub REST API for tests: [`FakeGitHub`].
//!
//! An HTTP server on `127.0.0.1:0` serving, under a GitHub Enterprise Server-like base
//! (`http://127.0.0.1:PORT/api/v3`, so a client that does not join paths onto its base
//! fails), the endpoints rswe uses: repositories, the authenticated user, forks, pull
//! requests, issue comments, comment reactions and collaborator permissions. Answers and
//! errors have GitHub's JSON shapes (`{"message": ..., "documentation_url": ...}`, 422s with
//! `errors`), a wrong token is `401 Bad credentials`, and [`FakeGitHub::rate_limit_next`]
//! answers like an exhausted primary rate limit. Every call is recorded.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use serde_json::{Value, json};
use tokio::sync::watch;

/// The token [`FakeGitHub::start`] accepts.
pub const TOKEN: &str = "ghp_test0123456789abcdefghijklmnopqrstuv";
/// The login `GET /user` answers unless [`FakeGitHub::set_user`] says otherwise.
pub const DEFAULT_USER: &str = "rswe-bot";
/// The path prefix the API is served under.
pub const API_PREFIX: &str = "/api/v3";
const DOCS: &str = "https://docs.github.com/rest";

/// One call the fake received, in arrival order.
#[derive(Debug, Clone, PartialEq)]
pub struct GitHubCall {
    pub method: String,
    /// The path below the API base, e.g. `/repos/octo/hello/pulls`.
    pub path: String,
    /// The raw query string, if any.
    pub query: Option<String>,
    /// The JSON body (`null` when there is none; a string when it is not JSON).
    pub body: Value,
    /// The bearer token of the `Authorization` header.
    pub token: Option<String>,
    pub accept: Option<String>,
    pub api_version: Option<String>,
    pub user_agent: Option<String>,
    /// The status the fake answered with.
    pub status: u16,
    /// When the request arrived.
    pub at: SystemTime,
    /// For a rate-limited answer: the `x-ratelimit-reset` sent (Unix seconds).
    pub rate_limit_reset: Option<u64>,
}

/// A pull request created through the fake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakePullRequest {
    /// The repository it was opened in, `owner/name`.
    pub repository: String,
    pub number: u64,
    /// `owner:branch`, as GitHub labels it.
    pub head: String,
    pub base: String,
    pub title: String,
    pub body: String,
    pub draft: bool,
    pub open: bool,
}

/// A comment created through the fake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeComment {
    pub id: u64,
    /// `owner/name`.
    pub repository: String,
    pub number: u64,
    pub body: String,
    pub user: String,
}

/// A reaction added through the fake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeReaction {
    pub comment_id: u64,
    pub content: String,
    pub user: String,
}

#[derive(Debug, Clone)]
struct Repo {
    owner: String,
    name: String,
    default_branch: String,
    push: bool,
    private: bool,
    parent: Option<(String, String)>,
    id: u64,
}

#[derive(Default)]
struct FakeState {
    calls: Vec<GitHubCall>,
    /// By lowercase `owner/name`.
    repos: HashMap<String, Repo>,
    /// By lowercase `owner/name` and lowercase login.
    permissions: HashMap<(String, String), String>,
    user: String,
    pulls: Vec<FakePullRequest>,
    /// The last issue or pull request number, by lowercase `owner/name`.
    numbers: HashMap<String, u64>,
    comments: Vec<FakeComment>,
    reactions: Vec<FakeReaction>,
    rate_limited: usize,
    /// How many more calls answer the status.
    failing: (usize, u16),
    next_id: u64,
}

struct Shared {
    state: Mutex<FakeState>,
    changed: watch::Sender<u64>,
    token: String,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, FakeState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A fake GitHub REST API; dropping it stops the server.
pub struct FakeGitHub {
    addr: SocketAddr,
    shared: Arc<Shared>,
    served: crate::served::Served,
}

impl std::fmt::Debug for FakeGitHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeGitHub").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl FakeGitHub {
    /// Starts the fake on `127.0.0.1:0`, accepting [`TOKEN`].
    ///
    /// # Panics
    ///
    /// When no local port can be bound.
    pub async fn start() -> FakeGitHub {
        Self::start_with_token(TOKEN).await
    }

    /// Starts the fake on `127.0.0.1:0`, accepting `token`.
    ///
    /// # Panics
    ///
    /// When no local port can be bound.
    pub async fn start_with_token(token: &str) -> FakeGitHub {
        let listener = match tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await {
            Ok(listener) => listener,
            Err(e) => panic!("fake github: cannot bind 127.0.0.1:0: {e}"),
        };
        let addr = match listener.local_addr() {
            Ok(addr) => addr,
            Err(e) => panic!("fake github: no local address: {e}"),
        };
        let shared = Arc::new(Shared {
            state: Mutex::new(FakeState { user: DEFAULT_USER.to_owned(), next_id: 1000, ..FakeState::default() }),
            changed: watch::Sender::new(0),
            token: token.to_owned(),
        });
        let app = Router::new().fallback(any(handle)).with_state(shared.clone());
        let served = crate::served::Served::start(listener, addr, app, "fake github");
        FakeGitHub { addr, shared, served }
    }

    /// The API base URL, `http://127.0.0.1:PORT/api/v3`.
    pub fn api_url(&self) -> String {
        format!("http://{}{API_PREFIX}", self.addr)
    }

    /// The token the fake accepts.
    pub fn token(&self) -> &str {
        &self.shared.token
    }

    /// Adds (or replaces) a public repository; `push` is whether the token may push to it.
    pub fn add_repository(&self, owner: &str, name: &str, default_branch: &str, push: bool) {
        let mut state = self.shared.lock();
        let id = next_id(&mut state);
        state.repos.insert(
            key(owner, name),
            Repo {
                owner: owner.to_owned(),
                name: name.to_owned(),
                default_branch: default_branch.to_owned(),
                push,
                private: false,
                parent: None,
                id,
            },
        );
    }

    /// Makes a repository private (or public).
    pub fn set_private(&self, owner: &str, name: &str, private: bool) {
        if let Some(repo) = self.shared.lock().repos.get_mut(&key(owner, name)) {
            repo.private = private;
        }
    }

    /// `login`'s permission on the repository: `admin`, `maintain`, `write`, `triage`,
    /// `read` or `none` (the default).
    pub fn set_permission(&self, owner: &str, name: &str, login: &str, level: &str) {
        self.shared.lock().permissions.insert((key(owner, name), login.to_lowercase()), level.to_owned());
    }

    /// The login the token belongs to (`GET /user`, the owner of forks).
    pub fn set_user(&self, login: &str) {
        self.shared.lock().user = login.to_owned();
    }

    /// The next `n` calls answer `403` with `x-ratelimit-remaining: 0` and a reset at the
    /// next whole second at least 1 s ahead.
    pub fn rate_limit_next(&self, n: usize) {
        self.shared.lock().rate_limited = n;
    }

    /// The next `n` calls answer HTTP `status` (e.g. 502) with GitHub's JSON error shape,
    /// without doing anything.
    pub fn fail_next(&self, n: usize, status: u16) {
        self.shared.lock().failing = (n, status);
    }

    /// Every call so far, in arrival order.
    pub fn calls(&self) -> Vec<GitHubCall> {
        self.shared.lock().calls.clone()
    }

    /// The pull requests created so far, in order.
    pub fn pull_requests(&self) -> Vec<FakePullRequest> {
        self.shared.lock().pulls.clone()
    }

    /// The comments created so far, in order.
    pub fn comments(&self) -> Vec<FakeComment> {
        self.shared.lock().comments.clone()
    }

    /// The reactions added so far, in order.
    pub fn reactions(&self) -> Vec<FakeReaction> {
        self.shared.lock().reactions.clone()
    }

    /// The first call (already recorded or still to come) with `method` whose path starts
    /// with `path_prefix`; `None` when `timeout` passes first.
    pub async fn wait_for_call(&self, method: &str, path_prefix: &str, timeout: Duration) -> Option<GitHubCall> {
        // Subscribing before looking means no call recorded in between is missed.
        let mut changes = self.shared.changed.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let found = self
                .shared
                .lock()
                .calls
                .iter()
                .find(|c| c.method.eq_ignore_ascii_case(method) && c.path.starts_with(path_prefix))
                .cloned();
            if found.is_some() {
                return found;
            }
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => return None,
            }
        }
    }

    /// Stops accepting connections and waits (briefly) for open ones to finish.
    pub async fn shutdown(mut self) {
        self.served.stop().await;
    }
}

/// An answer: status, JSON body, extra headers.
struct Answer {
    status: StatusCode,
    body: Value,
    headers: Vec<(&'static str, String)>,
}

impl Answer {
    fn ok(status: StatusCode, body: Value) -> Answer {
        Answer { status, body, headers: Vec::new() }
    }

    fn error(status: StatusCode, message: &str) -> Answer {
        Answer::ok(
            status,
            json!({"message": message, "documentation_url": DOCS, "status": status.as_u16().to_string()}),
        )
    }

    fn not_found() -> Answer {
        Answer::error(StatusCode::NOT_FOUND, "Not Found")
    }

    fn validation(resource: &str, message: &str) -> Answer {
        Answer::ok(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({
                "message": "Validation Failed",
                "errors": [{"resource": resource, "code": "custom", "message": message}],
                "documentation_url": DOCS,
                "status": "422",
            }),
        )
    }
}

async fn handle(
    axum::extract::State(shared): axum::extract::State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let at = SystemTime::now();
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let token = header(header::AUTHORIZATION.as_str()).and_then(|value| {
        let (scheme, token) = value.split_once(' ')?;
        (scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token")).then(|| token.trim().to_owned())
    });
    let full_path = uri.path().to_owned();
    let path = full_path.strip_prefix(API_PREFIX).map(str::to_owned);
    let parsed_body = if body.is_empty() {
        Ok(Value::Null)
    } else {
        serde_json::from_slice::<Value>(&body).map_err(|_| Value::String(String::from_utf8_lossy(&body).into_owned()))
    };
    let mut call = GitHubCall {
        method: method.as_str().to_owned(),
        path: path.clone().unwrap_or_else(|| full_path.clone()),
        query: uri.query().map(str::to_owned),
        body: parsed_body.clone().unwrap_or_else(|raw| raw),
        token: token.clone(),
        accept: header(header::ACCEPT.as_str()),
        api_version: header("x-github-api-version"),
        user_agent: header(header::USER_AGENT.as_str()),
        status: 200,
        at,
        rate_limit_reset: None,
    };

    let mut state = shared.lock();
    let answer = if state.rate_limited > 0 {
        state.rate_limited -= 1;
        let now = at.duration_since(UNIX_EPOCH).unwrap_or_default();
        // The next whole second at least one second ahead.
        let reset = now.as_secs() + 2;
        call.rate_limit_reset = Some(reset);
        let mut answer = Answer::error(
            StatusCode::FORBIDDEN,
            "API rate limit exceeded for user ID 1. If you reach out to GitHub Support for help, please include the \
             request ID.",
        );
        answer.headers = vec![
            ("x-ratelimit-limit", "5000".to_owned()),
            ("x-ratelimit-remaining", "0".to_owned()),
            ("x-ratelimit-used", "5000".to_owned()),
            ("x-ratelimit-reset", reset.to_string()),
            ("x-ratelimit-resource", "core".to_owned()),
        ];
        answer
    } else if state.failing.0 > 0 {
        state.failing.0 -= 1;
        let status = StatusCode::from_u16(state.failing.1).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        Answer::error(status, "Server Error")
    } else if token.as_deref() != Some(shared.token.as_str()) {
        if token.is_none() {
            Answer::error(StatusCode::UNAUTHORIZED, "Requires authentication")
        } else {
            Answer::error(StatusCode::UNAUTHORIZED, "Bad credentials")
        }
    } else {
        match (path, parsed_body) {
            (None, _) => Answer::not_found(),
            (Some(_), Err(_)) => Answer::error(StatusCode::BAD_REQUEST, "Problems parsing JSON"),
            (Some(path), Ok(body)) => route(&mut state, &method, &path, uri.query(), &body),
        }
    };
    call.status = answer.status.as_u16();
    tracing::debug!(method = %call.method, path = %call.path, status = call.status, "fake github: call");
    state.calls.push(call);
    shared.changed.send_modify(|n| *n += 1);
    drop(state);

    let mut response = (answer.status, axum::Json(answer.body)).into_response();
    for (name, value) in answer.headers {
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

fn route(state: &mut FakeState, method: &Method, path: &str, query: Option<&str>, body: &Value) -> Answer {
    let segments: Vec<String> =
        path.trim_matches('/').split('/').map(|s| crate::encoding::percent_decode(s.as_bytes(), false)).collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    match (method.as_str(), segments.as_slice()) {
        ("GET", ["user"]) => {
            let user = state.user.clone();
            Answer::ok(StatusCode::OK, json!({"login": user, "id": 1, "type": "User"}))
        }
        ("GET", ["repos", owner, name]) => match state.repos.get(&key(owner, name)) {
            Some(repo) => Answer::ok(StatusCode::OK, repo_json(state, repo)),
            None => Answer::not_found(),
        },
        ("POST", ["repos", owner, name, "forks"]) => fork(state, owner, name, body),
        ("POST", ["repos", owner, name, "pulls"]) => create_pull(state, owner, name, body),
        ("GET", ["repos", owner, name, "pulls"]) => list_pulls(state, owner, name, query),
        ("POST", ["repos", owner, name, "issues", number, "comments"]) => comment(state, owner, name, number, body),
        ("POST", ["repos", owner, name, "issues", "comments", id, "reactions"]) => react(state, owner, name, id, body),
        ("GET", ["repos", owner, name, "collaborators", login, "permission"]) => {
            let repo_key = key(owner, name);
            if !state.repos.contains_key(&repo_key) {
                return Answer::not_found();
            }
            let level =
                state.permissions.get(&(repo_key, login.to_lowercase())).cloned().unwrap_or_else(|| "none".to_owned());
            // `permission` is the legacy level; `role_name` tells maintain and triage apart.
            let legacy = match level.as_str() {
                "maintain" => "write",
                "triage" => "read",
                other => other,
            };
            Answer::ok(
                StatusCode::OK,
                json!({
                    "permission": legacy,
                    "role_name": level,
                    "user": {"login": login, "type": "User"},
                }),
            )
        }
        _ => Answer::not_found(),
    }
}

fn fork(state: &mut FakeState, owner: &str, name: &str, body: &Value) -> Answer {
    let Some(source) = state.repos.get(&key(owner, name)).cloned() else { return Answer::not_found() };
    let fork_owner = body.get("organization").and_then(Value::as_str).map(str::to_owned).unwrap_or(state.user.clone());
    let fork_key = key(&fork_owner, &source.name);
    if let Some(existing) = state.repos.get(&fork_key) {
        // GitHub answers the existing fork.
        let existing = existing.clone();
        return Answer::ok(StatusCode::ACCEPTED, repo_json(state, &existing));
    }
    let id = next_id(state);
    let fork = Repo {
        owner: fork_owner,
        name: source.name.clone(),
        default_branch: source.default_branch.clone(),
        push: true,
        private: source.private,
        parent: Some((source.owner.clone(), source.name.clone())),
        id,
    };
    state.repos.insert(fork_key, fork.clone());
    Answer::ok(StatusCode::ACCEPTED, repo_json(state, &fork))
}

fn create_pull(state: &mut FakeState, owner: &str, name: &str, body: &Value) -> Answer {
    let repo_key = key(owner, name);
    let Some(repo) = state.repos.get(&repo_key).cloned() else { return Answer::not_found() };
    let field = |name: &str| body.get(name).and_then(Value::as_str).map(str::to_owned);
    let (Some(title), Some(head), Some(base)) = (field("title"), field("head"), field("base")) else {
        return Answer::validation("PullRequest", "title, head and base are required");
    };
    if title.trim().is_empty() {
        return Answer::validation("PullRequest", "title is blank");
    }
    let head = if head.contains(':') { head } else { format!("{}:{head}", repo.owner) };
    if state.pulls.iter().any(|p| p.open && p.repository.eq_ignore_ascii_case(&full(&repo)) && p.head == head) {
        return Answer::validation("PullRequest", &format!("A pull request already exists for {head}."));
    }
    let number = state.numbers.entry(repo_key).or_insert(0);
    *number += 1;
    let pull = FakePullRequest {
        repository: full(&repo),
        number: *number,
        head,
        base,
        title,
        body: field("body").unwrap_or_default(),
        draft: body.get("draft").and_then(Value::as_bool).unwrap_or(false),
        open: true,
    };
    state.pulls.push(pull.clone());
    Answer::ok(StatusCode::CREATED, pull_json(&pull))
}

fn list_pulls(state: &FakeState, owner: &str, name: &str, query: Option<&str>) -> Answer {
    let Some(repo) = state.repos.get(&key(owner, name)) else { return Answer::not_found() };
    let params: HashMap<String, String> = query
        .unwrap_or_default()
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| {
            (crate::encoding::percent_decode(k.as_bytes(), true), crate::encoding::percent_decode(v.as_bytes(), true))
        })
        .collect();
    let state_filter = params.get("state").map(String::as_str).unwrap_or("open");
    let pulls: Vec<Value> = state
        .pulls
        .iter()
        .filter(|p| p.repository.eq_ignore_ascii_case(&full(repo)))
        .filter(|p| params.get("head").is_none_or(|head| head.eq_ignore_ascii_case(&p.head)))
        .filter(|p| match state_filter {
            "all" => true,
            "closed" => !p.open,
            _ => p.open,
        })
        .map(pull_json)
        .collect();
    Answer::ok(StatusCode::OK, Value::Array(pulls))
}

fn comment(state: &mut FakeState, owner: &str, name: &str, number: &str, body: &Value) -> Answer {
    let Some(repo) = state.repos.get(&key(owner, name)).cloned() else { return Answer::not_found() };
    let Ok(number) = number.parse::<u64>() else { return Answer::not_found() };
    let Some(text) = body.get("body").and_then(Value::as_str).filter(|b| !b.is_empty()) else {
        return Answer::validation("IssueComment", "body is missing");
    };
    let id = next_id(state);
    let comment = FakeComment { id, repository: full(&repo), number, body: text.to_owned(), user: state.user.clone() };
    state.comments.push(comment.clone());
    Answer::ok(
        StatusCode::CREATED,
        json!({
            "id": id,
            "body": comment.body,
            "user": {"login": comment.user},
            "html_url": format!("https://github.com/{}/issues/{number}#issuecomment-{id}", full(&repo)),
        }),
    )
}

fn react(state: &mut FakeState, owner: &str, name: &str, id: &str, body: &Value) -> Answer {
    let Some(repo) = state.repos.get(&key(owner, name)).cloned() else { return Answer::not_found() };
    let Ok(comment_id) = id.parse::<u64>() else { return Answer::not_found() };
    if !state.comments.iter().any(|c| c.id == comment_id && c.repository.eq_ignore_ascii_case(&full(&repo))) {
        return Answer::not_found();
    }
    const CONTENTS: &[&str] = &["+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes"];
    let Some(content) = body.get("content").and_then(Value::as_str).filter(|c| CONTENTS.contains(c)) else {
        return Answer::validation("Reaction", "content is not included in the list");
    };
    let user = state.user.clone();
    let status = if state.reactions.iter().any(|r| r.comment_id == comment_id && r.content == content && r.user == user)
    {
        StatusCode::OK
    } else {
        state.reactions.push(FakeReaction { comment_id, content: content.to_owned(), user: user.clone() });
        StatusCode::CREATED
    };
    let reaction_id = next_id(state);
    Answer::ok(status, json!({"id": reaction_id, "content": content, "user": {"login": user}}))
}

fn repo_json(state: &FakeState, repo: &Repo) -> Value {
    let mut value = json!({
        "id": repo.id,
        "name": repo.name,
        "full_name": full(repo),
        "owner": {"login": repo.owner, "type": "User"},
        "private": repo.private,
        "html_url": format!("https://github.com/{}", full(repo)),
        "fork": repo.parent.is_some(),
        "default_branch": repo.default_branch,
        "permissions": {"admin": false, "maintain": false, "push": repo.push, "triage": repo.push, "pull": true},
    });
    if let Some((owner, name)) = &repo.parent {
        let parent = match state.repos.get(&key(owner, name)) {
            Some(parent) => repo_json(state, parent),
            None => json!({"name": name, "full_name": format!("{owner}/{name}"), "owner": {"login": owner}}),
        };
        value["parent"] = parent.clone();
        value["source"] = parent;
    }
    value
}

fn pull_json(pull: &FakePullRequest) -> Value {
    let (head_owner, head_ref) = pull.head.split_once(':').unwrap_or(("", &pull.head));
    let base_owner = pull.repository.split('/').next().unwrap_or_default();
    json!({
        "number": pull.number,
        "html_url": format!("https://github.com/{}/pull/{}", pull.repository, pull.number),
        "state": if pull.open { "open" } else { "closed" },
        "title": pull.title,
        "body": pull.body,
        "draft": pull.draft,
        "head": {"label": pull.head, "ref": head_ref, "user": {"login": head_owner}},
        "base": {"label": format!("{base_owner}:{}", pull.base), "ref": pull.base},
    })
}

fn key(owner: &str, name: &str) -> String {
    format!("{}/{}", owner.to_lowercase(), name.to_lowercase())
}

fn full(repo: &Repo) -> String {
    format!("{}/{}", repo.owner, repo.name)
}

fn next_id(state: &mut FakeState) -> u64 {
    state.next_id += 1;
    state.next_id
}
