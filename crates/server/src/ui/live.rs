//! `GET /sessions/{id}/live`: a session page's live updates, as server-sent events.
//!
//! Each logged event comes as a `log` event whose id is the event's seq, carrying the
//! HTML fragments [`Transcript`] renders for it (the same the page renders on load) and
//! the panels it changed. A browser that reconnects sends `Last-Event-ID` and misses
//! nothing. What is not logged (streamed text, running tools' output, context usage)
//! comes as the API's JSON events: `delta`, `retrying`, `step`, `tool_started`,
//! `tool_progress`. `deleted` ends the stream, `failed` says the log could not be read.

use super::conversation::{Op, Piece, Transcript};
use super::{display_title, status_of};
use crate::AppState;
use crate::api::events::{Followed, follow};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use rswe_protocol::{Event, EventKind, SessionId, SessionStatus};
use serde::{Deserialize, Serialize};
use std::convert::Infallible;
use std::time::Duration;

const KEEP_ALIVE: Duration = Duration::from_secs(15);

#[derive(Debug, Default, Deserialize)]
pub struct LiveQuery {
    /// The seq of the last event the page shows.
    #[serde(default)]
    after: Option<u64>,
}

/// What a `log` event carries.
#[derive(Debug, Serialize)]
struct LogUpdate {
    seq: u64,
    /// The event's type, as in the API (`assistant_message`, `tool_result`, …).
    kind: &'static str,
    ops: Vec<Op>,
    status: &'static str,
    status_label: &'static str,
    working: bool,
    cost: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    todo: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    links: Option<String>,
}

fn kind_name(kind: &EventKind) -> &'static str {
    match kind {
        EventKind::UserMessage { .. } => "user_message",
        EventKind::AssistantMessage { .. } => "assistant_message",
        EventKind::ToolResult { .. } => "tool_result",
        EventKind::AgentMessage { .. } => "agent_message",
        EventKind::FileSent { .. } => "file_sent",
        EventKind::TitleChanged { .. } => "title_changed",
        EventKind::TodoUpdated { .. } => "todo_updated",
        EventKind::StatusChanged { .. } => "status_changed",
        EventKind::Interrupted { .. } => "interrupted",
        EventKind::Error { .. } => "error",
        EventKind::ContextCompacted { .. } => "context_compacted",
        EventKind::Other(_) => "other",
    }
}

/// Where to start: `Last-Event-ID` (a reconnecting browser) wins over `?after=`.
fn start_after(headers: &HeaderMap, after: Option<u64>) -> Option<u64> {
    match headers.get("last-event-id").map(|v| v.to_str().map(str::trim)) {
        Some(Ok("")) | None => Some(after.unwrap_or(0)),
        Some(Ok(text)) => text.parse().ok(),
        Some(Err(_)) => None,
    }
}

fn plain(status: StatusCode, message: &str) -> Response {
    (status, message.to_string()).into_response()
}

pub async fn stream(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    query: Result<Query<LiveQuery>, QueryRejection>,
) -> Response {
    let Some(id) = SessionId::parse(&id) else { return plain(StatusCode::NOT_FOUND, "no such session") };
    let after = query.map(|Query(q)| q.after).unwrap_or_default();
    let Some(after) = start_after(&headers, after) else {
        return plain(StatusCode::BAD_REQUEST, "Last-Event-ID is not a seq");
    };
    let session = match state.store.session(&id).await {
        Ok(Some(session)) => session,
        Ok(None) => return plain(StatusCode::NOT_FOUND, "no such session"),
        Err(error) => {
            tracing::error!(session = %id, %error, "cannot read a session for its live page");
            return plain(StatusCode::INTERNAL_SERVER_ERROR, "the session could not be read");
        }
    };
    // What the page already shows: read, not rendered, so the next events render as
    // they would on a page loaded later.
    let mut transcript = Transcript::new(session.status, session.title.clone());
    if let Err(error) = seed(&state, &id, after, &mut transcript).await {
        tracing::error!(session = %id, %error, "cannot read a session's log for its live page");
        return plain(StatusCode::INTERNAL_SERVER_ERROR, "the session's log could not be read");
    }
    let followed = match follow(&state, &id, after).await {
        Ok(followed) => followed,
        Err(error) => return plain(error.status, &error.message),
    };
    let events = followed.map(move |followed| -> Result<SseEvent, Infallible> {
        Ok(match followed {
            Followed::Logged(event) => log_event(&state, &id, &mut transcript, &event),
            Followed::Live(name, data) => SseEvent::default().event(name).data(data.to_string()),
            Followed::Deleted => SseEvent::default().event("deleted").data("{}"),
            Followed::Failed(message) => {
                SseEvent::default().event("failed").data(serde_json::json!({ "message": message }).to_string())
            }
        })
    });
    let mut response = Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)).into_response();
    // Proxies that buffer responses (nginx) would hold the events back.
    response.headers_mut().insert("x-accel-buffering", axum::http::HeaderValue::from_static("no"));
    response
}

/// Reads the log up to `after` into the transcript.
async fn seed(
    state: &AppState,
    id: &SessionId,
    after: u64,
    transcript: &mut Transcript,
) -> Result<(), rswe_store::StoreError> {
    const CHUNK: u32 = 1000;
    let mut read = 0;
    while read < after {
        let events = state.store.events(id, read, CHUNK).await?;
        let Some(last) = events.last().map(|e| e.seq) else { break };
        for event in events.iter().filter(|e| e.seq <= after) {
            transcript.apply(event);
        }
        read = last;
        if events.len() < CHUNK as usize {
            break;
        }
    }
    Ok(())
}

fn log_event(state: &AppState, id: &SessionId, transcript: &mut Transcript, event: &Event) -> SseEvent {
    let (pieces, changed) = transcript.apply(event);
    let ops: Vec<Op> = pieces.iter().map(Piece::render).collect();
    let (status, status_label) = status_of(state, id, transcript.status);
    let update = LogUpdate {
        seq: event.seq,
        kind: kind_name(&event.kind),
        ops,
        status,
        status_label,
        working: transcript.status == SessionStatus::Working,
        cost: transcript.cost_text(),
        title: changed.title.then(|| display_title(transcript.title.as_deref(), transcript.first_message.as_deref())),
        todo: changed.todo.then(|| transcript.todo_html()),
        links: changed.links.then(|| transcript.links_html()),
    };
    let data = serde_json::to_string(&update).unwrap_or_else(|error| {
        tracing::error!(%error, "cannot encode a live update");
        "{}".into()
    });
    SseEvent::default().id(event.seq.to_string()).event("log").data(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_event_id_wins() {
        let mut headers = HeaderMap::new();
        assert_eq!(start_after(&headers, Some(4)), Some(4));
        assert_eq!(start_after(&headers, None), Some(0));
        headers.insert("last-event-id", "9".parse().unwrap());
        assert_eq!(start_after(&headers, Some(4)), Some(9));
        headers.insert("last-event-id", "x".parse().unwrap());
        assert_eq!(start_after(&headers, Some(4)), None);
    }
}
