//! A fake GitHub REST API for tests: [`FakeGitHub`].
//!
//! An HTTP server on `127.0.0.1:0` serving, under a GitHub Enterprise Server-like base
//! (`http://127.0.0.1:PORT/api/v3`, so a client that does not join paths onto its base
//! fails), the endpoints rswe uses: repositories, the authenticated user, forks, pull
//! requests, issue comments, comment reactions and collaborator permissions. Answers and
//! errors have GitHub's JSON shapes (`{"message": ..., "documentation_url": ...}`, 422s with
//! `errors`), a wrong token is `401 Bad credentials`, and [`FakeGitHub::rate_limit_next`]
//! answers like an exhausted primary rate limit. Every call is recorded.
//!
//! It also serves what a GitHub App uses ([`FakeGitHub::enable_app`]): `GET /app`, `GET
//! /repos/{owner}/{repo}/installation` and `POST /app/installations/{id}/access_tokens`, which
//! require a JSON web token (RS256) verified with the App's public key. The installation tokens it
//! mints (`ghs_…`) work for the repositories they were narrowed to only (others answer 404) and
//! stop working (401) once expired. Besides: accounts, pull request details, review comments and
//! replies, reviews, issues and their comments (paged, with GitHub's `Link` header), check runs and
//! GitHub Actions job logs (a `302` to a download address of the fake, like GitHub's signed URLs).
//! [`test_app_key`] makes an App key pair for tests.

use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::git_http::{GitAccess, GitHttpServer, GitRequest};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_2048_8192_SHA256, RsaKeyPair, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

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
/// The head commit of a pull request unless [`FakeGitHub::set_pull_head_sha`] says otherwise.
pub const PLACEHOLDER_SHA: &str = "0123456789abcdef0123456789abcdef01234567";
/// How long minted installation tokens last unless [`FakeGitHub::set_installation_token_lifetime`]
/// says otherwise.
pub const DEFAULT_INSTALLATION_TOKEN_LIFETIME: Duration = Duration::from_secs(60 * 60);
/// Where job logs are downloaded from (outside the API, no authentication, like GitHub's signed URLs).
pub const LOGS_PREFIX: &str = "/_logs/";
/// GitHub's answer to a JSON web token it cannot verify.
const JWT_UNDECODABLE: &str = "A JSON web token could not be decoded";

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
    /// The App a verified JSON web token authenticated the call as.
    pub app_id: Option<u64>,
}

/// An installation token minted by the fake.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeInstallationToken {
    pub token: String,
    pub installation_id: u64,
    /// The repositories it works for, `owner/name`.
    pub repositories: Vec<String>,
    /// The permissions asked for (`null` when none were).
    pub permissions: Value,
    pub expires_at: SystemTime,
}

/// A comment on a pull request's diff (added by a test, or a reply made through the fake).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeReviewComment {
    pub id: u64,
    /// `owner/name`.
    pub repository: String,
    pub number: u64,
    pub user: String,
    pub body: String,
    pub path: String,
    pub line: Option<u64>,
    /// The top comment of the thread, for a reply.
    pub in_reply_to_id: Option<u64>,
}

/// A pull request review added by a test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeReview {
    pub id: u64,
    /// `owner/name`.
    pub repository: String,
    pub number: u64,
    pub user: String,
    /// `APPROVED`, `CHANGES_REQUESTED`, `COMMENTED`, ...
    pub state: String,
    pub body: String,
}

/// An issue added by a test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeIssue {
    /// `owner/name`.
    pub repository: String,
    pub number: u64,
    pub title: String,
    pub body: String,
    pub is_pull_request: bool,
    /// Who wrote it.
    pub author: String,
}

/// A check run added by a test; its id is also its GitHub Actions job id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeCheckRun {
    pub id: u64,
    /// `owner/name`.
    pub repository: String,
    /// The ref it is listed under (a SHA, a branch, ...), exactly.
    pub git_ref: String,
    pub name: String,
    pub status: String,
    pub conclusion: Option<String>,
    /// What the job's log download answers.
    pub log: String,
}

/// A commit status (the older API external CI services report through).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeCommitStatus {
    /// `owner/name`.
    pub repository: String,
    /// The ref it is listed under, exactly.
    pub git_ref: String,
    pub context: String,
    /// `pending`, `success`, `failure` or `error`.
    pub state: String,
    pub description: String,
}

#[derive(Debug, Clone)]
struct FakeApp {
    id: u64,
    slug: String,
    /// PKCS#1 `RSAPublicKey` DER.
    public_key: Vec<u8>,
}

#[derive(Debug, Clone)]
struct FakeInstallation {
    account: String,
    /// `owner/name`, as installed.
    repositories: Vec<String>,
    /// The permissions granted to the installation; `None`: every one asked for.
    permissions: Option<Vec<String>>,
}

/// Who a call authenticated as.
#[derive(Debug, Clone)]
enum Principal {
    Anonymous,
    /// The token given to [`FakeGitHub::start_with_token`].
    User,
    /// A verified JSON web token of the App.
    App,
    /// An installation token, with the lowercase `owner/name` it works for.
    Installation(Vec<String>),
}

