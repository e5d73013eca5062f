//! OpenAI Chat Completions: `POST /v1/chat/completions`.

use std::collections::HashSet;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::Response;
use bytes::Bytes;
use serde_json::{Value, json};

use crate::prompt::Prompt;
use crate::script::{Block, ErrorKind, StopReason, StreamFault};
use crate::server::{
    Api, CacheMode, Outcome, RecordedRequest, Reply, Shared, body_from_steps, plain_steps, split_chunks, stream_steps,
    to_json, unix_now,
};

pub(crate) async fn handle(State(shared): State<Arc<Shared>>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let mut rec = RecordedRequest::new(Api::OpenAi, uri.path(), &headers);
    let parsed = serde_json::from_slice::<Value>(&body);
    let mut include_usage = false;
    if let Ok(v) = &parsed {
        rec.body = v.clone();
        rec.stream = v.get("stream").and_then(Value::as_bool) == Some(true);
        rec.model = v.get("model").and_then(Value::as_str).unwrap_or_default().to_owned();
        include_usage = v.pointer("/stream_options/include_usage").and_then(Value::as_bool) == Some(true);
    }
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|h| h.starts_with("Bearer ") && h.len() > "Bearer ".len());
    if !bearer {
        shared.record(rec, StatusCode::UNAUTHORIZED, Some("openai: missing `Authorization: Bearer` header".into()));
        return error_response(
            StatusCode::UNAUTHORIZED,
            "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            "invalid_request_error",
            None,
            Some("invalid_api_key"),
            None,
        );
    }
    let body = match parsed {
        Ok(v) => v,
        Err(e) => {
            let message = format!("We could not parse the JSON body of your request. ({e})");
            shared.record(rec, StatusCode::BAD_REQUEST, Some(message.clone()));
            return error_response(StatusCode::BAD_REQUEST, &message, "invalid_request_error", None, None, None);
        }
    };
    let violations = check(&body);
    let prompt = flatten(&body);
    let stream = rec.stream;
    let outcome = shared.process(rec, violations, &prompt, CacheMode::Automatic, status_of);
    render(outcome, stream, include_usage).await
}

fn status_of(outcome: &Outcome) -> u16 {
    match outcome {
        Outcome::Rejected(_) | Outcome::ContextWindow { .. } => 400,
        Outcome::Exhausted => 500,
        Outcome::Fail { failure, .. } => error_parts(failure.error, 0, 0).0.as_u16(),
        Outcome::Respond(_) => 200,
    }
}

struct ErrorParts {
    message: String,
    kind: &'static str,
    param: Option<&'static str>,
    code: Option<&'static str>,
}

fn error_parts(kind: ErrorKind, tokens: u64, limit: u64) -> (StatusCode, ErrorParts) {
    match kind {
        ErrorKind::RateLimited => (
            StatusCode::TOO_MANY_REQUESTS,
            ErrorParts {
                message: "Rate limit reached for requests (fake model).".into(),
                kind: "rate_limit_exceeded",
                param: None,
                code: Some("rate_limit_exceeded"),
            },
        ),
        ErrorKind::Overloaded | ErrorKind::ModelNotReady => (
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorParts {
                message: "The server is overloaded or not ready yet.".into(),
                kind: "server_error",
                param: None,
                code: None,
            },
        ),
        ErrorKind::ServerError => (
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorParts {
                message: "The server had an error while processing your request. Sorry about that!".into(),
                kind: "server_error",
                param: None,
                code: None,
            },
        ),
        ErrorKind::Unauthorized => (
            StatusCode::UNAUTHORIZED,
            ErrorParts {
                message: "Incorrect API key provided.".into(),
                kind: "invalid_request_error",
                param: None,
                code: Some("invalid_api_key"),
            },
        ),
        ErrorKind::ContextWindowExceeded => (
            StatusCode::BAD_REQUEST,
            ErrorParts {
                message: context_message(tokens.max(limit + 1), limit),
                kind: "invalid_request_error",
                param: Some("messages"),
                code: Some("context_length_exceeded"),
            },
        ),
        ErrorKind::InvalidRequest => (
            StatusCode::BAD_REQUEST,
            ErrorParts {
                message: "Invalid request (scripted by the fake model).".into(),
                kind: "invalid_request_error",
                param: None,
                code: None,
            },
        ),
    }
}

