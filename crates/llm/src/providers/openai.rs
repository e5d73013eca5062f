//! OpenAI Chat Completions, streamed, for OpenAI itself and every compatible server
//! (OpenRouter, LiteLLM, vLLM, Ollama, llama.cpp's server).

use crate::catalog::ModelInfo;
use crate::client::ModelClient;
use crate::config::Secret;
use crate::error::LlmError;
use crate::http::{event_json, mentions_context_overflow, post_json, sse_event_stream};
use crate::request::{ModelRequest, StopReason};
use crate::sse::SseEvent;
use crate::stream::{BlockKind, EventStream, StreamEvent, UsageUpdate};
use rswe_protocol::{ContentBlock, ImageSource, Message, Role, ToolResultContent};
use serde_json::{Value, json};
use std::collections::HashSet;

const PROVIDER: &str = "openai";
pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";

/// Block indices of the neutral stream: reasoning, then text, then tool calls.
const THINKING_INDEX: usize = 0;
const TEXT_INDEX: usize = 1;
const FIRST_TOOL_INDEX: usize = 2;

pub struct OpenAiClient {
    http: reqwest::Client,
    base_url: String,
    /// Optional: local servers (Ollama, llama.cpp) need none.
    api_key: Option<Secret>,
}

impl OpenAiClient {
    pub fn new(http: reqwest::Client, base_url: &str, api_key: Option<Secret>) -> Self {
        OpenAiClient { http, base_url: base_url.trim_end_matches('/').to_string(), api_key }
    }
}

#[async_trait::async_trait]
impl ModelClient for OpenAiClient {
    fn provider(&self) -> &'static str {
        PROVIDER
    }

    async fn stream(&self, model: &ModelInfo, request: &ModelRequest) -> Result<EventStream, LlmError> {
        let body = request_body(model, request);
        let mut http =
            self.http.post(format!("{}/chat/completions", self.base_url)).header("accept", "text/event-stream");
        if let Some(key) = &self.api_key {
            http = http.bearer_auth(key.expose());
        }
        let response = post_json(PROVIDER, http, &body, error_message).await.map_err(|error| match error {
            // An exhausted quota answers 429 too, but waiting will not help.
            LlmError::RateLimited { message, .. } if message.contains("quota") => {
                LlmError::InvalidRequest { provider: PROVIDER, message }
            }
            other => other,
        })?;
        let mut parser = ChunkParser::default();
        Ok(sse_event_stream(PROVIDER, response, move |event| parser.parse(event)))
    }
}

fn error_message(body: &Value) -> Option<String> {
    let error = body.get("error")?;
    let message = error["message"].as_str().or_else(|| error.as_str())?;
    Some(match error["code"].as_str() {
        Some(code) => format!("{message} ({code})"),
        None => message.to_string(),
    })
}

/// The JSON body of a Chat Completions request.
pub(crate) fn request_body(model: &ModelInfo, request: &ModelRequest) -> Value {
    let mut messages = Vec::new();
    if !request.system.is_empty() {
        let text: Vec<&str> = request.system.iter().map(|b| b.text.as_str()).collect();
        messages.push(json!({"role": "system", "content": text.join("\n\n")}));
    }
    for message in &request.messages {
        match message.role {
            Role::Assistant => messages.push(assistant_json(message)),
            Role::User => push_user(&mut messages, message),
        }
    }
    let max_tokens = request.max_tokens.unwrap_or(model.max_output_tokens);
    let mut body = json!({
        "model": model.model_id,
        "messages": messages,
        "stream": true,
        "stream_options": {"include_usage": true},
    });
    // OpenAI's own models take max_completion_tokens (reasoning models refuse
    // max_tokens); compatible servers mostly know only max_tokens.
    if model.known {
        body["max_completion_tokens"] = json!(max_tokens);
    } else {
        body["max_tokens"] = json!(max_tokens);
    }
    if !request.tools.is_empty() {
        let tools: Vec<Value> = request
            .tools
            .iter()
            .map(|tool| {
                json!({"type": "function", "function": {
                    "name": tool.name, "description": tool.description, "parameters": tool.input_schema,
                }})
            })
            .collect();
        body["tools"] = Value::Array(tools);
    }
    match (request.thinking, model.thinking) {
        (Some(thinking), true) => {
            let effort = match thinking.budget_tokens {
                0..4_000 => "low",
                4_000..16_000 => "medium",
                _ => "high",
            };
            body["reasoning_effort"] = json!(effort);
        }
        // Reasoning models accept no temperature.
        (_, true) => {}
        (_, false) => {
            if let Some(temperature) = request.temperature {
                body["temperature"] = json!(temperature);
            }
        }
    }
    body
}

