//! `rswe serve`: sessions that live for hours, a REST API with live events, and the web UI.
//!
//! The [`SessionService`] owns the sessions: it appends people's messages to the log,
//! wakes a task per working session (at most `max_working` at once, first come first
//! served), and publishes everything the agents do on the [`Bus`]. The HTTP side
//! ([`router`]) is a thin layer over it: the JSON API under `/api/v1`, live events over
//! SSE, and the server-rendered web UI.

pub mod api;
pub mod auth;
pub mod bus;
mod follow;
pub mod github;
pub mod metrics;
mod said;
pub mod service;
pub mod slack;
pub mod ui;
mod workspace;

pub use bus::{Bus, BusEvent, BusMessage};
pub use service::{
    Attachment, CreateSession, GitHubServiceConfig, McpServiceConfig, NewMessage, SandboxFactory, ServiceConfig,
    ServiceError, SessionService,
};

use axum::Router;
use rswe_store::Store;
use std::sync::Arc;

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// How the HTTP side behaves.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// The address people use to reach the server, e.g. `https://rswe.example.com`; used
    /// for links and to decide whether cookies are marked `Secure`.
    pub public_url: String,
    /// Whether `/metrics` answers without a key.
    pub metrics_public: bool,
    /// The largest request body accepted (uploads are base64 inside JSON), in bytes.
    pub max_body_bytes: usize,
    /// The model a new session gets when none is chosen.
    pub default_model: String,
    /// The models offered in the web UI's picker (`provider/id`).
    pub models: Vec<String>,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            public_url: "http://127.0.0.1:8080".into(),
            metrics_public: true,
            max_body_bytes: 25 * 1024 * 1024,
            default_model: "anthropic/claude-sonnet-4-5".into(),
            models: Vec::new(),
        }
    }
}

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub service: SessionService,
    pub store: Store,
    pub auth: Arc<auth::Auth>,
    pub metrics: Arc<metrics::Metrics>,
    pub settings: Arc<ServerSettings>,
    /// The Slack channel, when Slack is configured.
    pub slack: Option<slack::SlackChannel>,
    /// The GitHub channel, when GitHub is configured.
    pub github: Option<github::GitHubChannel>,
}

/// The whole HTTP surface: the API, the web UI, health and metrics.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(api::router(&state))
        .merge(auth::router(&state))
        .merge(ui::router(&state))
        .merge(metrics::router(&state))
        .route("/slack/events", axum::routing::post(slack::events))
        .route("/github/webhook", axum::routing::post(github::webhook))
        .layer(axum::extract::DefaultBodyLimit::max(state.settings.max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(state.clone(), metrics::track_http))
        .with_state(state)
}

/// Everything a server is made of.
pub struct ServerParts {
    pub store: Store,
    pub providers: rswe_llm::Providers,
    pub service: ServiceConfig,
    pub settings: ServerSettings,
    /// Slack, when configured.
    pub slack: Option<slack::SlackSettings>,
    /// GitHub, when configured.
    pub github: Option<rswe_github::GitHubSettings>,
}

/// A server listening and working. [`RunningServer::shutdown`] ends it gracefully.
pub struct RunningServer {
    pub addr: std::net::SocketAddr,
    pub state: AppState,
    /// How many sessions resumed on start.
    pub resumed: usize,
    http: tokio::task::JoinHandle<std::io::Result<()>>,
    stop_http: tokio_util::sync::CancellationToken,
}

impl RunningServer {
    /// Resumes the sessions a previous run left working, then serves on `listener`.
    pub async fn start(listener: tokio::net::TcpListener, parts: ServerParts) -> Result<RunningServer, ServiceError> {
        let addr = listener.local_addr().map_err(|e| ServiceError::Invalid(format!("the listener: {e}")))?;
        let bus = Bus::new();
        let service = SessionService::new(parts.store.clone(), parts.providers, parts.service, bus.clone());
        let settings = Arc::new(parts.settings);
        let slack = match parts.slack {
            Some(slack) => Some(
                slack::SlackChannel::start(slack, service.clone(), settings.public_url.clone(), service.closing())
                    .await
                    .map_err(|e| ServiceError::Invalid(e.to_string()))?,
            ),
            None => None,
        };
        let github = match parts.github {
            Some(github) => Some(
                github::GitHubChannel::start(github, service.clone(), settings.public_url.clone(), service.closing())
                    .await
                    .map_err(|e| ServiceError::Invalid(e.to_string()))?,
            ),
            None => None,
        };
        let state = AppState {
            service: service.clone(),
            store: parts.store.clone(),
            auth: Arc::new(auth::Auth::new(parts.store, &settings)),
            metrics: Arc::new(metrics::Metrics::new()),
            settings,
            slack,
            github,
        };
        tokio::spawn(state.metrics.clone().follow(bus.subscribe(), service.closing()));
        let sweeper = service.clone();
        tokio::spawn(async move { sweeper.release_idle_sandboxes().await });
        let resumed = service.resume_all().await?;
        let stop_http = tokio_util::sync::CancellationToken::new();
        let app = router(state.clone());
        let stop = stop_http.clone();
        let http = tokio::spawn(async move {
            axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>())
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await
        });
        Ok(RunningServer { addr, state, resumed, http, stop_http })
    }

    /// Stops taking requests, ends live streams, gives working sessions `grace` to
    /// finish what they are doing, and returns. Sessions still working resume on the
    /// next start.
    pub async fn shutdown(self, grace: std::time::Duration) {
        self.stop_http.cancel();
        self.state.service.shutdown(grace).await;
        match tokio::time::timeout(std::time::Duration::from_secs(5), self.http).await {
            Ok(Ok(Err(error))) => tracing::warn!(%error, "the HTTP server ended with an error"),
            Err(_) => tracing::warn!("connections still open after shutdown were dropped"),
            _ => {}
        }
        self.state.store.close().await;
    }
}
