use crate::{ContentBlock, ToolResultContent, Usage};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A session's id: 16 lowercase Crockford base32 characters, sortable by creation time.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(transparent)]
pub struct SessionId(String);

const CROCKFORD: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

impl SessionId {
    /// A new id: 48 bits of milliseconds since the epoch, then 32 random bits.
    pub fn new() -> Self {
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let random = u64::from(random_u32());
        let value: u128 = (u128::from(millis & 0xffff_ffff_ffff) << 32) | u128::from(random);
        let mut text = String::with_capacity(16);
        for i in (0..16).rev() {
            text.push(CROCKFORD[((value >> (i * 5)) & 31) as usize] as char);
        }
        SessionId(text)
    }

    /// Accepts an id given by a person or a client: 1 to 64 of `[a-z0-9_-]`.
    pub fn parse(text: &str) -> Option<Self> {
        let valid = !text.is_empty()
            && text.len() <= 64
            && text.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        valid.then(|| SessionId(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for SessionId {
    fn default() -> Self {
        SessionId::new()
    }
}

impl std::fmt::Display for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Random bits without a dependency: the std hasher is seeded randomly per process;
/// a counter makes successive calls differ.
fn random_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.write_u128(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0),
    );
    hasher.finish() as u32
}

/// Where a session stands, as a person sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SessionStatus {
    /// The agent is working.
    Working,
    /// The agent ended its turn with an answer: the next move is the person's.
    Waiting,
    /// Nothing is going on: the session was interrupted, reached a budget, or has had
    /// nothing to do.
    Idle,
    /// The agent stopped on an error it could not get past.
    Failed,
    /// A person stopped the session.
    Stopped,
}

impl SessionStatus {
    /// Every status, in the order lists show them.
    pub const ALL: [SessionStatus; 5] = [
        SessionStatus::Working,
        SessionStatus::Waiting,
        SessionStatus::Idle,
        SessionStatus::Failed,
        SessionStatus::Stopped,
    ];

    pub fn parse(text: &str) -> Option<SessionStatus> {
        SessionStatus::ALL.into_iter().find(|status| status.as_str() == text)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SessionStatus::Working => "working",
            SessionStatus::Waiting => "waiting",
            SessionStatus::Idle => "idle",
            SessionStatus::Failed => "failed",
            SessionStatus::Stopped => "stopped",
        }
    }
}

/// One entry of the agent's todo list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TodoItem {
    pub id: String,
    pub content: String,
    pub status: TodoStatus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TodoStatus {
    Pending,
    InProgress,
    Completed,
    Cancelled,
}

/// What happened in a session. Persisted kinds are the source of truth: the model's
/// conversation is derived from them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    /// A person (or a channel on their behalf) said something.
    UserMessage {
        content: Vec<ContentBlock>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        author: Option<String>,
    },
    /// The model's complete answer for one step, tool calls included.
    AssistantMessage {
        content: Vec<ContentBlock>,
        model: String,
        stop_reason: String,
        usage: Usage,
        /// Dollars, when the model's price is known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cost_usd: Option<f64>,
        /// The last event the request included. People's messages logged after it (while
        /// the model was answering) come after this answer in the conversation.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request_seq: Option<u64>,
    },
    /// The result of one tool call of the preceding assistant message.
    ToolResult {
        tool_use_id: String,
        name: String,
        content: Vec<ToolResultContent>,
        #[serde(default)]
        is_error: bool,
        duration_ms: u64,
    },
    /// A progress message from the agent to the person (`send_message`).
    AgentMessage {
        text: String,
    },
    /// A file the agent delivered (`send_file`).
    FileSent {
        path: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
        size: u64,
    },
    TitleChanged {
        title: String,
    },
    TodoUpdated {
        items: Vec<TodoItem>,
    },
    StatusChanged {
        status: SessionStatus,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// A person asked the agent to stop what it is doing.
    Interrupted {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<String>,
    },
    /// Something went wrong; `message` says what and what to do.
    Error {
        class: String,
        message: String,
    },
    /// The conversation's middle was replaced by a summary: from the model's view, the
    /// messages after the first `keep_first` and before the one that began with event
    /// `until_seq` are now `summary`.
    ContextCompacted {
        summary: String,
        keep_first: usize,
        until_seq: u64,
        /// Estimated prompt tokens before and after.
        tokens_before: u64,
        tokens_after: u64,
        /// What the summary request cost.
        model: String,
        usage: Usage,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cost_usd: Option<f64>,
    },
    /// Anything a later version adds; kept as it was written.
    #[serde(untagged)]
    Other(Value),
}

/// A persisted event: its session, its place in the session's log, and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Event {
    pub session_id: SessionId,
    /// 1, 2, 3, … within the session, without gaps.
    pub seq: u64,
    /// Milliseconds since the Unix epoch.
    pub at_ms: i64,
    #[serde(flatten)]
    pub kind: EventKind,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_sortable_and_parse_back() {
        let ids: Vec<SessionId> = (0..1000).map(|_| SessionId::new()).collect();
        let unique: std::collections::HashSet<_> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len());
        assert!(ids.iter().all(|id| id.as_str().len() == 16));
        assert_eq!(SessionId::parse(ids[0].as_str()), Some(ids[0].clone()));
        assert_eq!(SessionId::parse("../etc"), None);
    }

    #[test]
    fn events_round_trip_through_json_and_unknown_kinds_survive() {
        let event = Event {
            session_id: SessionId::new(),
            seq: 3,
            at_ms: 1_700_000_000_000,
            kind: EventKind::ToolResult {
                tool_use_id: "t1".into(),
                name: "shell".into(),
                content: vec![ToolResultContent::Text { text: "ok".into() }],
                is_error: false,
                duration_ms: 12,
            },
        };
        let json = serde_json::to_string(&event).unwrap();
        assert!(json.contains("\"type\":\"tool_result\""), "{json}");
        assert_eq!(serde_json::from_str::<Event>(&json).unwrap(), event);
        let future: EventKind = serde_json::from_str(r#"{"type":"hologram","x":1}"#).unwrap();
        assert!(matches!(future, EventKind::Other(_)));
    }
}
