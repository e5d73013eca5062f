//! The narrow interface through which the agent persists: an append-only event log.
//! `rswe-store` implements it on SQLite; [`MemoryLog`] serves tests and benchmarks.

use rswe_protocol::{Event, EventKind, SessionId};
use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Debug, thiserror::Error)]
#[error("the session log failed: {0}")]
pub struct LogError(pub String);

/// An append-only log of events per session.
#[async_trait::async_trait]
pub trait SessionLog: Send + Sync {
    /// Persists an event and returns it with its sequence number. Nobody may be told of
    /// an event before this returns.
    async fn append(&self, session: &SessionId, kind: EventKind) -> Result<Event, LogError>;

    /// The session's events with `seq > after`, in order.
    async fn events_after(&self, session: &SessionId, after: u64) -> Result<Vec<Event>, LogError>;
}

/// A log in memory.
#[derive(Debug, Default)]
pub struct MemoryLog {
    sessions: Mutex<HashMap<SessionId, Vec<Event>>>,
}

impl MemoryLog {
    pub fn new() -> Self {
        MemoryLog::default()
    }

    /// Everything logged for a session.
    pub fn events(&self, session: &SessionId) -> Vec<Event> {
        self.sessions.lock().map(|s| s.get(session).cloned().unwrap_or_default()).unwrap_or_default()
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

#[async_trait::async_trait]
impl SessionLog for MemoryLog {
    async fn append(&self, session: &SessionId, kind: EventKind) -> Result<Event, LogError> {
        let mut sessions = self.sessions.lock().map_err(|_| LogError("the log lock is poisoned".into()))?;
        let events = sessions.entry(session.clone()).or_default();
        let event = Event { session_id: session.clone(), seq: events.len() as u64 + 1, at_ms: now_ms(), kind };
        events.push(event.clone());
        Ok(event)
    }

    async fn events_after(&self, session: &SessionId, after: u64) -> Result<Vec<Event>, LogError> {
        let sessions = self.sessions.lock().map_err(|_| LogError("the log lock is poisoned".into()))?;
        Ok(sessions
            .get(session)
            .map(|events| events.iter().filter(|e| e.seq > after).cloned().collect())
            .unwrap_or_default())
    }
}
