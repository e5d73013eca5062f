//! The Anthropic Messages API, streamed over SSE.

use crate::catalog::ModelInfo;
use crate::client::ModelClient;
use crate::config::Secret;
use crate::error::LlmError;
use crate::http::{event_json, mentions_context_overflow, post_json, sse_event_stream};
use crate::request::{ModelRequest, StopReason};
use crate::sse::SseEvent;
use crate::stream::{BlockKind, EventStream, StreamEvent, UsageUpdate};
use rswe_protocol::{ContentBlock, Message, Role, ToolResultContent};
use serde_json::{Value, json};
use std::collections::HashSet;

const PROVIDER: &str = "anthropic";
pub const DEFAULT_BASE_URL: &str = "https://api.anthropic.com";
const API_VERSION: &str = "2023-06-01";

pub struct AnthropicClient {
    http: reqwest::Client,
    base_url: String,
    api_key: Secret,
}

impl AnthropicClient {
    pub fn new(http: reqwest::Client, base_url: &str, api_key: Secret) -> Self {
        AnthropicClient { http, base_url: base_url.trim_end_matches('/').to_string(), api_key }
    }
}

#[async_trait::async_trait]
impl ModelClient for AnthropicClient {
    fn provider(&self) -> &'static str {
        PROVIDER
    }

    async fn stream(&self, model: &ModelInfo, request: &ModelRequest) -> Result<EventStream, LlmError> {
        let body = request_body(model, request);
        let mut http = self
            .http
            .post(format!("{}/v1/messages", self.base_url))
            .header("x-api-key", self.api_key.expose())
            .header("anthropic-version", API_VERSION)
            .header("accept", "text/event-stream");
        if !model.anthropic_beta.is_empty() {
            http = http.header("anthropic-beta", model.anthropic_beta.join(","));
        }
        let response = post_json(PROVIDER, http, &body, error_message).await?;
        let mut parser = EventParser::default();
        Ok(sse_event_stream(PROVIDER, response, move |event| parser.parse(event)))
    }
}

fn error_message(body: &Value) -> Option<String> {
    body.pointer("/error/message").and_then(Value::as_str).map(str::to_string)
}

const EPHEMERAL: fn() -> Value = || json!({"type": "ephemeral"});

/// The JSON body of a Messages request.
pub(crate) fn request_body(model: &ModelInfo, request: &ModelRequest) -> Value {
    let mut body = json!({
        "model": model.model_id,
        "max_tokens": request.max_tokens.unwrap_or(model.max_output_tokens),
        "messages": request.messages.iter().map(message_json).collect::<Vec<_>>(),
        "stream": true,
    });
    if !request.system.is_empty() {
        let system: Vec<Value> = request
            .system
            .iter()
            .map(|block| {
                let mut json = json!({"type": "text", "text": block.text});
                if block.cache_breakpoint {
                    json["cache_control"] = EPHEMERAL();
                }
                json
            })
            .collect();
        body["system"] = Value::Array(system);
    }
    if !request.tools.is_empty() {
        let mut tools: Vec<Value> = request
            .tools
            .iter()
            .map(|tool| json!({"name": tool.name, "description": tool.description, "input_schema": tool.input_schema}))
            .collect();
        if request.tools_cache_breakpoint
            && let Some(last) = tools.last_mut()
        {
            last["cache_control"] = EPHEMERAL();
        }
        body["tools"] = Value::Array(tools);
    }
    match request.thinking {
        Some(thinking) => body["thinking"] = json!({"type": "enabled", "budget_tokens": thinking.budget_tokens}),
        None => {
            if let Some(temperature) = request.temperature {
                body["temperature"] = json!(temperature);
            }
        }
    }
    body
}

fn message_json(message: &Message) -> Value {
    let mut content: Vec<Value> = message.content.iter().filter_map(block_json).collect();
    if message.cache_breakpoint {
        // Thinking blocks cannot carry cache_control: mark the last block that can.
        if let Some(last) =
            content.iter_mut().rev().find(|b| !matches!(b["type"].as_str(), Some("thinking" | "redacted_thinking")))
        {
            last["cache_control"] = EPHEMERAL();
        }
    }
    let role = match message.role {
        Role::User => "user",
        Role::Assistant => "assistant",
    };
    json!({"role": role, "content": content})
}

