//! The GitHub REST API client: repositories and permissions, accounts, forks, pull requests,
//! comments, review comments and reviews, issues, reactions, check runs and GitHub Actions job
//! logs, and what a GitHub App needs (its installations and their tokens).
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
    /// 401 on a call authenticated as the GitHub App itself (its JSON web token).
    #[error(
        "GitHub rejected the App's JSON web token ({message}) for {what}: check GITHUB_APP_ID and the App's \
         private key (GITHUB_APP_PRIVATE_KEY or the key file)"
    )]
    AppUnauthorized { what: String, message: String },
    /// The GitHub App has no installation that covers the repository.
    #[error(
        "the GitHub App is not installed on {repository}: install it on the repository (or on its owner's \
         account) from the App's settings page, then try again"
    )]
    AppNotInstalled { repository: String },
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
    /// The HTTPS clone URL (`clone_url`); empty when GitHub gave none.
    pub clone_url: String,
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

/// A pull request as `GET /repos/{owner}/{repo}/pulls/{number}` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequestDetail {
    pub number: u64,
    pub html_url: String,
    /// `open` or `closed`.
    pub state: String,
    pub title: String,
    /// The description (empty when there is none).
    pub body: String,
    pub draft: bool,
    pub merged: bool,
    /// The head branch's name.
    pub head_ref: String,
    /// The head commit.
    pub head_sha: String,
    /// The repository the head branch lives in, `owner/name`; `None` when it was deleted.
    pub head_repository: Option<String>,
    /// The base branch's name.
    pub base_ref: String,
}

/// A GitHub account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub login: String,
    pub id: u64,
}

/// A GitHub App, as `GET /app` describes the one authenticating.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct App {
    /// The App's URL name; its bot is `{slug}[bot]`.
    pub slug: String,
    pub name: String,
}

/// An installation access token (`ghs_…`).
#[derive(Clone, PartialEq, Eq)]
pub struct InstallationToken {
    pub token: String,
    pub expires_at: SystemTime,
}

impl fmt::Debug for InstallationToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InstallationToken").field("token", &"[hidden]").field("expires_at", &self.expires_at).finish()
    }
}

/// A comment on a pull request's diff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewComment {
    pub id: u64,
    /// The author's login (`ghost` for a deleted account).
    pub user: String,
    pub body: String,
    /// The file it is on.
    pub path: String,
    /// The line it is on; `None` when the diff moved on and it is outdated.
    pub line: Option<u64>,
    /// The comment it answers, in a thread.
    pub in_reply_to_id: Option<u64>,
    pub html_url: String,
    /// RFC 3339, as GitHub gives it.
    pub created_at: String,
}

/// A pull request review.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Review {
    pub id: u64,
    pub user: String,
    /// `APPROVED`, `CHANGES_REQUESTED`, `COMMENTED`, `DISMISSED` or `PENDING`.
    pub state: String,
    pub body: String,
}

/// A comment on an issue or a pull request's conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueComment {
    pub id: u64,
    pub user: String,
    pub body: String,
    pub html_url: String,
    /// RFC 3339, as GitHub gives it.
    pub created_at: String,
}

/// A check run on a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckRun {
    /// For a GitHub Actions check, also the job's id (see [`GitHubApi::job_log`]).
    pub id: u64,
    pub name: String,
    /// `queued`, `in_progress`, `completed`, `waiting`, `requested` or `pending`.
    pub status: String,
    /// Once completed: `success`, `failure`, `neutral`, `cancelled`, `skipped`, `timed_out` or
    /// `action_required`.
    pub conclusion: Option<String>,
    pub html_url: String,
    pub details_url: String,
    /// `output.title`.
    pub title: Option<String>,
    /// `output.summary`.
    pub summary: Option<String>,
}

/// A commit status: what CI services outside the Checks API report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitStatus {
    /// What reported it (`ci/jenkins`, `continuous-integration/travis-ci`, ...).
    pub context: String,
    /// `pending`, `success`, `failure` or `error`.
    pub state: String,
    pub description: String,
    pub target_url: String,
}

