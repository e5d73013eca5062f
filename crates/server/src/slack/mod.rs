//! The Slack channel: a mention starts a session bound to its thread, replies in the
//! thread steer it, and what the session says comes back to the thread.
//!
//! Intake (Events API at `POST /slack/events`, or Socket Mode) records each message and
//! answers Slack at once; the work happens after, and a restart finishes what a crash
//! left. Delivery follows the log: each bound thread remembers the last event it was
//! told, so nothing is posted twice and nothing is lost when Slack or rswe is down.

mod commands;
mod delivery;

use crate::follow::Follower;
use crate::service::{Attachment, CreateSession, NewMessage, SessionService};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use rswe_protocol::SessionId;
use rswe_slack::api::SlackApi;
use rswe_slack::events::{Callback, Incoming, Kind, parse_callback};
use rswe_slack::mrkdwn::escape;
use rswe_store::Store;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// How rswe talks to Slack.
#[derive(Clone, Default)]
pub struct SlackSettings {
    /// The Web API (SLACK_API_URL), `https://slack.com/api` unless a proxy or a test says otherwise.
    pub api_url: String,
    /// The bot token (SLACK_BOT_TOKEN, `xoxb-…`).
    pub bot_token: String,
    /// Verifies Events API requests (SLACK_SIGNING_SECRET); `POST /slack/events` answers
    /// only with it.
    pub signing_secret: Option<String>,
    /// Socket Mode (SLACK_APP_TOKEN, `xapp-…`): no public URL needed.
    pub app_token: Option<String>,
    /// Slack user ids who may use rswe and approve others (ADMIN_USER_ID_LIST). Empty:
    /// everyone in the workspace may.
    pub admins: Vec<String>,
    /// The repository new sessions work on, if any.
    pub repository: Option<String>,
    /// The largest attachment downloaded from Slack, in bytes.
    pub max_file_bytes: usize,
}

impl std::fmt::Debug for SlackSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlackSettings")
            .field("api_url", &self.api_url)
            .field("socket_mode", &self.app_token.is_some())
            .field("events_api", &self.signing_secret.is_some())
            .field("admins", &self.admins)
            .finish_non_exhaustive()
    }
}

/// Handled messages (and notices said once) are forgotten after this many days.
const KEEP_HANDLED_DAYS: u32 = 7;

/// How long rswe waits for a person's name before using their id.
const NAME_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// The Slack channel of a running server.
#[derive(Clone)]
pub struct SlackChannel {
    inner: Arc<Inner>,
}

struct Inner {
    settings: SlackSettings,
    api: SlackApi,
    store: Store,
    service: SessionService,
    /// The web UI's address, for links to sessions.
    public_url: String,
    /// The bot's own user id (mentions of it start sessions), once `auth.test` answered.
    bot_user: std::sync::OnceLock<String>,
    /// The bot's workspace: without an admin list, its people (and only they) may use rswe.
    team: std::sync::OnceLock<String>,
    delivery: Follower<delivery::Delivery>,
    /// One message of a thread handled at a time, in arrival order: a reply sent while
    /// the thread's session is being created waits for it instead of being lost.
    threads: std::sync::Mutex<std::collections::HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// Why the Slack channel could not start.
#[derive(Debug, thiserror::Error)]
#[error("Slack: {0}")]
pub struct SlackStartError(String);

impl SlackChannel {
    /// Checks the bot token (`auth.test`), finishes messages a crash left, catches up the
    /// bound threads, and follows the sessions from now on; with an app token, also
    /// takes events over Socket Mode until `closing`.
    pub async fn start(
        settings: SlackSettings,
        service: SessionService,
        public_url: String,
        closing: CancellationToken,
    ) -> Result<SlackChannel, SlackStartError> {
        if settings.signing_secret.is_none() && settings.app_token.is_none() {
            return Err(SlackStartError(
                "set SLACK_SIGNING_SECRET (Events API at /slack/events) or SLACK_APP_TOKEN (Socket Mode)".into(),
            ));
        }
        let api = SlackApi::new(&settings.api_url, &settings.bot_token).map_err(|e| SlackStartError(e.to_string()))?;
        let store = service.store().clone();
        let delivery =
            Follower::new(delivery::Delivery::new(api.clone(), store.clone(), service.clone()), closing.clone());
        let channel = SlackChannel {
            inner: Arc::new(Inner {
                settings,
                api,
                store,
                service: service.clone(),
                public_url: public_url.trim_end_matches('/').to_string(),
                bot_user: std::sync::OnceLock::new(),
                team: std::sync::OnceLock::new(),
                delivery,
                threads: std::sync::Mutex::default(),
            }),
        };
        match channel.inner.api.auth_test().await {
            Ok(identity) => channel.connected(identity, closing).await,
            // A wrong token is a configuration mistake: say so now.
            Err(error) if error.is_auth() => return Err(SlackStartError(format!("checking SLACK_BOT_TOKEN: {error}"))),
            // Slack unreachable: the server starts anyway, and Slack joins when it answers.
            Err(error) => {
                tracing::warn!(%error, "Slack: not reachable yet; will keep trying");
                let retrying = channel.clone();
                tokio::spawn(async move { retrying.connect_later(closing).await });
            }
        }
        Ok(channel)
    }