fn image_json(source: &rswe_protocol::ImageSource) -> Value {
    json!({"type": "image", "source": {"type": "base64", "media_type": source.media_type, "data": source.data}})
}

fn block_json(block: &ContentBlock) -> Option<Value> {
    Some(match block {
        ContentBlock::Text { text } => json!({"type": "text", "text": text}),
        ContentBlock::Image { source } => image_json(source),
        ContentBlock::ToolUse { id, name, input } => {
            json!({"type": "tool_use", "id": id, "name": name, "input": input})
        }
        ContentBlock::ToolResult { tool_use_id, content, is_error } => {
            let content: Vec<Value> = content
                .iter()
                .map(|part| match part {
                    ToolResultContent::Text { text } => json!({"type": "text", "text": text}),
                    ToolResultContent::Image { source } => image_json(source),
                })
                .collect();
            let mut json = json!({"type": "tool_result", "tool_use_id": tool_use_id, "content": content});
            if *is_error {
                json["is_error"] = json!(true);
            }
            json
        }
        // Unsigned thinking (from another provider) cannot be verified by Anthropic: drop it.
        ContentBlock::Thinking { signature: None, .. } => return None,
        ContentBlock::Thinking { thinking, signature: Some(signature) } => {
            json!({"type": "thinking", "thinking": thinking, "signature": signature})
        }
        ContentBlock::RedactedThinking { data } => json!({"type": "redacted_thinking", "data": data}),
    })
}

pub(crate) fn stop_reason(reason: &str) -> StopReason {
    match reason {
        "end_turn" => StopReason::EndTurn,
        "tool_use" => StopReason::ToolUse,
        "max_tokens" => StopReason::MaxTokens,
        "refusal" => StopReason::Refusal,
        other => StopReason::Other(other.to_string()),
    }
}

fn usage_update(usage: &Value) -> UsageUpdate {
    let field = |name: &str| usage.get(name).and_then(Value::as_u64);
    UsageUpdate {
        input_tokens: field("input_tokens"),
        output_tokens: field("output_tokens"),
        cache_read_tokens: field("cache_read_input_tokens"),
        cache_write_tokens: field("cache_creation_input_tokens"),
    }
}

/// Translates Anthropic's stream events; remembers blocks of types rswe does not use
/// (server tools, citations) so their deltas are skipped.
#[derive(Default)]
struct EventParser {
    skipped: HashSet<usize>,
}

impl EventParser {
    fn parse(&mut self, event: SseEvent) -> Result<Vec<StreamEvent>, LlmError> {
        let kind = event.event.as_deref().unwrap_or("message");
        if kind == "ping" {
            return Ok(Vec::new());
        }
        let data = event_json(PROVIDER, &event.data)?;
        let index = || data["index"].as_u64().map(|i| i as usize).unwrap_or(0);
        let str_field = |value: &Value, name: &str| value[name].as_str().unwrap_or_default().to_string();
        let events = match data["type"].as_str().unwrap_or(kind) {
            "message_start" => {
                let message = &data["message"];
                vec![
                    StreamEvent::MessageStart { id: message["id"].as_str().map(str::to_string) },
                    StreamEvent::Usage(usage_update(&message["usage"])),
                ]
            }
            "content_block_start" => {
                let block = &data["content_block"];
                let kind = match block["type"].as_str() {
                    Some("text") => BlockKind::Text,
                    Some("thinking") => BlockKind::Thinking,
                    Some("redacted_thinking") => BlockKind::RedactedThinking { data: str_field(block, "data") },
                    Some("tool_use") => {
                        BlockKind::ToolUse { id: str_field(block, "id"), name: str_field(block, "name") }
                    }
                    _ => {
                        self.skipped.insert(index());
                        return Ok(Vec::new());
                    }
                };
                let mut events = vec![StreamEvent::BlockStart { index: index(), kind }];
                if let Some(text) = block["text"].as_str().filter(|t| !t.is_empty()) {
                    events.push(StreamEvent::TextDelta { index: index(), text: text.to_string() });
                }
                events
            }
            "content_block_delta" if self.skipped.contains(&index()) => Vec::new(),
            "content_block_delta" => {
                let delta = &data["delta"];
                let index = index();
                match delta["type"].as_str() {
                    Some("text_delta") => vec![StreamEvent::TextDelta { index, text: str_field(delta, "text") }],
                    Some("thinking_delta") => {
                        vec![StreamEvent::ThinkingDelta { index, thinking: str_field(delta, "thinking") }]
                    }
                    Some("signature_delta") => {
                        vec![StreamEvent::SignatureDelta { index, signature: str_field(delta, "signature") }]
                    }
                    Some("input_json_delta") => {
                        vec![StreamEvent::ToolInputDelta { index, partial_json: str_field(delta, "partial_json") }]
                    }
                    _ => Vec::new(),
                }
            }
            "content_block_stop" if self.skipped.contains(&index()) => Vec::new(),
            "content_block_stop" => vec![StreamEvent::BlockStop { index: index() }],
            "message_delta" => {
                let mut events = Vec::new();
                if let Some(reason) = data["delta"]["stop_reason"].as_str() {
                    events.push(StreamEvent::Stop { reason: stop_reason(reason) });
                }
                if data["usage"].is_object() {
                    events.push(StreamEvent::Usage(usage_update(&data["usage"])));
                }
                events
            }
            "message_stop" => vec![StreamEvent::MessageEnd],
            "error" => return Err(stream_error(&data["error"])),
            _ => Vec::new(),
        };
        Ok(events)
    }
}