fn context_message(tokens: u64, limit: u64) -> String {
    format!(
        "This model's maximum context length is {limit} tokens. However, your messages resulted in {tokens} tokens. Please reduce the length of the messages."
    )
}

fn error_json(message: &str, kind: &str, param: Option<&str>, code: Option<&str>) -> Value {
    json!({"error": {"message": message, "type": kind, "param": param, "code": code}})
}

fn error_response(
    status: StatusCode,
    message: &str,
    kind: &str,
    param: Option<&str>,
    code: Option<&str>,
    retry_after: Option<u64>,
) -> Response {
    let mut response = Response::new(Body::from(to_json(&error_json(message, kind, param, code))));
    *response.status_mut() = status;
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert("x-request-id", HeaderValue::from_static("req_fake"));
    if let Some(secs) = retry_after {
        h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

fn scripted_error(kind: ErrorKind, tokens: u64, limit: u64, retry_after: Option<u64>) -> Response {
    let (status, p) = error_parts(kind, tokens, limit);
    let retry_after = (kind == ErrorKind::RateLimited).then(|| retry_after.unwrap_or(0));
    error_response(status, &p.message, p.kind, p.param, p.code, retry_after)
}

async fn render(outcome: Outcome, stream: bool, include_usage: bool) -> Response {
    match outcome {
        Outcome::Rejected(message) => {
            error_response(StatusCode::BAD_REQUEST, &message, "invalid_request_error", Some("messages"), None, None)
        }
        Outcome::ContextWindow { tokens, limit } => error_response(
            StatusCode::BAD_REQUEST,
            &context_message(tokens, limit),
            "invalid_request_error",
            Some("messages"),
            Some("context_length_exceeded"),
            None,
        ),
        Outcome::Exhausted => error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "fake model script exhausted",
            "server_error",
            None,
            None,
            None,
        ),
        Outcome::Fail { failure, tokens, limit } => {
            if let Some(ms) = failure.delay_ms {
                tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
            }
            scripted_error(failure.error, tokens, limit, failure.retry_after_secs)
        }
        Outcome::Respond(reply) => {
            if let Some(d) = reply.delay {
                tokio::time::sleep(d).await;
            }
            if stream {
                render_stream(&reply, include_usage)
            } else if let Some(StreamFault::MidStreamError { error, .. }) = reply.fault {
                scripted_error(error, 0, 0, None)
            } else {
                let body = Bytes::from(to_json(&completion_json(&reply)));
                let mut response = Response::new(body_from_steps(plain_steps(body, reply.fault)));
                response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
                response.headers_mut().insert("x-request-id", HeaderValue::from_static("req_fake"));
                response
            }
        }
    }
}

fn finish_reason(reason: StopReason) -> &'static str {
    match reason {
        StopReason::EndTurn => "stop",
        StopReason::ToolUse => "tool_calls",
        StopReason::MaxTokens => "length",
        StopReason::Refusal => "content_filter",
    }
}

fn completion_id(reply: &Reply) -> String {
    format!("chatcmpl-fake{}", reply.seq)
}