    /// Tries `auth.test` again with a growing pause until Slack answers or the server closes.
    async fn connect_later(&self, closing: CancellationToken) {
        let mut pause = std::time::Duration::from_secs(5);
        loop {
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                () = closing.cancelled() => return,
            }
            match self.inner.api.auth_test().await {
                Ok(identity) => return self.connected(identity, closing).await,
                Err(error) => tracing::warn!(%error, "Slack: still not reachable"),
            }
            pause = (pause * 2).min(std::time::Duration::from_secs(300));
        }
    }

    /// Slack answered: follow the sessions, finish what a crash left, take events.
    async fn connected(&self, identity: rswe_slack::api::BotIdentity, closing: CancellationToken) {
        let _ = self.inner.team.set(identity.team_id);
        let _ = self.inner.bot_user.set(identity.user_id);
        match self.inner.store.slack_prune(KEEP_HANDLED_DAYS).await {
            Ok(0) => {}
            Ok(pruned) => tracing::info!(pruned, "Slack: forgot old handled messages"),
            Err(error) => tracing::warn!(%error, "Slack: could not prune old messages"),
        }
        tracing::info!(bot = %self.bot_user(), "Slack: connected");
        self.inner.delivery.follow(self.inner.service.bus().subscribe());
        self.inner.delivery.catch_up().await;
        self.finish_pending().await;
        if let Some(app_token) = self.inner.settings.app_token.clone() {
            self.run_socket_mode(app_token, closing);
        }
    }

    fn bot_user(&self) -> &str {
        self.inner.bot_user.get().map(String::as_str).unwrap_or_default()
    }

    /// How Slack reaches this server, for the start-up message.
    pub fn describe(&self) -> String {
        let settings = &self.inner.settings;
        let mut ways = Vec::new();
        if settings.app_token.is_some() {
            ways.push("Socket Mode".to_string());
        }
        if settings.signing_secret.is_some() {
            ways.push(format!("the Events API at {}/slack/events", self.inner.public_url));
        }
        match self.inner.bot_user.get() {
            Some(bot) => format!("Slack: connected as <@{bot}>, taking events over {}", ways.join(" and ")),
            None => format!("Slack: not reachable yet (retrying); events will come over {}", ways.join(" and ")),
        }
    }

    /// Handles the messages received before a crash and never handled.
    async fn finish_pending(&self) {
        match self.inner.store.slack_pending(1000).await {
            Ok(pending) => {
                for item in pending {
                    match serde_json::from_str::<serde_json::Value>(&item.event) {
                        Ok(body) => {
                            if let Callback::Message(message) = parse_callback(&body, self.bot_user()) {
                                self.spawn_handle(message);
                            }
                        }
                        Err(error) => tracing::warn!(key = %item.key, %error, "Slack: a stored message is unreadable"),
                    }
                }
            }
            Err(error) => tracing::error!(%error, "Slack: could not read the messages left unhandled"),
        }
    }

