//! The Slack channel: a mention starts a session bound to its thread, replies in the
//! thread steer it, and what the session says comes back to the thread.
//!
//! Intake (Events API at `POST /slack/events`, or Socket Mode) records each message and
//! answers Slack at once; the work happens after, and a restart finishes what a crash
//! left. Delivery follows the log: each bound thread remembers the last event it was
//! told, so nothing is posted twice and nothing is lost when Slack or rswe is down.

mod commands;
mod delivery;

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
#[derive(Debug, Clone, Default)]
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
    /// The bot's own user id (mentions of it start sessions).
    bot_user: String,
    delivery: delivery::Delivery,
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
        let identity = api.auth_test().await.map_err(|e| SlackStartError(format!("checking SLACK_BOT_TOKEN: {e}")))?;
        let store = service.store().clone();
        let delivery = delivery::Delivery::new(api.clone(), store.clone(), service.clone());
        let channel = SlackChannel {
            inner: Arc::new(Inner {
                settings,
                api,
                store,
                service: service.clone(),
                public_url: public_url.trim_end_matches('/').to_string(),
                bot_user: identity.user_id,
                delivery,
            }),
        };
        tracing::info!(bot = %channel.inner.bot_user, "Slack: connected");
        if channel.inner.settings.admins.is_empty() {
            tracing::warn!(
                "Slack: ADMIN_USER_ID_LIST is empty, so everyone in the workspace can use the agent; set it to the \
                 Slack user ids of the admins"
            );
        }
        channel.inner.delivery.follow(service.bus().subscribe(), closing.clone());
        channel.inner.delivery.catch_up().await;
        channel.finish_pending().await;
        if let Some(app_token) = channel.inner.settings.app_token.clone() {
            channel.run_socket_mode(app_token, closing);
        }
        Ok(channel)
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
        format!("Slack: connected as <@{}>, taking events over {}", self.inner.bot_user, ways.join(" and "))
    }

    /// Handles the messages received before a crash and never handled.
    async fn finish_pending(&self) {
        match self.inner.store.slack_pending(1000).await {
            Ok(pending) => {
                for item in pending {
                    match serde_json::from_str::<serde_json::Value>(&item.event) {
                        Ok(body) => {
                            if let Callback::Message(message) = parse_callback(&body, &self.inner.bot_user) {
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

    /// Takes a callback (verified already): records a message and answers at once; the
    /// work happens on its own task. `None` is the body of the answer, `Some` a
    /// url_verification challenge.
    pub async fn accept(&self, body: &serde_json::Value) -> Result<Option<String>, StatusCode> {
        match parse_callback(body, &self.inner.bot_user) {
            Callback::UrlVerification { challenge } => Ok(Some(challenge)),
            Callback::Ignored(why) => {
                tracing::debug!(%why, "Slack: event ignored");
                Ok(None)
            }
            Callback::Message(message) => {
                match self.inner.store.slack_receive(&message.key(), &body.to_string()).await {
                    Ok(true) => {
                        self.spawn_handle(message);
                        Ok(None)
                    }
                    Ok(false) => {
                        tracing::debug!(key = %message.key(), "Slack: a message received before");
                        Ok(None)
                    }
                    Err(error) => {
                        // Slack retries what was not acknowledged.
                        tracing::error!(%error, "Slack: could not record a message");
                        Err(StatusCode::SERVICE_UNAVAILABLE)
                    }
                }
            }
        }
    }

    fn spawn_handle(&self, message: Incoming) {
        let channel = self.clone();
        tokio::spawn(async move {
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
        if !self.allowed(&message.user).await {
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
        let text = message.text_for(&inner.bot_user);
        if commands::is_command(&text) {
            self.command(&message, &text).await;
            return;
        }
        let bound = match inner.store.slack_thread(&message.channel, message.thread()).await {
            Ok(bound) => bound,
            Err(error) => {
                tracing::error!(%error, "Slack: could not look up a thread");
                return;
            }
        };
        match bound {
            Some(thread) => self.steer(&message, &thread.session_id, text).await,
            None if matches!(message.kind, Kind::Mention | Kind::Direct) => self.start_session(&message, text).await,
            // A conversation in a thread rswe is not part of.
            None => {}
        }
    }

    async fn allowed(&self, user: &str) -> bool {
        let admins = &self.inner.settings.admins;
        if admins.is_empty() || admins.iter().any(|admin| admin == user) {
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
        self.acknowledge(message).await;
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
                self.reply(message, &format!(":warning: The session could not start: {}", escape(&error.to_string())))
                    .await;
                return;
            }
        };
        self.reply(
            message,
            &format!(
                "On it. Follow along here, or in the web view: <{}/sessions/{}|session {}>.",
                inner.public_url, session.id, session.id
            ),
        )
        .await;
        self.bind(message, &session.id, 0).await;
    }

    async fn steer(&self, message: &Incoming, session: &SessionId, text: String) {
        self.acknowledge(message).await;
        let attachments = self.download(message).await;
        let author = self.author(&message.user).await;
        if let Err(error) =
            self.inner.service.post_message(session, NewMessage { text, attachments, author: Some(author) }).await
        {
            self.reply(
                message,
                &format!(":warning: That message did not reach the session: {}", escape(&error.to_string())),
            )
            .await;
        }
    }

    /// Binds the message's thread to a session, told from `delivered_seq` on.
    async fn bind(&self, message: &Incoming, session: &SessionId, delivered_seq: u64) {
        match self.inner.store.slack_bind_thread(&message.channel, message.thread(), session, delivered_seq).await {
            Ok(()) => self.inner.delivery.kick(session),
            Err(error) => tracing::error!(%error, "Slack: could not bind a thread"),
        }
    }

    /// Shows the person their message was received.
    async fn acknowledge(&self, message: &Incoming) {
        if let Err(error) = self.inner.api.add_reaction(&message.channel, &message.ts, "eyes").await {
            tracing::debug!(%error, "Slack: could not react to a message");
        }
    }

    /// Posts rswe's own words (mrkdwn) in the message's thread; a failure is logged (the
    /// web view has everything).
    async fn reply(&self, message: &Incoming, text: &str) {
        self.inner.delivery.post(&message.channel, message.thread(), text).await;
    }

    /// The person's name as Slack shows it, or their id.
    async fn author(&self, user: &str) -> String {
        self.inner.api.user_name(user).await.unwrap_or_else(|_| user.to_string())
    }

    /// The message's files, downloaded with the bot token; what could not be fetched is
    /// said in the thread.
    async fn download(&self, message: &Incoming) -> Vec<Attachment> {
        let mut attachments = Vec::new();
        for file in &message.files {
            let max = self.inner.settings.max_file_bytes;
            match self.inner.api.download_file(&file.url_private, max).await {
                Ok(data) => {
                    attachments.push(Attachment { name: file.name.clone(), media_type: file.mimetype.clone(), data })
                }
                Err(error) => {
                    let text = format!(":warning: I could not fetch {}: {error}", file.name);
                    self.reply(message, &escape(&text)).await;
                }
            }
        }
        attachments
    }
}

#[async_trait::async_trait]
impl rswe_slack::socket::SocketHandler for SlackChannel {
    async fn handle(&self, event: rswe_slack::socket::SocketEvent) {
        if let Err(status) = self.accept(&event.payload).await {
            tracing::warn!(%status, envelope = %event.envelope_id, "Slack: a Socket Mode event was not recorded");
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
