//! SQLite storage for rswe: each session's append-only event log (the source of truth),
//! the session rows summarising it, model usage and cost, idempotency keys, and the API
//! keys and browser sessions of `rswe serve` (hashes only).
//!
//! Queries are plain `sqlx::query` with binds; the schema is embedded
//! (`migrations/`) and applied when a [`Store`] opens. The database runs in WAL mode, so
//! readers never wait for the writer, and every write is one short `BEGIN IMMEDIATE`
//! transaction, so several processes may share one file.

mod error;
mod event_log;
mod github;
mod idempotency;
mod keys;
mod location;
mod session;
mod session_log;
mod slack;
mod store;
mod usage;

pub use error::StoreError;
pub use github::{GitHubInboxItem, GitHubItem, GitHubReplyTarget};
pub use keys::{ApiKey, NewWebSession, WebSession};
pub use location::data_dir;
pub use session::{NewSession, Session, SessionCursor, SessionFilter, SessionPage, SessionUpdate};
pub use slack::{SlackInboxItem, SlackThread};
pub use store::Store;
pub use usage::{DayUsage, ModelUsage, SessionPeriodUsage, SessionUsage, UsageTotals};

#[cfg(test)]
mod tests {
    use super::*;
    use rswe_protocol::{EventKind, SessionId};

    /// Compiles only if every future the store returns may move between threads, as
    /// `tokio::spawn` requires. Never run.
    #[allow(dead_code)]
    fn futures_are_send(store: &Store, id: &SessionId) {
        fn send<T: Send>(_: T) {}
        send(Store::open("x"));
        send(Store::open_in_memory());
        send(store.create_session(NewSession::default()));
        send(store.session(id));
        send(store.list_sessions(SessionFilter::default()));
        send(store.update_session(id, SessionUpdate::default()));
        send(store.delete_session(id));
        send(store.append(id, EventKind::AgentMessage { text: String::new() }));
        send(store.events(id, 0, 1));
        send(store.last_event(id));
        send(store.usage_by_session(id));
        send(store.usage_by_model(0, 1));
        send(store.usage_by_day(0, 1));
        send(store.claim_idempotency_key("s", "k"));
        send(store.prune_idempotency_keys(0));
        send(store.create_api_key("k", "n", b"h"));
        send(store.api_key("k"));
        send(store.list_api_keys());
        send(store.count_api_keys());
        send(store.revoke_api_key("k"));
        send(store.touch_api_key("k", 0));
        send(store.create_web_session(NewWebSession { id_hash: b"h", csrf: "c", expires_ms: 0, key_id: None }));
        send(store.web_session(b"h"));
        send(store.delete_web_session(b"h"));
        send(store.prune_web_sessions(0));
        send(store.github_receive("d", "e", "{}"));
        send(store.github_reply_to(id, "o/n", 1, 0));
        send(store.close());
    }
}
