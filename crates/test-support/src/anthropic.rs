//! Anthropic Messages API: `POST /v1/messages`.

use std::collections::HashSet;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::Response;
use bytes::Bytes;
use serde_json::{Value, json};

use crate::prompt::Prompt;
use crate::script::{Block, ErrorKind, StopReason};
use crate::server::{
    Api, CacheMode, Outcome, RecordedRequest, Reply, Shared, body_from_steps, plain_steps, split_chunks, stream_steps,
    to_json,
};

pub(crate) async fn handle(State(shared): State<Arc<Shared>>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let mut rec = RecordedRequest::new(Api::Anthropic, uri.path(), &headers);
    let parsed = serde_json::from_slice::<Value>(&body);
    if let Ok(v) = &parsed {
        rec.body = v.clone();
        rec.stream = v.get("stream").and_then(Value::as_bool) == Some(true);
        rec.model = v.get("model").and_then(Value::as_str).unwrap_or_default().to_owned();
    }
    if headers.get("x-api-key").is_none() {
        shared.record(rec, StatusCode::UNAUTHORIZED, Some("anthropic: missing x-api-key header".into()));
        return error_response(StatusCode::UNAUTHORIZED, "authentication_error", "x-api-key header is required", None);
    }
    if headers.get("anthropic-version").is_none() {
        shared.record(rec, StatusCode::BAD_REQUEST, Some("anthropic: missing anthropic-version header".into()));
        return error_response(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "anthropic-version: header is required",
            None,
        );
    }
    let body = match parsed {
        Ok(v) => v,
        Err(e) => {
            let message = format!("There was an error parsing the body: {e}");
            shared.record(rec, StatusCode::BAD_REQUEST, Some(message.clone()));
            return error_response(StatusCode::BAD_REQUEST, "invalid_request_error", &message, None);
        }
    };
    // With interleaved thinking the budget may exceed max_tokens.
    let interleaved = headers
        .get_all("anthropic-beta")
        .iter()
        .filter_map(|h| h.to_str().ok())
        .any(|h| h.contains("interleaved-thinking"));
    let violations = check(&body, interleaved);
    let prompt = flatten(&body);
    let stream = rec.stream;
    let outcome = shared.process(rec, violations, &prompt, CacheMode::Explicit, status_of);
    render(outcome, stream).await
}

fn status_of(outcome: &Outcome) -> u16 {
    match outcome {
        Outcome::Rejected(_) | Outcome::ContextWindow { .. } => 400,
        Outcome::Exhausted => 500,
        Outcome::Fail { failure, .. } => error_status(failure.error).as_u16(),
        Outcome::Respond(_) => 200,
    }
}

fn error_status(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ErrorKind::Overloaded | ErrorKind::ModelNotReady => overloaded_status(),
        ErrorKind::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorKind::ContextWindowExceeded | ErrorKind::InvalidRequest => StatusCode::BAD_REQUEST,
    }
}

fn overloaded_status() -> StatusCode {
    StatusCode::from_u16(529).unwrap_or(StatusCode::SERVICE_UNAVAILABLE)
}

/// `(error.type, error.message)` of a scripted error.
fn error_body(kind: ErrorKind, tokens: u64, limit: u64) -> (&'static str, String) {
    match kind {
        ErrorKind::RateLimited => {
            ("rate_limit_error", "Number of requests has exceeded your rate limit (fake model).".into())
        }
        ErrorKind::Overloaded | ErrorKind::ModelNotReady => ("overloaded_error", "Overloaded".into()),
        ErrorKind::ServerError => ("api_error", "Internal server error".into()),
        ErrorKind::Unauthorized => ("authentication_error", "invalid x-api-key".into()),
        ErrorKind::ContextWindowExceeded => ("invalid_request_error", context_message(tokens.max(limit + 1), limit)),
        ErrorKind::InvalidRequest => ("invalid_request_error", "Invalid request (scripted by the fake model).".into()),
    }
}