    fn run_socket_mode(&self, app_token: String, closing: CancellationToken) {
        let config = rswe_slack::socket::SocketModeConfig { api_url: self.inner.settings.api_url.clone(), app_token };
        let handler: Arc<dyn rswe_slack::socket::SocketHandler> = Arc::new(self.clone());
        tokio::spawn(async move {
            if let Err(error) = rswe_slack::socket::run(config, handler, closing).await {
                tracing::error!(%error, "Slack: Socket Mode stopped");
            }
        });
    }

    /// Takes a callback (verified already): records a message meant for rswe and answers at
    /// once; the work happens on its own task. `Ok(Some)` is a url_verification challenge.
    pub async fn accept(&self, body: &serde_json::Value) -> Result<Option<String>, StatusCode> {
        let connected = self.inner.bot_user.get().is_some();
        let message = match parse_callback(body, self.bot_user()) {
            // Slack checking the URL needs no connection.
            Callback::UrlVerification { challenge } => return Ok(Some(challenge)),
            // Not connected yet (the bot's id unknown): Slack sends it again.
            _ if !connected => return Err(StatusCode::SERVICE_UNAVAILABLE),
            Callback::Ignored(why) => {
                tracing::debug!(%why, "Slack: event ignored");
                return Ok(None);
            }
            Callback::Message(message) => message,
        };
        if message.kind == Kind::Channel && !self.is_bound(&message).await {
            // People talking among themselves: not for rswe, and not kept.
            return Ok(None);
        }
        // On its own task: if Slack hangs up, the message is still recorded and handled.
        let channel = self.clone();
        let body = body.to_string();
        let recorded = tokio::spawn(async move {
            let key = message.key();
            let new = channel.inner.store.slack_receive(&key, &body).await?;
            if new {
                channel.spawn_handle(message);
            } else {
                tracing::debug!(%key, "Slack: a message received before");
            }
            Ok::<(), rswe_store::StoreError>(())
        });
        match recorded.await {
            Ok(Ok(())) => Ok(None),
            Ok(Err(error)) => {
                // Slack retries what was not acknowledged.
                tracing::error!(%error, "Slack: could not record a message");
                Err(StatusCode::SERVICE_UNAVAILABLE)
            }
            Err(error) => {
                tracing::error!(%error, "Slack: recording a message failed");
                Err(StatusCode::SERVICE_UNAVAILABLE)
            }
        }
    }

    async fn is_bound(&self, message: &Incoming) -> bool {
        message.thread_ts.is_some()
            && matches!(self.inner.store.slack_thread(&message.channel, message.thread()).await, Ok(Some(_)))
    }

    /// The lock of a message's thread.
    fn thread_lock(&self, message: &Incoming) -> Arc<tokio::sync::Mutex<()>> {
        let key = format!("{}/{}", message.channel, message.thread());
        let mut threads = self.inner.threads.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        // Forget threads nobody is handling, so the map stays small.
        if threads.len() > 1024 {
            threads.retain(|_, lock| Arc::strong_count(lock) > 1);
        }
        threads.entry(key).or_default().clone()
    }

    fn spawn_handle(&self, message: Incoming) {
        let channel = self.clone();
        let lock = self.thread_lock(&message);
        tokio::spawn(async move {
            let _thread = lock.lock().await;
            let key = message.key();
            channel.handle(message).await;
            if let Err(error) = channel.inner.store.slack_handled(&key).await {
                tracing::warn!(%key, %error, "Slack: could not mark a message handled");
            }
        });
    }

