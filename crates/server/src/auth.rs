//! Who may use the server: API keys, the one-time sign-in link, browser sessions.

use crate::{AppState, ServerSettings};
use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use rswe_store::Store;

/// Keys, sign-in tokens and browser sessions.
pub struct Auth {
    #[allow(dead_code)]
    store: Store,
}

impl Auth {
    pub fn new(store: Store, _settings: &ServerSettings) -> Self {
        Auth { store }
    }
}

/// `/login`, `/logout`.
pub fn router(_state: &AppState) -> Router<AppState> {
    Router::new()
}

/// Lets through requests with a valid API key (`Authorization: Bearer`, `x-api-key`) or a
/// browser session cookie (with the CSRF header on state-changing methods); answers
/// others 401 with a JSON error.
pub async fn require_api(State(_state): State<AppState>, request: Request, next: Next) -> Response {
    next.run(request).await
}

/// Lets through browsers with a session cookie; sends others to `/login`.
pub async fn require_ui(State(_state): State<AppState>, request: Request, next: Next) -> Response {
    next.run(request).await
}

/// Who made a request, put in the request's extensions by [`require_api`] and
/// [`require_ui`].
#[derive(Debug, Clone)]
pub struct Principal {
    /// A name for logs and message authors: the key's name, or "web".
    pub name: String,
    /// The CSRF token of a browser session, for pages to put in forms.
    pub csrf: Option<String>,
}

/// The API keys, newest first; never the keys themselves.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
pub struct KeyList {
    pub keys: Vec<KeyInfo>,
}

#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
pub struct KeyInfo {
    pub id: String,
    pub name: String,
    pub created_ms: i64,
    pub last_used_ms: Option<i64>,
}

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKeyRequest {
    /// What the key is for, e.g. "ci" or "alice's laptop".
    pub name: String,
}

/// A new key: `key` is shown this once and stored only hashed.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
pub struct CreatedKey {
    #[serde(flatten)]
    pub info: KeyInfo,
    pub key: String,
}

pub async fn list_keys(State(_state): State<AppState>) -> axum::http::StatusCode {
    axum::http::StatusCode::NOT_IMPLEMENTED
}

pub async fn create_key(State(_state): State<AppState>) -> axum::http::StatusCode {
    axum::http::StatusCode::NOT_IMPLEMENTED
}

pub async fn revoke_key(State(_state): State<AppState>) -> axum::http::StatusCode {
    axum::http::StatusCode::NOT_IMPLEMENTED
}