fn context_message(tokens: u64, limit: u64) -> String {
    format!("prompt is too long: {tokens} tokens > {limit} maximum")
}

fn error_response(status: StatusCode, kind: &str, message: &str, retry_after: Option<u64>) -> Response {
    let body = json!({"type": "error", "error": {"type": kind, "message": message}});
    let mut response = Response::new(Body::from(to_json(&body)));
    *response.status_mut() = status;
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert("request-id", HeaderValue::from_static("req_fake"));
    if let Some(secs) = retry_after {
        h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

async fn render(outcome: Outcome, stream: bool) -> Response {
    match outcome {
        Outcome::Rejected(message) => error_response(StatusCode::BAD_REQUEST, "invalid_request_error", &message, None),
        Outcome::ContextWindow { tokens, limit } => {
            error_response(StatusCode::BAD_REQUEST, "invalid_request_error", &context_message(tokens, limit), None)
        }
        Outcome::Exhausted => {
            error_response(StatusCode::INTERNAL_SERVER_ERROR, "api_error", "fake model script exhausted", None)
        }
        Outcome::Fail { failure, tokens, limit } => {
            if let Some(ms) = failure.delay_ms {
                tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
            }
            let (kind, message) = error_body(failure.error, tokens, limit);
            let retry_after = (failure.error == ErrorKind::RateLimited).then(|| failure.retry_after_secs.unwrap_or(0));
            error_response(error_status(failure.error), kind, &message, retry_after)
        }
        Outcome::Respond(reply) => {
            if let Some(d) = reply.delay {
                tokio::time::sleep(d).await;
            }
            if stream {
                render_stream(&reply)
            } else if let Some(crate::script::StreamFault::MidStreamError { error, .. }) = reply.fault {
                let (kind, message) = error_body(error, 0, 0);
                error_response(error_status(error), kind, &message, None)
            } else {
                let body = Bytes::from(to_json(&message_json(&reply)));
                let mut response = Response::new(body_from_steps(plain_steps(body, reply.fault)));
                response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
                response.headers_mut().insert("request-id", HeaderValue::from_static("req_fake"));
                response
            }
        }
    }
}

fn stop_reason(reason: StopReason) -> &'static str {
    match reason {
        StopReason::EndTurn => "end_turn",
        StopReason::ToolUse => "tool_use",
        StopReason::MaxTokens => "max_tokens",
        StopReason::Refusal => "refusal",
    }
}

fn message_id(reply: &Reply) -> String {
    format!("msg_fake_{}", reply.seq)
}

fn block_json(block: &Block) -> Value {
    match block {
        Block::Thinking { thinking, signature } => {
            json!({"type": "thinking", "thinking": thinking, "signature": signature})
        }
        Block::RedactedThinking { data } => json!({"type": "redacted_thinking", "data": data}),
        Block::Text { text } => json!({"type": "text", "text": text}),
        Block::ToolUse { id, name, input } => {
            json!({"type": "tool_use", "id": id, "name": name, "input": input})
        }
    }
}

fn message_json(reply: &Reply) -> Value {
    json!({
        "id": message_id(reply),
        "type": "message",
        "role": "assistant",
        "model": reply.model,
        "content": reply.content.iter().map(block_json).collect::<Vec<_>>(),
        "stop_reason": stop_reason(reply.stop_reason),
        "stop_sequence": null,
        "usage": {
            "input_tokens": reply.input.uncached(),
            "cache_creation_input_tokens": reply.input.cache_write,
            "cache_read_input_tokens": reply.input.cache_read,
            "output_tokens": reply.output_tokens,
        },
    })
}

fn sse(name: &str, data: &Value) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {}\n\n", to_json(data)))
}