/// An `error` event inside the stream.
fn stream_error(error: &Value) -> LlmError {
    let message = error["message"].as_str().unwrap_or("unknown error").to_string();
    match error["type"].as_str() {
        Some("rate_limit_error") => LlmError::RateLimited { provider: PROVIDER, message, retry_after: None },
        Some("overloaded_error") => {
            LlmError::Overloaded { provider: PROVIDER, status: 529, message, retry_after: None }
        }
        Some("authentication_error" | "permission_error") => LlmError::Authentication { provider: PROVIDER, message },
        Some("invalid_request_error") if mentions_context_overflow(&message) => {
            LlmError::ContextWindowExceeded { provider: PROVIDER, message }
        }
        Some("invalid_request_error") => LlmError::InvalidRequest { provider: PROVIDER, message },
        _ => LlmError::Overloaded { provider: PROVIDER, status: 500, message, retry_after: None },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;
    use crate::request::SystemBlock;
    use rswe_protocol::{ImageSource, ToolDefinition};

    #[test]
    fn breakpoints_become_cache_control_on_the_right_blocks() {
        let model = Catalog::built_in().resolve("anthropic/claude-sonnet-4-5").unwrap();
        let mut assistant = Message::new(
            Role::Assistant,
            vec![
                ContentBlock::text("Looking."),
                ContentBlock::Thinking { thinking: "hmm".into(), signature: Some("sig".into()) },
            ],
        );
        assistant.cache_breakpoint = true;
        let request = ModelRequest {
            system: vec![SystemBlock { text: "You are rswe.".into(), cache_breakpoint: true }],
            tools: vec![
                ToolDefinition { name: "a".into(), description: "A".into(), input_schema: json!({"type": "object"}) },
                ToolDefinition { name: "b".into(), description: "B".into(), input_schema: json!({"type": "object"}) },
            ],
            tools_cache_breakpoint: true,
            messages: vec![
                Message::new(
                    Role::User,
                    vec![ContentBlock::Image {
                        source: ImageSource { media_type: "image/png".into(), data: "AAAA".into() },
                    }],
                ),
                assistant,
            ],
            ..Default::default()
        };
        let body = request_body(&model, &request);
        assert_eq!(body["system"][0]["cache_control"], json!({"type": "ephemeral"}));
        assert!(body["tools"][0].get("cache_control").is_none());
        assert_eq!(body["tools"][1]["cache_control"], json!({"type": "ephemeral"}));
        assert_eq!(body["messages"][1]["content"][0]["cache_control"], json!({"type": "ephemeral"}));
        assert!(body["messages"][1]["content"][1].get("cache_control").is_none());
        assert_eq!(body["messages"][0]["content"][0]["source"]["type"], "base64");
    }
}
