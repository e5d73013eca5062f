//! The GitHub channel: a comment that calls rswe (or an issue assigned to it) starts a
//! session bound to the issue or pull request, later comments and reviews there steer
//! it, and what the session says comes back as comments.
//!
//! Intake (webhooks at `POST /github/webhook`) checks the signature, records each
//! delivery by its id and answers GitHub at once; the work happens after, and a restart
//! finishes what a crash left. A delivery that could not be handled because GitHub was
//! unreachable (or rswe was closing) stays pending and is tried again after a growing
//! pause. Only people who may write to the repository are heard, and a session's marker
//! in an issue or pull request counts only in one rswe wrote.
//! Delivery follows the log: each session answers on the item of its latest request and
//! remembers the last event posted there, so nothing is posted twice and nothing is lost
//! when GitHub or rswe is down.

mod delivery;

use crate::follow::Follower;
use crate::service::{CreateSession, NewMessage, ServiceError, SessionService};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use rswe_github::api::GitHubApi;
use rswe_github::reference::{ItemKind, ItemRef, RepoRef};
use rswe_github::webhook::{Assigned, Comment, Delivery, Review, ReviewKind, mentions};
use rswe_github::{GitHubAuth, GitHubSettings, marker};
use rswe_protocol::SessionId;
use rswe_store::Store;
use serde_json::json;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Handled deliveries are forgotten after this many days.
const KEEP_HANDLED_DAYS: u32 = 7;

/// What `POST /github/webhook` answers while no webhook secret is set.
const NO_SECRET: &str = "GITHUB_WEBHOOK_SECRET is not set: rswe refuses GitHub webhook deliveries until it is";

/// The permissions that let a person use rswe on a repository.
const WRITERS: [&str; 3] = ["admin", "maintain", "write"];

/// The pause before handling a delivery again, at first and at the most.
const FIRST_RETRY: Duration = Duration::from_secs(5);
const LAST_RETRY: Duration = Duration::from_secs(300);
/// A delivery still not handled this long after its first try is given up.
const GIVE_UP: Duration = Duration::from_secs(60 * 60);

/// Handling a delivery could not finish for now (GitHub unreachable, rswe closing): it
/// stays pending and is tried again later.
#[derive(Debug)]
struct Later;

/// How handling a delivery ended: `Ok` when done with it (acted on, ignored, refused).
type Handled = Result<(), Later>;

/// The GitHub channel of a running server.
#[derive(Clone)]
pub struct GitHubChannel {
    inner: Arc<Inner>,
}

struct Inner {
    settings: GitHubSettings,
    auth: GitHubAuth,
    store: Store,
    service: SessionService,
    /// The web UI's address, for links to sessions.
    public_url: String,
    /// Where people see repositories: `github.com`, or the GitHub Enterprise Server's host.
    web_host: String,
    /// The login of the credentials, once GitHub said it.
    login: OnceLock<String>,
    delivery: Follower<delivery::Delivery>,
    /// One delivery of an item handled at a time, in arrival order: a comment sent while
    /// the item's session is being created waits for it instead of starting another.
    items: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Whether the missing webhook secret was warned about.
    warned_no_secret: AtomicBool,
    /// The first pause before handling a delivery again, in milliseconds.
    first_retry: AtomicU64,
    closing: CancellationToken,
}

/// Why the GitHub channel could not start.
#[derive(Debug, thiserror::Error)]
#[error("GitHub: {0}")]
pub struct GitHubStartError(String);