/// What a route needs to know about the call beyond its path and body.
struct Context {
    principal: Principal,
    /// The login acting (the token's user, or the App's bot).
    actor: String,
    /// `http://HOST`, as the client addressed the fake.
    origin: String,
    at: SystemTime,
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
    /// Who opened it (the token's user, or the App's bot).
    pub author: String,
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
    clone_url: Option<String>,
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
    app: Option<FakeApp>,
    /// Where repositories' git data is served from, once [`FakeGitHub::serve_git`] was called:
    /// (the directory of bare repositories, the server's base URL).
    git: Option<(PathBuf, String)>,
    installations: BTreeMap<u64, FakeInstallation>,
    installation_tokens: Vec<FakeInstallationToken>,
    /// `None`: [`DEFAULT_INSTALLATION_TOKEN_LIFETIME`].
    token_lifetime: Option<Duration>,
    /// By lowercase `owner/name` and number.
    head_shas: HashMap<(String, u64), String>,
    review_comments: Vec<FakeReviewComment>,
    reviews: Vec<FakeReview>,
    issues: Vec<FakeIssue>,
    check_runs: Vec<FakeCheckRun>,
    commit_statuses: Vec<FakeCommitStatus>,
    /// When comments and reviews were made, by id.
    created: HashMap<u64, SystemTime>,
    random: std::hash::RandomState,
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
                clone_url: None,
            },
        );
    }

    /// The `clone_url` a repository's answers give (default `https://github.com/{owner}/{name}.git`),
    /// e.g. a local bare repository for git tests.
    pub fn set_clone_url(&self, owner: &str, name: &str, url: &str) {
        if let Some(repo) = self.shared.lock().repos.get_mut(&key(owner, name)) {
            repo.clone_url = Some(url.to_owned());
        }
    }

    /// Serves GitHub App `app_id` (with this URL name), whose JSON web tokens verify with
    /// `public_key_der` (PKCS#1 `RSAPublicKey`, see [`test_app_key`]).
    pub fn enable_app(&self, app_id: u64, slug: &str, public_key_der: Vec<u8>) {
        self.shared.lock().app = Some(FakeApp { id: app_id, slug: slug.to_owned(), public_key: public_key_der });
    }

    /// Adds an installation of the App on `account`, with no repositories yet.
    pub fn add_installation(&self, id: u64, account: &str) {
        self.shared
            .lock()
            .installations
            .insert(id, FakeInstallation { account: account.to_owned(), repositories: Vec::new(), permissions: None });
    }

    /// Grants installation `id` only `permissions` (e.g. `["contents", "metadata"]`): minting a
    /// token that asks for any other answers `422`, as GitHub does.
    pub fn restrict_installation(&self, id: u64, permissions: &[&str]) {
        if let Some(installation) = self.shared.lock().installations.get_mut(&id) {
            installation.permissions = Some(permissions.iter().map(|p| (*p).to_owned()).collect());
        }
    }

    /// Gives installation `installation_id` (made on `owner` when there is none) access to
    /// `owner/name`.
    pub fn install(&self, installation_id: u64, owner: &str, name: &str) {
        let mut state = self.shared.lock();
        let installation = state.installations.entry(installation_id).or_insert_with(|| FakeInstallation {
            account: owner.to_owned(),
            repositories: Vec::new(),
            permissions: None,
        });
        let full_name = format!("{owner}/{name}");
        if !installation.repositories.iter().any(|r| r.eq_ignore_ascii_case(&full_name)) {
            installation.repositories.push(full_name);
        }
    }

    /// How long installation tokens minted from now on last.
    pub fn set_installation_token_lifetime(&self, lifetime: Duration) {
        self.shared.lock().token_lifetime = Some(lifetime);
    }

    /// Serves the repositories' git data over smart HTTP (real `git http-backend`) from bare
    /// repositories under `root`: one is made for every repository added so far, and forks made
    /// through the API get a copy of their source. Repositories then answer with a `clone_url` on
    /// that server. Git accepts the token (pushing only where it may push) and installation
    /// tokens narrowed to the repository, as GitHub does.
    pub async fn serve_git(&self, root: PathBuf) -> GitHttpServer {
        let shared = self.shared.clone();
        let authorize: crate::git_http::Authorize = Arc::new(move |request: &GitRequest| git_access(&shared, request));
        let server = GitHttpServer::start(root.clone(), authorize).await;
        let repos: Vec<(String, String)> = {
            let mut state = self.shared.lock();
            state.git = Some((root.clone(), server.base_url()));
            state.repos.values().map(|repo| (repo.owner.clone(), repo.name.clone())).collect()
        };
        for (owner, name) in repos {
            if self.bare_repository(&owner, &name).is_none() {
                crate::git_http::create_bare(&root, &owner, &name).await;
            }
        }
        server
    }

    /// The bare repository holding a repository's git data, once [`FakeGitHub::serve_git`] made it.
    pub fn bare_repository(&self, owner: &str, name: &str) -> Option<PathBuf> {
        let state = self.shared.lock();
        let (root, _) = state.git.as_ref()?;
        let repo = state.repos.get(&key(owner, name))?;
        let path = root.join(&repo.owner).join(format!("{}.git", repo.name));
        path.exists().then_some(path)
    }

    /// The installation tokens minted so far, in order.
    pub fn minted_tokens(&self) -> Vec<FakeInstallationToken> {
        self.shared.lock().installation_tokens.clone()
    }

    /// The head commit pull request `number` reports (default [`PLACEHOLDER_SHA`]).
    pub fn set_pull_head_sha(&self, owner: &str, name: &str, number: u64, sha: &str) {
        self.shared.lock().head_shas.insert((key(owner, name), number), sha.to_owned());
    }

    /// Adds a comment by `user` on line `line` of `path` in pull request `number`'s diff; its id.
    #[allow(clippy::too_many_arguments)]
    pub fn add_review_comment(
        &self,
        owner: &str,
        name: &str,
        number: u64,
        user: &str,
        body: &str,
        path: &str,
        line: Option<u64>,
    ) -> u64 {
        let mut state = self.shared.lock();
        let id = next_id(&mut state);
        state.created.insert(id, SystemTime::now());
        state.review_comments.push(FakeReviewComment {
            id,
            repository: format!("{owner}/{name}"),
            number,
            user: user.to_owned(),
            body: body.to_owned(),
            path: path.to_owned(),
            line,
            in_reply_to_id: None,
        });
        id
    }

    /// The review comments, replies included, in order.
    pub fn review_comments(&self) -> Vec<FakeReviewComment> {
        self.shared.lock().review_comments.clone()
    }

    /// Adds a review by `user` (`state`: `APPROVED`, `CHANGES_REQUESTED`, `COMMENTED`, ...) on pull
    /// request `number`; its id.
    pub fn add_review(&self, owner: &str, name: &str, number: u64, user: &str, state: &str, body: &str) -> u64 {
        let mut fake = self.shared.lock();
        let id = next_id(&mut fake);
        fake.created.insert(id, SystemTime::now());
        fake.reviews.push(FakeReview {
            id,
            repository: format!("{owner}/{name}"),
            number,
            user: user.to_owned(),
            state: state.to_owned(),
            body: body.to_owned(),
        });
        id
    }

    /// Adds (or replaces) issue `number`, written by `octocat`; later issues and pull requests are
    /// numbered after it.
    pub fn add_issue(&self, owner: &str, name: &str, number: u64, title: &str, body: &str, is_pull_request: bool) {
        self.add_issue_by(owner, name, number, title, body, is_pull_request, "octocat");
    }

    /// Adds (or replaces) issue `number`, written by `author`; later issues and pull requests are
    /// numbered after it.
    #[allow(clippy::too_many_arguments)]
    pub fn add_issue_by(
        &self,
        owner: &str,
        name: &str,
        number: u64,
        title: &str,
        body: &str,
        is_pull_request: bool,
        author: &str,
    ) {
        let mut state = self.shared.lock();
        let repository = format!("{owner}/{name}");
        state.issues.retain(|i| !(i.number == number && i.repository.eq_ignore_ascii_case(&repository)));
        state.issues.push(FakeIssue {
            repository,
            number,
            title: title.to_owned(),
            body: body.to_owned(),
            is_pull_request,
            author: author.to_owned(),
        });
        let last = state.numbers.entry(key(owner, name)).or_insert(0);
        *last = (*last).max(number);
    }

    /// Adds a comment by `user` (someone else than the token's user) on issue or pull request
    /// `number`; its id. Reactions to it work as to any comment.
    pub fn add_issue_comment(&self, owner: &str, name: &str, number: u64, user: &str, body: &str) -> u64 {
        let mut state = self.shared.lock();
        let id = next_id(&mut state);
        state.created.insert(id, SystemTime::now());
        state.comments.push(FakeComment {
            id,
            repository: format!("{owner}/{name}"),
            number,
            body: body.to_owned(),
            user: user.to_owned(),
        });
        id
    }

    /// Adds a check run listed under `git_ref` (exactly that string); its id, also the id of its
    /// GitHub Actions job, whose log is `log`.
    #[allow(clippy::too_many_arguments)]
    pub fn add_check_run(
        &self,
        owner: &str,
        name: &str,
        git_ref: &str,
        name_: &str,
        status: &str,
        conclusion: Option<&str>,
        log: &str,
    ) -> u64 {
        let mut state = self.shared.lock();
        let id = next_id(&mut state);
        state.created.insert(id, SystemTime::now());
        state.check_runs.push(FakeCheckRun {
            id,
            repository: format!("{owner}/{name}"),
            git_ref: git_ref.to_owned(),
            name: name_.to_owned(),
            status: status.to_owned(),
            conclusion: conclusion.map(str::to_owned),
            log: log.to_owned(),
        });
        id
    }

    /// Sets the commit status `context` of `git_ref` (a new state replaces the old one, as the
    /// combined status shows only the latest per context).
    pub fn set_commit_status(
        &self,
        owner: &str,
        name: &str,
        git_ref: &str,
        context: &str,
        state: &str,
        description: &str,
    ) {
        let mut fake = self.shared.lock();
        let repository = format!("{owner}/{name}");
        fake.commit_statuses.retain(|s| !(s.repository == repository && s.git_ref == git_ref && s.context == context));
        fake.commit_statuses.push(FakeCommitStatus {
            repository,
            git_ref: git_ref.to_owned(),
            context: context.to_owned(),
            state: state.to_owned(),
            description: description.to_owned(),
        });
    }

    /// Moves check run `id` on (e.g. to `completed`, `Some("success")`).
    pub fn update_check_run(&self, id: u64, status: &str, conclusion: Option<&str>) {
        if let Some(run) = self.shared.lock().check_runs.iter_mut().find(|r| r.id == id) {
            run.status = status.to_owned();
            run.conclusion = conclusion.map(str::to_owned);
        }
    }

    /// The check runs, in order.
    pub fn check_runs(&self) -> Vec<FakeCheckRun> {
        self.shared.lock().check_runs.clone()
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
    /// A plain-text body instead of the JSON one.
    text: Option<String>,
}

