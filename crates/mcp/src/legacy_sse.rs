//! Client side of the legacy HTTP+SSE MCP transport (protocol 2024-11-05), which rmcp does
//! not ship: many URL servers still speak only this, so it is our fallback when streamable
//! HTTP is refused.
//!
//! The wire protocol: `GET <url>` opens a server-sent event stream whose first event,
//! `endpoint`, names (usually relatively) where to `POST` every client message; every
//! server message then arrives on the stream as a `message` event with the JSON in `data`.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::{Stream, StreamExt};

use crate::config::shown_url;
use reqwest::Url;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use rmcp::RoleClient;
use rmcp::service::{RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::transport::Transport;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// How long one POST of a client message may take: the server answers as soon as it has
/// accepted the message (the reply comes over the stream), so this only trips on a hung
/// server, which must not hang the caller with it.
const POST_TIMEOUT: Duration = Duration::from_secs(30);

/// The event stream is idle for as long as the server has nothing to say, so it has no
/// read timeout; TCP keepalive is what notices a peer that vanished without closing.
const TCP_KEEPALIVE: Duration = Duration::from_secs(30);

/// Messages parsed but not yet taken by rmcp; when full, the reader stops reading, which
/// pushes back on the server instead of buffering without limit.
const CHANNEL_CAPACITY: usize = 32;

/// Largest event (or unterminated line) we buffer, so a misbehaving server cannot make
/// us grow memory without limit.
const MAX_EVENT_BYTES: usize = 16 * 1024 * 1024;

/// How much of an error response's body we quote in an error message.
const MAX_QUOTED_BODY: usize = 300;

/// Connects to a legacy HTTP+SSE MCP server: opens the event stream and waits (up to
/// `timeout`) for the endpoint.
///
/// `headers` (e.g. `Authorization`) are sent on the stream's GET and on every POST. The
/// error is a sentence naming what failed: the URL, the HTTP status, or what was missing.
pub async fn connect(
    url: &str,
    headers: &BTreeMap<String, String>,
    timeout: Duration,
) -> Result<LegacySseTransport, String> {
    let sse_url = Url::parse(url).map_err(|e| format!("invalid MCP server URL {:?}: {e}", shown_url(url)))?;
    // Messages and logs never show credentials in the URL.
    let shown = shown_url(sse_url.as_str());
    let headers = header_map(headers)?;
    let client = reqwest::Client::builder()
        // A redirect could carry the headers (credentials) to another host.
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(timeout)
        .tcp_keepalive(TCP_KEEPALIVE)
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {}", describe(e)))?;
    let deadline = tokio::time::Instant::now() + timeout;

    let request = client.get(sse_url.clone()).headers(headers.clone()).header(ACCEPT, "text/event-stream").send();
    let response = match tokio::time::timeout_at(deadline, request).await {
        Err(_) => return Err(format!("GET {shown}: no response within {}", seconds(timeout))),
        Ok(Err(e)) => return Err(format!("GET {shown} failed: {}", describe(e))),
        Ok(Ok(response)) => response,
    };
    let status = response.status();
    if !status.is_success() {
        let detail = tokio::time::timeout_at(deadline, error_detail(response)).await.unwrap_or_default();
        return Err(format!("GET {shown} answered {status}{detail}"));
    }
    // A server that does not speak SSE here would otherwise just time out below, which
    // says much less about what is wrong.
    if let Some(content_type) = response.headers().get(CONTENT_TYPE)
        && !content_type.to_str().unwrap_or_default().trim_start().starts_with("text/event-stream")
    {
        return Err(format!(
            "GET {shown} answered {status} with content-type {content_type:?}, not an event stream \
             (is this a legacy HTTP+SSE MCP server?)"
        ));
    }

    let mut body = Box::pin(response.bytes_stream());
    let mut parser = SseParser::default();
    let endpoint = tokio::time::timeout_at(deadline, read_endpoint(&mut body, &mut parser))
        .await
        .map_err(|_| format!("GET {shown}: no `endpoint` event within {}", seconds(timeout)))?
        .map_err(|e| format!("GET {shown}: {e}"))?;
    let endpoint =
        sse_url.join(&endpoint).map_err(|e| format!("GET {shown}: invalid `endpoint` event {endpoint:?}: {e}"))?;
    // The headers may carry credentials: never send them to a host the user did not name.
    if endpoint.origin() != sse_url.origin() {
        return Err(format!(
            "GET {shown}: the server's endpoint {} is on another origin; refusing to send messages there",
            shown_url(endpoint.as_str())
        ));
    }
    tracing::debug!(url = %shown, "legacy SSE MCP stream open");

    let (sender, incoming) = mpsc::channel(CHANNEL_CAPACITY);
    let reader = tokio::spawn(forward_messages(body, parser, sender, shown));
    Ok(LegacySseTransport { client, endpoint, headers, incoming, reader })
}

/// An open legacy HTTP+SSE connection, for [`rmcp::ServiceExt::serve`]: a background task
/// reads the event stream into a channel (that is what `receive` takes from), and each sent
/// message is its own POST to the endpoint the server named.
pub struct LegacySseTransport {
    client: reqwest::Client,
    endpoint: Url,
    headers: HeaderMap,
    incoming: mpsc::Receiver<RxJsonRpcMessage<RoleClient>>,
    reader: JoinHandle<()>,
}

/// Why a message could not be sent: the endpoint, and the HTTP status or failure.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct LegacySseError(String);

impl Transport<RoleClient> for LegacySseTransport {
    type Error = LegacySseError;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleClient>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        let endpoint = self.endpoint.clone();
        let shown = shown_url(endpoint.as_str());
        let request = serde_json::to_vec(&item).map(|body| {
            self.client
                .post(endpoint.clone())
                .headers(self.headers.clone())
                .header(CONTENT_TYPE, "application/json")
                .timeout(POST_TIMEOUT)
                .body(body)
        });
        async move {
            let request = request.map_err(|e| LegacySseError(format!("cannot encode a message for {shown}: {e}")))?;
            // The request timeout covers reading the body too, so all of this is bounded.
            let response =
                request.send().await.map_err(|e| LegacySseError(format!("POST {shown} failed: {}", describe(e))))?;
            let status = response.status();
            if status.is_success() {
                return Ok(());
            }
            let detail = error_detail(response).await;
            Err(LegacySseError(format!("POST {shown} answered {status}{detail}")))
        }
    }

    /// `None` once the stream ended or failed: to rmcp, the server is gone.
    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleClient>> {
        self.incoming.recv().await
    }

    /// Drops the event stream, which is how the legacy protocol ends a session.
    async fn close(&mut self) -> Result<(), Self::Error> {
        self.reader.abort();
        self.incoming.close();
        Ok(())
    }
}

