//! Helpers shared by the store's tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use rswe_protocol::{ContentBlock, EventKind, Usage};
use rswe_store::{NewSession, Session, Store};

pub fn user(text: &str) -> EventKind {
    EventKind::UserMessage { content: vec![ContentBlock::text(text)], author: None }
}

pub fn assistant(model: &str, usage: Usage, cost_usd: Option<f64>) -> EventKind {
    EventKind::AssistantMessage {
        content: vec![ContentBlock::text(format!("answer from {model}"))],
        model: model.to_string(),
        stop_reason: "end_turn".to_string(),
        usage,
        cost_usd,
        request_seq: None,
    }
}

pub fn tokens(input: u64, output: u64, cache_read: u64, cache_write: u64) -> Usage {
    Usage { input_tokens: input, output_tokens: output, cache_read_tokens: cache_read, cache_write_tokens: cache_write }
}

pub async fn session(store: &Store, channel: &str) -> Session {
    store
        .create_session(NewSession { model: "claude-test".into(), channel: channel.into(), ..NewSession::default() })
        .await
        .unwrap()
}

/// A fresh directory and the database path inside it (which does not exist yet).
pub fn database() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data").join("rswe.db");
    (dir, path)
}