/// The events of a streamed answer, in order.
pub(crate) fn stream_events(reply: &Reply) -> Vec<Bytes> {
    let mut events = vec![
        sse(
            "message_start",
            &json!({
                "type": "message_start",
                "message": {
                    "id": message_id(reply),
                    "type": "message",
                    "role": "assistant",
                    "model": reply.model,
                    "content": [],
                    "stop_reason": null,
                    "stop_sequence": null,
                    "usage": {
                        "input_tokens": reply.input.uncached(),
                        "cache_creation_input_tokens": reply.input.cache_write,
                        "cache_read_input_tokens": reply.input.cache_read,
                        "output_tokens": 1,
                    },
                },
            }),
        ),
        sse("ping", &json!({"type": "ping"})),
    ];
    for (index, block) in reply.content.iter().enumerate() {
        let start = |content_block: Value| {
            sse(
                "content_block_start",
                &json!({"type": "content_block_start", "index": index, "content_block": content_block}),
            )
        };
        let delta = |delta: Value| {
            sse("content_block_delta", &json!({"type": "content_block_delta", "index": index, "delta": delta}))
        };
        match block {
            Block::Thinking { thinking, signature } => {
                events.push(start(json!({"type": "thinking", "thinking": "", "signature": ""})));
                for piece in split_chunks(thinking, reply.chunk_chars) {
                    events.push(delta(json!({"type": "thinking_delta", "thinking": piece})));
                }
                events.push(delta(json!({"type": "signature_delta", "signature": signature})));
            }
            Block::RedactedThinking { data } => {
                events.push(start(json!({"type": "redacted_thinking", "data": data})));
            }
            Block::Text { text } => {
                events.push(start(json!({"type": "text", "text": ""})));
                for piece in split_chunks(text, reply.chunk_chars) {
                    events.push(delta(json!({"type": "text_delta", "text": piece})));
                }
            }
            Block::ToolUse { id, name, input } => {
                events.push(start(json!({"type": "tool_use", "id": id, "name": name, "input": {}})));
                let is_empty = input.as_object().is_some_and(|m| m.is_empty());
                if is_empty {
                    events.push(delta(json!({"type": "input_json_delta", "partial_json": ""})));
                } else {
                    for piece in split_chunks(&to_json(input), reply.chunk_chars) {
                        events.push(delta(json!({"type": "input_json_delta", "partial_json": piece})));
                    }
                }
            }
        }
        events.push(sse("content_block_stop", &json!({"type": "content_block_stop", "index": index})));
    }
    events.push(sse(
        "message_delta",
        &json!({
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason(reply.stop_reason), "stop_sequence": null},
            "usage": {"output_tokens": reply.output_tokens},
        }),
    ));
    events.push(sse("message_stop", &json!({"type": "message_stop"})));
    events
}

fn render_stream(reply: &Reply) -> Response {
    let events = stream_events(reply);
    let steps = stream_steps(
        events,
        reply,
        |_| {
            Bytes::from_static(
                b"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_del\n\n",
            )
        },
        |kind| {
            let (kind, message) = error_body(kind, 0, 0);
            sse("error", &json!({"type": "error", "error": {"type": kind, "message": message}}))
        },
    );
    let mut response = Response::new(body_from_steps(steps));
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream; charset=utf-8"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("request-id", HeaderValue::from_static("req_fake"));
    response
}

/// A message's content as blocks: a string is one text block.
fn content_blocks(content: Option<&Value>) -> Option<Vec<Value>> {
    match content? {
        Value::String(s) => Some(vec![json!({"type": "text", "text": s})]),
        Value::Array(items) => Some(items.clone()),
        _ => None,
    }
}

fn has_cache_control(v: &Value) -> bool {
    v.get("cache_control").is_some_and(|c| !c.is_null())
}

/// `cache_control` markers on a block, counting those on a tool result's inner blocks.
fn cache_control_count(block: &Value) -> usize {
    let nested = block
        .get("content")
        .and_then(Value::as_array)
        .map_or(0, |items| items.iter().filter(|b| has_cache_control(b)).count());
    usize::from(has_cache_control(block)) + nested
}

