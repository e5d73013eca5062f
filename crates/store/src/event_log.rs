use rswe_protocol::{ContentBlock, Event, EventKind, SessionId, Usage};
use serde_json::{Map, Value};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, Sqlite, Transaction};

use crate::error::StoreError;
use crate::session::{move_session, preview, prune_moves};
use crate::store::{Store, now_ms};

/// Every this many events of a session, `append` also prunes the listing history.
const PRUNE_EVERY: i64 = 128;

/// Keys of an event's JSON that belong to the envelope, not to its kind.
const ENVELOPE_KEYS: [&str; 3] = ["session_id", "seq", "at_ms"];

/// Everything `append` writes besides the event itself, worked out once before the
/// transaction (which may be tried more than once).
struct Effects {
    /// The kind's JSON object, without the envelope.
    body: Map<String, Value>,
    /// The kind's tag: "user_message", "assistant_message", ...
    tag: String,
    status: Option<&'static str>,
    title: Option<String>,
    last_message: Option<String>,
    request: Option<Request>,
}

/// One model request, from an assistant message.
struct Request {
    model: String,
    usage: Usage,
    cost_usd: Option<f64>,
}

impl Store {
    /// Appends an event to the session's log and returns it as persisted: with the next
    /// seq (1, 2, 3, … without gaps, also under concurrent appends from several processes)
    /// and the time, which never goes back within a session.
    ///
    /// In the same transaction the session row follows the event: `StatusChanged` and
    /// `TitleChanged` set status and title; `AssistantMessage` adds its usage and cost;
    /// messages with text refresh `last_message`; every event makes the session the most
    /// recently updated.
    pub async fn append(&self, session_id: &SessionId, kind: EventKind) -> Result<Event, StoreError> {
        let kind = normalize(kind);
        let effects = effects(&kind)?;
        let (seq, at_ms) = self.write("append an event", |tx| append(tx, session_id, &effects)).await?;
        tracing::trace!(session = %session_id, seq, kind = %effects.tag, "appended an event");
        Ok(Event { session_id: session_id.clone(), seq, at_ms, kind })
    }

    /// The session's events with seq greater than `after_seq`, oldest first, at most
    /// `limit`. Empty when the session does not exist.
    pub async fn events(&self, session_id: &SessionId, after_seq: u64, limit: u32) -> Result<Vec<Event>, StoreError> {
        let rows = sqlx::query("SELECT seq, data FROM events WHERE session_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3")
            .bind(session_id.as_str())
            .bind(i64::try_from(after_seq).unwrap_or(i64::MAX))
            .bind(i64::from(limit))
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(|row| event_from_row(session_id, row)).collect()
    }

    /// The session's newest event; `None` when it has none or does not exist.
    pub async fn last_event(&self, session_id: &SessionId) -> Result<Option<Event>, StoreError> {
        let row = sqlx::query("SELECT seq, data FROM events WHERE session_id = ?1 ORDER BY seq DESC LIMIT 1")
            .bind(session_id.as_str())
            .fetch_optional(&self.reader)
            .await?;
        row.map(|row| event_from_row(session_id, &row)).transpose()
    }
}