fn usage_json(reply: &Reply) -> Value {
    json!({
        "prompt_tokens": reply.input.total,
        "completion_tokens": reply.output_tokens,
        "total_tokens": reply.input.total + reply.output_tokens,
        "prompt_tokens_details": {"cached_tokens": reply.input.cache_read, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
    })
}

/// `(id, name, arguments)` of each tool use.
fn tool_calls(reply: &Reply) -> Vec<(String, String, String)> {
    reply
        .content
        .iter()
        .filter_map(|b| match b {
            Block::ToolUse { id, name, input } => Some((id.clone().unwrap_or_default(), name.clone(), to_json(input))),
            _ => None,
        })
        .collect()
}

fn texts(reply: &Reply) -> Vec<&str> {
    reply
        .content
        .iter()
        .filter_map(|b| match b {
            Block::Text { text } => Some(text.as_str()),
            _ => None,
        })
        .collect()
}

fn completion_json(reply: &Reply) -> Value {
    let texts = texts(reply);
    let content = if texts.is_empty() { Value::Null } else { Value::String(texts.concat()) };
    let mut message = json!({"role": "assistant", "content": content, "refusal": null});
    let calls = tool_calls(reply);
    if !calls.is_empty() {
        message["tool_calls"] = calls
            .into_iter()
            .map(|(id, name, arguments)| {
                json!({"id": id, "type": "function", "function": {"name": name, "arguments": arguments}})
            })
            .collect();
    }
    json!({
        "id": completion_id(reply),
        "object": "chat.completion",
        "created": unix_now(),
        "model": reply.model,
        "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish_reason(reply.stop_reason)}],
        "usage": usage_json(reply),
        "system_fingerprint": null,
    })
}

fn data(value: &Value) -> Bytes {
    Bytes::from(format!("data: {}\n\n", to_json(value)))
}

/// The events (`data:` lines) of a streamed answer, in order.
pub(crate) fn stream_events(reply: &Reply, include_usage: bool) -> Vec<Bytes> {
    let id = completion_id(reply);
    let created = unix_now();
    let chunk = |delta: Value, finish: Value| {
        let mut c = json!({
            "id": id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": reply.model,
            "system_fingerprint": null,
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
        });
        if include_usage {
            c["usage"] = Value::Null;
        }
        data(&c)
    };
    let mut events = vec![chunk(json!({"role": "assistant", "content": "", "refusal": null}), Value::Null)];
    for text in texts(reply) {
        for piece in split_chunks(text, reply.chunk_chars) {
            events.push(chunk(json!({"content": piece}), Value::Null));
        }
    }
    let calls = tool_calls(reply);
    for (index, (id, name, _)) in calls.iter().enumerate() {
        events.push(chunk(
            json!({"tool_calls": [{"index": index, "id": id, "type": "function", "function": {"name": name, "arguments": ""}}]}),
            Value::Null,
        ));
    }
    let fragments: Vec<Vec<String>> =
        calls.iter().map(|(_, _, arguments)| split_chunks(arguments, reply.chunk_chars)).collect();
    let rounds = fragments.iter().map(Vec::len).max().unwrap_or(0);
    for round in 0..rounds {
        for (index, pieces) in fragments.iter().enumerate() {
            if let Some(piece) = pieces.get(round) {
                events.push(chunk(
                    json!({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}),
                    Value::Null,
                ));
            }
        }
    }
    events.push(chunk(json!({}), json!(finish_reason(reply.stop_reason))));
    if include_usage {
        events.push(data(&json!({
            "id": id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": reply.model,
            "system_fingerprint": null,
            "choices": [],
            "usage": usage_json(reply),
        })));
    }
    events.push(Bytes::from_static(b"data: [DONE]\n\n"));
    events
}

fn render_stream(reply: &Reply, include_usage: bool) -> Response {
    let events = stream_events(reply, include_usage);
    let steps = stream_steps(
        events,
        reply,
        |_| Bytes::from_static(b"data: {\"id\":\"chatcmpl-fake\",\"object\":\"chat.completion.chu\n\n"),
        |kind| {
            let (_, p) = error_parts(kind, 0, 0);
            data(&error_json(&p.message, p.kind, p.param, p.code))
        },
    );
    let mut response = Response::new(body_from_steps(steps));
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream; charset=utf-8"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-request-id", HeaderValue::from_static("req_fake"));
    response
}

/// The request flattened for token counting: each tool, then each message, is a block.
pub(crate) fn flatten(body: &Value) -> Prompt {
    let mut prompt = Prompt::default();
    for tool in body.get("tools").and_then(Value::as_array).into_iter().flatten() {
        prompt.push("tool", tool, false);
    }
    for (i, message) in body.get("messages").and_then(Value::as_array).into_iter().flatten().enumerate() {
        prompt.push(&format!("message {i}"), message, false);
    }
    prompt
}