impl Answer {
    fn ok(status: StatusCode, body: Value) -> Answer {
        Answer { status, body, headers: Vec::new(), text: None }
    }

    fn text(status: StatusCode, text: String) -> Answer {
        Answer {
            status,
            body: Value::Null,
            headers: vec![("content-type", "text/plain; charset=utf-8".to_owned())],
            text: Some(text),
        }
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
        app_id: None,
    };
    let origin = format!("http://{}", header(header::HOST.as_str()).unwrap_or_else(|| "127.0.0.1".to_owned()));

    let (answer, git, call_path) = {
        let mut state = shared.lock();
        let answer = if let Some(id) = full_path.strip_prefix(LOGS_PREFIX) {
            // A log download: its address is the credential.
            let run = id.parse::<u64>().ok().and_then(|id| state.check_runs.iter().find(|r| r.id == id));
            match run {
                Some(run) if method == Method::GET => Answer::text(StatusCode::OK, run.log.clone()),
                _ => Answer::not_found(),
            }
        } else if state.rate_limited > 0 {
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
        } else {
            match authenticate(&state, &shared, token.as_deref(), at) {
                Err(answer) => answer,
                Ok(principal) => {
                    if matches!(principal, Principal::App) {
                        call.app_id = state.app.as_ref().map(|app| app.id);
                    }
                    let actor = match (&principal, &state.app) {
                        (Principal::Installation(_), Some(app)) => format!("{}[bot]", app.slug),
                        _ => state.user.clone(),
                    };
                    let context = Context { principal, actor, origin, at };
                    match (path, parsed_body) {
                        (None, _) => Answer::not_found(),
                        (Some(_), Err(_)) => Answer::error(StatusCode::BAD_REQUEST, "Problems parsing JSON"),
                        (Some(path), Ok(body)) => route(&mut state, &context, &method, &path, uri.query(), &body),
                    }
                }
            }
        };
        call.status = answer.status.as_u16();
        tracing::debug!(method = %call.method, path = %call.path, status = call.status, "fake github: call");
        let call_path = call.path.clone();
        state.calls.push(call);
        shared.changed.send_modify(|n| *n += 1);
        (answer, state.git.clone(), call_path)
    };

