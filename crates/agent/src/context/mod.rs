//! The context economy: what each step sends to the model.
//!
//! A [`ContextPolicy`] decides, from the whole conversation, the request of the next
//! step: which messages go verbatim, which tool results are masked, where the cache
//! breakpoints go, and when the middle must be summarised (compaction). It also bounds
//! each tool result as it enters the history. The agent and `rswe bench context` drive
//! policies the same way, so the benchmark measures the code the agent runs.

pub mod baseline;
mod economy;

pub use economy::{EconomySettings, RswePolicy, bound_text};

use rswe_llm::{Caching, ModelRequest, SystemBlock};
use rswe_protocol::{Message, ToolDefinition};

/// Bytes per token of the deterministic estimate used for decisions (the fake model
/// server counts the same way).
pub const BYTES_PER_TOKEN: usize = 4;

/// A deterministic token estimate of any serialisable value: its compact JSON length / 4,
/// rounded up.
pub fn estimate_tokens<T: serde::Serialize + ?Sized>(value: &T) -> u64 {
    let bytes = serde_json::to_string(value).map(|s| s.len()).unwrap_or(0);
    bytes.div_ceil(BYTES_PER_TOKEN) as u64
}

/// What a policy sees at each step.
#[derive(Debug, Clone, Copy)]
pub struct ContextInput<'a> {
    pub system: &'a [SystemBlock],
    pub tools: &'a [ToolDefinition],
    /// The conversation so far (after earlier compactions), ending with a user message.
    pub messages: &'a [Message],
    /// The model's context window, in tokens.
    pub window: u32,
    /// The output limit the request will ask for.
    pub max_output: u32,
    pub caching: Caching,
    /// The provider's cache-breakpoint limit (0 when it has none).
    pub max_breakpoints: usize,
}

/// A policy's decision for one step.
#[derive(Debug, Clone, PartialEq)]
pub enum Shaped {
    /// Send this request.
    Request(ModelRequest),
    /// First summarise: send `request` (a summary request), then replace
    /// `messages[keep_first..summarise_until]` with the summary (see
    /// [`apply_compaction`]) and shape again.
    Compact { request: ModelRequest, keep_first: usize, summarise_until: usize },
}

/// A context-management policy.
pub trait ContextPolicy: Send {
    fn name(&self) -> &'static str;

    /// Bounds a tool result's text as it enters the history. `save_as` names where the
    /// full text is (or will be) kept for the agent to page through, if anywhere.
    fn admit(&self, tool: &str, text: String, save_as: Option<&str>) -> String;

    /// Decides the next request.
    fn shape(&mut self, input: &ContextInput<'_>) -> Shaped;
}

/// Replaces `messages[keep_first..summarise_until]` with one user message holding the
/// summary, keeping roles alternating: the summary is merged into a neighbouring user
/// message when the cut would otherwise put two user messages side by side.
pub fn apply_compaction(messages: &mut Vec<Message>, keep_first: usize, summarise_until: usize, summary: &str) {
    let until = summarise_until.min(messages.len());
    let keep_first = keep_first.min(until);
    let text = format!(
        "[Summary of earlier work in this session, written when the conversation grew too long. \
         The full history is in the session log.]\n\n{summary}"
    );
    let block = rswe_protocol::ContentBlock::text(text);
    messages.drain(keep_first..until);
    let before_is_user = keep_first > 0 && messages[keep_first - 1].role == rswe_protocol::Role::User;
    let after_is_user = messages.get(keep_first).is_some_and(|m| m.role == rswe_protocol::Role::User);
    if before_is_user {
        messages[keep_first - 1].content.push(block);
    } else if after_is_user {
        messages[keep_first].content.insert(0, block);
    } else {
        messages.insert(keep_first, Message::new(rswe_protocol::Role::User, vec![block]));
    }
}