impl GitHubChannel {
    /// Checks the settings, finishes deliveries a crash left, catches up the sessions'
    /// answers and follows the sessions from now on; who rswe is on GitHub is asked in
    /// the background (GitHub may be down) until it answers or `closing`.
    pub async fn start(
        settings: GitHubSettings,
        service: SessionService,
        public_url: String,
        closing: CancellationToken,
    ) -> Result<GitHubChannel, GitHubStartError> {
        let auth = GitHubAuth::new(&settings.api_url, settings.credentials.clone())
            .map_err(|error| GitHubStartError(error.to_string()))?;
        let store = service.store().clone();
        let public_url = public_url.trim_end_matches('/').to_string();
        let web_host = rswe_github::reference::web_host(&settings.api_url).unwrap_or_else(|| "github.com".to_string());
        let delivery =
            Follower::new(delivery::Delivery::new(auth.clone(), store.clone(), public_url.clone()), closing.clone());
        let channel = GitHubChannel {
            inner: Arc::new(Inner {
                settings,
                auth,
                store,
                service: service.clone(),
                public_url,
                web_host,
                login: OnceLock::new(),
                delivery,
                items: std::sync::Mutex::default(),
                warned_no_secret: AtomicBool::new(false),
                first_retry: AtomicU64::new(FIRST_RETRY.as_millis() as u64),
                closing: closing.clone(),
            }),
        };
        if channel.secret().is_none() {
            channel.warn_no_secret();
        }
        // Wrong credentials are a configuration mistake: said now. GitHub unreachable: the server
        // starts anyway and keeps asking.
        let asked = tokio::time::timeout(Duration::from_secs(15), channel.inner.auth.identity()).await;
        match asked {
            Ok(Ok(identity)) => {
                let _ = channel.inner.login.set(identity.login);
            }
            Ok(Err(
                error @ (rswe_github::api::GitHubError::Unauthorized { .. }
                | rswe_github::api::GitHubError::AppUnauthorized { .. }
                | rswe_github::api::GitHubError::Config { .. }),
            )) => return Err(GitHubStartError(format!("checking the GitHub credentials: {error}"))),
            Ok(Err(_)) | Err(_) => channel.ask_identity(closing.clone()),
        }
        match channel.inner.store.github_prune(KEEP_HANDLED_DAYS).await {
            Ok(0) => {}
            Ok(pruned) => tracing::info!(pruned, "GitHub: forgot old handled deliveries"),
            Err(error) => tracing::warn!(%error, "GitHub: could not prune old deliveries"),
        }
        channel.inner.delivery.follow(service.bus().subscribe());
        channel.inner.delivery.catch_up().await;
        channel.finish_pending().await;
        Ok(channel)
    }

    /// How GitHub reaches this server, for the start-up message.
    pub fn describe(&self) -> String {
        let inner = &self.inner;
        let who = match inner.login.get() {
            Some(login) => format!("GitHub: working as @{login}"),
            None => "GitHub: on (GitHub has not answered yet; rswe keeps asking who it is there)".to_string(),
        };
        match self.secret() {
            Some(_) => format!("{who}; webhook deliveries are taken at {}/github/webhook", inner.public_url),
            None => format!("{who}; {NO_SECRET}"),
        }
    }

    /// Sets the first pause before a delivery GitHub did not let finish is handled again
    /// (5 s unless set; it doubles up to 5 min). For tests.
    #[doc(hidden)]
    pub fn set_first_retry(&self, pause: Duration) {
        let millis = u64::try_from(pause.as_millis()).unwrap_or(u64::MAX);
        self.inner.first_retry.store(millis, Ordering::Relaxed);
    }

    fn secret(&self) -> Option<&str> {
        self.inner.settings.webhook_secret.as_deref().filter(|secret| !secret.trim().is_empty())
    }

    fn warn_no_secret(&self) {
        if !self.inner.warned_no_secret.swap(true, Ordering::Relaxed) {
            tracing::warn!("GitHub: {NO_SECRET}");
        }
    }

