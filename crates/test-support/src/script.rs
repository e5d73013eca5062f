//! The script a fake model server replays: settings and a queue of turns.
//!
//! Every incoming model request consumes the next turn, whatever its wire format. The
//! JSON form is documented in the crate's README; the Rust types below build the same
//! thing fluently:
//!
//! ```
//! use rswe_test_support::{ErrorKind, Failure, Response, Script};
//! use serde_json::json;
//!
//! let script = Script::new()
//!     .turn(Response::new().thinking("Let me look.", "sig-1").tool_use("read_file", json!({"path": "a.rs"})))
//!     .turn(Failure::new(ErrorKind::RateLimited).retry_after_secs(1))
//!     .turn("All done.");
//! assert_eq!(script.turns.len(), 3);
//! ```

use std::path::Path;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// Signature given to a thinking block whose script omits one.
pub const DEFAULT_SIGNATURE: &str = "fake-thinking-signature";

/// Errors loading a script.
#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
    #[error("cannot read script {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid script JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// Knobs of the simulation. Every field has a default, so `{}` is valid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// How long a prompt-cache entry lives after it was written or last read.
    pub cache_ttl_secs: u64,
    /// Smallest breakpoint prefix (in simulated tokens) that Anthropic and Bedrock cache.
    pub cache_min_tokens: u64,
    /// Largest simulated input a request may have; larger requests get the format's
    /// context-window error without consuming a turn.
    pub context_window: u64,
    /// Streamed text, thinking and tool input are split into pieces of at most this many
    /// characters (and into at least two pieces when they have two characters or more).
    pub stream_chunk_chars: usize,
    /// Pause between two streamed events.
    pub event_delay_ms: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            cache_ttl_secs: 300,
            cache_min_tokens: 1024,
            context_window: 200_000,
            stream_chunk_chars: 16,
            event_delay_ms: 0,
        }
    }
}

/// A scripted conversation: settings and the turns to replay in order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Script {
    pub settings: Settings,
    pub turns: Vec<Turn>,
}

impl Script {
    pub fn new() -> Self {
        Script::default()
    }

    /// Appends a turn.
    #[must_use]
    pub fn turn(mut self, turn: impl Into<Turn>) -> Self {
        self.turns.push(turn.into());
        self
    }

    /// Appends several turns.
    #[must_use]
    pub fn turns<T: Into<Turn>>(mut self, turns: impl IntoIterator<Item = T>) -> Self {
        self.turns.extend(turns.into_iter().map(Into::into));
        self
    }

    #[must_use]
    pub fn settings(mut self, settings: Settings) -> Self {
        self.settings = settings;
        self
    }

    #[must_use]
    pub fn context_window(mut self, tokens: u64) -> Self {
        self.settings.context_window = tokens;
        self
    }

    #[must_use]
    pub fn cache_min_tokens(mut self, tokens: u64) -> Self {
        self.settings.cache_min_tokens = tokens;
        self
    }

    #[must_use]
    pub fn cache_ttl_secs(mut self, secs: u64) -> Self {
        self.settings.cache_ttl_secs = secs;
        self
    }

    #[must_use]
    pub fn stream_chunk_chars(mut self, chars: usize) -> Self {
        self.settings.stream_chunk_chars = chars;
        self
    }

    #[must_use]
    pub fn event_delay_ms(mut self, ms: u64) -> Self {
        self.settings.event_delay_ms = ms;
        self
    }

    /// Parses the JSON form: `{"settings": {...}, "turns": [...]}` or a bare array of turns.
    pub fn from_json(text: &str) -> Result<Script, ScriptError> {
        Ok(serde_json::from_str(text)?)
    }

    /// Reads and parses a JSON script file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Script, ScriptError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|source| ScriptError::Read { path: path.display().to_string(), source })?;
        Script::from_json(&text)
    }

    /// The JSON form, as [`Script::from_json`] reads it.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

