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
pub mod metrics;
pub mod service;
pub mod ui;
mod workspace;

pub use bus::{Bus, BusEvent, BusMessage};
pub use service::{Attachment, CreateSession, NewMessage, SandboxFactory, ServiceConfig, ServiceError, SessionService};

use axum::Router;
use rswe_store::Store;
use std::sync::Arc;

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
}

/// The whole HTTP surface: the API, the web UI, health and metrics.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(api::router(&state))
        .merge(auth::router(&state))
        .merge(ui::router(&state))
        .merge(metrics::router(&state))
        .layer(axum::extract::DefaultBodyLimit::max(state.settings.max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(state.clone(), metrics::track_http))
        .with_state(state)
}