/// An issue (or a pull request seen as an issue).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    pub number: u64,
    pub title: String,
    /// The description (empty when there is none).
    pub body: String,
    pub is_pull_request: bool,
    pub html_url: String,
    /// `open` or `closed`.
    pub state: String,
    /// Who wrote it (`user.login`; empty when GitHub gave no account).
    pub author: String,
}

/// Items asked for per page of a list.
const PER_PAGE: usize = 100;
/// Pages of a list read at most.
const MAX_PAGES: u32 = 5;

/// A GitHub REST API client. Cloning is cheap (the connection pool is shared).
#[derive(Clone)]
pub struct GitHubApi {
    http: Client,
    /// The base, without a trailing slash.
    base: String,
    /// `Bearer …`; `None` for an anonymous client.
    auth: Option<HeaderValue>,
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
    /// `https://ghe.example.com/api/v3`) authenticating with `token` (a personal access token, an
    /// installation token, or a GitHub App's JSON web token).
    pub fn new(api_url: &str, token: &str) -> Result<GitHubApi, GitHubError> {
        let token = token.trim();
        if token.is_empty() {
            return Err(GitHubError::Config { message: "the token is empty: set GITHUB_TOKEN".to_owned() });
        }
        Self::build(api_url, Some(token))
    }

    /// A client without credentials, for what GitHub shows anyone (public accounts, e.g.
    /// [`GitHubApi::user`]); its rate limit is much lower.
    pub fn anonymous(api_url: &str) -> Result<GitHubApi, GitHubError> {
        Self::build(api_url, None)
    }