async fn append(
    mut tx: Transaction<'static, Sqlite>,
    session_id: &SessionId,
    effects: &Effects,
) -> Result<(u64, i64), StoreError> {
    let now = now_ms();
    // The write lock is held (BEGIN IMMEDIATE): this read-modify-write of last_seq cannot
    // interleave with another writer's, in this process or another.
    let row = sqlx::query(
        "UPDATE sessions SET last_seq = last_seq + 1, updated_ms = MAX(updated_ms, ?2)
         WHERE id = ?1 RETURNING last_seq, updated_ms",
    )
    .bind(session_id.as_str())
    .bind(now)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| StoreError::session_not_found(session_id))?;
    let seq: i64 = row.try_get("last_seq")?;
    let at_ms: i64 = row.try_get("updated_ms")?;

    let mut data = effects.body.clone();
    data.insert("session_id".into(), Value::from(session_id.as_str()));
    data.insert("seq".into(), Value::from(seq));
    data.insert("at_ms".into(), Value::from(at_ms));
    sqlx::query("INSERT INTO events (session_id, seq, at_ms, type, data) VALUES (?1, ?2, ?3, ?4, ?5)")
        .bind(session_id.as_str())
        .bind(seq)
        .bind(at_ms)
        .bind(effects.tag.as_str())
        .bind(Value::Object(data).to_string())
        .execute(&mut *tx)
        .await?;

    let (cost, cost_unknown) = match &effects.request {
        Some(Request { cost_usd: Some(cost), .. }) => (*cost, false),
        Some(Request { cost_usd: None, .. }) => (0.0, true),
        None => (0.0, false),
    };
    let list_key = move_session(&mut tx, session_id, now).await?;
    sqlx::query(
        "UPDATE sessions SET
            list_key = ?2,
            status = COALESCE(?3, status),
            title = COALESCE(?4, title),
            last_message = COALESCE(?5, last_message),
            cost_usd = cost_usd + ?6,
            cost_unknown = MAX(cost_unknown, ?7)
         WHERE id = ?1",
    )
    .bind(session_id.as_str())
    .bind(list_key)
    .bind(effects.status)
    .bind(effects.title.as_deref())
    .bind(effects.last_message.as_deref())
    .bind(cost)
    .bind(cost_unknown)
    .execute(&mut *tx)
    .await?;

    if let Some(request) = &effects.request {
        sqlx::query(
            "INSERT INTO usage (session_id, seq, model, at_ms, input_tokens, output_tokens, cache_read_tokens,
                                cache_write_tokens, cost_usd)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )
        .bind(session_id.as_str())
        .bind(seq)
        .bind(request.model.as_str())
        .bind(at_ms)
        .bind(tokens(request.usage.input_tokens))
        .bind(tokens(request.usage.output_tokens))
        .bind(tokens(request.usage.cache_read_tokens))
        .bind(tokens(request.usage.cache_write_tokens))
        .bind(request.cost_usd)
        .execute(&mut *tx)
        .await?;
    }
    if seq % PRUNE_EVERY == 0 {
        prune_moves(&mut tx, now).await?;
    }
    tx.commit().await?;
    let seq =
        u64::try_from(seq).map_err(|_| StoreError::Corrupt(format!("session {session_id} has a negative seq")))?;
    Ok((seq, at_ms))
}

/// A cost that is not a finite, non-negative number is no known price at all.
fn normalize(kind: EventKind) -> EventKind {
    match kind {
        EventKind::AssistantMessage { content, model, stop_reason, usage, cost_usd: Some(cost), request_seq }
            if !(cost.is_finite() && cost >= 0.0) =>
        {
            tracing::warn!(cost, model, "an assistant message carries an impossible cost; storing it as unknown");
            EventKind::AssistantMessage { content, model, stop_reason, usage, cost_usd: None, request_seq }
        }
        other => other,
    }
}