impl<T: Into<Turn>> From<Vec<T>> for Script {
    fn from(turns: Vec<T>) -> Self {
        Script::new().turns(turns)
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScript {
    #[serde(default)]
    settings: Settings,
    #[serde(default)]
    turns: Vec<Turn>,
}

impl Serialize for Script {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        RawScript { settings: self.settings.clone(), turns: self.turns.clone() }.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Script {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        if value.is_array() {
            let turns: Vec<Turn> = serde_json::from_value(value).map_err(serde::de::Error::custom)?;
            return Ok(Script { settings: Settings::default(), turns });
        }
        let raw: RawScript = serde_json::from_value(value).map_err(serde::de::Error::custom)?;
        Ok(Script { settings: raw.settings, turns: raw.turns })
    }
}

/// One scripted answer to one model request.
#[derive(Debug, Clone, PartialEq)]
pub enum Turn {
    /// The model answers (possibly with a fault in the stream).
    Respond(Response),
    /// The provider refuses the request with an error.
    Fail(Failure),
}

impl Turn {
    /// A plain text answer.
    pub fn text(text: impl Into<String>) -> Turn {
        Response::new().text(text).into()
    }

    /// An answer calling one tool.
    pub fn tool_use(name: impl Into<String>, input: Value) -> Turn {
        Response::new().tool_use(name, input).into()
    }

    /// A provider error.
    pub fn error(kind: ErrorKind) -> Turn {
        Failure::new(kind).into()
    }
}

impl From<Response> for Turn {
    fn from(response: Response) -> Self {
        Turn::Respond(response)
    }
}

impl From<Failure> for Turn {
    fn from(failure: Failure) -> Self {
        Turn::Fail(failure)
    }
}

impl From<ErrorKind> for Turn {
    fn from(kind: ErrorKind) -> Self {
        Turn::Fail(Failure::new(kind))
    }
}

impl From<&str> for Turn {
    fn from(text: &str) -> Self {
        Turn::text(text)
    }
}

impl From<String> for Turn {
    fn from(text: String) -> Self {
        Turn::text(text)
    }
}

/// A content block the fake model generates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Block {
    Thinking {
        thinking: String,
        #[serde(default = "default_signature")]
        signature: String,
    },
    RedactedThinking {
        data: String,
    },
    Text {
        text: String,
    },
    ToolUse {
        /// Generated (`toolu_fake_N`, `call_fake_N`, `tooluse_fake_N`) when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        name: String,
        #[serde(default = "empty_object")]
        input: Value,
    },
}

fn default_signature() -> String {
    DEFAULT_SIGNATURE.to_owned()
}

fn empty_object() -> Value {
    Value::Object(serde_json::Map::new())
}

/// Why the model stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    EndTurn,
    ToolUse,
    MaxTokens,
    Refusal,
}

/// A provider error the script can ask for, rendered in each wire format's own terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    RateLimited,
    Overloaded,
    ServerError,
    Unauthorized,
    ContextWindowExceeded,
    InvalidRequest,
    /// Bedrock's ModelNotReadyException (429); overloaded in the other formats.
    ModelNotReady,
}

/// Something that goes wrong while a response streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamFault {
    /// Send `after_events` events, then drop the connection without the end.
    Cut { after_events: usize },
    /// Send `after_events` events, then one garbage event, then end the body.
    Malformed { after_events: usize },
    /// Send `after_events` events, go silent for `stall_ms`, then drop the connection.
    Stall { after_events: usize, stall_ms: u64 },
    /// Send `after_events` events, then the format's in-stream error, then end the body.
    MidStreamError { error: ErrorKind, after_events: usize },
}

/// A scripted model answer.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Response {
    pub content: Vec<Block>,
    /// Defaults to `tool_use` when the content has a tool use, else `end_turn`.
    pub stop_reason: Option<StopReason>,
    /// Overrides the simulated output token count.
    pub output_tokens: Option<u64>,
    /// Wait this long before answering.
    pub delay_ms: Option<u64>,
    pub fault: Option<StreamFault>,
}

impl Response {
    pub fn new() -> Self {
        Response::default()
    }

    #[must_use]
    pub fn text(mut self, text: impl Into<String>) -> Self {
        self.content.push(Block::Text { text: text.into() });
        self
    }

    #[must_use]
    pub fn thinking(mut self, thinking: impl Into<String>, signature: impl Into<String>) -> Self {
        self.content.push(Block::Thinking { thinking: thinking.into(), signature: signature.into() });
        self
    }

    #[must_use]
    pub fn redacted_thinking(mut self, data: impl Into<String>) -> Self {
        self.content.push(Block::RedactedThinking { data: data.into() });
        self
    }

    /// A tool use whose id the server generates.
    #[must_use]
    pub fn tool_use(mut self, name: impl Into<String>, input: Value) -> Self {
        self.content.push(Block::ToolUse { id: None, name: name.into(), input });
        self
    }

    #[must_use]
    pub fn tool_use_with_id(mut self, id: impl Into<String>, name: impl Into<String>, input: Value) -> Self {
        self.content.push(Block::ToolUse { id: Some(id.into()), name: name.into(), input });
        self
    }

    #[must_use]
    pub fn block(mut self, block: Block) -> Self {
        self.content.push(block);
        self
    }

    #[must_use]
    pub fn stop_reason(mut self, reason: StopReason) -> Self {
        self.stop_reason = Some(reason);
        self
    }