    /// Does what a person's message asks: a command, steering a session, or a new one.
    async fn handle(&self, message: Incoming) {
        let inner = &self.inner;
        let bound = match inner.store.slack_thread(&message.channel, message.thread()).await {
            Ok(bound) => bound,
            Err(error) => {
                tracing::error!(%error, "Slack: could not look up a thread");
                return;
            }
        };
        // A conversation in a thread rswe is not part of.
        if bound.is_none() && message.kind == Kind::Channel {
            return;
        }
        if !self.allowed(&message).await {
            let key = format!("denied/{}/{}/{}", message.user, message.channel, message.thread());
            if matches!(inner.store.slack_say_once(&key).await, Ok(true)) {
                self.reply(
                    &message,
                    &format!(
                        "Sorry <@{}>, you are not authorised to use rswe here. Ask an admin to approve you \
                         (`@rswe approve_user @you`).",
                        message.user
                    ),
                )
                .await;
            }
            return;
        }
        let text = message.text_for(self.bot_user());
        if commands::is_command(&text) {
            self.command(&message, &text).await;
            return;
        }
        match bound {
            Some(thread) => self.steer(&message, &thread.session_id, text).await,
            None => self.start_session(&message, text).await,
        }
    }

    /// Admins and approved people; without an admin list, the people of the bot's own
    /// workspace (not guests of a Slack Connect channel from another organisation).
    async fn allowed(&self, message: &Incoming) -> bool {
        let user = message.user.as_str();
        let admins = &self.inner.settings.admins;
        if admins.iter().any(|admin| admin == user) {
            return true;
        }
        let own_team = match (&message.user_team, self.inner.team.get()) {
            (Some(theirs), Some(ours)) => theirs == ours,
            _ => true,
        };
        if admins.is_empty() && own_team {
            return true;
        }
        self.inner.store.slack_is_approved(user).await.unwrap_or_else(|error| {
            tracing::error!(%error, "Slack: could not read the approvals");
            false
        })
    }

    fn is_admin(&self, user: &str) -> bool {
        self.inner.settings.admins.iter().any(|admin| admin == user)
    }

    async fn start_session(&self, message: &Incoming, text: String) {
        let inner = &self.inner;
        self.acknowledge(message);
        let attachments = self.download(message).await;
        let author = self.author(&message.user).await;
        let request = CreateSession {
            message: NewMessage { text, attachments, author: Some(author) },
            repository: inner.settings.repository.clone(),
            channel: "slack".into(),
            ..CreateSession::default()
        };
        let session = match inner.service.create(request).await {
            Ok(session) => session,
            Err(error) => {
                let text = format!(":warning: The session could not start: {error}");
                self.reply(message, &escape(&text)).await;
                return;
            }
        };
        let steer = match message.kind {
            Kind::Direct => " Reply in this thread to steer it.",
            _ => " Reply in this thread to steer it (no mention needed).",
        };
        self.reply(
            message,
            &format!(
                "On it: <{}/sessions/{}|session {}>, also in the web view.{steer}",
                inner.public_url, session.id, session.id
            ),
        )
        .await;
        // The thread's lock is held: a reply sent meanwhile waits and then finds the binding.
        self.bind(message, &session.id, 0).await;
    }

    async fn steer(&self, message: &Incoming, session: &SessionId, text: String) {
        self.acknowledge(message);
        let attachments = self.download(message).await;
        let author = self.author(&message.user).await;
        if let Err(error) =
            self.inner.service.post_message(session, NewMessage { text, attachments, author: Some(author) }).await
        {
            let text = format!(":warning: That message did not reach the session: {error}");
            self.reply(message, &escape(&text)).await;
        }
    }

    /// Binds the message's thread to a session, told from `delivered_seq` on.
    async fn bind(&self, message: &Incoming, session: &SessionId, delivered_seq: u64) {
        match self.inner.store.slack_bind_thread(&message.channel, message.thread(), session, delivered_seq).await {
            Ok(()) => self.inner.delivery.kick(session),
            Err(error) => {
                tracing::error!(%error, "Slack: could not bind a thread");
                let text = format!(
                    ":warning: This thread could not be tied to the session ({error}); follow it in the web view."
                );
                self.reply(message, &escape(&text)).await;
            }
        }
    }