    // A fork made through the API gets its git data, as on GitHub.
    if let (Some((root, _)), true) = (git, method == Method::POST && answer.status == StatusCode::ACCEPTED) {
        let source = call_path.strip_prefix("/repos/").and_then(|rest| rest.strip_suffix("/forks"));
        let fork_owner = answer.body.pointer("/owner/login").and_then(Value::as_str);
        let fork_name = answer.body.get("name").and_then(Value::as_str);
        if let (Some((owner, name)), Some(fork_owner), Some(fork_name)) =
            (source.and_then(|s| s.split_once('/')), fork_owner, fork_name)
            && !root.join(fork_owner).join(format!("{fork_name}.git")).exists()
        {
            crate::git_http::fork_bare(&root, (owner, name), (fork_owner, fork_name)).await;
        }
    }

    let mut response = match answer.text {
        Some(text) => (answer.status, text).into_response(),
        None => (answer.status, axum::Json(answer.body)).into_response(),
    };
    for (name, value) in answer.headers {
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

/// Whether a git request may go ahead: the repository must exist; the token (as the HTTP
/// password) must be the user's, which pushes only where it may, or an unexpired installation
/// token narrowed to the repository.
fn git_access(shared: &Shared, request: &GitRequest) -> GitAccess {
    let state = shared.lock();
    let Some(repo) = state.repos.get(&key(&request.owner, &request.name)) else { return GitAccess::NotFound };
    let Some(password) = request.password.as_deref() else { return GitAccess::Unauthorized };
    if password == shared.token {
        return if request.is_push() && !repo.push { GitAccess::Forbidden } else { GitAccess::Allow };
    }
    let now = SystemTime::now();
    match state.installation_tokens.iter().find(|t| t.token == password) {
        Some(minted) if minted.expires_at > now => {
            if minted.repositories.iter().any(|r| r.eq_ignore_ascii_case(&full(repo))) {
                GitAccess::Allow
            } else {
                GitAccess::NotFound
            }
        }
        _ => GitAccess::Unauthorized,
    }
}

/// Who the token is: the user's token, an App's JSON web token, an installation token; or the
/// `401` GitHub answers.
fn authenticate(state: &FakeState, shared: &Shared, token: Option<&str>, now: SystemTime) -> Result<Principal, Answer> {
    let Some(token) = token else { return Ok(Principal::Anonymous) };
    if token == shared.token {
        return Ok(Principal::User);
    }
    if let Some(minted) = state.installation_tokens.iter().find(|t| t.token == token) {
        if minted.expires_at <= now {
            return Err(Answer::error(StatusCode::UNAUTHORIZED, "Bad credentials"));
        }
        return Ok(Principal::Installation(minted.repositories.iter().map(|r| r.to_lowercase()).collect()));
    }
    if token.split('.').count() == 3 {
        let Some(app) = &state.app else { return Err(Answer::error(StatusCode::UNAUTHORIZED, JWT_UNDECODABLE)) };
        return match verify_jwt(app, token, now) {
            Ok(()) => Ok(Principal::App),
            Err(message) => Err(Answer::error(StatusCode::UNAUTHORIZED, message)),
        };
    }
    Err(Answer::error(StatusCode::UNAUTHORIZED, "Bad credentials"))
}

/// Checks an App's JSON web token as GitHub does: RS256 signed with the App's key, `iss` the App,
/// `exp` ahead but at most ten minutes, `iat` not ahead. The error is GitHub's message.
fn verify_jwt(app: &FakeApp, token: &str, now: SystemTime) -> Result<(), &'static str> {
    let mut parts = token.split('.');
    let (Some(header), Some(claims), Some(signature)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(JWT_UNDECODABLE);
    };
    let decode = |part: &str| URL_SAFE_NO_PAD.decode(part).map_err(|_| JWT_UNDECODABLE);
    let header: Value = serde_json::from_slice(&decode(header)?).map_err(|_| JWT_UNDECODABLE)?;
    if header.get("alg").and_then(Value::as_str) != Some("RS256") {
        return Err(JWT_UNDECODABLE);
    }
    let signed_len = token.len() - signature.len() - 1;
    UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &app.public_key)
        .verify(&token.as_bytes()[..signed_len], &decode(signature)?)
        .map_err(|_| JWT_UNDECODABLE)?;
    let claims: Value = serde_json::from_slice(&decode(claims)?).map_err(|_| JWT_UNDECODABLE)?;
    let iss = match claims.get("iss") {
        Some(Value::String(iss)) => iss.parse::<u64>().ok(),
        Some(iss) => iss.as_u64(),
        None => None,
    };
    if iss != Some(app.id) {
        return Err(JWT_UNDECODABLE);
    }
    let now = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    match claims.get("exp").and_then(Value::as_u64) {
        Some(exp) if exp <= now => {
            Err("'Expiration time' claim ('exp') must be a numeric value representing the future time at which the \
             assertion expires")
        }
        Some(exp) if exp > now + 600 => Err("'Expiration time' claim ('exp') is too far in the future"),
        Some(_) => match claims.get("iat").and_then(Value::as_u64) {
            Some(iat) if iat <= now => Ok(()),
            _ => Err("'Issued at' claim ('iat') must be an Integer representing a time in the past"),
        },
        None => Err(JWT_UNDECODABLE),
    }
}

/// Whether the principal may call this endpoint at all, as GitHub decides before looking further.
fn admitted(principal: &Principal, method: &str, segments: &[&str]) -> Result<(), Answer> {
    let app_endpoint = matches!(
        (method, segments),
        ("GET", ["app"])
            | ("GET", ["repos", _, _, "installation"])
            | ("POST", ["app", "installations", _, "access_tokens"])
    );
    match principal {
        Principal::App if app_endpoint => Ok(()),
        Principal::App => Err(Answer::error(StatusCode::FORBIDDEN, "Resource not accessible by integration")),
        _ if app_endpoint => Err(Answer::error(StatusCode::UNAUTHORIZED, JWT_UNDECODABLE)),
        Principal::Anonymous if matches!((method, segments), ("GET", ["users", _])) => Ok(()),
        Principal::Anonymous => Err(Answer::error(StatusCode::UNAUTHORIZED, "Requires authentication")),
        Principal::User => Ok(()),
        Principal::Installation(_) if segments == ["user"] => {
            Err(Answer::error(StatusCode::FORBIDDEN, "Resource not accessible by integration"))
        }
        Principal::Installation(repositories) => match segments {
            ["repos", owner, name, ..] if !repositories.contains(&key(owner, name)) => Err(Answer::not_found()),
            _ => Ok(()),
        },
    }
}