    #[must_use]
    pub fn output_tokens(mut self, tokens: u64) -> Self {
        self.output_tokens = Some(tokens);
        self
    }

    #[must_use]
    pub fn delay_ms(mut self, ms: u64) -> Self {
        self.delay_ms = Some(ms);
        self
    }

    #[must_use]
    pub fn cut_after_events(mut self, after_events: usize) -> Self {
        self.fault = Some(StreamFault::Cut { after_events });
        self
    }

    #[must_use]
    pub fn malformed_after_events(mut self, after_events: usize) -> Self {
        self.fault = Some(StreamFault::Malformed { after_events });
        self
    }

    #[must_use]
    pub fn stall_after_events(mut self, after_events: usize, stall_ms: u64) -> Self {
        self.fault = Some(StreamFault::Stall { after_events, stall_ms });
        self
    }

    #[must_use]
    pub fn mid_stream_error(mut self, error: ErrorKind, after_events: usize) -> Self {
        self.fault = Some(StreamFault::MidStreamError { error, after_events });
        self
    }

    /// The stop reason this response reports.
    pub fn effective_stop_reason(&self) -> StopReason {
        self.stop_reason.unwrap_or_else(|| {
            if self.content.iter().any(|b| matches!(b, Block::ToolUse { .. })) {
                StopReason::ToolUse
            } else {
                StopReason::EndTurn
            }
        })
    }
}

/// A scripted provider error.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub error: ErrorKind,
    /// Sent as `retry-after` on 429s of the Anthropic and OpenAI formats (default 0).
    pub retry_after_secs: Option<u64>,
    pub delay_ms: Option<u64>,
}

impl Failure {
    pub fn new(error: ErrorKind) -> Self {
        Failure { error, retry_after_secs: None, delay_ms: None }
    }

    #[must_use]
    pub fn retry_after_secs(mut self, secs: u64) -> Self {
        self.retry_after_secs = Some(secs);
        self
    }

    #[must_use]
    pub fn delay_ms(mut self, ms: u64) -> Self {
        self.delay_ms = Some(ms);
        self
    }
}

/// `{"name", "input"?, "id"?}` in the `tool_uses` shorthand.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ToolUseShorthand {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    name: String,
    #[serde(default = "empty_object")]
    input: Value,
}

/// The JSON shape of a turn: every field optional, validated by `Turn::try_from`.
#[derive(Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTurn {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    content: Option<Vec<Block>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    thinking: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    signature: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tool_uses: Option<Vec<ToolUseShorthand>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    stop_reason: Option<StopReason>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    output_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    delay_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<ErrorKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retry_after_secs: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cut_after_events: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    malformed_after_events: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    stall_after_events: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    stall_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mid_stream_error: Option<ErrorKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    after_events: Option<usize>,
}

impl TryFrom<RawTurn> for Turn {
    type Error = String;

    fn try_from(raw: RawTurn) -> Result<Self, String> {
        let has_content =
            raw.content.is_some() || raw.thinking.is_some() || raw.text.is_some() || raw.tool_uses.is_some();
        let faults = [
            raw.cut_after_events.is_some(),
            raw.malformed_after_events.is_some(),
            raw.stall_after_events.is_some(),
            raw.mid_stream_error.is_some(),
        ]
        .iter()
        .filter(|f| **f)
        .count();
        if let Some(error) = raw.error {
            if has_content || faults > 0 || raw.stop_reason.is_some() || raw.output_tokens.is_some() {
                return Err("an `error` turn takes only `retry_after_secs` and `delay_ms`".into());
            }
            return Ok(Turn::Fail(Failure { error, retry_after_secs: raw.retry_after_secs, delay_ms: raw.delay_ms }));
        }
        if raw.retry_after_secs.is_some() {
            return Err("`retry_after_secs` belongs to an `error` turn".into());
        }
        if faults > 1 {
            return Err("a turn takes at most one of `cut_after_events`, `malformed_after_events`, `stall_after_events`, `mid_stream_error`".into());
        }
        if raw.stall_ms.is_some() && raw.stall_after_events.is_none() {
            return Err("`stall_ms` needs `stall_after_events`".into());
        }
        if raw.after_events.is_some() && raw.mid_stream_error.is_none() {
            return Err("`after_events` needs `mid_stream_error`".into());
        }
        if raw.signature.is_some() && raw.thinking.is_none() {
            return Err("`signature` needs the `thinking` shorthand".into());
        }
        if raw.content.is_some() && (raw.thinking.is_some() || raw.text.is_some() || raw.tool_uses.is_some()) {
            return Err("use either `content` or the `thinking`/`text`/`tool_uses` shorthands".into());
        }
        let content = match raw.content {
            Some(content) => content,
            None => {
                let mut content = Vec::new();
                if let Some(thinking) = raw.thinking {
                    content
                        .push(Block::Thinking { thinking, signature: raw.signature.unwrap_or_else(default_signature) });
                }
                if let Some(text) = raw.text {
                    content.push(Block::Text { text });
                }
                for t in raw.tool_uses.unwrap_or_default() {
                    content.push(Block::ToolUse { id: t.id, name: t.name, input: t.input });
                }
                content
            }
        };
        let fault = if let Some(after_events) = raw.cut_after_events {
            Some(StreamFault::Cut { after_events })
        } else if let Some(after_events) = raw.malformed_after_events {
            Some(StreamFault::Malformed { after_events })
        } else if let Some(after_events) = raw.stall_after_events {
            Some(StreamFault::Stall { after_events, stall_ms: raw.stall_ms.unwrap_or(0) })
        } else {
            raw.mid_stream_error
                .map(|error| StreamFault::MidStreamError { error, after_events: raw.after_events.unwrap_or(0) })
        };
        Ok(Turn::Respond(Response {
            content,
            stop_reason: raw.stop_reason,
            output_tokens: raw.output_tokens,
            delay_ms: raw.delay_ms,
            fault,
        }))
    }
}