impl Drop for LegacySseTransport {
    /// The reader task owns the connection: without this, dropping the transport without
    /// `close` would leave the session open until the server hung up.
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// Reads events until the first `endpoint` and returns its data. Messages before it break
/// the protocol; they are skipped since there is nowhere to answer them yet.
async fn read_endpoint(
    body: &mut (impl Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin),
    parser: &mut SseParser,
) -> Result<String, String> {
    loop {
        let Some(chunk) = body.next().await else {
            return Err("the stream ended before the `endpoint` event".to_owned());
        };
        let chunk = chunk.map_err(|e| format!("reading the stream failed: {}", describe(e)))?;
        for event in parser.feed(&chunk)? {
            if event.event == "endpoint" {
                return Ok(event.data.trim().to_owned());
            }
            tracing::warn!(event = %event.event, "legacy SSE event before `endpoint`; skipped");
        }
    }
}

/// The reader task: forwards every `message` event until the stream ends, fails, or the
/// transport is gone. Returning drops `sender`, which is what makes `receive` say `None`.
async fn forward_messages(
    mut body: impl Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin,
    mut parser: SseParser,
    sender: mpsc::Sender<RxJsonRpcMessage<RoleClient>>,
    shown: String,
) {
    while let Some(chunk) = body.next().await {
        let events = match chunk {
            Ok(chunk) => parser.feed(&chunk),
            Err(e) => Err(format!("reading failed: {}", describe(e))),
        };
        let events = match events {
            Ok(events) => events,
            Err(e) => {
                tracing::warn!(url = %shown, "legacy SSE stream: {e}");
                return;
            }
        };
        for event in events {
            if event.event != "message" {
                tracing::debug!(url = %shown, event = %event.event, "legacy SSE event ignored");
                continue;
            }
            match serde_json::from_str(&event.data) {
                Ok(message) => {
                    if sender.send(message).await.is_err() {
                        return;
                    }
                }
                // One bad message should not end the session; its request, if any, will
                // fail on rmcp's own timeout.
                Err(e) => tracing::warn!(url = %shown, "legacy SSE message skipped, not JSON-RPC: {e}"),
            }
        }
    }
    tracing::info!(url = %shown, "legacy SSE stream ended");
}

/// One dispatched server-sent event; `event` is `message` when the server named none.
#[derive(Debug, PartialEq)]
struct SseEvent {
    event: String,
    data: String,
}

/// Incremental parser for the `text/event-stream` format (WHATWG HTML, "server-sent
/// events"), fed with chunks split anywhere. Lines end in LF or CRLF (a lone CR, which the
/// format also allows but no MCP server sends, is not treated as a line end); `id` and
/// `retry` fields are ignored, since we never reconnect.
#[derive(Default)]
struct SseParser {
    /// The current line, until its LF arrives.
    line: Vec<u8>,
    event: String,
    /// The `data` fields so far, each followed by `\n`; the last one is dropped on dispatch.
    data: String,
}

impl SseParser {
    fn feed(&mut self, chunk: &[u8]) -> Result<Vec<SseEvent>, String> {
        let mut events = Vec::new();
        for piece in chunk.split_inclusive(|&b| b == b'\n') {
            self.line.extend_from_slice(piece);
            if self.line.len() + self.data.len() > MAX_EVENT_BYTES {
                return Err(format!("an event is larger than {MAX_EVENT_BYTES} bytes"));
            }
            if self.line.last() != Some(&b'\n') {
                break; // the rest of this line is in a later chunk
            }
            let line = std::mem::take(&mut self.line);
            // Splitting at LF never splits a UTF-8 character, so each line decodes alone.
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end_matches('\n').trim_end_matches('\r');
            events.extend(self.line_done(line));
        }
        Ok(events)
    }