fn content_is_empty(content: Option<&Value>) -> bool {
    match content {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        Some(Value::Array(items)) => items.is_empty(),
        Some(_) => false,
    }
}

fn unanswered(ids: &[String]) -> String {
    format!(
        "An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: {}",
        ids.join(", ")
    )
}

/// The consistency checks, in the API's own words where we know them.
pub(crate) fn check(body: &Value) -> Vec<String> {
    let mut v = Vec::new();
    if !body.is_object() {
        return vec!["request body must be a JSON object".into()];
    }
    if body.get("model").and_then(Value::as_str).is_none() {
        v.push("you must provide a model parameter".into());
    }
    let Some(messages) = body.get("messages").and_then(Value::as_array) else {
        v.push("Missing required parameter: 'messages'.".into());
        return v;
    };
    if messages.is_empty() {
        v.push(
            "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead."
                .into(),
        );
    }
    let mut seen = HashSet::new();
    // Tool calls of the last assistant message: all ids, and those not yet answered.
    let mut pending: Option<(Vec<String>, Vec<String>)> = None;
    for (i, message) in messages.iter().enumerate() {
        let role = message.get("role").and_then(Value::as_str).unwrap_or("");
        let content = message.get("content");
        if role != "tool"
            && let Some((_, remaining)) = pending.take()
            && !remaining.is_empty()
        {
            v.push(unanswered(&remaining));
        }
        match role {
            "system" | "developer" | "user" => {
                if content_is_empty(content) {
                    v.push(format!("Invalid 'messages[{i}].content': empty content. Expected a non-empty string or array."));
                }
            }
            "assistant" => {
                let calls: Vec<String> = message
                    .get("tool_calls")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|c| c.get("id").and_then(Value::as_str).map(str::to_owned))
                    .collect();
                if calls.is_empty() && content_is_empty(content) {
                    v.push(format!("Invalid 'messages[{i}]': an assistant message must have 'content' or 'tool_calls'."));
                }
                for id in &calls {
                    if !seen.insert(id.clone()) {
                        v.push(format!(
                            "Invalid 'messages[{i}].tool_calls': duplicate tool call id {id}."
                        ));
                    }
                }
                if !calls.is_empty() {
                    pending = Some((calls.clone(), calls));
                }
            }
            "tool" => {
                let id = message
                    .get("tool_call_id")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                match &mut pending {
                    Some((all, remaining)) if all.iter().any(|a| a == id) => {
                        remaining.retain(|r| r != id);
                    }
                    _ => v.push(format!("Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'. (messages[{i}], tool_call_id {id})")),
                }
                if content_is_empty(content) {
                    v.push(format!("Invalid 'messages[{i}].content': empty content. Expected a non-empty string or array."));
                }
            }
            other => v.push(format!("Invalid value: '{other}'. Supported values are: 'system', 'assistant', 'user', 'tool', and 'developer'. (messages[{i}].role)")),
        }
    }
    if let Some((_, remaining)) = pending
        && !remaining.is_empty()
    {
        v.push(unanswered(&remaining));
    }
    v
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn checks_tool_messages() {
        let body = json!({
            "model": "m",
            "messages": [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "a", "type": "function", "function": {"name": "x", "arguments": "{}"}},
                    {"id": "b", "type": "function", "function": {"name": "x", "arguments": "{}"}}]},
                {"role": "tool", "tool_call_id": "a", "content": "ok"},
                {"role": "user", "content": "next"},
                {"role": "tool", "tool_call_id": "c", "content": "ok"},
            ]
        });
        let v = check(&body);
        assert_eq!(v.len(), 2, "{v:?}");
        assert!(v[0].contains("did not have response messages: b"), "{v:?}");
        assert!(v[1].contains("must be a response to a preceeding"), "{v:?}");
    }
}