impl From<&Turn> for RawTurn {
    fn from(turn: &Turn) -> Self {
        match turn {
            Turn::Fail(f) => RawTurn {
                error: Some(f.error),
                retry_after_secs: f.retry_after_secs,
                delay_ms: f.delay_ms,
                ..RawTurn::default()
            },
            Turn::Respond(r) => {
                let mut raw = RawTurn {
                    content: Some(r.content.clone()),
                    stop_reason: r.stop_reason,
                    output_tokens: r.output_tokens,
                    delay_ms: r.delay_ms,
                    ..RawTurn::default()
                };
                match r.fault {
                    None => {}
                    Some(StreamFault::Cut { after_events }) => raw.cut_after_events = Some(after_events),
                    Some(StreamFault::Malformed { after_events }) => raw.malformed_after_events = Some(after_events),
                    Some(StreamFault::Stall { after_events, stall_ms }) => {
                        raw.stall_after_events = Some(after_events);
                        raw.stall_ms = Some(stall_ms);
                    }
                    Some(StreamFault::MidStreamError { error, after_events }) => {
                        raw.mid_stream_error = Some(error);
                        raw.after_events = Some(after_events);
                    }
                }
                raw
            }
        }
    }
}

impl Serialize for Turn {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        RawTurn::from(self).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Turn {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        if let Value::String(text) = value {
            return Ok(Turn::text(text));
        }
        let raw: RawTurn = serde_json::from_value(value).map_err(serde::de::Error::custom)?;
        Turn::try_from(raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn shorthands_and_round_trip() {
        let script = Script::from_json(
            r#"{"settings":{"context_window":5000},"turns":[
                "hello",
                {"thinking":"hmm","text":"hi","tool_uses":[{"name":"ls"}]},
                {"error":"rate_limited","retry_after_secs":2},
                {"content":[{"type":"text","text":"x"}],"stall_after_events":3,"stall_ms":50},
                {"text":"y","mid_stream_error":"overloaded","after_events":4}
            ]}"#,
        )
        .unwrap();
        assert_eq!(script.settings.context_window, 5000);
        assert_eq!(script.settings.cache_min_tokens, 1024);
        assert_eq!(script.turns[0], Turn::text("hello"));
        assert_eq!(
            script.turns[1],
            Turn::Respond(Response::new().thinking("hmm", DEFAULT_SIGNATURE).text("hi").tool_use("ls", json!({})))
        );
        assert_eq!(script.turns[2], Failure::new(ErrorKind::RateLimited).retry_after_secs(2).into());
        let again = Script::from_json(&script.to_json()).unwrap();
        assert_eq!(again, script);
    }

    #[test]
    fn rejects_conflicts() {
        assert!(Script::from_json(r#"[{"error":"overloaded","text":"x"}]"#).is_err());
        assert!(Script::from_json(r#"[{"text":"x","cut_after_events":1,"stall_after_events":2}]"#).is_err());
        assert!(Script::from_json(r#"[{"txt":"x"}]"#).is_err());
        assert!(Script::from_json(r#"[{"error":"nope"}]"#).is_err());
    }

    #[test]
    fn default_stop_reason() {
        assert_eq!(Response::new().text("a").effective_stop_reason(), StopReason::EndTurn);
        assert_eq!(Response::new().tool_use("x", json!({})).effective_stop_reason(), StopReason::ToolUse);
    }
}