    /// Asks GitHub who the credentials are, with a growing pause until it answers.
    fn ask_identity(&self, closing: CancellationToken) {
        let channel = self.clone();
        tokio::spawn(async move {
            let mut pause = Duration::from_secs(5);
            loop {
                match channel.inner.auth.identity().await {
                    Ok(identity) => {
                        tracing::info!(login = %identity.login, "GitHub: connected");
                        let _ = channel.inner.login.set(identity.login);
                        return;
                    }
                    Err(error) => tracing::warn!(%error, "GitHub: could not ask who rswe is; will try again"),
                }
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    () = closing.cancelled() => return,
                }
                pause = (pause * 2).min(Duration::from_secs(300));
            }
        });
    }

    /// The login of the credentials; [`Later`] while GitHub has not said it.
    async fn login(&self) -> Result<String, Later> {
        if let Some(login) = self.inner.login.get() {
            return Ok(login.clone());
        }
        match self.inner.auth.identity().await {
            Ok(identity) => {
                let _ = self.inner.login.set(identity.login.clone());
                Ok(identity.login)
            }
            Err(error) => {
                tracing::warn!(%error, "GitHub: who rswe is is not known yet; the delivery waits");
                Err(Later)
            }
        }
    }

    /// The login an issue is assigned to for rswe to work on it.
    async fn bot_user(&self) -> Result<String, Later> {
        match &self.inner.settings.bot_user {
            Some(user) => Ok(user.clone()),
            None => self.login().await,
        }
    }

    /// Handles the deliveries received before a crash and never handled.
    async fn finish_pending(&self) {
        match self.inner.store.github_pending(1000).await {
            Ok(pending) => {
                for item in pending {
                    let delivery = Delivery::parse(&item.event, item.payload.as_bytes());
                    self.spawn_handle(item.delivery_id, delivery);
                }
            }
            Err(error) => tracing::error!(%error, "GitHub: could not read the deliveries left unhandled"),
        }
    }

    /// Takes a delivery: checks it came from GitHub, records what concerns rswe and
    /// answers at once; the work happens on its own task.
    async fn receive(&self, headers: &HeaderMap, body: Bytes) -> Response {
        let Some(secret) = self.secret() else {
            self.warn_no_secret();
            return (StatusCode::FORBIDDEN, NO_SECRET).into_response();
        };
        let header = |name: &str| {
            headers.get(name).and_then(|value| value.to_str().ok()).map(str::trim).filter(|value| !value.is_empty())
        };
        if let Err(error) = rswe_github::webhook::verify(secret, header("x-hub-signature-256"), &body) {
            tracing::warn!(%error, "GitHub: a delivery to /github/webhook was refused");
            return (StatusCode::UNAUTHORIZED, error.to_string()).into_response();
        }
        let (Some(delivery_id), Some(event)) = (header("x-github-delivery"), header("x-github-event")) else {
            return (StatusCode::BAD_REQUEST, "a delivery needs the X-GitHub-Delivery and X-GitHub-Event headers")
                .into_response();
        };
        let delivery = match Delivery::parse(event, &body) {
            Delivery::Ping { zen } => {
                tracing::info!(zen = zen.as_deref().unwrap_or_default(), "GitHub: the webhook said hello");
                return axum::Json(json!({ "ok": true })).into_response();
            }
            Delivery::Ignored(why) => {
                tracing::debug!(%event, %why, "GitHub: delivery ignored");
                return axum::Json(json!({ "ok": true, "ignored": why })).into_response();
            }
            delivery => delivery,
        };
        if let Some(why) = self.not_for_rswe(&delivery) {
            tracing::debug!(%event, why, "GitHub: delivery ignored");
            return axum::Json(json!({ "ok": true, "ignored": why })).into_response();
        }
        // On its own task: if GitHub hangs up, the delivery is still recorded and handled.
        let channel = self.clone();
        let (delivery_id, event) = (delivery_id.to_string(), event.to_string());
        let payload = String::from_utf8_lossy(&body).into_owned();
        let recorded = tokio::spawn(async move {
            let new = channel.inner.store.github_receive(&delivery_id, &event, &payload).await?;
            if new {
                channel.spawn_handle(delivery_id, delivery);
            } else {
                tracing::debug!(%delivery_id, "GitHub: a delivery received before");
            }
            Ok::<bool, rswe_store::StoreError>(new)
        });
        match recorded.await {
            Ok(Ok(true)) => (StatusCode::ACCEPTED, axum::Json(json!({ "ok": true }))).into_response(),
            Ok(Ok(false)) => axum::Json(json!({ "ok": true, "duplicate": true })).into_response(),
            Ok(Err(error)) => {
                // GitHub does not retry by itself, but the delivery can be redelivered.
                tracing::error!(%error, "GitHub: could not record a delivery");
                StatusCode::SERVICE_UNAVAILABLE.into_response()
            }
            Err(error) => {
                tracing::error!(%error, "GitHub: recording a delivery failed");
                StatusCode::SERVICE_UNAVAILABLE.into_response()
            }
        }
    }

    /// Why a delivery is plainly not for rswe (not worth keeping), when that can be told
    /// without asking anyone.
    fn not_for_rswe(&self, delivery: &Delivery) -> Option<&'static str> {
        let own = |login: &str| {
            let mut own = self.inner.settings.bot_user.iter().chain(self.inner.login.get());
            own.any(|own| own.eq_ignore_ascii_case(login))
        };
        match delivery {
            Delivery::Comment(comment) if own(&comment.author) => Some("rswe's own comment"),
            Delivery::Comment(comment) if !mentions(&comment.body, &self.inner.settings.trigger) => {
                Some("the comment does not call rswe")
            }
            Delivery::Review(review) if own(&review.author) => Some("rswe's own review"),
            _ => None,
        }
    }

    /// The lock of an item (`owner/name#number`, any case).
    fn item_lock(&self, repo: &str, number: u64) -> Arc<tokio::sync::Mutex<()>> {
        let key = format!("{}#{number}", repo.to_ascii_lowercase());
        let mut items = self.inner.items.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        // Forget items nobody is handling, so the map stays small.
        if items.len() > 1024 {
            items.retain(|_, lock| Arc::strong_count(lock) > 1);
        }
        items.entry(key).or_default().clone()
    }

    /// Handles a delivery on its own task; one GitHub did not let finish stays pending and is
    /// handled again after a growing pause, until it is done or [`GIVE_UP`] passed (or the
    /// server closes: the next start takes it up).
    fn spawn_handle(&self, delivery_id: String, delivery: Delivery) {
        let channel = self.clone();
        tokio::spawn(async move {
            let first = Instant::now();
            let mut pause = Duration::from_millis(channel.inner.first_retry.load(Ordering::Relaxed));
            while channel.handle(delivery.clone()).await.is_err() {
                if first.elapsed() + pause > GIVE_UP {
                    tracing::error!(%delivery_id, "GitHub: gave up on a delivery after an hour of failures");
                    break;
                }
                tracing::info!(%delivery_id, retry_in = ?pause, "GitHub: a delivery will be handled again");
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    () = channel.inner.closing.cancelled() => return,
                }
                pause = (pause * 2).min(LAST_RETRY);
            }
            if let Err(error) = channel.inner.store.github_handled(&delivery_id).await {
                tracing::warn!(%delivery_id, %error, "GitHub: could not mark a delivery handled");
            }
        });
    }

    /// One try at a delivery, holding its item's lock.
    async fn handle(&self, delivery: Delivery) -> Handled {
        let lock = match &delivery {
            Delivery::Comment(Comment { repository, number, .. })
            | Delivery::IssueAssigned(Assigned { repository, number, .. })
            | Delivery::Review(Review { repository, number, .. }) => Some(self.item_lock(repository, *number)),
            _ => None,
        };
        let _item = match &lock {
            Some(lock) => Some(lock.lock().await),
            None => None,
        };
        match delivery {
            Delivery::Comment(comment) => self.on_comment(comment).await,
            Delivery::IssueAssigned(assigned) => self.on_assigned(assigned).await,
            Delivery::Review(review) => self.on_review(review).await,
            Delivery::Ping { .. } | Delivery::Ignored(_) => Ok(()),
        }
    }

    /// A comment that calls rswe: steers the item's session, or starts one.
    async fn on_comment(&self, comment: Comment) -> Handled {
        if !mentions(&comment.body, &self.inner.settings.trigger) {
            return Ok(());
        }
        if self.is_own(&comment.author).await? {
            return Ok(());
        }
        let Some((owner, name, api)) = self.api(&comment.repository).await? else { return Ok(()) };
        if !self.may_write(&api, &owner, &name, &comment.author).await? {
            return Ok(());
        }
        if let Err(error) = api.react_to_comment(&owner, &name, comment.comment_id, "eyes").await {
            tracing::debug!(%error, "GitHub: could not react to a comment");
        }
        let repo = comment.repository.as_str();
        if let Some(session) = self.session_of(&api, repo, comment.number, &comment.issue_body).await? {
            let text = format!(
                "@{} commented on {repo}#{} ({}):\n\n{}",
                comment.author, comment.number, comment.html_url, comment.body
            );
            return self.steer(&session, repo, comment.number, text, &comment.author).await;
        }
        let kind = if comment.is_pull_request { ItemKind::PullRequest } else { ItemKind::Issue };
        let head = match kind {
            ItemKind::PullRequest => match api.pull_request(&owner, &name, comment.number).await {
                Ok(pull) => Some(pull.head_ref),
                Err(error) if delivery::is_transient(&error) => {
                    tracing::warn!(%error, "GitHub: could not read a pull request's branch; will try again");
                    return Err(Later);
                }
                Err(error) => {
                    tracing::debug!(%error, "GitHub: could not read a pull request's branch");
                    None
                }
            },
            ItemKind::Issue => None,
        };
        let item = self.item_ref(&owner, &name, comment.number, kind);
        let noun = if comment.is_pull_request { "pull request" } else { "issue" };
        let mut task = format!(
            "@{} asked for your help in a comment on the {noun} {item} ({}):\n\n{}\n\n",
            comment.author,
            item.url(),
            comment.body.trim()
        );
        task.push_str(&describe_item(noun, &comment.title, &comment.issue_body));
        task.push_str(&instructions(&item, head.as_deref()));
        self.start_session(&item, &comment.title, task, &comment.author).await
    }

    /// An issue assigned to rswe: a session to resolve it.
    async fn on_assigned(&self, assigned: Assigned) -> Handled {
        let Ok(bot) = self.bot_user().await else {
            tracing::warn!(
                "GitHub: an issue was assigned, but who rswe is on GitHub is not known yet (set the bot user to \
                 not depend on GitHub answering)"
            );
            return Err(Later);
        };
        if !assigned.assignee.eq_ignore_ascii_case(&bot) {
            tracing::debug!(assignee = %assigned.assignee, "GitHub: an issue was assigned to someone else");
            return Ok(());
        }
        if assigned.sender.is_empty() || self.is_own(&assigned.sender).await? {
            return Ok(());
        }
        let Some((owner, name, api)) = self.api(&assigned.repository).await? else { return Ok(()) };
        if !self.may_write(&api, &owner, &name, &assigned.sender).await? {
            return Ok(());
        }
        match self.inner.store.github_item_session(&assigned.repository, assigned.number).await {
            Ok(None) => {}
            Ok(Some(session)) => {
                tracing::info!(%session, "GitHub: an issue assigned again already has its session");
                return Ok(());
            }
            Err(error) => {
                tracing::error!(%error, "GitHub: could not look up an issue; will try again");
                return Err(Later);
            }
        }
        let item = self.item_ref(&owner, &name, assigned.number, ItemKind::Issue);
        let mut task = format!(
            "@{} assigned you the issue {item} ({}): resolve it and open a pull request.\n\n",
            assigned.sender,
            item.url()
        );
        task.push_str(&describe_item("issue", &assigned.title, &assigned.body));
        task.push_str(&instructions(&item, None));
        self.start_session(&item, &assigned.title, task, &assigned.sender).await
    }

    /// A review, or a comment on a pull request's diff, for the pull request's session.
    async fn on_review(&self, review: Review) -> Handled {
        if let ReviewKind::Submitted { state, .. } = &review.kind
            && review.body.trim().is_empty()
            && state.eq_ignore_ascii_case("commented")
        {
            // The review's comments on the diff arrive on their own.
            return Ok(());
        }
        if self.is_own(&review.author).await? {
            return Ok(());
        }
        let repo = review.repository.as_str();
        // Who reviewed is checked before anything is bound.
        let Some((owner, name, api)) = self.api(repo).await? else { return Ok(()) };
        if !self.may_write(&api, &owner, &name, &review.author).await? {
            return Ok(());
        }
        let Some(session) = self.session_of(&api, repo, review.number, &review.pr_body).await? else {
            tracing::debug!(%repo, number = review.number, "GitHub: a review of a pull request without a session");
            return Ok(());
        };
        let item = self.item_ref(&owner, &name, review.number, ItemKind::PullRequest);
        let branch = match review.head_ref.as_str() {
            "" => String::new(),
            head => format!(" (branch `{head}`)"),
        };
        let body = match review.body.trim() {
            "" => String::new(),
            body => format!("\n\n{body}"),
        };
        let text = match &review.kind {
            ReviewKind::Submitted { state, .. } => format!(
                "@{} reviewed the pull request {item}{branch} ({}): {}.{body}",
                review.author,
                item.url(),
                state.to_lowercase().replace('_', " ")
            ),
            ReviewKind::DiffComment { comment_id, path, line, in_reply_to_id } => {
                let line = line.map(|line| format!(" line {line}")).unwrap_or_default();
                let reply = in_reply_to_id.map(|id| format!(", in reply to comment {id}")).unwrap_or_default();
                format!(
                    "@{} commented on `{path}`{line} in the pull request {item}{branch} ({}); review comment id \
                     {comment_id}{reply}.{body}\n\nTo answer in its thread, use `reply_to_review_comment` with \
                     comment_id {comment_id}.",
                    review.author,
                    item.url()
                )
            }
        };
        self.steer(&session, repo, review.number, text, &review.author).await
    }

    /// Whether `login` is rswe itself: the credentials' login or the configured bot user.
    async fn is_own(&self, login: &str) -> Result<bool, Later> {
        let bot_user = self.inner.settings.bot_user.as_deref();
        if bot_user.is_some_and(|user| user.eq_ignore_ascii_case(login)) {
            return Ok(true);
        }
        Ok(self.login().await?.eq_ignore_ascii_case(login))
    }

    /// The owner, name and an API client of `owner/name`; `None` when rswe has no access.
    async fn api(&self, repository: &str) -> Result<Option<(String, String, GitHubApi)>, Later> {
        let Some((owner, name)) = repository.split_once('/') else {
            tracing::warn!(%repository, "GitHub: a delivery names no owner/name");
            return Ok(None);
        };
        match self.inner.auth.api_for(owner, name).await {
            Ok(api) => Ok(Some((owner.to_string(), name.to_string(), api))),
            Err(error) if delivery::is_transient(&error) => {
                tracing::warn!(%repository, %error, "GitHub: could not reach a repository; will try again");
                Err(Later)
            }
            Err(error) => {
                tracing::warn!(%repository, %error, "GitHub: no access to a repository");
                Ok(None)
            }
        }
    }

    /// Whether `login` may write to the repository (admin, maintain, write). Others are
    /// not answered at all, so that nobody on a public repository makes rswe talk.
    async fn may_write(&self, api: &GitHubApi, owner: &str, name: &str, login: &str) -> Result<bool, Later> {
        match api.permission(owner, name, login).await {
            Ok(level) if WRITERS.contains(&level.as_str()) => Ok(true),
            Ok(level) => {
                tracing::info!(%login, %level, repository = %format!("{owner}/{name}"),
                    "GitHub: ignored someone who may not write to the repository");
                Ok(false)
            }
            Err(error) if delivery::is_transient(&error) => {
                tracing::warn!(%login, %error, "GitHub: could not check a permission; will try again");
                Err(Later)
            }
            Err(error) => {
                tracing::warn!(%login, %error, "GitHub: could not check a permission; ignored");
                Ok(false)
            }
        }
    }

    /// The session an item belongs to: bound before, or named by the marker in its
    /// description, which then binds it. The marker counts only in an item rswe wrote (a
    /// pull request it opened): anyone may paste one into an issue or pull request.
    async fn session_of(
        &self,
        api: &GitHubApi,
        repo: &str,
        number: u64,
        description: &str,
    ) -> Result<Option<SessionId>, Later> {
        let store = &self.inner.store;
        match store.github_item_session(repo, number).await {
            Ok(Some(session)) => return Ok(Some(session)),
            Ok(None) => {}
            Err(error) => {
                tracing::error!(%error, "GitHub: could not look up an item; will try again");
                return Err(Later);
            }
        }
        let Some(session) = marker::find_session(description).and_then(|id| SessionId::parse(&id)) else {
            return Ok(None);
        };
        match store.session(&session).await {
            Ok(Some(_)) => {}
            Ok(None) => return Ok(None),
            Err(error) => {
                tracing::error!(%error, "GitHub: could not read a session; will try again");
                return Err(Later);
            }
        }
        let Some((owner, name)) = repo.split_once('/') else { return Ok(None) };
        let author = match api.issue(owner, name, number).await {
            Ok(item) => item.author,
            Err(error) if delivery::is_transient(&error) => {
                tracing::warn!(%repo, number, %error, "GitHub: could not read who wrote an item; will try again");
                return Err(Later);
            }
            Err(error) => {
                tracing::warn!(%repo, number, %error, "GitHub: could not read who wrote an item; marker ignored");
                return Ok(None);
            }
        };
        // rswe opens pull requests with its credentials only: their login is the author.
        if author.is_empty() || !self.login().await?.eq_ignore_ascii_case(&author) {
            tracing::info!(%repo, number, %author, %session,
                "GitHub: ignored a session's marker in an item rswe did not write");
            return Ok(None);
        }
        if let Err(error) = store.github_bind_item(repo, number, &session, false).await {
            tracing::error!(%error, "GitHub: could not bind an item to its session");
        }
        Ok(Some(session))
    }

    /// Passes a person's words to a session, which answers on this item from now on.
    async fn steer(&self, session: &SessionId, repo: &str, number: u64, text: String, author: &str) -> Handled {
        let inner = &self.inner;
        let last_seq = match inner.store.session(session).await {
            Ok(Some(found)) => found.last_seq,
            Ok(None) => return Ok(()),
            Err(error) => {
                tracing::error!(%error, "GitHub: could not read a session; will try again");
                return Err(Later);
            }
        };
        match inner.store.github_reply_to(session, repo, number, last_seq).await {
            Ok(()) => inner.delivery.kick(session),
            Err(error) => tracing::error!(%error, "GitHub: could not set where a session answers"),
        }
        let message = NewMessage { text, attachments: Vec::new(), author: Some(format!("github:{author}")) };
        match inner.service.post_message(session, message).await {
            Ok(_) => {}
            Err(ServiceError::ShuttingDown) => return Err(Later),
            Err(error) => {
                let text = format!("⚠️ That did not reach the session: {error}");
                self.say(repo, number, Some(session), &text).await;
            }
        }
        Ok(())
    }

    /// Starts a session on an item: bound to it as its origin, answering there, announced
    /// with a link.
    async fn start_session(&self, item: &ItemRef, title: &str, task: String, author: &str) -> Handled {
        let inner = &self.inner;
        let repo = item.repo.full_name();
        let request = CreateSession {
            message: NewMessage { text: task, attachments: Vec::new(), author: Some(format!("github:{author}")) },
            repository: None,
            model: None,
            title: Some(title.trim().to_string()).filter(|title| !title.is_empty()),
            channel: "github".into(),
            github_item: Some((repo.clone(), item.number)),
        };
        let session = match inner.service.create(request).await {
            Ok(session) => session.id,
            Err(ServiceError::ShuttingDown) => {
                tracing::info!(%repo, number = item.number, "GitHub: rswe is closing; the session starts later");
                return Err(Later);
            }
            Err(error) => {
                self.say(&repo, item.number, None, &format!("⚠️ The session could not start: {error}")).await;
                return Ok(());
            }
        };
        let link = format!("{}/sessions/{session}", inner.public_url);
        self.say(&repo, item.number, Some(&session), &format!("👀 Working on it: {link}")).await;
        // The item's lock is held: a comment sent meanwhile waits and then finds the binding.
        match inner.store.github_reply_to(&session, &repo, item.number, 0).await {
            Ok(()) => inner.delivery.kick(&session),
            Err(error) => tracing::error!(%session, %error, "GitHub: could not set where a session answers"),
        }
        Ok(())
    }

    /// Posts rswe's own words on an item (with the session's marker); a failure is
    /// logged (the web view has everything).
    async fn say(&self, repo: &str, number: u64, session: Option<&SessionId>, text: &str) {
        let body = match session {
            Some(session) => delivery::compose(&self.inner.auth, session, text, None),
            None => delivery::cut(&delivery::redact(&self.inner.auth, text), delivery::MAX_COMMENT_CHARS),
        };
        if let delivery::Posted::Unreachable = self.inner.delivery.deliverer().post(repo, number, &body).await {
            tracing::warn!(%repo, number, "GitHub: rswe's comment was not posted");
        }
    }

    fn item_ref(&self, owner: &str, name: &str, number: u64, kind: ItemKind) -> ItemRef {
        let repo = RepoRef { host: self.inner.web_host.clone(), owner: owner.to_string(), name: name.to_string() };
        ItemRef { repo, number, kind }
    }
}

