//! Amazon Bedrock Converse and ConverseStream, as `aws-sdk-bedrockruntime` speaks them:
//! `POST /model/{modelId}/converse` and `POST /model/{modelId}/converse-stream`.

use std::collections::HashSet;
use std::sync::Arc;

use aws_smithy_types::event_stream::{Header, HeaderValue as FrameHeaderValue, Message};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use serde_json::{Value, json};

use crate::prompt::Prompt;
use crate::script::{Block, ErrorKind, StopReason, StreamFault};
use crate::server::{
    Api, CacheMode, Outcome, RecordedRequest, Reply, Shared, body_from_steps, plain_steps, split_chunks, stream_steps,
    to_json,
};

pub(crate) async fn converse(
    state: State<Arc<Shared>>,
    Path(model_id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(state, model_id, uri, headers, body, false).await
}

pub(crate) async fn converse_stream(
    state: State<Arc<Shared>>,
    Path(model_id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(state, model_id, uri, headers, body, true).await
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    model_id: String,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
    stream: bool,
) -> Response {
    let mut rec = RecordedRequest::new(Api::Bedrock, uri.path(), &headers);
    rec.stream = stream;
    rec.model = model_id;
    let parsed = serde_json::from_slice::<Value>(&body);
    if let Ok(v) = &parsed {
        rec.body = v.clone();
    }
    let authorized = headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|h| h.starts_with("AWS4-HMAC-SHA256") || h.starts_with("Bearer "));
    if !authorized {
        shared.record(rec, StatusCode::FORBIDDEN, Some("bedrock: missing SigV4 `authorization` header".into()));
        return error_response(
            StatusCode::FORBIDDEN,
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        );
    }
    let body = match parsed {
        Ok(v) => v,
        Err(e) => {
            let message = format!("Malformed input request: {e}");
            shared.record(rec, StatusCode::BAD_REQUEST, Some(message.clone()));
            return error_response(StatusCode::BAD_REQUEST, "ValidationException", &message);
        }
    };
    let violations = check(&body);
    let prompt = flatten(&body);
    let outcome = shared.process(rec, violations, &prompt, CacheMode::Explicit, status_of);
    render(outcome, stream).await
}

fn status_of(outcome: &Outcome) -> u16 {
    match outcome {
        Outcome::Rejected(_) | Outcome::ContextWindow { .. } => 400,
        Outcome::Exhausted => 500,
        Outcome::Fail { failure, .. } => error_parts(failure.error).0.as_u16(),
        Outcome::Respond(_) => 200,
    }
}

const CONTEXT_MESSAGE: &str = "Input is too long for requested model.";

/// `(status, x-amzn-errortype, message)` of an error before the stream.
fn error_parts(kind: ErrorKind) -> (StatusCode, &'static str, &'static str) {
    match kind {
        ErrorKind::RateLimited => (
            StatusCode::TOO_MANY_REQUESTS,
            "ThrottlingException",
            "Too many requests, please wait before trying again.",
        ),
        ErrorKind::Overloaded => (
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailableException",
            "Bedrock is unable to process your request.",
        ),
        ErrorKind::ModelNotReady => {
            (StatusCode::TOO_MANY_REQUESTS, "ModelNotReadyException", "Model is not ready to serve inference requests.")
        }
        ErrorKind::ServerError => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerException",
            "The system encountered an unexpected error during processing. Try your request again.",
        ),
        ErrorKind::Unauthorized => (
            StatusCode::FORBIDDEN,
            "AccessDeniedException",
            "You don't have access to the model with the specified model ID.",
        ),
        ErrorKind::ContextWindowExceeded => (StatusCode::BAD_REQUEST, "ValidationException", CONTEXT_MESSAGE),
        ErrorKind::InvalidRequest => {
            (StatusCode::BAD_REQUEST, "ValidationException", "Malformed input request (scripted by the fake model).")
        }
    }
}

/// `(:exception-type, payload)` of an error inside the stream.
fn exception_parts(kind: ErrorKind) -> (&'static str, Value) {
    match kind {
        ErrorKind::RateLimited => {
            ("throttlingException", json!({"message": "Too many requests, please wait before trying again."}))
        }
        ErrorKind::Overloaded => (
            "modelStreamErrorException",
            json!({"message": "Overloaded", "originalStatusCode": 529, "originalMessage": "Overloaded"}),
        ),
        ErrorKind::ModelNotReady => {
            ("serviceUnavailableException", json!({"message": "Bedrock is unable to process your request."}))
        }
        ErrorKind::ServerError => (
            "internalServerException",
            json!({"message": "The system encountered an unexpected error during processing. Try your request again."}),
        ),
        ErrorKind::Unauthorized | ErrorKind::InvalidRequest => {
            ("validationException", json!({"message": "Malformed input request (scripted by the fake model)."}))
        }
        ErrorKind::ContextWindowExceeded => ("validationException", json!({"message": CONTEXT_MESSAGE})),
    }
}

