//! A session's log as JSON pages and as live server-sent events.
//!
//! A stream subscribes to the bus before it reads the log, and events reach the bus only
//! after the log holds them: so whatever the read misses arrives live, and a listener
//! that lags or sees a gap reads the log again. Every logged event carries its seq as
//! the SSE id, so a client that reconnects with `Last-Event-ID` misses nothing and sees
//! nothing twice.

use super::error::ApiError;
use super::sessions::{query, session_id, view};
use super::types::{EventList, EventsQuery};
use crate::AppState;
use crate::bus::{BusEvent, BusMessage};
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures::{Stream, StreamExt};
use rswe_agent::LiveEvent;
use rswe_llm::StreamEvent;
use rswe_protocol::{Event, EventKind, SessionId};
use serde_json::json;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio_util::sync::CancellationToken;

const PAGE: u32 = 1000;
const KEEP_ALIVE: Duration = Duration::from_secs(15);

pub async fn list(
    State(state): State<AppState>,
    Path(id): Path<String>,
    params: Result<Query<EventsQuery>, QueryRejection>,
) -> Result<Json<EventList>, ApiError> {
    let id = session_id(&id)?;
    let params = query(params)?;
    let limit = params.limit.unwrap_or(PAGE).clamp(1, PAGE);
    exists(&state, &id).await?;
    let mut events = state.store.events(&id, params.after.unwrap_or(0), limit + 1).await?;
    let more = events.len() > limit as usize;
    events.truncate(limit as usize);
    Ok(Json(EventList { events, more }))
}

async fn exists(state: &AppState, id: &SessionId) -> Result<(), ApiError> {
    match state.store.session(id).await? {
        Some(_) => Ok(()),
        None => Err(ApiError::not_found(format!("no session {id}"))),
    }
}

/// Where to start: `Last-Event-ID` (a reconnecting browser) wins over `?after=`.
fn start_after(headers: &HeaderMap, after: Option<u64>) -> Result<u64, ApiError> {
    match headers.get("last-event-id").map(|v| v.to_str().map(str::trim)) {
        Some(Ok("")) | None => Ok(after.unwrap_or(0)),
        Some(Ok(text)) => {
            text.parse().map_err(|_| ApiError::bad_request(format!("Last-Event-ID {text:?} is not a seq")))
        }
        Some(Err(_)) => Err(ApiError::bad_request("Last-Event-ID is not text")),
    }
}