/// The item's title and description, for a task.
fn describe_item(noun: &str, title: &str, description: &str) -> String {
    let description = match description.trim() {
        "" => "(none)",
        description => description,
    };
    format!("The {noun}'s title: {}\n\nThe {noun}'s description:\n\n{description}\n\n", title.trim())
}

/// What the agent must know to work on the item: the repository, and how to hand the
/// work back.
fn instructions(item: &ItemRef, head: Option<&str>) -> String {
    let repo = item.repo.full_name();
    let clone =
        format!("The repository is {repo} ({}): clone it with the `clone_repository` tool.", item.repo.web_url());
    let hand_back = match item.kind {
        ItemKind::Issue => format!(
            " When the work is done, open a pull request with `create_pull_request` that resolves issue #{}.",
            item.number
        ),
        ItemKind::PullRequest => {
            let branch = match head {
                Some(head) => format!(" Its head branch is `{head}`: check it out, commit your changes on it"),
                None => " Check out its head branch, commit your changes on it".to_string(),
            };
            format!(
                " This is pull request #{} of {repo}.{branch} and call `create_pull_request` to push them to the \
                 pull request.",
                item.number
            )
        }
    };
    format!("{clone}{hand_back} What you answer is posted as a comment on {item}.")
}

/// `POST /github/webhook`: GitHub's deliveries. The signature is checked over the raw
/// body before anything else; GitHub gets its answer as soon as the delivery is recorded.
pub async fn webhook(State(state): State<crate::AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(channel) = state.github.as_ref() else {
        return (StatusCode::NOT_FOUND, "GitHub is not configured on this server").into_response();
    };
    channel.receive(&headers, body).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(kind: ItemKind) -> ItemRef {
        let repo = RepoRef { host: "ghe.example.com".into(), owner: "octo".into(), name: "hello".into() };
        ItemRef { repo, number: 12, kind }
    }

    #[test]
    fn tasks_say_where_the_work_is_and_how_to_hand_it_back() {
        let issue = instructions(&item(ItemKind::Issue), None);
        assert!(issue.contains("The repository is octo/hello (https://ghe.example.com/octo/hello)"), "{issue}");
        assert!(issue.contains("`clone_repository`") && issue.contains("`create_pull_request`"), "{issue}");
        assert!(issue.contains("resolves issue #12"), "{issue}");
        let pull = instructions(&item(ItemKind::PullRequest), Some("fix/crash"));
        assert!(pull.contains("pull request #12") && pull.contains("`fix/crash`"), "{pull}");
        assert!(describe_item("issue", "Crash", "").contains("description:\n\n(none)"));
    }
}