fn data_url(source: &ImageSource) -> Value {
    json!({"type": "image_url", "image_url": {"url": format!("data:{};base64,{}", source.media_type, source.data)}})
}

fn assistant_json(message: &Message) -> Value {
    let text = message.text();
    let mut json =
        json!({"role": "assistant", "content": if text.is_empty() { Value::Null } else { Value::String(text) }});
    let calls: Vec<Value> = message
        .tool_uses()
        .map(|(id, name, input)| {
            let arguments = match input {
                Value::String(raw) => raw.clone(),
                other => other.to_string(),
            };
            json!({"id": id, "type": "function", "function": {"name": name, "arguments": arguments}})
        })
        .collect();
    if !calls.is_empty() {
        json["tool_calls"] = Value::Array(calls);
    }
    json
}

/// A user message becomes `tool` messages for its tool results (which must follow the
/// assistant's calls directly), then one user message for its text and images, including
/// images the tools returned (tool messages carry only text).
fn push_user(messages: &mut Vec<Value>, message: &Message) {
    let mut parts = Vec::new();
    for block in &message.content {
        match block {
            ContentBlock::ToolResult { tool_use_id, content, is_error } => {
                let mut text = String::new();
                if *is_error {
                    text.push_str("Error: ");
                }
                for part in content {
                    match part {
                        ToolResultContent::Text { text: t } => text.push_str(t),
                        ToolResultContent::Image { source } => {
                            text.push_str("[image attached in the next user message]");
                            parts.push(
                                json!({"type": "text", "text": format!("Image returned by tool call {tool_use_id}:")}),
                            );
                            parts.push(data_url(source));
                        }
                    }
                }
                messages.push(json!({"role": "tool", "tool_call_id": tool_use_id, "content": text}));
            }
            ContentBlock::Text { text } => parts.push(json!({"type": "text", "text": text})),
            ContentBlock::Image { source } => parts.push(data_url(source)),
            ContentBlock::ToolUse { .. } | ContentBlock::Thinking { .. } | ContentBlock::RedactedThinking { .. } => {}
        }
    }
    match parts.as_slice() {
        [] => {}
        [single] if single["type"] == "text" => messages.push(json!({"role": "user", "content": single["text"]})),
        _ => messages.push(json!({"role": "user", "content": parts})),
    }
}

fn stop_reason(reason: &str) -> StopReason {
    match reason {
        "stop" => StopReason::EndTurn,
        "tool_calls" | "function_call" => StopReason::ToolUse,
        "length" => StopReason::MaxTokens,
        "content_filter" => StopReason::Refusal,
        other => StopReason::Other(other.to_string()),
    }
}

/// Translates chunks; remembers which tool calls were announced.
#[derive(Default)]
struct ChunkParser {
    started: bool,
    started_tools: HashSet<usize>,
}

