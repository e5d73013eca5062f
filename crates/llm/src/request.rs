use rswe_protocol::{ContentBlock, Message, Role, ToolDefinition, Usage};
use serde::{Deserialize, Serialize};

/// One block of system prompt text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SystemBlock {
    pub text: String,
    /// Cache the prompt up to and including this block (tool definitions come first).
    #[serde(default)]
    pub cache_breakpoint: bool,
}

impl SystemBlock {
    pub fn new(text: impl Into<String>) -> Self {
        SystemBlock { text: text.into(), cache_breakpoint: false }
    }
}

/// Extended thinking: the model may reason for up to `budget_tokens` before answering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThinkingConfig {
    pub budget_tokens: u32,
}

/// A provider-neutral model request. Cache breakpoints are placed by the caller with the
/// `cache_breakpoint` flags; each provider maps them to its own syntax or drops them.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ModelRequest {
    pub system: Vec<SystemBlock>,
    pub messages: Vec<Message>,
    pub tools: Vec<ToolDefinition>,
    /// Cache the prompt up to the end of the tool definitions.
    pub tools_cache_breakpoint: bool,
    /// Upper bound of output tokens; `None` takes the catalog's maximum for the model.
    pub max_tokens: Option<u32>,
    pub thinking: Option<ThinkingConfig>,
    pub temperature: Option<f32>,
}

impl ModelRequest {
    /// The number of cache breakpoints the request asks for.
    pub fn breakpoint_count(&self) -> usize {
        self.system.iter().filter(|b| b.cache_breakpoint).count()
            + usize::from(self.tools_cache_breakpoint && !self.tools.is_empty())
            + self.messages.iter().filter(|m| m.cache_breakpoint).count()
    }

    /// Keeps at most `limit` breakpoints, dropping the oldest message breakpoints first,
    /// then system and tool ones. Returns how many were dropped.
    pub fn limit_breakpoints(&mut self, limit: usize) -> usize {
        let mut excess = self.breakpoint_count().saturating_sub(limit);
        let dropped = excess;
        for message in self.messages.iter_mut() {
            if excess == 0 {
                break;
            }
            if message.cache_breakpoint {
                message.cache_breakpoint = false;
                excess -= 1;
            }
        }
        for block in self.system.iter_mut().rev() {
            if excess == 0 {
                break;
            }
            if block.cache_breakpoint {
                block.cache_breakpoint = false;
                excess -= 1;
            }
        }
        if excess > 0 && self.tools_cache_breakpoint {
            self.tools_cache_breakpoint = false;
        }
        dropped
    }

    /// Removes every cache breakpoint (for providers without explicit caching).
    pub fn clear_breakpoints(&mut self) {
        self.limit_breakpoints(0);
    }
}

/// Why the model stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The model finished its turn.
    EndTurn,
    /// The model waits for the results of its tool calls.
    ToolUse,
    /// The output limit cut the answer short: raise `max_tokens` and ask again.
    MaxTokens,
    /// The model declined to answer (a safety refusal or content filter).
    Refusal,
    /// A stop sequence or a reason rswe does not know, as the provider named it.
    Other(String),
}

impl StopReason {
    /// The reason as rswe records it: `end_turn`, `tool_use`, `max_tokens`, `refusal`, or
    /// the provider's own word.
    pub fn as_str(&self) -> &str {
        match self {
            StopReason::EndTurn => "end_turn",
            StopReason::ToolUse => "tool_use",
            StopReason::MaxTokens => "max_tokens",
            StopReason::Refusal => "refusal",
            StopReason::Other(other) => other,
        }
    }
}

/// A complete answer from the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelResponse {
    /// Always `Role::Assistant`.
    pub message: Message,
    pub stop_reason: StopReason,
    pub usage: Usage,
    /// The provider's id for the response, when it gives one.
    pub id: Option<String>,
}

impl ModelResponse {
    pub fn new(content: Vec<ContentBlock>, stop_reason: StopReason, usage: Usage) -> Self {
        ModelResponse { message: Message::new(Role::Assistant, content), stop_reason, usage, id: None }
    }
}