fn error_response(status: StatusCode, error_type: &'static str, message: &str) -> Response {
    let mut response = Response::new(Body::from(to_json(&json!({"message": message}))));
    *response.status_mut() = status;
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert("x-amzn-errortype", HeaderValue::from_static(error_type));
    h.insert("x-amzn-requestid", HeaderValue::from_static("fake-request-id"));
    response
}

async fn render(outcome: Outcome, stream: bool) -> Response {
    match outcome {
        Outcome::Rejected(message) => error_response(StatusCode::BAD_REQUEST, "ValidationException", &message),
        Outcome::ContextWindow { .. } => {
            error_response(StatusCode::BAD_REQUEST, "ValidationException", CONTEXT_MESSAGE)
        }
        Outcome::Exhausted => {
            error_response(StatusCode::INTERNAL_SERVER_ERROR, "InternalServerException", "fake model script exhausted")
        }
        Outcome::Fail { failure, .. } => {
            if let Some(ms) = failure.delay_ms {
                tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
            }
            let (status, kind, message) = error_parts(failure.error);
            error_response(status, kind, message)
        }
        Outcome::Respond(reply) => {
            if let Some(d) = reply.delay {
                tokio::time::sleep(d).await;
            }
            if stream {
                render_stream(&reply)
            } else if let Some(StreamFault::MidStreamError { error, .. }) = reply.fault {
                let (status, kind, message) = error_parts(error);
                error_response(status, kind, message)
            } else {
                let body = Bytes::from(to_json(&converse_json(&reply)));
                let mut response = Response::new(body_from_steps(plain_steps(body, reply.fault)));
                response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
                response.headers_mut().insert("x-amzn-requestid", HeaderValue::from_static("fake-request-id"));
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
        StopReason::Refusal => "content_filtered",
    }
}

fn usage_json(reply: &Reply) -> Value {
    let input = reply.input.uncached();
    json!({
        "inputTokens": input,
        "outputTokens": reply.output_tokens,
        "totalTokens": reply.input.total + reply.output_tokens,
        "cacheReadInputTokens": reply.input.cache_read,
        "cacheWriteInputTokens": reply.input.cache_write,
    })
}

fn latency_ms(reply: &Reply) -> u64 {
    reply.delay.map_or(0, |d| d.as_millis() as u64)
}

fn block_json(block: &Block) -> Value {
    match block {
        Block::Thinking { thinking, signature } => {
            json!({"reasoningContent": {"reasoningText": {"text": thinking, "signature": signature}}})
        }
        Block::RedactedThinking { data } => {
            json!({"reasoningContent": {"redactedContent": BASE64.encode(data.as_bytes())}})
        }
        Block::Text { text } => json!({"text": text}),
        Block::ToolUse { id, name, input } => {
            json!({"toolUse": {"toolUseId": id, "name": name, "input": input}})
        }
    }
}

fn converse_json(reply: &Reply) -> Value {
    json!({
        "output": {"message": {"role": "assistant", "content": reply.content.iter().map(block_json).collect::<Vec<_>>()}},
        "stopReason": stop_reason(reply.stop_reason),
        "usage": usage_json(reply),
        "metrics": {"latencyMs": latency_ms(reply)},
    })
}

fn string_header(name: &'static str, value: &'static str) -> Header {
    Header::new(name, FrameHeaderValue::String(value.into()))
}

fn encode(message: &Message) -> Bytes {
    let mut buf = Vec::new();
    if let Err(e) = aws_smithy_eventstream::frame::write_message_to(message, &mut buf) {
        tracing::error!(error = %e, "fake model: cannot encode an event-stream frame");
    }
    Bytes::from(buf)
}

fn event_frame(event_type: &'static str, payload: &Value) -> Bytes {
    encode(
        &Message::new(to_json(payload).into_bytes())
            .add_header(string_header(":event-type", event_type))
            .add_header(string_header(":content-type", "application/json"))
            .add_header(string_header(":message-type", "event")),
    )
}

fn exception_frame(kind: ErrorKind) -> Bytes {
    let (exception_type, payload) = exception_parts(kind);
    encode(
        &Message::new(to_json(&payload).into_bytes())
            .add_header(string_header(":exception-type", exception_type))
            .add_header(string_header(":content-type", "application/json"))
            .add_header(string_header(":message-type", "exception")),
    )
}

/// The frames of a streamed answer, in order.
pub(crate) fn stream_frames(reply: &Reply) -> Vec<Bytes> {
    let mut frames = vec![event_frame("messageStart", &json!({"role": "assistant"}))];
    for (index, block) in reply.content.iter().enumerate() {
        let delta =
            |delta: Value| event_frame("contentBlockDelta", &json!({"contentBlockIndex": index, "delta": delta}));
        match block {
            Block::Thinking { thinking, signature } => {
                for piece in split_chunks(thinking, reply.chunk_chars) {
                    frames.push(delta(json!({"reasoningContent": {"text": piece}})));
                }
                frames.push(delta(json!({"reasoningContent": {"signature": signature}})));
            }
            Block::RedactedThinking { data } => {
                frames.push(delta(json!({"reasoningContent": {"redactedContent": BASE64.encode(data.as_bytes())}})));
            }
            Block::Text { text } => {
                for piece in split_chunks(text, reply.chunk_chars) {
                    frames.push(delta(json!({"text": piece})));
                }
            }
            Block::ToolUse { id, name, input } => {
                frames.push(event_frame(
                    "contentBlockStart",
                    &json!({"contentBlockIndex": index, "start": {"toolUse": {"toolUseId": id, "name": name}}}),
                ));
                for piece in split_chunks(&to_json(input), reply.chunk_chars) {
                    frames.push(delta(json!({"toolUse": {"input": piece}})));
                }
            }
        }
        frames.push(event_frame("contentBlockStop", &json!({"contentBlockIndex": index})));
    }
    frames.push(event_frame("messageStop", &json!({"stopReason": stop_reason(reply.stop_reason)})));
    frames.push(event_frame(
        "metadata",
        &json!({"usage": usage_json(reply), "metrics": {"latencyMs": latency_ms(reply)}}),
    ));
    frames
}

fn render_stream(reply: &Reply) -> Response {
    let frames = stream_frames(reply);
    let garbage = {
        let frames = frames.clone();
        move |n: usize| {
            // The n-th frame with its message CRC broken.
            let mut bytes = frames.get(n).map(|f| f.to_vec()).unwrap_or_default();
            if let Some(last) = bytes.last_mut() {
                *last ^= 0xff;
            }
            Bytes::from(bytes)
        }
    };
    let steps = stream_steps(frames, reply, garbage, exception_frame);
    let mut response = Response::new(body_from_steps(steps));
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/vnd.amazon.eventstream"));
    h.insert("x-amzn-requestid", HeaderValue::from_static("fake-request-id"));
    response
}

fn is_cache_point(v: &Value) -> bool {
    v.get("cachePoint").is_some()
}

/// The request flattened for token counting: tools, system, messages; a `cachePoint`
/// marks the block before it as a breakpoint and is not a block itself.
pub(crate) fn flatten(body: &Value) -> Prompt {
    let mut prompt = Prompt::default();
    let mut add = |section: &str, items: Option<&Vec<Value>>| {
        for item in items.into_iter().flatten() {
            if is_cache_point(item) {
                prompt.mark_last_breakpoint();
            } else {
                prompt.push(section, item, false);
            }
        }
    };
    add("tool", body.pointer("/toolConfig/tools").and_then(Value::as_array));
    add("system", body.get("system").and_then(Value::as_array));
    for (i, message) in body.get("messages").and_then(Value::as_array).into_iter().flatten().enumerate() {
        let role = message.get("role").and_then(Value::as_str).unwrap_or("");
        add(&format!("message {i} {role}"), message.get("content").and_then(Value::as_array));
    }
    prompt
}

fn ids_of<'a>(blocks: &'a [Value], kind: &str) -> Vec<&'a str> {
    blocks.iter().filter_map(|b| b.get(kind)?.get("toolUseId")?.as_str()).collect()
}

