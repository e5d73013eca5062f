//! The neutral stream every provider's wire format is translated into, and the
//! accumulator that turns a complete stream into a [`ModelResponse`].

use crate::error::LlmError;
use crate::request::{ModelResponse, StopReason};
use futures::stream::BoxStream;
use rswe_protocol::{ContentBlock, Usage};
use serde_json::Value;
use std::collections::BTreeMap;

/// What kind of block a `BlockStart` opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockKind {
    Text,
    Thinking,
    RedactedThinking { data: String },
    ToolUse { id: String, name: String },
}

/// Token counts as a provider reports them, piece by piece. A present field replaces
/// the value seen before.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UsageUpdate {
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    pub cache_read_tokens: Option<u64>,
    pub cache_write_tokens: Option<u64>,
}

impl UsageUpdate {
    pub fn complete(usage: Usage) -> Self {
        UsageUpdate {
            input_tokens: Some(usage.input_tokens),
            output_tokens: Some(usage.output_tokens),
            cache_read_tokens: Some(usage.cache_read_tokens),
            cache_write_tokens: Some(usage.cache_write_tokens),
        }
    }

    fn apply_to(&self, usage: &mut Usage) {
        if let Some(v) = self.input_tokens {
            usage.input_tokens = v;
        }
        if let Some(v) = self.output_tokens {
            usage.output_tokens = v;
        }
        if let Some(v) = self.cache_read_tokens {
            usage.cache_read_tokens = v;
        }
        if let Some(v) = self.cache_write_tokens {
            usage.cache_write_tokens = v;
        }
    }
}

/// One piece of a streamed model answer, the same for every provider.
/// Blocks are addressed by `index`; a delta for a text or thinking block that was never
/// started opens one (Bedrock announces only tool blocks).
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    MessageStart {
        id: Option<String>,
    },
    BlockStart {
        index: usize,
        kind: BlockKind,
    },
    TextDelta {
        index: usize,
        text: String,
    },
    ThinkingDelta {
        index: usize,
        thinking: String,
    },
    SignatureDelta {
        index: usize,
        signature: String,
    },
    ToolInputDelta {
        index: usize,
        partial_json: String,
    },
    BlockStop {
        index: usize,
    },
    Usage(UsageUpdate),
    Stop {
        reason: StopReason,
    },
    /// The provider said the message is complete. Nothing follows.
    MessageEnd,
}

/// A provider's stream of events for one request.
pub type EventStream = BoxStream<'static, Result<StreamEvent, LlmError>>;

#[derive(Debug)]
enum PartialBlock {
    Text(String),
    Thinking { thinking: String, signature: Option<String> },
    RedactedThinking(String),
    ToolUse { id: String, name: String, json: String },
}

/// Builds the final message from a stream. A stream that ends without `MessageEnd` is
/// broken and yields no message: callers never see half an answer as a whole one.
#[derive(Debug)]
pub struct Accumulator {
    provider: &'static str,
    id: Option<String>,
    blocks: BTreeMap<usize, PartialBlock>,
    usage: Usage,
    stop_reason: Option<StopReason>,
    ended: bool,
}

impl Accumulator {
    pub fn new(provider: &'static str) -> Self {
        Accumulator {
            provider,
            id: None,
            blocks: BTreeMap::new(),
            usage: Usage::default(),
            stop_reason: None,
            ended: false,
        }
    }

    fn broken(&self, message: impl Into<String>) -> LlmError {
        LlmError::StreamBroken { provider: self.provider, message: message.into() }
    }

    pub fn apply(&mut self, event: &StreamEvent) -> Result<(), LlmError> {
        if self.ended {
            return Err(self.broken("event after the end of the message"));
        }
        match event {
            StreamEvent::MessageStart { id } => self.id.clone_from(id),
            StreamEvent::BlockStart { index, kind } => {
                let block = match kind {
                    BlockKind::Text => PartialBlock::Text(String::new()),
                    BlockKind::Thinking => PartialBlock::Thinking { thinking: String::new(), signature: None },
                    BlockKind::RedactedThinking { data } => PartialBlock::RedactedThinking(data.clone()),
                    BlockKind::ToolUse { id, name } => {
                        PartialBlock::ToolUse { id: id.clone(), name: name.clone(), json: String::new() }
                    }
                };
                if self.blocks.insert(*index, block).is_some() {
                    return Err(self.broken(format!("block {index} started twice")));
                }
            }
            StreamEvent::TextDelta { index, text } => {
                match self.blocks.entry(*index).or_insert_with(|| PartialBlock::Text(String::new())) {
                    PartialBlock::Text(buffer) => buffer.push_str(text),
                    _ => return Err(self.broken(format!("text for block {index}, which is not text"))),
                }
            }
            StreamEvent::ThinkingDelta { index, thinking } => self.thinking_block(*index)?.0.push_str(thinking),
            StreamEvent::SignatureDelta { index, signature } => {
                self.thinking_block(*index)?.1.get_or_insert_with(String::new).push_str(signature)
            }
            StreamEvent::ToolInputDelta { index, partial_json } => match self.blocks.get_mut(index) {
                Some(PartialBlock::ToolUse { json, .. }) => json.push_str(partial_json),
                _ => return Err(self.broken(format!("tool input for block {index}, which is no tool call"))),
            },
            StreamEvent::BlockStop { .. } => {}
            StreamEvent::Usage(update) => update.apply_to(&mut self.usage),
            StreamEvent::Stop { reason } => self.stop_reason = Some(reason.clone()),
            StreamEvent::MessageEnd => self.ended = true,
        }
        Ok(())
    }