fn effects(kind: &EventKind) -> Result<Effects, StoreError> {
    let Value::Object(body) = serde_json::to_value(kind)
        .map_err(|error| StoreError::Invalid(format!("the event cannot be written as JSON: {error}")))?
    else {
        return Err(StoreError::Invalid(
            "an event of an unknown kind must be a JSON object with a \"type\" field".to_string(),
        ));
    };
    let tag = match body.get("type") {
        Some(Value::String(tag)) if !tag.is_empty() => tag.clone(),
        _ => {
            return Err(StoreError::Invalid(
                "an event of an unknown kind must be a JSON object with a \"type\" field".to_string(),
            ));
        }
    };
    if let Some(key) = ENVELOPE_KEYS.iter().find(|key| body.contains_key(**key)) {
        return Err(StoreError::Invalid(format!(
            "an event of kind {tag:?} may not carry a {key:?} field: the store assigns it"
        )));
    }
    let mut effects = Effects { body, tag, status: None, title: None, last_message: None, request: None };
    match kind {
        EventKind::StatusChanged { status, .. } => effects.status = Some(status.as_str()),
        EventKind::TitleChanged { title } => effects.title = Some(title.clone()),
        EventKind::UserMessage { content, .. } => effects.last_message = text_preview(content),
        EventKind::AgentMessage { text } => effects.last_message = Some(preview(text)).filter(|p| !p.is_empty()),
        EventKind::AssistantMessage { content, model, usage, cost_usd, .. } => {
            effects.last_message = text_preview(content);
            effects.request = Some(Request { model: model.clone(), usage: *usage, cost_usd: *cost_usd });
        }
        // The summary request of a compaction costs like any other.
        EventKind::ContextCompacted { model, usage, cost_usd, .. } => {
            effects.request = Some(Request { model: model.clone(), usage: *usage, cost_usd: *cost_usd });
        }
        _ => {}
    }
    Ok(effects)
}

/// A preview of the text blocks of a message; `None` when it has no text.
fn text_preview(content: &[ContentBlock]) -> Option<String> {
    let text: Vec<&str> = content
        .iter()
        .filter_map(|block| match block {
            ContentBlock::Text { text } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    Some(preview(&text.join(" "))).filter(|preview| !preview.is_empty())
}

fn tokens(count: u64) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}

fn event_from_row(session_id: &SessionId, row: &SqliteRow) -> Result<Event, StoreError> {
    let seq: i64 = row.try_get("seq")?;
    let data: String = row.try_get("data")?;
    let event: Event = serde_json::from_str(&data).map_err(|error| {
        StoreError::Corrupt(format!(
            "event {seq} of session {session_id} cannot be read ({error}) — the database was changed by hand or is \
             damaged; restore a backup"
        ))
    })?;
    if &event.session_id != session_id || i64::try_from(event.seq).ok() != Some(seq) {
        return Err(StoreError::Corrupt(format!(
            "event {seq} of session {session_id} says it is event {} of session {} — the database was changed by \
             hand; restore a backup",
            event.seq, event.session_id
        )));
    }
    Ok(event)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rswe_protocol::SessionStatus;

    #[test]
    fn effects_follow_the_kind() {
        let effects = effects(&EventKind::StatusChanged { status: SessionStatus::Failed, reason: None }).unwrap();
        assert_eq!((effects.tag.as_str(), effects.status), ("status_changed", Some("failed")));

        let effects = effects_of_assistant(vec![ContentBlock::ToolUse {
            id: "t".into(),
            name: "shell".into(),
            input: serde_json::json!({}),
        }]);
        assert_eq!(effects.last_message, None, "tool calls alone are no message to preview");
        assert!(effects.request.is_some());
    }

    #[test]
    fn unknown_kinds_must_be_tagged_objects_without_envelope_fields() {
        assert!(effects(&EventKind::Other(serde_json::json!({"type": "hologram", "x": 1}))).is_ok());
        for bad in [serde_json::json!("text"), serde_json::json!({"x": 1}), serde_json::json!({"type": "h", "seq": 4})]
        {
            assert!(matches!(effects(&EventKind::Other(bad)), Err(StoreError::Invalid(_))));
        }
    }

    #[test]
    fn impossible_costs_become_unknown() {
        let kind = normalize(EventKind::AssistantMessage {
            content: vec![],
            model: "m".into(),
            stop_reason: "end_turn".into(),
            usage: Usage::default(),
            cost_usd: Some(f64::NAN),
            request_seq: None,
        });
        assert!(matches!(kind, EventKind::AssistantMessage { cost_usd: None, .. }));
    }

    fn effects_of_assistant(content: Vec<ContentBlock>) -> Effects {
        effects(&EventKind::AssistantMessage {
            content,
            model: "m".into(),
            stop_reason: "tool_use".into(),
            usage: Usage::default(),
            cost_usd: None,
            request_seq: None,
        })
        .unwrap()
    }
}