impl ChunkParser {
    fn parse(&mut self, event: SseEvent) -> Result<Vec<StreamEvent>, LlmError> {
        if event.data.trim() == "[DONE]" {
            return Ok(vec![StreamEvent::MessageEnd]);
        }
        let chunk = event_json(PROVIDER, &event.data)?;
        if let Some(error) = chunk.get("error") {
            let message = error_message(&chunk).unwrap_or_else(|| error.to_string());
            return Err(match error["code"].as_str().or(error["type"].as_str()) {
                Some("rate_limit_exceeded") => LlmError::RateLimited { provider: PROVIDER, message, retry_after: None },
                _ if mentions_context_overflow(&message) => {
                    LlmError::ContextWindowExceeded { provider: PROVIDER, message }
                }
                _ => LlmError::Overloaded { provider: PROVIDER, status: 500, message, retry_after: None },
            });
        }
        let mut events = Vec::new();
        if !self.started {
            self.started = true;
            events.push(StreamEvent::MessageStart { id: chunk["id"].as_str().map(str::to_string) });
        }
        if let Some(choice) = chunk["choices"].get(0) {
            let delta = &choice["delta"];
            for field in ["reasoning_content", "reasoning"] {
                if let Some(thinking) = delta[field].as_str().filter(|t| !t.is_empty()) {
                    events.push(StreamEvent::ThinkingDelta { index: THINKING_INDEX, thinking: thinking.to_string() });
                }
            }
            if let Some(text) = delta["content"].as_str().filter(|t| !t.is_empty()) {
                events.push(StreamEvent::TextDelta { index: TEXT_INDEX, text: text.to_string() });
            }
            for call in delta["tool_calls"].as_array().into_iter().flatten() {
                let position = call["index"].as_u64().unwrap_or(0) as usize;
                let index = FIRST_TOOL_INDEX + position;
                if self.started_tools.insert(position) {
                    let id = call["id"].as_str().map(str::to_string).unwrap_or_else(|| format!("call_{position}"));
                    let name = call["function"]["name"].as_str().unwrap_or_default().to_string();
                    events.push(StreamEvent::BlockStart { index, kind: BlockKind::ToolUse { id, name } });
                }
                if let Some(arguments) = call["function"]["arguments"].as_str().filter(|a| !a.is_empty()) {
                    events.push(StreamEvent::ToolInputDelta { index, partial_json: arguments.to_string() });
                }
            }
            if let Some(reason) = choice["finish_reason"].as_str() {
                events.push(StreamEvent::Stop { reason: stop_reason(reason) });
            }
        }
        if let Some(usage) = chunk.get("usage").filter(|u| u.is_object()) {
            let prompt = usage["prompt_tokens"].as_u64().unwrap_or(0);
            let cached = usage.pointer("/prompt_tokens_details/cached_tokens").and_then(Value::as_u64).unwrap_or(0);
            events.push(StreamEvent::Usage(UsageUpdate {
                input_tokens: Some(prompt.saturating_sub(cached)),
                output_tokens: usage["completion_tokens"].as_u64(),
                cache_read_tokens: Some(cached),
                cache_write_tokens: Some(0),
            }));
        }
        Ok(events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;
    use rswe_protocol::ToolResultContent;

    #[test]
    fn tool_results_become_tool_messages_and_images_follow_as_user_content() {
        let model = Catalog::built_in().resolve("openai/gpt-4.1").unwrap();
        let image = ImageSource { media_type: "image/png".into(), data: "iVBO".into() };
        let request = ModelRequest {
            system: vec![crate::request::SystemBlock::new("one"), crate::request::SystemBlock::new("two")],
            messages: vec![
                Message::user_text("look"),
                Message::new(
                    Role::Assistant,
                    vec![
                        ContentBlock::ToolUse {
                            id: "c1".into(),
                            name: "read_image".into(),
                            input: json!({"path": "a.png"}),
                        },
                        ContentBlock::ToolUse {
                            id: "c2".into(),
                            name: "shell".into(),
                            input: json!({"command": "false"}),
                        },
                    ],
                ),
                Message::new(
                    Role::User,
                    vec![
                        ContentBlock::ToolResult {
                            tool_use_id: "c1".into(),
                            content: vec![ToolResultContent::Image { source: image }],
                            is_error: false,
                        },
                        ContentBlock::tool_result("c2", "exit 1", true),
                    ],
                ),
            ],
            ..Default::default()
        };
        let body = request_body(&model, &request);
        let messages = body["messages"].as_array().unwrap();
        let roles: Vec<&str> = messages.iter().map(|m| m["role"].as_str().unwrap()).collect();
        assert_eq!(roles, ["system", "user", "assistant", "tool", "tool", "user"]);
        assert_eq!(messages[0]["content"], "one\n\ntwo");
        assert_eq!(messages[2]["content"], Value::Null);
        assert_eq!(messages[2]["tool_calls"][1]["function"]["arguments"], "{\"command\":\"false\"}");
        assert_eq!(messages[4]["content"], "Error: exit 1");
        assert_eq!(messages[5]["content"][1]["image_url"]["url"], "data:image/png;base64,iVBO");
        assert_eq!(body["max_completion_tokens"], 32768);
        let local = Catalog::built_in().resolve("openai/llama3.1").unwrap();
        assert_eq!(request_body(&local, &request)["max_tokens"], 4096);
    }
}