    /// The text and signature of the thinking block at `index`, opened if new.
    fn thinking_block(&mut self, index: usize) -> Result<(&mut String, &mut Option<String>), LlmError> {
        let provider = self.provider;
        let block = self
            .blocks
            .entry(index)
            .or_insert_with(|| PartialBlock::Thinking { thinking: String::new(), signature: None });
        match block {
            PartialBlock::Thinking { thinking, signature } => Ok((thinking, signature)),
            _ => Err(LlmError::StreamBroken {
                provider,
                message: format!("thinking for block {index}, which is not thinking"),
            }),
        }
    }

    /// The usage reported so far.
    pub fn usage(&self) -> Usage {
        self.usage
    }

    pub fn finish(self) -> Result<ModelResponse, LlmError> {
        if !self.ended {
            return Err(self.broken("the stream ended before the message was complete"));
        }
        let has_tool_use = self.blocks.values().any(|b| matches!(b, PartialBlock::ToolUse { .. }));
        let content: Vec<ContentBlock> = self
            .blocks
            .into_values()
            .filter_map(|block| match block {
                PartialBlock::Text(text) if text.is_empty() => None,
                PartialBlock::Text(text) => Some(ContentBlock::Text { text }),
                PartialBlock::Thinking { thinking, signature } => Some(ContentBlock::Thinking { thinking, signature }),
                PartialBlock::RedactedThinking(data) => Some(ContentBlock::RedactedThinking { data }),
                PartialBlock::ToolUse { id, name, json } => {
                    Some(ContentBlock::ToolUse { id, name, input: parse_tool_input(&json) })
                }
            })
            .collect();
        let stop_reason = match self.stop_reason {
            Some(reason) => reason,
            None if has_tool_use => StopReason::ToolUse,
            None => StopReason::EndTurn,
        };
        let mut response = ModelResponse::new(content, stop_reason, self.usage);
        response.id = self.id;
        Ok(response)
    }
}

/// The arguments of a tool call. Empty means no arguments; text that is not JSON is kept
/// as a string so the tool layer can tell the model what was wrong with it.
pub(crate) fn parse_tool_input(json: &str) -> Value {
    if json.trim().is_empty() {
        return Value::Object(Default::default());
    }
    serde_json::from_str(json).unwrap_or_else(|_| Value::String(json.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn builds_blocks_in_index_order_and_joins_fragments() {
        let mut acc = Accumulator::new("test");
        let events = [
            StreamEvent::MessageStart { id: Some("m1".into()) },
            StreamEvent::ThinkingDelta { index: 0, thinking: "let me ".into() },
            StreamEvent::ThinkingDelta { index: 0, thinking: "think".into() },
            StreamEvent::SignatureDelta { index: 0, signature: "sig".into() },
            StreamEvent::BlockStart { index: 2, kind: BlockKind::ToolUse { id: "t1".into(), name: "shell".into() } },
            StreamEvent::ToolInputDelta { index: 2, partial_json: "{\"command\":".into() },
            StreamEvent::TextDelta { index: 1, text: "Running it.".into() },
            StreamEvent::ToolInputDelta { index: 2, partial_json: "\"ls\"}".into() },
            StreamEvent::Usage(UsageUpdate { input_tokens: Some(10), ..Default::default() }),
            StreamEvent::Usage(UsageUpdate { output_tokens: Some(5), ..Default::default() }),
            StreamEvent::MessageEnd,
        ];
        for event in &events {
            acc.apply(event).unwrap();
        }
        let response = acc.finish().unwrap();
        assert_eq!(response.stop_reason, StopReason::ToolUse);
        assert_eq!(response.id.as_deref(), Some("m1"));
        assert_eq!(response.usage.input_tokens, 10);
        assert_eq!(response.usage.output_tokens, 5);
        assert_eq!(
            response.message.content,
            vec![
                ContentBlock::Thinking { thinking: "let me think".into(), signature: Some("sig".into()) },
                ContentBlock::text("Running it."),
                ContentBlock::ToolUse { id: "t1".into(), name: "shell".into(), input: json!({"command": "ls"}) },
            ]
        );
    }

    #[test]
    fn a_stream_without_its_end_is_broken() {
        let mut acc = Accumulator::new("test");
        acc.apply(&StreamEvent::TextDelta { index: 0, text: "half".into() }).unwrap();
        assert!(matches!(acc.finish(), Err(LlmError::StreamBroken { .. })));
    }

    #[test]
    fn tool_input_that_is_not_json_is_kept_as_text() {
        assert_eq!(parse_tool_input(""), json!({}));
        assert_eq!(parse_tool_input("{\"a\":1"), json!("{\"a\":1"));
    }
}