    fn build(api_url: &str, token: Option<&str>) -> Result<GitHubApi, GitHubError> {
        let base = api_url.trim().trim_end_matches('/').to_owned();
        let parsed = Url::parse(&base)
            .map_err(|e| GitHubError::Config { message: format!("the API URL {base:?} is not a URL: {e}") })?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.query().is_some() {
            return Err(GitHubError::Config {
                message: format!("the API URL {base:?} must be an http(s) URL without a query"),
            });
        }
        let auth = match token {
            Some(token) => {
                let mut auth = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| GitHubError::Config {
                    message: "the token contains characters a header cannot carry: check GITHUB_TOKEN".to_owned(),
                })?;
                auth.set_sensitive(true);
                Some(auth)
            }
            None => None,
        };
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
        let answer = self.get(&what, url).await?;
        parse_repository(&what, answer)
    }

    /// `GET /user`: the token's login.
    pub async fn authenticated_user(&self) -> Result<String, GitHubError> {
        Ok(self.authenticated_user_id().await?.login)
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
        let answer = self.get(&what, url).await?;
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
        let answer = self.get(&what, url).await?;
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

    /// `GET /user`: the token's login and account id.
    pub async fn authenticated_user_id(&self) -> Result<User, GitHubError> {
        let what = "the token's user";
        let url = self.url(&["user"], &[])?;
        let answer = self.get(what, url).await?;
        parse_user(what, answer)
    }

    /// `GET /users/{login}`.
    pub async fn user(&self, login: &str) -> Result<User, GitHubError> {
        let what = format!("the account {login}");
        let url = self.url(&["users", login], &[])?;
        let answer = self.get(&what, url).await?;
        parse_user(&what, answer)
    }

    /// `GET /app`: the GitHub App this client authenticates as (with the App's JSON web token).
    pub async fn app(&self) -> Result<App, GitHubError> {
        let what = "the GitHub App";
        let url = self.url(&["app"], &[])?;
        let answer = self.get(what, url).await?;
        #[derive(Deserialize)]
        struct AppAnswer {
            slug: String,
            #[serde(default)]
            name: String,
        }
        let app = decode::<AppAnswer>(what, answer)?;
        Ok(App { slug: app.slug, name: app.name })
    }

    /// `GET /repos/{owner}/{repo}/installation` (with the App's JSON web token): the id of the App's
    /// installation covering the repository.
    pub async fn repository_installation(&self, owner: &str, name: &str) -> Result<u64, GitHubError> {
        let what = format!("the GitHub App's installation on {owner}/{name}");
        let url = self.url(&["repos", owner, name, "installation"], &[])?;
        let answer = self.get(&what, url).await?;
        #[derive(Deserialize)]
        struct Installation {
            id: u64,
        }
        Ok(decode::<Installation>(&what, answer)?.id)
    }

    /// `POST /app/installations/{id}/access_tokens` (with the App's JSON web token): a token
    /// narrowed to `repositories` (names within the installation's account; empty: all of them)
    /// and `permissions` (e.g. `{"contents": "write"}`; `null`: all the installation has).
    pub async fn create_installation_token(
        &self,
        installation_id: u64,
        repositories: &[&str],
        permissions: &Value,
    ) -> Result<InstallationToken, GitHubError> {
        let what = format!("minting a token for the GitHub App's installation {installation_id}");
        let id = installation_id.to_string();
        let url = self.url(&["app", "installations", &id, "access_tokens"], &[])?;
        let mut body = json!({});
        if !repositories.is_empty() {
            body["repositories"] = json!(repositories);
        }
        if !permissions.is_null() {
            body["permissions"] = permissions.clone();
        }
        // Minting twice only leaves an unused token behind: harmless to repeat.
        let answer =
            self.call(Call { what: &what, method: Method::POST, url, body: Some(body), idempotent: true }).await?;
        #[derive(Deserialize)]
        struct Token {
            token: String,
            expires_at: String,
        }
        let token = decode::<Token>(&what, answer)?;
        let expires_at = parse_timestamp(&token.expires_at).ok_or_else(|| GitHubError::BadResponse {
            what: what.clone(),
            message: format!("expires_at {:?} is not an RFC 3339 time", token.expires_at),
        })?;
        Ok(InstallationToken { token: token.token, expires_at })
    }

    /// `GET /repos/{owner}/{repo}/pulls/{number}`.
    pub async fn pull_request(&self, owner: &str, name: &str, number: u64) -> Result<PullRequestDetail, GitHubError> {
        let what = format!("pull request {owner}/{name}#{number}");
        let number = number.to_string();
        let url = self.url(&["repos", owner, name, "pulls", &number], &[])?;
        let answer = self.get(&what, url).await?;
        #[derive(Deserialize)]
        struct HeadRepo {
            full_name: String,
        }
        #[derive(Deserialize)]
        struct Head {
            #[serde(rename = "ref")]
            name: String,
            #[serde(default)]
            sha: String,
            #[serde(default)]
            repo: Option<HeadRepo>,
        }
        #[derive(Deserialize)]
        struct Base {
            #[serde(rename = "ref")]
            name: String,
        }
        #[derive(Deserialize)]
        struct Pull {
            number: u64,
            html_url: String,
            #[serde(default)]
            state: String,
            #[serde(default)]
            title: String,
            #[serde(default)]
            body: Option<String>,
            #[serde(default)]
            draft: bool,
            #[serde(default)]
            merged: bool,
            head: Head,
            base: Base,
        }
        let pull = decode::<Pull>(&what, answer)?;
        Ok(PullRequestDetail {
            number: pull.number,
            html_url: pull.html_url,
            state: pull.state,
            title: pull.title,
            body: pull.body.unwrap_or_default(),
            draft: pull.draft,
            merged: pull.merged,
            head_ref: pull.head.name,
            head_sha: pull.head.sha,
            head_repository: pull.head.repo.map(|r| r.full_name),
            base_ref: pull.base.name,
        })
    }

    /// `GET /repos/{owner}/{repo}/pulls/{number}/comments`: the comments on the diff, oldest first
    /// (the first 500).
    pub async fn review_comments(
        &self,
        owner: &str,
        name: &str,
        number: u64,
    ) -> Result<Vec<ReviewComment>, GitHubError> {
        let what = format!("the review comments of {owner}/{name}#{number}");
        let number = number.to_string();
        let items = self.list(&what, &["repos", owner, name, "pulls", &number, "comments"]).await?;
        #[derive(Deserialize)]
        struct Comment {
            id: u64,
            #[serde(default)]
            user: Option<Login>,
            #[serde(default)]
            body: Option<String>,
            #[serde(default)]
            path: String,
            #[serde(default)]
            line: Option<u64>,
            #[serde(default)]
            in_reply_to_id: Option<u64>,
            #[serde(default)]
            html_url: String,
            #[serde(default)]
            created_at: String,
        }
        items
            .into_iter()
            .map(|item| {
                let c = decode::<Comment>(&what, item)?;
                Ok(ReviewComment {
                    id: c.id,
                    user: login_of(c.user),
                    body: c.body.unwrap_or_default(),
                    path: c.path,
                    line: c.line,
                    in_reply_to_id: c.in_reply_to_id,
                    html_url: c.html_url,
                    created_at: c.created_at,
                })
            })
            .collect()
    }

    /// `GET /repos/{owner}/{repo}/pulls/{number}/reviews`, oldest first (the first 500).
    pub async fn reviews(&self, owner: &str, name: &str, number: u64) -> Result<Vec<Review>, GitHubError> {
        let what = format!("the reviews of {owner}/{name}#{number}");
        let number = number.to_string();
        let items = self.list(&what, &["repos", owner, name, "pulls", &number, "reviews"]).await?;
        #[derive(Deserialize)]
        struct ReviewAnswer {
            id: u64,
            #[serde(default)]
            user: Option<Login>,
            #[serde(default)]
            state: String,
            #[serde(default)]
            body: Option<String>,
        }
        items
            .into_iter()
            .map(|item| {
                let r = decode::<ReviewAnswer>(&what, item)?;
                Ok(Review { id: r.id, user: login_of(r.user), state: r.state, body: r.body.unwrap_or_default() })
            })
            .collect()
    }

    /// `GET /repos/{owner}/{repo}/issues/{number}/comments`: the conversation of an issue or a
    /// pull request, oldest first (the first 500).
    pub async fn issue_comments(&self, owner: &str, name: &str, number: u64) -> Result<Vec<IssueComment>, GitHubError> {
        let what = format!("the comments of {owner}/{name}#{number}");
        let number = number.to_string();
        let items = self.list(&what, &["repos", owner, name, "issues", &number, "comments"]).await?;
        #[derive(Deserialize)]
        struct Comment {
            id: u64,
            #[serde(default)]
            user: Option<Login>,
            #[serde(default)]
            body: Option<String>,
            #[serde(default)]
            html_url: String,
            #[serde(default)]
            created_at: String,
        }
        items
            .into_iter()
            .map(|item| {
                let c = decode::<Comment>(&what, item)?;
                Ok(IssueComment {
                    id: c.id,
                    user: login_of(c.user),
                    body: c.body.unwrap_or_default(),
                    html_url: c.html_url,
                    created_at: c.created_at,
                })
            })
            .collect()
    }

    /// `POST /repos/{owner}/{repo}/pulls/{number}/comments/{comment_id}/replies`: answers a review
    /// comment in its thread; the reply's id.
    pub async fn reply_to_review_comment(
        &self,
        owner: &str,
        name: &str,
        number: u64,
        comment_id: u64,
        body: &str,
    ) -> Result<u64, GitHubError> {
        let what = format!("replying to review comment {comment_id} on {owner}/{name}#{number}");
        let number = number.to_string();
        let id = comment_id.to_string();
        let url = self.url(&["repos", owner, name, "pulls", &number, "comments", &id, "replies"], &[])?;
        let body = json!({ "body": body });
        let answer =
            self.call(Call { what: &what, method: Method::POST, url, body: Some(body), idempotent: false }).await?;
        #[derive(Deserialize)]
        struct Comment {
            id: u64,
        }
        Ok(decode::<Comment>(&what, answer)?.id)
    }

    /// `GET /repos/{owner}/{repo}/commits/{git_ref}/check-runs`: the check runs on a commit (a
    /// SHA, a branch or a tag), the first 100.
    pub async fn check_runs(&self, owner: &str, name: &str, git_ref: &str) -> Result<Vec<CheckRun>, GitHubError> {
        let what = format!("the check runs of {git_ref} in {owner}/{name}");
        let per_page = PER_PAGE.to_string();
        // The answer is an object, not a list: paged by hand, up to MAX_PAGES pages.
        let mut all: Vec<Value> = Vec::new();
        for page in 1..=MAX_PAGES {
            let page = page.to_string();
            let query = [("per_page", per_page.as_str()), ("page", page.as_str())];
            let url = self.url(&["repos", owner, name, "commits", git_ref, "check-runs"], &query)?;
            let answer = self.get(&what, url).await?;
            let total = answer.get("total_count").and_then(Value::as_u64).unwrap_or(0);
            let runs = match answer.get("check_runs") {
                Some(Value::Array(runs)) => runs.clone(),
                _ => return Err(GitHubError::BadResponse { what, message: "no check_runs list".to_owned() }),
            };
            let full = runs.len() == PER_PAGE;
            all.extend(runs);
            if !full || all.len() as u64 >= total {
                break;
            }
        }
        let answer = serde_json::json!({ "check_runs": all });
        #[derive(Deserialize, Default)]
        struct Output {
            #[serde(default)]
            title: Option<String>,
            #[serde(default)]
            summary: Option<String>,
        }
        #[derive(Deserialize)]
        struct Run {
            id: u64,
            #[serde(default)]
            name: String,
            #[serde(default)]
            status: String,
            #[serde(default)]
            conclusion: Option<String>,
            #[serde(default)]
            html_url: Option<String>,
            #[serde(default)]
            details_url: Option<String>,
            #[serde(default)]
            output: Option<Output>,
        }
        #[derive(Deserialize)]
        struct Runs {
            check_runs: Vec<Run>,
        }
        let runs = decode::<Runs>(&what, answer)?;
        Ok(runs
            .check_runs
            .into_iter()
            .map(|run| {
                let output = run.output.unwrap_or_default();
                CheckRun {
                    id: run.id,
                    name: run.name,
                    status: run.status,
                    conclusion: run.conclusion,
                    html_url: run.html_url.unwrap_or_default(),
                    details_url: run.details_url.unwrap_or_default(),
                    title: output.title,
                    summary: output.summary,
                }
            })
            .collect())
    }

    /// `GET /repos/{owner}/{repo}/actions/jobs/{job_id}/logs`: the end of a GitHub Actions job's log,
    /// at most `max_bytes` bytes (cut on a character boundary).
    ///
    /// GitHub answers with a redirect to a short-lived download address, which is followed. When
    /// GitHub has no log for it (`404`: not an Actions job, or not visible to the token; `410`: the
    /// log expired), the answer is an empty string rather than an error.
    pub async fn job_log(&self, owner: &str, name: &str, job_id: u64, max_bytes: usize) -> Result<String, GitHubError> {
        let what = format!("the log of job {job_id} in {owner}/{name}");
        let id = job_id.to_string();
        let url = self.url(&["repos", owner, name, "actions", "jobs", &id, "logs"], &[])?;
        let call = Call { what: &what, method: Method::GET, url, body: None, idempotent: true };
        // Logs can be huge: only their end is kept while reading.
        let bytes = match self.send(call, Some(max_bytes.saturating_add(4))).await {
            Ok(bytes) => bytes,
            Err(GitHubError::NotFound { .. }) | Err(GitHubError::Http { status: 410, .. }) => return Ok(String::new()),
            Err(e) => return Err(e),
        };
        Ok(tail(&String::from_utf8_lossy(&bytes), max_bytes).to_owned())
    }

    /// `GET /repos/{owner}/{repo}/commits/{ref}/status`: the latest status of each context (the
    /// first hundred).
    pub async fn commit_statuses(
        &self,
        owner: &str,
        name: &str,
        git_ref: &str,
    ) -> Result<Vec<CommitStatus>, GitHubError> {
        let what = format!("the commit statuses of {git_ref} in {owner}/{name}");
        let per_page = PER_PAGE.to_string();
        let url = self.url(&["repos", owner, name, "commits", git_ref, "status"], &[("per_page", &per_page)])?;
        let answer = self.get(&what, url).await?;
        #[derive(Deserialize)]
        struct Status {
            #[serde(default)]
            context: String,
            #[serde(default)]
            state: String,
            #[serde(default)]
            description: Option<String>,
            #[serde(default)]
            target_url: Option<String>,
        }
        #[derive(Deserialize)]
        struct Combined {
            #[serde(default)]
            statuses: Vec<Status>,
        }
        Ok(decode::<Combined>(&what, answer)?
            .statuses
            .into_iter()
            .map(|s| CommitStatus {
                context: s.context,
                state: s.state,
                description: s.description.unwrap_or_default(),
                target_url: s.target_url.unwrap_or_default(),
            })
            .collect())
    }

    /// `GET /repos/{owner}/{repo}/issues/{number}`: an issue, or a pull request seen as one.
    pub async fn issue(&self, owner: &str, name: &str, number: u64) -> Result<Issue, GitHubError> {
        let what = format!("issue {owner}/{name}#{number}");
        let number = number.to_string();
        let url = self.url(&["repos", owner, name, "issues", &number], &[])?;
        let answer = self.get(&what, url).await?;
        #[derive(Deserialize)]
        struct IssueAnswer {
            number: u64,
            #[serde(default)]
            title: String,
            #[serde(default)]
            body: Option<String>,
            #[serde(default)]
            pull_request: Option<Value>,
            #[serde(default)]
            html_url: String,
            #[serde(default)]
            state: String,
            #[serde(default)]
            user: Option<Login>,
        }
        let issue = decode::<IssueAnswer>(&what, answer)?;
        Ok(Issue {
            number: issue.number,
            title: issue.title,
            body: issue.body.unwrap_or_default(),
            is_pull_request: issue.pull_request.is_some_and(|p| !p.is_null()),
            html_url: issue.html_url,
            state: issue.state,
            author: issue.user.map(|user| user.login).unwrap_or_default(),
        })
    }

    /// A `GET` (harmless to repeat): its JSON answer.
    async fn get(&self, what: &str, url: Url) -> Result<Value, GitHubError> {
        self.call(Call { what, method: Method::GET, url, body: None, idempotent: true }).await
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
        let bytes = self.send(call, None).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| GitHubError::BadResponse { what: what.to_owned(), message: format!("not JSON: {e}") })
    }

    /// `GET {segments}?per_page=100`, then `&page=2`, … while pages come back full, up to
    /// [`MAX_PAGES`]: the items of every page.
    async fn list(&self, what: &str, segments: &[&str]) -> Result<Vec<Value>, GitHubError> {
        let per_page = PER_PAGE.to_string();
        let mut items = Vec::new();
        for page in 1..=MAX_PAGES {
            let page = page.to_string();
            let mut query = vec![("per_page", per_page.as_str())];
            if page != "1" {
                query.push(("page", page.as_str()));
            }
            let url = self.url(segments, &query)?;
            let answer = self.get(what, url).await?;
            let Value::Array(batch) = answer else {
                return Err(GitHubError::BadResponse { what: what.to_owned(), message: "not a list".to_owned() });
            };
            let full = batch.len() >= PER_PAGE;
            items.extend(batch);
            if !full {
                break;
            }
        }
        Ok(items)
    }

    /// Sends `call`, retrying as the module documentation says; the answer's bytes (with
    /// `keep_tail`, only that many of its last bytes, whatever its length).
    async fn send(&self, call: Call<'_>, keep_tail: Option<usize>) -> Result<Vec<u8>, GitHubError> {
        let what = call.what;
        let mut backoff = BACKOFF_START;
        let mut attempt = 1;
        loop {
            let last = attempt >= MAX_ATTEMPTS;
            let mut request = self.http.request(call.method.clone(), call.url.clone());
            if let Some(auth) = &self.auth {
                request = request.header(AUTHORIZATION, auth);
            }
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
                        let failed = |e: reqwest::Error| GitHubError::Network {
                            what: what.to_owned(),
                            message: format!("reading the answer: {}", describe(&e)),
                        };
                        let Some(keep) = keep_tail else {
                            return Ok(response.bytes().await.map_err(failed)?.to_vec());
                        };
                        let mut response = response;
                        let mut kept: Vec<u8> = Vec::new();
                        while let Some(chunk) = response.chunk().await.map_err(failed)? {
                            kept.extend_from_slice(&chunk);
                            if kept.len() > keep.saturating_mul(2) {
                                kept.drain(..kept.len() - keep);
                            }
                        }
                        if kept.len() > keep {
                            kept.drain(..kept.len() - keep);
                        }
                        return Ok(kept);
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
        #[serde(default)]
        clone_url: Option<String>,
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
        clone_url: repo.clone_url.unwrap_or_default(),
    })
}