fn route(
    state: &mut FakeState,
    context: &Context,
    method: &Method,
    path: &str,
    query: Option<&str>,
    body: &Value,
) -> Answer {
    let segments: Vec<String> =
        path.trim_matches('/').split('/').map(|s| crate::encoding::percent_decode(s.as_bytes(), false)).collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    if let Err(refusal) = admitted(&context.principal, method.as_str(), &segments) {
        return refusal;
    }
    // Every `/repos/{owner}/{repo}/…` but the repository itself needs the repository.
    if let ["repos", owner, name, _, ..] = segments.as_slice()
        && !state.repos.contains_key(&key(owner, name))
    {
        return Answer::not_found();
    }
    let page = Page { query, context, path };
    match (method.as_str(), segments.as_slice()) {
        ("GET", ["user"]) => {
            let user = state.user.clone();
            Answer::ok(StatusCode::OK, user_json(&user))
        }
        ("GET", ["users", login]) => Answer::ok(StatusCode::OK, user_json(login)),
        ("GET", ["app"]) => match &state.app {
            Some(app) => Answer::ok(
                StatusCode::OK,
                json!({"id": app.id, "slug": app.slug, "name": app.slug, "owner": {"login": "rswe"}}),
            ),
            None => Answer::not_found(),
        },
        ("GET", ["repos", owner, name, "installation"]) => {
            let wanted = format!("{owner}/{name}");
            let found = state
                .installations
                .iter()
                .find(|(_, installation)| installation.repositories.iter().any(|r| r.eq_ignore_ascii_case(&wanted)));
            match (found, &state.app) {
                (Some((id, installation)), Some(app)) => Answer::ok(
                    StatusCode::OK,
                    json!({
                        "id": id,
                        "account": {"login": installation.account},
                        "app_id": app.id,
                        "app_slug": app.slug,
                        "repository_selection": "selected",
                    }),
                ),
                _ => Answer::not_found(),
            }
        }
        ("POST", ["app", "installations", id, "access_tokens"]) => mint(state, context, id, body),
        ("GET", ["repos", owner, name]) => match state.repos.get(&key(owner, name)) {
            Some(repo) => Answer::ok(StatusCode::OK, repo_json(state, repo)),
            None => Answer::not_found(),
        },
        ("POST", ["repos", owner, name, "forks"]) => fork(state, owner, name, body),
        ("POST", ["repos", owner, name, "pulls"]) => create_pull(state, context, owner, name, body),
        ("GET", ["repos", owner, name, "pulls"]) => list_pulls(state, owner, name, query),
        ("GET", ["repos", owner, name, "pulls", number]) => {
            let repository = format!("{owner}/{name}");
            let pull = number.parse::<u64>().ok().and_then(|n| {
                state.pulls.iter().find(|p| p.number == n && p.repository.eq_ignore_ascii_case(&repository))
            });
            match pull {
                Some(pull) => Answer::ok(StatusCode::OK, pull_json(state, pull)),
                None => Answer::not_found(),
            }
        }
        ("GET", ["repos", owner, name, "pulls", number, "comments"]) => {
            let Ok(number) = number.parse::<u64>() else { return Answer::not_found() };
            let repository = format!("{owner}/{name}");
            let items = state
                .review_comments
                .iter()
                .filter(|c| c.number == number && c.repository.eq_ignore_ascii_case(&repository))
                .map(|c| review_comment_json(state, c))
                .collect();
            page.answer(items)
        }
        ("POST", ["repos", owner, name, "pulls", number, "comments", id, "replies"]) => {
            reply(state, context, owner, name, number, id, body)
        }
        ("GET", ["repos", owner, name, "pulls", number, "reviews"]) => {
            let Ok(number) = number.parse::<u64>() else { return Answer::not_found() };
            let repository = format!("{owner}/{name}");
            let items = state
                .reviews
                .iter()
                .filter(|r| r.number == number && r.repository.eq_ignore_ascii_case(&repository))
                .map(|r| {
                    let (repository, number, id) = (&r.repository, r.number, r.id);
                    json!({
                        "id": r.id,
                        "user": user_json(&r.user),
                        "body": r.body,
                        "state": r.state,
                        "html_url": format!("https://github.com/{repository}/pull/{number}#pullrequestreview-{id}"),
                        "submitted_at": rfc3339(created(state, r.id)),
                    })
                })
                .collect();
            page.answer(items)
        }
        ("GET", ["repos", owner, name, "issues", number]) => issue(state, owner, name, number),
        ("GET", ["repos", owner, name, "issues", number, "comments"]) => {
            let Ok(number) = number.parse::<u64>() else { return Answer::not_found() };
            let repository = format!("{owner}/{name}");
            let items = state
                .comments
                .iter()
                .filter(|c| c.number == number && c.repository.eq_ignore_ascii_case(&repository))
                .map(|c| comment_json(state, c))
                .collect();
            page.answer(items)
        }
        ("POST", ["repos", owner, name, "issues", number, "comments"]) => {
            comment(state, context, owner, name, number, body)
        }
        ("POST", ["repos", owner, name, "issues", "comments", id, "reactions"]) => {
            react(state, context, owner, name, id, body)
        }
        ("GET", ["repos", owner, name, "commits", git_ref, "check-runs"]) => {
            let repository = format!("{owner}/{name}");
            let runs: Vec<Value> = state
                .check_runs
                .iter()
                .filter(|r| r.git_ref == *git_ref && r.repository.eq_ignore_ascii_case(&repository))
                .map(|r| check_run_json(state, r))
                .collect();
            Answer::ok(StatusCode::OK, json!({"total_count": runs.len(), "check_runs": runs}))
        }
        ("GET", ["repos", owner, name, "commits", git_ref, "status"]) => {
            let repository = format!("{owner}/{name}");
            let statuses: Vec<&FakeCommitStatus> = state
                .commit_statuses
                .iter()
                .filter(|s| s.git_ref == *git_ref && s.repository.eq_ignore_ascii_case(&repository))
                .collect();
            let combined = if statuses.iter().any(|s| s.state == "failure" || s.state == "error") {
                "failure"
            } else if statuses.iter().any(|s| s.state == "pending") || statuses.is_empty() {
                "pending"
            } else {
                "success"
            };
            let list: Vec<Value> = statuses
                .iter()
                .map(|s| {
                    json!({"context": s.context, "state": s.state, "description": s.description,
                           "target_url": format!("https://ci.example.com/{}", s.context)})
                })
                .collect();
            Answer::ok(
                StatusCode::OK,
                json!({"state": combined, "sha": git_ref, "total_count": list.len(), "statuses": list}),
            )
        }
        ("GET", ["repos", owner, name, "actions", "jobs", id, "logs"]) => {
            let repository = format!("{owner}/{name}");
            let run = id.parse::<u64>().ok().and_then(|id| {
                state.check_runs.iter().find(|r| r.id == id && r.repository.eq_ignore_ascii_case(&repository))
            });
            match run {
                Some(run) => {
                    let mut answer = Answer::text(StatusCode::FOUND, String::new());
                    answer.headers = vec![("location", format!("{}{LOGS_PREFIX}{}", context.origin, run.id))];
                    answer
                }
                None => Answer::not_found(),
            }
        }
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
        clone_url: None,
    };
    state.repos.insert(fork_key, fork.clone());
    Answer::ok(StatusCode::ACCEPTED, repo_json(state, &fork))
}

