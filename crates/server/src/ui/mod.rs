//! The web UI: server-rendered pages, a little JavaScript for live updates.

use crate::AppState;
use axum::Router;

pub fn router(_state: &AppState) -> Router<AppState> {
    Router::new()
}
