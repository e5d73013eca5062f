//! Prometheus metrics at `/metrics`.

use crate::AppState;
use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

#[derive(Default)]
pub struct Metrics {}

impl Metrics {
    pub fn new() -> Self {
        Metrics::default()
    }
}

/// `/metrics`, `/healthz`, `/readyz`.
pub fn router(_state: &AppState) -> Router<AppState> {
    Router::new()
}

/// Times every request by route.
pub async fn track_http(State(_state): State<AppState>, request: Request, next: Next) -> Response {
    next.run(request).await
}