    /// Shows the person their message was received (in the background: the session
    /// does not wait for Slack).
    fn acknowledge(&self, message: &Incoming) {
        let (api, channel, ts) = (self.inner.api.clone(), message.channel.clone(), message.ts.clone());
        tokio::spawn(async move {
            if let Err(error) = api.add_reaction(&channel, &ts, "eyes").await {
                tracing::debug!(%error, "Slack: could not react to a message");
            }
        });
    }

    /// Posts rswe's own words (mrkdwn) in the message's thread; a failure is logged (the
    /// web view has everything).
    async fn reply(&self, message: &Incoming, text: &str) {
        self.inner.delivery.deliverer().post(&message.channel, message.thread(), text).await;
    }

    /// The person's name as Slack shows it, or their id when Slack is slow to say.
    async fn author(&self, user: &str) -> String {
        match tokio::time::timeout(NAME_TIMEOUT, self.inner.api.user_name(user)).await {
            Ok(Ok(name)) => name,
            _ => user.to_string(),
        }
    }

    /// The message's files, downloaded with the bot token; what could not be fetched is
    /// said in the thread.
    async fn download(&self, message: &Incoming) -> Vec<Attachment> {
        let mut attachments = Vec::new();
        for file in &message.files {
            let max = self.inner.settings.max_file_bytes;
            match self.inner.api.download_file(&file.url_private, max).await {
                Ok(data) => attachments.push(Attachment {
                    name: file_name(&file.name),
                    media_type: file.mimetype.clone(),
                    data,
                }),
                Err(error) => {
                    let text = format!(":warning: I could not fetch {}: {error}", file_name(&file.name));
                    self.reply(message, &escape(&text)).await;
                }
            }
        }
        attachments
    }
}

/// A Slack file name as a workspace file name: no path separators or control
/// characters, at most 100 characters.
fn file_name(name: &str) -> String {
    let clean: String =
        name.chars().map(|c| if c == '/' || c == '\\' || c.is_control() { '_' } else { c }).take(100).collect();
    let clean = clean.trim().trim_start_matches('.').to_string();
    if clean.is_empty() { "file".to_string() } else { clean }
}

#[async_trait::async_trait]
impl rswe_slack::socket::SocketHandler for SlackChannel {
    async fn handle(&self, event: rswe_slack::socket::SocketEvent) -> bool {
        match self.accept(&event.payload).await {
            Ok(_) => true,
            Err(status) => {
                tracing::warn!(%status, envelope = %event.envelope_id, "Slack: a Socket Mode event was not recorded");
                false
            }
        }
    }
}

/// `POST /slack/events`: the Events API. The signature is checked over the raw body
/// before anything else; Slack gets its answer as soon as the message is recorded.
pub async fn events(State(state): State<crate::AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(channel) = state.slack.as_ref() else {
        return (StatusCode::NOT_FOUND, "Slack is not configured on this server").into_response();
    };
    let Some(secret) = channel.inner.settings.signing_secret.as_deref() else {
        return (StatusCode::NOT_FOUND, "the Events API is not configured (SLACK_SIGNING_SECRET)").into_response();
    };
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    let now = crate::now_ms() / 1000;
    if let Err(error) = rswe_slack::signature::verify(
        secret,
        header("x-slack-request-timestamp"),
        header("x-slack-signature"),
        &body,
        now,
    ) {
        tracing::warn!(%error, "Slack: a request to /slack/events was refused");
        return (StatusCode::UNAUTHORIZED, error.to_string()).into_response();
    }
    let Ok(body) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "the body is not JSON").into_response();
    };
    match channel.accept(&body).await {
        Ok(Some(challenge)) => axum::Json(serde_json::json!({ "challenge": challenge })).into_response(),
        Ok(None) => StatusCode::OK.into_response(),
        Err(status) => status.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::file_name;

    #[test]
    fn slack_file_names_become_workspace_file_names() {
        assert_eq!(file_name("report.pdf"), "report.pdf");
        assert_eq!(file_name("../../etc/passwd"), "_.._etc_passwd");
        assert_eq!(file_name("a\nb"), "a_b");
        assert_eq!(file_name("..."), "file");
        assert_eq!(file_name(&"x".repeat(300)).len(), 100);
    }
}