pub async fn stream(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    params: Result<Query<EventsQuery>, QueryRejection>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let id = session_id(&id)?;
    let after = start_after(&headers, query(params)?.after)?;
    let stream = follow(&state, &id, after).await?.map(move |followed| {
        Ok(match followed {
            Followed::Logged(event) => {
                let data = serde_json::to_string(&event).unwrap_or_default();
                SseEvent::default().id(event.seq.to_string()).event("event").data(data)
            }
            Followed::Live(name, data) => SseEvent::default().event(name).data(data.to_string()),
            Followed::Deleted => SseEvent::default().event("deleted").data(json!({ "session_id": id }).to_string()),
            Followed::Failed(message) => SseEvent::default().event("error").data(message),
        })
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}

/// What a follower of a session sees, in order.
#[derive(Debug, Clone)]
pub enum Followed {
    /// A logged event: each once, in seq order, none skipped.
    Logged(Event),
    /// Something live that is not logged (streamed text, a running tool's output), with
    /// its SSE event name: see [`transient`].
    Live(&'static str, serde_json::Value),
    /// The session was deleted; nothing follows.
    Deleted,
    /// The log could not be read; nothing follows.
    Failed(String),
}

/// Follows a session's log from after `after`: the logged events since, then everything
/// live, until the session is deleted or the server shuts down. 404 for an unknown session.
pub async fn follow(
    state: &AppState,
    session: &SessionId,
    after: u64,
) -> Result<impl Stream<Item = Followed> + Send + use<>, ApiError> {
    // Subscribe first, then read: see the module's comment.
    let bus = state.service.bus().subscribe();
    exists(state, session).await?;
    let follower = Follower {
        state: state.clone(),
        session: session.clone(),
        sent: after,
        bus,
        pending: VecDeque::new(),
        catch_up: true,
        closing: state.service.closing(),
        ended: false,
        stale: false,
    };
    Ok(follower.into_stream())
}

/// Follows one session for one client.
struct Follower {
    state: AppState,
    session: SessionId,
    /// The seq of the last logged event sent.
    sent: u64,
    bus: broadcast::Receiver<Arc<BusMessage>>,
    pending: VecDeque<Followed>,
    /// Read the log from `sent` before taking more from the bus.
    catch_up: bool,
    closing: CancellationToken,
    ended: bool,
    /// After falling behind, the bus still holds old live text: skip it until the bus
    /// brings a logged event newer than the log read.
    stale: bool,
}

impl Follower {
    fn into_stream(self) -> impl Stream<Item = Followed> {
        futures::stream::unfold(self, |mut follower| async move {
            let event = follower.next().await?;
            Some((event, follower))
        })
    }

    async fn next(&mut self) -> Option<Followed> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(event);
            }
            if self.ended {
                return None;
            }
            if self.catch_up {
                match self.state.store.events(&self.session, self.sent, PAGE).await {
                    Ok(events) => {
                        self.catch_up = events.len() == PAGE as usize;
                        for event in events {
                            self.push_logged(&event);
                        }
                    }
                    Err(error) => {
                        tracing::warn!(session = %self.session, %error, "cannot read the log for a stream");
                        self.pending.push_back(Followed::Failed(error.to_string()));
                        self.ended = true;
                    }
                }
                continue;
            }
            let message = tokio::select! {
                () = self.closing.cancelled() => return None,
                message = self.bus.recv() => message,
            };
            match message {
                Ok(message) if message.session == self.session => self.take(&message.event),
                Ok(_) => {}
                Err(RecvError::Lagged(_)) => {
                    self.catch_up = true;
                    self.stale = true;
                }
                Err(RecvError::Closed) => return None,
            }
        }
    }

    fn push_logged(&mut self, event: &Event) {
        if event.seq <= self.sent {
            return;
        }
        if event.seq > self.sent + 1 {
            // Something between was missed: read it from the log.
            self.catch_up = true;
            return;
        }
        self.sent = event.seq;
        self.pending.push_back(Followed::Logged(event.clone()));
    }

    fn take(&mut self, event: &BusEvent) {
        match event {
            BusEvent::Live(LiveEvent::Logged(event)) => {
                if event.seq > self.sent {
                    self.stale = false;
                }
                self.push_logged(event);
            }
            BusEvent::Live(live) => {
                if self.stale {
                    return;
                }
                if let Some((name, data)) = transient(live) {
                    self.pending.push_back(Followed::Live(name, data));
                }
            }
            BusEvent::Changed => {}
            BusEvent::Deleted => {
                self.ended = true;
                self.pending.push_back(Followed::Deleted);
            }
        }
    }
}

/// What people watching see besides the log, as an SSE event name and data.
pub fn transient(event: &LiveEvent) -> Option<(&'static str, serde_json::Value)> {
    Some(match event {
        LiveEvent::Logged(_) => return None,
        LiveEvent::ModelDelta(StreamEvent::TextDelta { index, text }) => {
            ("delta", json!({ "index": index, "text": text }))
        }
        LiveEvent::ModelDelta(StreamEvent::ThinkingDelta { index, thinking }) => {
            ("delta", json!({ "index": index, "thinking": thinking }))
        }
        LiveEvent::ModelDelta(_) => return None,
        LiveEvent::ModelRetrying { attempt, delay, error } => {
            ("retrying", json!({ "attempt": attempt, "delay_ms": delay.as_millis() as u64, "error": error }))
        }
        LiveEvent::StepStarted { step, context_tokens, context_window } => {
            ("step", json!({ "step": step, "context_tokens": context_tokens, "context_window": context_window }))
        }
        LiveEvent::ToolStarted { tool_use_id, name, input } => {
            ("tool_started", json!({ "tool_use_id": tool_use_id, "name": name, "input": input }))
        }
        LiveEvent::ToolProgress(progress) => {
            ("tool_progress", json!({ "tool_use_id": progress.tool_use_id, "text": progress.text }))
        }
    })
}