/// The request flattened for token counting: tools, system, messages.
pub(crate) fn flatten(body: &Value) -> Prompt {
    let mut prompt = Prompt::default();
    for tool in body.get("tools").and_then(Value::as_array).into_iter().flatten() {
        prompt.push("tool", tool, has_cache_control(tool));
    }
    for block in content_blocks(body.get("system")).unwrap_or_default() {
        prompt.push("system", &block, has_cache_control(&block));
    }
    for (i, message) in body.get("messages").and_then(Value::as_array).into_iter().flatten().enumerate() {
        let role = message.get("role").and_then(Value::as_str).unwrap_or("");
        let section = format!("message {i} {role}");
        for block in content_blocks(message.get("content")).unwrap_or_default() {
            prompt.push(&section, &block, cache_control_count(&block) > 0);
        }
    }
    prompt
}

fn block_type(block: &Value) -> &str {
    block.get("type").and_then(Value::as_str).unwrap_or("")
}

fn ids_of<'a>(blocks: &'a [Value], kind: &str, field: &str) -> Vec<&'a str> {
    blocks.iter().filter(|b| block_type(b) == kind).filter_map(|b| b.get(field).and_then(Value::as_str)).collect()
}

/// The consistency checks, in the API's own words where we know them.
pub(crate) fn check(body: &Value, interleaved_thinking: bool) -> Vec<String> {
    let mut v = Vec::new();
    if !body.is_object() {
        return vec!["request body must be a JSON object".into()];
    }
    if body.get("model").and_then(Value::as_str).is_none() {
        v.push("model: Field required".into());
    }
    let max_tokens = body.get("max_tokens").and_then(Value::as_u64);
    if max_tokens.is_none() {
        v.push("max_tokens: Field required".into());
    }
    if let Some(thinking) = body.get("thinking")
        && thinking.get("type").and_then(Value::as_str) == Some("enabled")
    {
        match thinking.get("budget_tokens").and_then(Value::as_u64) {
            None => v.push("thinking.enabled.budget_tokens: Field required".into()),
            Some(budget) if !interleaved_thinking && max_tokens.is_some_and(|m| budget >= m) => {
                v.push("`max_tokens` must be greater than `thinking.budget_tokens`".into())
            }
            Some(_) => {}
        }
    }
    let mut cache_points = 0;
    for tool in body.get("tools").and_then(Value::as_array).into_iter().flatten() {
        cache_points += usize::from(has_cache_control(tool));
    }
    match body.get("system") {
        None | Some(Value::String(_)) => {}
        Some(Value::Array(blocks)) => {
            cache_points += blocks.iter().filter(|b| has_cache_control(b)).count();
        }
        Some(_) => v.push("system: Input should be a valid string or list".into()),
    }
    let Some(messages) = body.get("messages").and_then(Value::as_array) else {
        v.push("messages: Field required".into());
        return v;
    };
    if messages.is_empty() {
        v.push("messages: at least one message is required".into());
    }
    let contents: Vec<Vec<Value>> =
        messages.iter().map(|m| content_blocks(m.get("content")).unwrap_or_default()).collect();
    let roles: Vec<&str> = messages.iter().map(|m| m.get("role").and_then(Value::as_str).unwrap_or("")).collect();
    let mut seen_tool_ids = HashSet::new();
    for (i, message) in messages.iter().enumerate() {
        let role = roles[i];
        if role != "user" && role != "assistant" {
            v.push(format!("messages.{i}.role: Input should be 'user' or 'assistant'"));
        } else if i == 0 && role != "user" {
            v.push("messages: first message must use the \"user\" role".into());
        } else if i > 0 && roles[i - 1] == role {
            v.push(format!(
                "messages: roles must alternate between \"user\" and \"assistant\", but found multiple \"{role}\" roles in a row"
            ));
        }
        if !matches!(message.get("content"), Some(Value::String(_) | Value::Array(_))) {
            v.push(format!("messages.{i}.content: Field required"));
            continue;
        }
        let blocks = &contents[i];
        let is_final_assistant = i + 1 == messages.len() && role == "assistant";
        let empty_string = message.get("content").and_then(Value::as_str).is_some_and(str::is_empty);
        if (blocks.is_empty() || empty_string) && !is_final_assistant {
            v.push(format!(
                "messages.{i}: all messages must have non-empty content except for the optional final assistant message"
            ));
        }
        for (j, block) in blocks.iter().enumerate() {
            cache_points += cache_control_count(block);
            if block_type(block) == "text"
                && block.get("text").and_then(Value::as_str).is_some_and(str::is_empty)
                && !empty_string
            {
                v.push(format!("messages.{i}.content.{j}.text: text content blocks must be non-empty"));
            }
            if block_type(block) == "tool_use"
                && let Some(id) = block.get("id").and_then(Value::as_str)
                && !seen_tool_ids.insert(id.to_owned())
            {
                v.push(format!("messages.{i}.content.{j}: `tool_use` ids must be unique; found {id} twice"));
            }
        }
        // Every tool_result answers a tool_use of the previous assistant message.
        if role == "user" {
            let previous: Vec<&str> = if i > 0 && roles[i - 1] == "assistant" {
                ids_of(&contents[i - 1], "tool_use", "id")
            } else {
                Vec::new()
            };
            for (j, block) in blocks.iter().enumerate() {
                if block_type(block) == "tool_result" {
                    let id = block.get("tool_use_id").and_then(Value::as_str).unwrap_or("");
                    if !previous.contains(&id) {
                        v.push(format!("messages.{i}.content.{j}: unexpected `tool_use_id` found in `tool_result` blocks: {id}. Each `tool_result` block must have a corresponding `tool_use` block in the previous message."));
                    }
                }
            }
        }
        // Every tool_use is answered in the next message.
        if role == "assistant" {
            let uses = ids_of(blocks, "tool_use", "id");
            if !uses.is_empty() {
                let answered: Vec<&str> = match contents.get(i + 1) {
                    Some(next) if roles[i + 1] == "user" => ids_of(next, "tool_result", "tool_use_id"),
                    _ => Vec::new(),
                };
                let missing: Vec<&str> = uses.iter().copied().filter(|id| !answered.contains(id)).collect();
                if !missing.is_empty() {
                    v.push(format!("messages.{i}: `tool_use` ids were found without `tool_result` blocks immediately after: {}. Each `tool_use` block must have a corresponding `tool_result` block in the next message.", missing.join(", ")));
                }
            }
        }
    }
    if cache_points > 4 {
        v.push(format!("A maximum of 4 blocks with cache_control may be provided. Found {cache_points}."));
    }
    v
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn checks_pairing() {
        let body = json!({
            "model": "m", "max_tokens": 10,
            "messages": [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "a", "name": "x", "input": {}}, {"type": "tool_use", "id": "b", "name": "x", "input": {}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "a", "content": "ok"}, {"type": "tool_result", "tool_use_id": "z", "content": "ok"}]},
            ]
        });
        let v = check(&body, false);
        assert_eq!(v.len(), 2, "{v:?}");
        assert!(v[0].contains("without `tool_result`") && v[0].contains(": b."), "{v:?}");
        assert!(v[1].contains("unexpected `tool_use_id`"), "{v:?}");
    }

    #[test]
    fn checks_roles_and_empty() {
        let body = json!({
            "model": "m", "max_tokens": 10,
            "messages": [
                {"role": "assistant", "content": "x"},
                {"role": "user", "content": ""},
                {"role": "user", "content": [{"type": "text", "text": "y"}]},
            ]
        });
        let v = check(&body, false);
        assert_eq!(v.len(), 3, "{v:?}");
    }
}