/// The consistency checks, in Bedrock's words where we know them.
pub(crate) fn check(body: &Value) -> Vec<String> {
    let mut v = Vec::new();
    if !body.is_object() {
        return vec!["Malformed input request: the body must be a JSON object".into()];
    }
    let count_points = |items: Option<&Vec<Value>>| items.into_iter().flatten().filter(|i| is_cache_point(i)).count();
    let mut cache_points = count_points(body.pointer("/toolConfig/tools").and_then(Value::as_array))
        + count_points(body.get("system").and_then(Value::as_array));
    let Some(messages) = body.get("messages").and_then(Value::as_array) else {
        v.push("Malformed input request: messages is required".into());
        return v;
    };
    if messages.is_empty() {
        v.push("A conversation must start with a user message. Try again with a conversation that starts with a user message.".into());
    }
    let roles: Vec<&str> = messages.iter().map(|m| m.get("role").and_then(Value::as_str).unwrap_or("")).collect();
    let contents: Vec<Vec<Value>> =
        messages.iter().map(|m| m.get("content").and_then(Value::as_array).cloned().unwrap_or_default()).collect();
    let mut seen = HashSet::new();
    for (i, blocks) in contents.iter().enumerate() {
        let role = roles[i];
        if role != "user" && role != "assistant" {
            v.push(format!("Malformed input request: messages.{i}.role must be one of [user, assistant]"));
        } else if i == 0 && role != "user" {
            v.push("A conversation must start with a user message. Try again with a conversation that starts with a user message.".into());
        } else if i > 0 && roles[i - 1] == role {
            v.push("A conversation must alternate between user and assistant roles. Make sure the conversation alternates between user and assistant roles and try again.".into());
        }
        cache_points += count_points(Some(blocks));
        if blocks.iter().all(is_cache_point) {
            v.push(format!("The content field in the Message object at messages.{i} is empty. Add a ContentBlock object to the content field and try again."));
        }
        for (j, block) in blocks.iter().enumerate() {
            if let Some(text) = block.get("text").and_then(Value::as_str)
                && text.trim().is_empty()
            {
                v.push(format!("The text field in the ContentBlock object at messages.{i}.content.{j} is blank. Add text to the text field, and try again."));
            }
            if let Some(id) = block.pointer("/toolUse/toolUseId").and_then(Value::as_str)
                && !seen.insert(id.to_owned())
            {
                v.push(format!("messages.{i}.content.{j}: the toolUseId {id} is used by more than one toolUse block."));
            }
        }
        if role == "user" {
            let previous: Vec<&str> =
                if i > 0 && roles[i - 1] == "assistant" { ids_of(&contents[i - 1], "toolUse") } else { Vec::new() };
            let results = ids_of(blocks, "toolResult");
            if results.len() > previous.len() {
                v.push(format!("The number of toolResult blocks at messages.{i}.content exceeds the number of toolUse blocks of previous turn."));
            } else {
                for id in &results {
                    if !previous.contains(id) {
                        v.push(format!("messages.{i}.content: the toolResult with toolUseId {id} does not answer a toolUse block of the previous turn."));
                    }
                }
            }
        }
        if role == "assistant" {
            let uses = ids_of(blocks, "toolUse");
            if !uses.is_empty() {
                let answered: Vec<&str> = match contents.get(i + 1) {
                    Some(next) if roles[i + 1] == "user" => ids_of(next, "toolResult"),
                    _ => Vec::new(),
                };
                let missing: Vec<&str> = uses.iter().copied().filter(|id| !answered.contains(id)).collect();
                if !missing.is_empty() {
                    v.push(format!(
                        "Expected toolResult blocks at messages.{}.content for the following Ids: {}",
                        i + 1,
                        missing.join(", ")
                    ));
                }
            }
        }
    }
    if cache_points > 4 {
        v.push(format!("The number of cachePoint blocks exceeds the maximum of 4. Found {cache_points}."));
    }
    v
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn checks_pairing_and_cache_points() {
        let cp = json!({"cachePoint": {"type": "default"}});
        let body = json!({
            "system": [{"text": "s"}, cp],
            "toolConfig": {"tools": [{"toolSpec": {"name": "x", "inputSchema": {"json": {}}}}, cp]},
            "messages": [
                {"role": "user", "content": [{"text": "hi"}, cp]},
                {"role": "assistant", "content": [{"toolUse": {"toolUseId": "a", "name": "x", "input": {}}}, cp]},
                {"role": "user", "content": [{"text": "no result"}, cp]},
            ]
        });
        let v = check(&body);
        assert_eq!(v.len(), 2, "{v:?}");
        assert!(v[0].contains("Expected toolResult blocks at messages.2.content for the following Ids: a"));
        assert!(v[1].contains("Found 5"));
        let p = flatten(&body);
        assert_eq!(p.blocks.len(), 5);
        assert_eq!(p.blocks.iter().filter(|b| b.breakpoint).count(), 5);
    }
}