/// Whether an event changes what a session list shows.
fn changes_listing(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::UserMessage { .. }
            | EventKind::AssistantMessage { .. }
            | EventKind::AgentMessage { .. }
            | EventKind::StatusChanged { .. }
            | EventKind::TitleChanged { .. }
            | EventKind::Error { .. }
    )
}

/// The session list, live: a `session` event with the session each time its listing
/// changes, `deleted` when one goes. The id is the session's `updated_ms`; a client that
/// reconnects with `Last-Event-ID` first gets every session changed since.
pub async fn stream_sessions(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let since = match headers.get("last-event-id").and_then(|v| v.to_str().ok()).map(str::trim) {
        Some(text) if !text.is_empty() => Some(
            text.parse::<i64>().map_err(|_| ApiError::bad_request(format!("Last-Event-ID {text:?} is not a time")))?,
        ),
        _ => None,
    };
    let bus = state.service.bus().subscribe();
    let initial = match since {
        Some(since) => changed_since(&state, since).await?,
        None => VecDeque::new(),
    };
    let closing = state.service.closing();
    let stream =
        futures::stream::unfold((state, bus, initial, closing), |(state, mut bus, mut pending, closing)| async move {
            loop {
                if let Some(event) = pending.pop_front() {
                    return Some((Ok(event), (state, bus, pending, closing)));
                }
                let message = tokio::select! {
                    () = closing.cancelled() => return None,
                    message = bus.recv() => message,
                };
                let message = match message {
                    Ok(message) => message,
                    Err(RecvError::Lagged(_)) => {
                        // Fell behind: send what changed in the last minute (a session
                        // sent twice is harmless; one missed would stay stale).
                        if let Ok(changed) = changed_since(&state, now_ms().saturating_sub(60_000)).await {
                            pending.extend(changed);
                        }
                        continue;
                    }
                    Err(RecvError::Closed) => return None,
                };
                let relevant = match &message.event {
                    BusEvent::Live(LiveEvent::Logged(event)) => changes_listing(&event.kind),
                    BusEvent::Live(_) => false,
                    BusEvent::Changed => true,
                    BusEvent::Deleted => {
                        let data = json!({ "session_id": message.session }).to_string();
                        pending.push_back(SseEvent::default().event("deleted").data(data));
                        continue;
                    }
                };
                if relevant && let Ok(Some(session)) = state.store.session(&message.session).await {
                    pending.push_back(session_event(&state, session));
                }
            }
        });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}

/// A `session` event for every session changed after `since` (ms), newest first.
async fn changed_since(state: &AppState, since: i64) -> Result<VecDeque<SseEvent>, ApiError> {
    let mut changed = VecDeque::new();
    let mut filter = rswe_store::SessionFilter { limit: 500, ..Default::default() };
    loop {
        let page = state.store.list_sessions(filter.clone()).await?;
        for session in page.sessions {
            if session.updated_ms <= since {
                return Ok(changed);
            }
            changed.push_back(session_event(state, session));
        }
        match page.next_cursor {
            Some(cursor) => filter.before = Some(cursor),
            None => return Ok(changed),
        }
    }
}

use crate::now_ms;

fn session_event(state: &AppState, session: rswe_store::Session) -> SseEvent {
    let id = session.updated_ms.to_string();
    let data = serde_json::to_string(&view(state, session)).unwrap_or_default();
    SseEvent::default().id(id).event("session").data(data)
}
