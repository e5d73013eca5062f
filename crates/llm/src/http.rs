//! What the HTTP providers (Anthropic, OpenAI) share: the client, error mapping, and the
//! turning of an SSE body into neutral events.

use crate::error::{LlmError, parse_retry_after};
use crate::sse::{SseEvent, sse_events};
use crate::stream::{EventStream, StreamEvent};
use futures::{StreamExt, stream};
use std::time::Duration;

/// An HTTP client with a connect timeout. Response and idle timeouts are applied per
/// request by [`crate::Model`], so they hold for every provider alike.
pub(crate) fn http_client(connect_timeout: Duration) -> Result<reqwest::Client, LlmError> {
    reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .user_agent(concat!("rswe/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|error| LlmError::Configuration(format!("cannot build the HTTP client: {error}")))
}

/// Whether a provider's error message says the prompt did not fit the context window.
pub(crate) fn mentions_context_overflow(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    [
        "prompt is too long",
        "input is too long",
        "context window",
        "context length",
        "context_length_exceeded",
        "maximum context",
        "too many input tokens",
        "exceed context limit",
    ]
    .iter()
    .any(|needle| message.contains(needle))
}

/// Maps a transport failure of `reqwest` (a connect timeout included: it is retryable).
pub(crate) fn transport_error(provider: &'static str, error: reqwest::Error) -> LlmError {
    if error.is_body() || error.is_decode() {
        LlmError::StreamBroken { provider, message: describe(&error) }
    } else {
        LlmError::Connection { provider, message: describe(&error) }
    }
}

/// The error and its causes on one line ("error sending request: connection refused").
fn describe(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Sends a JSON request and returns the response if its status is a success; otherwise
/// reads the error body and maps it with `error_message` (which extracts the provider's
/// message from the JSON body).
pub(crate) async fn post_json(
    provider: &'static str,
    request: reqwest::RequestBuilder,
    body: &serde_json::Value,
    error_message: fn(&serde_json::Value) -> Option<String>,
) -> Result<reqwest::Response, LlmError> {
    let response = request.json(body).send().await.map_err(|e| transport_error(provider, e))?;
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let retry_after = parse_retry_after(response.headers());
    let text = response.text().await.unwrap_or_default();
    let message = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|json| error_message(&json))
        .unwrap_or_else(|| text.chars().take(500).collect());
    let overflow = status.as_u16() == 400 && mentions_context_overflow(&message);
    Err(crate::error::from_http_status(provider, status.as_u16(), message, retry_after, overflow))
}

/// Turns an SSE response into neutral events with a per-provider `parse` that may keep
/// state between events.
pub(crate) fn sse_event_stream<P>(provider: &'static str, response: reqwest::Response, mut parse: P) -> EventStream
where
    P: FnMut(SseEvent) -> Result<Vec<StreamEvent>, LlmError> + Send + 'static,
{
    sse_events(Box::pin(response.bytes_stream()))
        .flat_map(move |item| {
            let items: Vec<Result<StreamEvent, LlmError>> = match item {
                Ok(event) => match parse(event) {
                    Ok(events) => events.into_iter().map(Ok).collect(),
                    Err(error) => vec![Err(error)],
                },
                Err(error) => vec![Err(LlmError::StreamBroken { provider, message: describe(&error) })],
            };
            stream::iter(items)
        })
        .boxed()
}

/// Parses one event's JSON, treating garbage as a broken stream (retried whole).
pub(crate) fn event_json(provider: &'static str, data: &str) -> Result<serde_json::Value, LlmError> {
    serde_json::from_str(data).map_err(|error| LlmError::StreamBroken {
        provider,
        message: format!("malformed event ({error}): {}", data.chars().take(200).collect::<String>()),
    })
}