/// `{"login": …}`, as GitHub nests accounts.
#[derive(Deserialize)]
struct Login {
    login: String,
}

/// The login of an account that may have been deleted (GitHub then gives `null`).
fn login_of(user: Option<Login>) -> String {
    user.map_or_else(|| "ghost".to_owned(), |u| u.login)
}

fn parse_user(what: &str, answer: Value) -> Result<User, GitHubError> {
    #[derive(Deserialize)]
    struct UserAnswer {
        login: String,
        id: u64,
    }
    let user = decode::<UserAnswer>(what, answer)?;
    Ok(User { login: user.login, id: user.id })
}

/// The last `max_bytes` bytes of `text` at most, starting on a character boundary.
fn tail(text: &str, max_bytes: usize) -> &str {
    let mut start = text.len().saturating_sub(max_bytes);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

/// An RFC 3339 time (`2026-11-26T07:00:00Z`, fractions and `±hh:mm` offsets allowed).
pub(crate) fn parse_timestamp(text: &str) -> Option<SystemTime> {
    let text = text.trim();
    let (date, time) = text.split_once(['T', 't', ' '])?;
    let mut date_parts = date.splitn(3, '-');
    let year: i64 = date_parts.next()?.parse().ok()?;
    let month: u32 = date_parts.next()?.parse().ok()?;
    let day: u32 = date_parts.next()?.parse().ok()?;
    let (clock, offset_seconds) = if let Some(clock) = time.strip_suffix(['Z', 'z']) {
        (clock, 0)
    } else {
        let at = time.rfind(['+', '-'])?;
        let (clock, offset) = time.split_at(at);
        let sign = if offset.starts_with('-') { -1 } else { 1 };
        let (hours, minutes) = offset[1..].split_once(':')?;
        let hours: i64 = hours.parse().ok()?;
        let minutes: i64 = minutes.parse().ok()?;
        (clock, sign * (hours * 3600 + minutes * 60))
    };
    let clock = clock.split_once('.').map_or(clock, |(whole, _fraction)| whole);
    let mut clock_parts = clock.splitn(3, ':');
    let hour: i64 = clock_parts.next()?.parse().ok()?;
    let minute: i64 = clock_parts.next()?.parse().ok()?;
    let second: i64 = clock_parts.next()?.parse().ok()?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let seconds = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset_seconds;
    let seconds = u64::try_from(seconds).ok()?;
    UNIX_EPOCH.checked_add(Duration::from_secs(seconds))
}

/// Days from 1970-01-01 to a date of the proleptic Gregorian calendar.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let day_of_year = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        let at = |s: &str| parse_timestamp(s).map(|t| t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs());
        assert_eq!(at("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(at("2026-11-26T07:00:00Z"), Some(1_795_676_400));
        assert_eq!(at("2026-11-26T07:00:00.123Z"), Some(1_795_676_400));
        assert_eq!(at("2026-11-26T09:00:00+02:00"), Some(1_795_676_400));
        assert_eq!(at("2026-11-26T02:30:00-04:30"), Some(1_795_676_400));
        assert_eq!(at("2000-02-29T12:00:00Z"), Some(951_825_600));
        for bad in ["", "2026-11-26", "2026-13-01T00:00:00Z", "2026-11-26T07:00:00", "yesterday"] {
            assert_eq!(at(bad), None, "{bad}");
        }
    }

    #[test]
    fn tails_cut_on_character_boundaries() {
        assert_eq!(tail("hello", 10), "hello");
        assert_eq!(tail("hello", 3), "llo");
        assert_eq!(tail("hello", 0), "");
        // "é" is two bytes: a cut inside it moves past it.
        assert_eq!(tail("aé", 1), "");
        assert_eq!(tail("aéb", 2), "b");
        assert_eq!(tail("aéb", 3), "éb");
    }
}