fn create_pull(state: &mut FakeState, context: &Context, owner: &str, name: &str, body: &Value) -> Answer {
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
        author: context.actor.clone(),
    };
    state.pulls.push(pull.clone());
    Answer::ok(StatusCode::CREATED, pull_json(state, &pull))
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
        .map(|p| pull_json(state, p))
        .collect();
    Answer::ok(StatusCode::OK, Value::Array(pulls))
}

fn comment(state: &mut FakeState, context: &Context, owner: &str, name: &str, number: &str, body: &Value) -> Answer {
    let Some(repo) = state.repos.get(&key(owner, name)).cloned() else { return Answer::not_found() };
    let Ok(number) = number.parse::<u64>() else { return Answer::not_found() };
    let Some(text) = body.get("body").and_then(Value::as_str).filter(|b| !b.is_empty()) else {
        return Answer::validation("IssueComment", "body is missing");
    };
    let id = next_id(state);
    state.created.insert(id, context.at);
    let comment =
        FakeComment { id, repository: full(&repo), number, body: text.to_owned(), user: context.actor.clone() };
    state.comments.push(comment.clone());
    Answer::ok(StatusCode::CREATED, comment_json(state, &comment))
}

fn react(state: &mut FakeState, context: &Context, owner: &str, name: &str, id: &str, body: &Value) -> Answer {
    let Some(repo) = state.repos.get(&key(owner, name)).cloned() else { return Answer::not_found() };
    let Ok(comment_id) = id.parse::<u64>() else { return Answer::not_found() };
    if !state.comments.iter().any(|c| c.id == comment_id && c.repository.eq_ignore_ascii_case(&full(&repo))) {
        return Answer::not_found();
    }
    const CONTENTS: &[&str] = &["+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes"];
    let Some(content) = body.get("content").and_then(Value::as_str).filter(|c| CONTENTS.contains(c)) else {
        return Answer::validation("Reaction", "content is not included in the list");
    };
    let user = context.actor.clone();
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
        "clone_url": repo.clone_url.clone().unwrap_or_else(|| match &state.git {
            Some((_, base)) => format!("{base}{}.git", full(repo)),
            None => format!("https://github.com/{}.git", full(repo)),
        }),
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

fn pull_json(state: &FakeState, pull: &FakePullRequest) -> Value {
    let (head_owner, head_ref) = pull.head.split_once(':').unwrap_or(("", &pull.head));
    let (base_owner, base_name) = pull.repository.split_once('/').unwrap_or((&pull.repository, ""));
    // The head repository: the base itself, a real fork of it, or one named like it.
    let head_repo = if head_owner.eq_ignore_ascii_case(base_owner) {
        pull.repository.clone()
    } else {
        state
            .repos
            .values()
            .find(|r| {
                r.owner.eq_ignore_ascii_case(head_owner)
                    && r.parent
                        .as_ref()
                        .is_some_and(|(o, n)| o.eq_ignore_ascii_case(base_owner) && n.eq_ignore_ascii_case(base_name))
            })
            .map_or_else(|| format!("{head_owner}/{base_name}"), full)
    };
    let (head_repo_owner, head_repo_name) = head_repo.split_once('/').unwrap_or_default();
    let sha = state
        .head_shas
        .get(&(pull.repository.to_lowercase(), pull.number))
        .cloned()
        .unwrap_or_else(|| PLACEHOLDER_SHA.to_owned());
    json!({
        "number": pull.number,
        "html_url": format!("https://github.com/{}/pull/{}", pull.repository, pull.number),
        "state": if pull.open { "open" } else { "closed" },
        "title": pull.title,
        "body": pull.body,
        "draft": pull.draft,
        "user": user_json(&pull.author),
        "merged": false,
        "merged_at": null,
        "head": {
            "label": pull.head,
            "ref": head_ref,
            "sha": sha,
            "user": {"login": head_owner},
            "repo": {
                "name": head_repo_name,
                "full_name": head_repo,
                "owner": {"login": head_repo_owner},
                "clone_url": format!("https://github.com/{head_repo}.git"),
            },
        },
        "base": {
            "label": format!("{base_owner}:{}", pull.base),
            "ref": pull.base,
            "repo": {"name": base_name, "full_name": pull.repository, "owner": {"login": base_owner}},
        },
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

/// Lists answered a page at a time, as GitHub does: `per_page` (default 30, at most 100) and
/// `page` (from 1), with a `Link` header naming the next and last pages.
struct Page<'a> {
    query: Option<&'a str>,
    context: &'a Context,
    path: &'a str,
}

impl Page<'_> {
    fn answer(&self, items: Vec<Value>) -> Answer {
        let params = query_params(self.query);
        let per_page = params.get("per_page").and_then(|v| v.parse::<usize>().ok()).unwrap_or(30).clamp(1, 100);
        let page = params.get("page").and_then(|v| v.parse::<usize>().ok()).unwrap_or(1).max(1);
        let last = items.len().div_ceil(per_page).max(1);
        let chunk: Vec<Value> = items.into_iter().skip((page - 1) * per_page).take(per_page).collect();
        let mut answer = Answer::ok(StatusCode::OK, Value::Array(chunk));
        if page < last {
            let address = |page: usize| {
                format!("<{}{API_PREFIX}{}?per_page={per_page}&page={page}>", self.context.origin, self.path)
            };
            answer
                .headers
                .push(("link", format!(r#"{}; rel="next", {}; rel="last""#, address(page + 1), address(last))));
        }
        answer
    }
}

fn query_params(query: Option<&str>) -> HashMap<String, String> {
    query
        .unwrap_or_default()
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| {
            (crate::encoding::percent_decode(k.as_bytes(), true), crate::encoding::percent_decode(v.as_bytes(), true))
        })
        .collect()
}

/// `POST /app/installations/{id}/access_tokens`.
fn mint(state: &mut FakeState, context: &Context, id: &str, body: &Value) -> Answer {
    let Some(installation_id) = id.parse::<u64>().ok() else { return Answer::not_found() };
    let Some(installation) = state.installations.get(&installation_id).cloned() else {
        return Answer::not_found();
    };
    let repositories = match body.get("repositories") {
        None | Some(Value::Null) => installation.repositories.clone(),
        Some(Value::Array(names)) => {
            let mut granted = Vec::new();
            for name in names {
                let wanted = name.as_str().map(|n| format!("{}/{n}", installation.account));
                match wanted.and_then(|w| installation.repositories.iter().find(|r| r.eq_ignore_ascii_case(&w))) {
                    Some(repository) => granted.push(repository.clone()),
                    None => {
                        return Answer::validation(
                            "Repository",
                            "There is at least one repository that does not exist or is not accessible to the \
                             parent installation.",
                        );
                    }
                }
            }
            granted
        }
        Some(_) => return Answer::validation("Repository", "repositories is not an array"),
    };
    let permissions = body.get("permissions").cloned().unwrap_or(Value::Null);
    if let (Some(granted), Some(asked)) = (&installation.permissions, permissions.as_object())
        && asked.keys().any(|asked| !granted.contains(asked))
    {
        return Answer::error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "The permissions requested are not granted to this installation.",
        );
    }
    let serial = next_id(state);
    let token = format!("ghs_{}", random_chars(&state.random, serial, 32));
    let expires_at = context.at + state.token_lifetime.unwrap_or(DEFAULT_INSTALLATION_TOKEN_LIFETIME);
    let repository_json: Vec<Value> = repositories
        .iter()
        .map(|full_name| {
            let (owner, name) = full_name.split_once('/').unwrap_or_default();
            let id = state.repos.get(&key(owner, name)).map_or(0, |r| r.id);
            json!({"id": id, "name": name, "full_name": full_name})
        })
        .collect();
    state.installation_tokens.push(FakeInstallationToken {
        token: token.clone(),
        installation_id,
        repositories,
        permissions: permissions.clone(),
        expires_at,
    });
    Answer::ok(
        StatusCode::CREATED,
        json!({
            "token": token,
            "expires_at": rfc3339(expires_at),
            "permissions": permissions,
            "repository_selection": "selected",
            "repositories": repository_json,
        }),
    )
}

/// `POST /repos/{owner}/{repo}/pulls/{number}/comments/{id}/replies`.
fn reply(
    state: &mut FakeState,
    context: &Context,
    owner: &str,
    name: &str,
    number: &str,
    id: &str,
    body: &Value,
) -> Answer {
    let repository = format!("{owner}/{name}");
    let (Ok(number), Ok(id)) = (number.parse::<u64>(), id.parse::<u64>()) else { return Answer::not_found() };
    let Some(target) = state
        .review_comments
        .iter()
        .find(|c| c.id == id && c.number == number && c.repository.eq_ignore_ascii_case(&repository))
        .cloned()
    else {
        return Answer::not_found();
    };
    let Some(text) = body.get("body").and_then(Value::as_str).filter(|b| !b.is_empty()) else {
        return Answer::validation("PullRequestReviewComment", "body is missing");
    };
    let reply_id = next_id(state);
    state.created.insert(reply_id, context.at);
    let reply = FakeReviewComment {
        id: reply_id,
        repository: target.repository.clone(),
        number,
        user: context.actor.clone(),
        body: text.to_owned(),
        path: target.path.clone(),
        line: target.line,
        // GitHub threads a reply to a reply under the thread's first comment.
        in_reply_to_id: Some(target.in_reply_to_id.unwrap_or(target.id)),
    };
    state.review_comments.push(reply.clone());
    Answer::ok(StatusCode::CREATED, review_comment_json(state, &reply))
}

/// `GET /repos/{owner}/{repo}/issues/{number}`: an issue added by a test, or a pull request.
fn issue(state: &FakeState, owner: &str, name: &str, number: &str) -> Answer {
    let repository = format!("{owner}/{name}");
    let Ok(number) = number.parse::<u64>() else { return Answer::not_found() };
    let found = state
        .issues
        .iter()
        .find(|i| i.number == number && i.repository.eq_ignore_ascii_case(&repository))
        .map(|i| (i.repository.clone(), i.title.clone(), i.body.clone(), i.is_pull_request, true, i.author.clone()))
        .or_else(|| {
            state
                .pulls
                .iter()
                .find(|p| p.number == number && p.repository.eq_ignore_ascii_case(&repository))
                .map(|p| (p.repository.clone(), p.title.clone(), p.body.clone(), true, p.open, p.author.clone()))
        });
    let Some((repository, title, body, is_pull_request, open, author)) = found else { return Answer::not_found() };
    let kind = if is_pull_request { "pull" } else { "issues" };
    let mut value = json!({
        "number": number,
        "title": title,
        "body": if body.is_empty() { Value::Null } else { Value::String(body) },
        "state": if open { "open" } else { "closed" },
        "html_url": format!("https://github.com/{repository}/{kind}/{number}"),
        "user": user_json(&author),
    });
    if is_pull_request {
        value["pull_request"] = json!({"html_url": format!("https://github.com/{repository}/pull/{number}")});
    }
    Answer::ok(StatusCode::OK, value)
}

fn user_json(login: &str) -> Value {
    let kind = if login.ends_with("[bot]") { "Bot" } else { "User" };
    json!({
        "login": login,
        "id": user_id(login),
        "type": kind,
        "html_url": format!("https://github.com/{}", login.trim_end_matches("[bot]")),
    })
}

/// An account's id: the same for a login every time (FNV-1a of its lowercase form).
pub fn user_id(login: &str) -> u64 {
    let hash = login
        .to_lowercase()
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, b| (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    1_000_000 + hash % 90_000_000
}

fn comment_json(state: &FakeState, comment: &FakeComment) -> Value {
    let at = rfc3339(created(state, comment.id));
    let (repository, number, id) = (&comment.repository, comment.number, comment.id);
    json!({
        "id": comment.id,
        "body": comment.body,
        "user": user_json(&comment.user),
        "html_url": format!("https://github.com/{repository}/issues/{number}#issuecomment-{id}"),
        "created_at": at,
        "updated_at": at,
    })
}

fn review_comment_json(state: &FakeState, comment: &FakeReviewComment) -> Value {
    let at = rfc3339(created(state, comment.id));
    let (repository, number, id) = (&comment.repository, comment.number, comment.id);
    let mut value = json!({
        "id": comment.id,
        "body": comment.body,
        "user": user_json(&comment.user),
        "path": comment.path,
        "line": comment.line,
        "original_line": comment.line,
        "side": "RIGHT",
        "html_url": format!("https://github.com/{repository}/pull/{number}#discussion_r{id}"),
        "created_at": at,
        "updated_at": at,
    });
    if let Some(parent) = comment.in_reply_to_id {
        value["in_reply_to_id"] = json!(parent);
    }
    value
}

fn check_run_json(state: &FakeState, run: &FakeCheckRun) -> Value {
    let is_sha = run.git_ref.len() == 40 && run.git_ref.bytes().all(|b| b.is_ascii_hexdigit());
    let url = format!("https://github.com/{}/actions/runs/{}/job/{}", run.repository, run.id, run.id);
    let started = rfc3339(created(state, run.id));
    json!({
        "id": run.id,
        "name": run.name,
        "head_sha": if is_sha { run.git_ref.as_str() } else { PLACEHOLDER_SHA },
        "status": run.status,
        "conclusion": run.conclusion,
        "html_url": url,
        "details_url": url,
        "started_at": started,
        "completed_at": if run.status == "completed" { Value::String(started) } else { Value::Null },
        "output": {
            "title": run.conclusion.as_ref().map(|c| format!("{} {c}", run.name)),
            "summary": run.conclusion.as_ref().map(|c| format!("The job {} ended: {c}.", run.name)),
            "text": null,
            "annotations_count": 0,
        },
        "app": {"slug": "github-actions"},
    })
}

/// When the comment (review, check run) was made; now for those made before that was recorded.
fn created(state: &FakeState, id: u64) -> SystemTime {
    state.created.get(&id).copied().unwrap_or_else(SystemTime::now)
}

/// `2026-11-26T07:00:00Z`.
fn rfc3339(at: SystemTime) -> String {
    let seconds = at.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let (days, rest) = (seconds / 86_400, seconds % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rest / 3600, rest % 3600 / 60, rest % 60)
}

/// `count` letters and digits, unpredictable across fakes.
fn random_chars(random: &std::hash::RandomState, serial: u64, count: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    (0..count)
        .map(|i| {
            let value = random.hash_one((serial, i));
            char::from(ALPHABET[(value % ALPHABET.len() as u64) as usize])
        })
        .collect()
}

/// A GitHub App key pair for tests, made once per process: the private key as PEM (PKCS#1,
/// `-----BEGIN RSA PRIVATE KEY-----`, as GitHub gives it) and the public key for
/// [`FakeGitHub::enable_app`].
///
/// # Panics
///
/// When no key can be made.
pub fn test_app_key() -> (String, Vec<u8>) {
    static KEY: OnceLock<(String, Vec<u8>)> = OnceLock::new();
    KEY.get_or_init(|| generate_test_app_key(false)).clone()
}

/// A new GitHub App key pair (RSA 2048): the private key as PEM, PKCS#8 (`-----BEGIN PRIVATE
/// KEY-----`) when `pkcs8`, else PKCS#1; and the public key (PKCS#1 `RSAPublicKey` DER).
///
/// # Panics
///
/// When no key can be made.
pub fn generate_test_app_key(pkcs8: bool) -> (String, Vec<u8>) {
    let key = match RsaKeyPair::generate(KeySize::Rsa2048) {
        Ok(key) => key,
        Err(e) => panic!("cannot make an RSA key: {e}"),
    };
    let document = match key.as_der() {
        Ok(document) => document.as_ref().to_vec(),
        Err(e) => panic!("cannot encode the RSA key: {e}"),
    };
    let public = key.public_key().as_ref().to_vec();
    if pkcs8 {
        return (pem("PRIVATE KEY", &document), public);
    }
    match pkcs1_of_pkcs8(&document) {
        Some(pkcs1) => (pem("RSA PRIVATE KEY", pkcs1), public),
        None => panic!("the PKCS#8 key has no RSAPrivateKey inside"),
    }
}

fn pem(label: &str, der: &[u8]) -> String {
    let encoded = STANDARD.encode(der);
    let mut text = format!("-----BEGIN {label}-----\n");
    for line in encoded.as_bytes().chunks(64) {
        text.push_str(&String::from_utf8_lossy(line));
        text.push('\n');
    }
    text.push_str(&format!("-----END {label}-----\n"));
    text
}

/// The `RSAPrivateKey` inside a PKCS#8 `PrivateKeyInfo`: SEQUENCE { version, algorithm,
/// OCTET STRING privateKey, … }.
fn pkcs1_of_pkcs8(der: &[u8]) -> Option<&[u8]> {
    let (tag, info, _) = der_element(der)?;
    if tag != 0x30 {
        return None;
    }
    let (_version, _, rest) = der_element(info)?;
    let (_algorithm, _, rest) = der_element(rest)?;
    let (tag, private_key, _) = der_element(rest)?;
    (tag == 0x04).then_some(private_key)
}

/// One DER element: its tag, its content and what follows it.
fn der_element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (length, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let length = rest[..count].iter().fold(0usize, |n, &b| (n << 8) | usize::from(b));
        (length, &rest[count..])
    };
    if rest.len() < length {
        return None;
    }
    Some((tag, &rest[..length], &rest[length..]))
}