    fn line_done(&mut self, line: &str) -> Option<SseEvent> {
        if line.is_empty() {
            let event = std::mem::take(&mut self.event);
            let mut data = std::mem::take(&mut self.data);
            if data.is_empty() {
                return None;
            }
            data.pop(); // the `\n` after the last data field
            let event = if event.is_empty() { "message".to_owned() } else { event };
            return Some(SseEvent { event, data });
        }
        if line.starts_with(':') {
            return None; // a comment, often a keep-alive
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => self.event = value.to_owned(),
            "data" => {
                self.data.push_str(value);
                self.data.push('\n');
            }
            _ => {}
        }
        None
    }
}

fn header_map(headers: &BTreeMap<String, String>) -> Result<HeaderMap, String> {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        let header_name =
            HeaderName::from_bytes(name.as_bytes()).map_err(|e| format!("invalid HTTP header name {name:?}: {e}"))?;
        // The value is often a secret: name the header, not what is in it.
        let header_value =
            HeaderValue::from_str(value).map_err(|e| format!("invalid value for HTTP header {name:?}: {e}"))?;
        map.insert(header_name, header_value);
    }
    Ok(map)
}

/// reqwest's own message ("error sending request") hides the cause (connection refused,
/// DNS, TLS) in its source chain; this spells the whole chain out.
/// The URL is left out: every caller names it already.
fn describe(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut message = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

/// Bytes of an error body read at the most.
const MAX_ERROR_BODY_BYTES: usize = 4096;

/// A duration as people read it: `30 s`, `0.5 s`.
fn seconds(duration: Duration) -> String {
    format!("{} s", duration.as_secs_f64())
}

/// `: <body>` (shortened, on one line) from an error response, for the error message;
/// nothing for an empty body or an HTML page, which is more noise than detail.
async fn error_detail(response: reqwest::Response) -> String {
    let is_html = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.trim_start().starts_with("text/html"));
    if is_html {
        return String::new();
    }
    // Only the start of the body: a server could send without end.
    let mut bytes = Vec::new();
    let mut stream = Box::pin(response.bytes_stream());
    while bytes.len() < MAX_ERROR_BODY_BYTES {
        match stream.next().await {
            Some(Ok(chunk)) => bytes.extend_from_slice(&chunk),
            _ => break,
        }
    }
    bytes.truncate(MAX_ERROR_BODY_BYTES);
    let body = String::from_utf8_lossy(&bytes);
    let body = body.split_whitespace().collect::<Vec<_>>().join(" ");
    match body.char_indices().nth(MAX_QUOTED_BODY) {
        _ if body.is_empty() => String::new(),
        Some((cut, _)) => format!(": {}…", &body[..cut]),
        None => format!(": {body}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(event: &str, data: &str) -> SseEvent {
        SseEvent { event: event.to_owned(), data: data.to_owned() }
    }

    #[test]
    fn parses_events_split_anywhere() {
        let stream = b": keep-alive\r\nevent: endpoint\r\ndata: /message?sessionId=1\r\n\r\n\
            data: {\"a\":\ndata:1}\n\nevent: other\ndata: x\n\nid: 7\n\n";
        let expected =
            vec![event("endpoint", "/message?sessionId=1"), event("message", "{\"a\":\n1}"), event("other", "x")];
        for split in 0..stream.len() {
            let mut parser = SseParser::default();
            let mut events = parser.feed(&stream[..split]).unwrap_or_default();
            events.extend(parser.feed(&stream[split..]).unwrap_or_default());
            assert_eq!(events, expected, "split at {split}");
        }
    }

    #[test]
    fn an_event_without_a_blank_line_is_not_dispatched() {
        let mut parser = SseParser::default();
        assert_eq!(parser.feed(b"event: message\ndata: {}\n"), Ok(vec![]));
    }
}
