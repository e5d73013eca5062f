use rswe_protocol::{SessionId, SessionStatus};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, Sqlite, SqliteConnection, Transaction};

use crate::error::StoreError;
use crate::store::{Store, now_ms};

/// The columns of a `sessions` row, in the order [`session_from_row`] reads them by name.
macro_rules! session_columns {
    () => {
        "id, title, status, repository, model, channel, created_ms, updated_ms, last_seq, cost_usd, cost_unknown, \
         last_message, metadata"
    };
}

/// How long a [`SessionCursor`] stays valid. The history that lets a listing keep its
/// order is kept a little longer than this.
const CURSOR_LIFETIME_MS: i64 = 60 * 60 * 1000;
const MOVES_KEPT_MS: i64 = 2 * CURSOR_LIFETIME_MS;

/// Page size when [`SessionFilter::limit`] is 0, and the largest page served.
const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 500;

/// Longest `last_message` preview, in characters.
const PREVIEW_CHARS: usize = 160;

/// A session as stored: its summary row. The event log holds everything else.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Session {
    pub id: SessionId,
    pub title: Option<String>,
    pub status: SessionStatus,
    /// The repository the session works on, e.g. `owner/name`.
    pub repository: Option<String>,
    pub model: String,
    /// Where the session was started: "cli", "web", "slack", ...
    pub channel: String,
    pub created_ms: i64,
    /// When anything about the session last changed. Never decreases.
    pub updated_ms: i64,
    /// The seq of the newest event; 0 before the first.
    pub last_seq: u64,
    /// Sum of the known costs of the session's model requests, in dollars.
    pub cost_usd: f64,
    /// Some request had no known price: `cost_usd` is then a lower bound.
    pub cost_unknown: bool,
    /// A short preview of the newest message, for lists.
    pub last_message: Option<String>,
    /// A JSON object for channel bindings (Slack thread, GitHub issue, ...).
    pub metadata: Value,
}

/// What [`Store::create_session`] needs.
#[derive(Debug, Clone, Default)]
pub struct NewSession {
    /// A chosen id (see [`SessionId::parse`]); a new one when `None`.
    pub id: Option<SessionId>,
    pub title: Option<String>,
    pub repository: Option<String>,
    pub model: String,
    pub channel: String,
}

/// Changes for [`Store::update_session`]: only the `Some` fields change.
///
/// Status and title changes that belong in the session's history should be appended as
/// `StatusChanged` / `TitleChanged` events instead, which update the row as well.
#[derive(Debug, Clone, Default)]
pub struct SessionUpdate {
    pub title: Option<String>,
    pub status: Option<SessionStatus>,
    pub repository: Option<String>,
    pub last_message: Option<String>,
    /// Replaces the whole metadata object.
    pub metadata: Option<Value>,
}

impl SessionUpdate {
    fn is_empty(&self) -> bool {
        self.title.is_none()
            && self.status.is_none()
            && self.repository.is_none()
            && self.last_message.is_none()
            && self.metadata.is_none()
    }
}

/// Which sessions [`Store::list_sessions`] returns.
#[derive(Debug, Clone, Default)]
pub struct SessionFilter {
    pub status: Option<SessionStatus>,
    pub channel: Option<String>,
    /// Page size; 0 means 50. At most 500.
    pub limit: u32,
    /// The `next_cursor` of the previous page; `None` for the first page.
    pub before: Option<SessionCursor>,
}

/// One page of sessions, most recently updated first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SessionPage {
    pub sessions: Vec<Session>,
    /// Pass as [`SessionFilter::before`] for the next page; `None` on the last page.
    pub next_cursor: Option<SessionCursor>,
}

/// Where a listing stopped. Opaque: hand it back unchanged. Valid for an hour.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(transparent)]
pub struct SessionCursor(String);

impl SessionCursor {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn new(position: &ListPosition) -> Self {
        SessionCursor(format!("{}.{}.{}", position.horizon, position.key, position.started_ms))
    }

    fn position(&self) -> Result<ListPosition, StoreError> {
        let invalid =
            || StoreError::InvalidCursor(format!("the listing cursor {:?} is not one this store issued", self.0));
        let mut parts = self.0.split('.').map(|part| part.parse::<i64>().map_err(|_| invalid()));
        let (Some(horizon), Some(key), Some(started_ms), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid());
        };
        Ok(ListPosition { horizon: horizon?, key: key?, started_ms: started_ms? })
    }
}

impl From<String> for SessionCursor {
    fn from(text: String) -> Self {
        SessionCursor(text)
    }
}

impl std::fmt::Display for SessionCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A listing's place: the newest list key when it began (`horizon`), the list key the
/// last session served had at that moment (`key`), and when it began.
struct ListPosition {
    horizon: i64,
    key: i64,
    started_ms: i64,
}

impl Store {
    /// Creates a session (status `idle`, no events yet).
    pub async fn create_session(&self, new: NewSession) -> Result<Session, StoreError> {
        let id = new.id.clone().unwrap_or_default();
        self.write("create a session", |tx| create_session(tx, &id, &new)).await
    }

    /// The session, or `None` when there is none with this id.
    pub async fn session(&self, id: &SessionId) -> Result<Option<Session>, StoreError> {
        let row = sqlx::query(concat!("SELECT ", session_columns!(), " FROM sessions WHERE id = ?1"))
            .bind(id.as_str())
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(session_from_row).transpose()
    }

    /// Sessions, most recently updated first, a page at a time.
    ///
    /// What a walk through the pages guarantees, while sessions change between pages:
    ///
    /// - The order is the order of the moment the first page was read. A session that is
    ///   updated during the walk keeps its place in the walk (it is not served twice, and
    ///   not skipped), and is served with its current contents.
    /// - Every session that existed when the first page was read, and still exists when
    ///   its page is read, is served exactly once.
    /// - Sessions created after the first page are not part of the walk; a new walk shows
    ///   them first. Sessions deleted before their page are not served.
    /// - `status` and `channel` filter on the values a session has when its page is read.
    ///
    /// A cursor older than an hour is refused with [`StoreError::InvalidCursor`].
    pub async fn list_sessions(&self, filter: SessionFilter) -> Result<SessionPage, StoreError> {
        let limit = match filter.limit {
            0 => DEFAULT_PAGE,
            n => n.min(MAX_PAGE),
        };
        let status = filter.status.map(SessionStatus::as_str);
        let channel = filter.channel.as_deref();
        let fetch = i64::from(limit) + 1;

        let (rows, horizon, started_ms) = match &filter.before {
            None => {
                let started_ms = now_ms();
                // One statement, so the horizon and the page come from the same snapshot.
                let rows = sqlx::query(concat!(
                    "SELECT ",
                    session_columns!(),
                    ", list_key AS walk_key, (SELECT COALESCE(MAX(list_key), 0) FROM sessions) AS horizon
                     FROM sessions
                     WHERE (?1 IS NULL OR status = ?1) AND (?2 IS NULL OR channel = ?2)
                     ORDER BY list_key DESC LIMIT ?3"
                ))
                .bind(status)
                .bind(channel)
                .bind(fetch)
                .fetch_all(&self.reader)
                .await?;
                let horizon = match rows.first() {
                    Some(row) => row.try_get::<i64, _>("horizon")?,
                    None => 0,
                };
                (rows, horizon, started_ms)
            }
            Some(cursor) => {
                let position = cursor.position()?;
                if now_ms().saturating_sub(position.started_ms) > CURSOR_LIFETIME_MS {
                    return Err(StoreError::InvalidCursor("the listing cursor is more than an hour old".to_string()));
                }
                // Sessions unchanged since the walk began sit at their current key. A
                // session changed since then sits at the key it had then: the `prev_key`
                // of its first move after the horizon (NULL when that move created it).
                let rows = sqlx::query(concat!(
                    "SELECT * FROM (
                        SELECT * FROM (
                            SELECT ",
                    session_columns!(),
                    ", list_key AS walk_key FROM sessions
                            WHERE list_key <= ?1 AND list_key < ?2
                              AND (?3 IS NULL OR status = ?3) AND (?4 IS NULL OR channel = ?4)
                            ORDER BY list_key DESC LIMIT ?5
                        )
                        UNION ALL
                        SELECT ",
                    session_columns!(),
                    ", (SELECT m.prev_key FROM session_moves m
                            WHERE m.session_id = sessions.id AND m.list_key > ?1
                            ORDER BY m.list_key LIMIT 1) AS walk_key
                        FROM sessions
                        WHERE list_key > ?1 AND (?3 IS NULL OR status = ?3) AND (?4 IS NULL OR channel = ?4)
                    )
                    WHERE walk_key IS NOT NULL AND walk_key < ?2
                    ORDER BY walk_key DESC LIMIT ?5"
                ))
                .bind(position.horizon)
                .bind(position.key)
                .bind(status)
                .bind(channel)
                .bind(fetch)
                .fetch_all(&self.reader)
                .await?;
                (rows, position.horizon, position.started_ms)
            }
        };

        let more = rows.len() > limit as usize;
        let mut sessions = Vec::with_capacity(rows.len().min(limit as usize));
        let mut last_key = None;
        for row in rows.iter().take(limit as usize) {
            sessions.push(session_from_row(row)?);
            last_key = Some(row.try_get::<i64, _>("walk_key")?);
        }
        let next_cursor = match (more, last_key) {
            (true, Some(key)) => Some(SessionCursor::new(&ListPosition { horizon, key, started_ms })),
            _ => None,
        };
        Ok(SessionPage { sessions, next_cursor })
    }

    /// Changes the `Some` fields of `update` and returns the session as it now is.
    pub async fn update_session(&self, id: &SessionId, update: SessionUpdate) -> Result<Session, StoreError> {
        if update.is_empty() {
            return self.session(id).await?.ok_or_else(|| StoreError::session_not_found(id));
        }
        let metadata = match &update.metadata {
            Some(value @ Value::Object(_)) => Some(value.to_string()),
            Some(_) => {
                return Err(StoreError::Invalid(
                    "session metadata must be a JSON object, e.g. {\"slack\": {…}}".to_string(),
                ));
            }
            None => None,
        };
        let last_message = update.last_message.as_deref().map(preview);
        let update = &update;
        let metadata = metadata.as_deref();
        let last_message = last_message.as_deref();
        self.write("update a session", |mut tx| async move {
            let now = now_ms();
            let list_key = move_session(&mut tx, id, now).await?;
            let row = sqlx::query(concat!(
                "UPDATE sessions SET
                    title = COALESCE(?2, title),
                    status = COALESCE(?3, status),
                    repository = COALESCE(?4, repository),
                    last_message = COALESCE(?5, last_message),
                    metadata = COALESCE(?6, metadata),
                    updated_ms = MAX(updated_ms, ?7),
                    list_key = ?8
                 WHERE id = ?1 RETURNING ",
                session_columns!()
            ))
            .bind(id.as_str())
            .bind(update.title.as_deref())
            .bind(update.status.map(SessionStatus::as_str))
            .bind(update.repository.as_deref())
            .bind(last_message)
            .bind(metadata)
            .bind(now)
            .bind(list_key)
            .fetch_one(&mut *tx)
            .await?;
            let session = session_from_row(&row)?;
            tx.commit().await?;
            Ok(session)
        })
        .await
    }

    /// Sessions that are neither working nor stopped but whose newest event is a person's
    /// message: the message arrived and nothing answered it yet.
    pub async fn sessions_with_unanswered_message(&self) -> Result<Vec<SessionId>, StoreError> {
        let rows = sqlx::query(
            "SELECT s.id AS id FROM sessions s JOIN events e ON e.session_id = s.id AND e.seq = s.last_seq
              WHERE s.status NOT IN ('working', 'stopped') AND e.type = 'user_message'",
        )
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|row| {
                let id: String = row.try_get("id")?;
                parse_session_id("sessions", &id)
            })
            .collect()
    }

    /// How many sessions have each status; statuses without sessions are left out.
    pub async fn count_sessions_by_status(&self) -> Result<Vec<(SessionStatus, u64)>, StoreError> {
        let rows = sqlx::query("SELECT status, COUNT(*) AS n FROM sessions GROUP BY status ORDER BY status")
            .fetch_all(&self.reader)
            .await?;
        rows.iter()
            .map(|row| {
                let status: String = row.try_get("status")?;
                let count: i64 = row.try_get("n")?;
                let status = parse_status(&status)
                    .ok_or_else(|| StoreError::Corrupt(format!("the sessions table holds a status {status:?}")))?;
                Ok((status, u64::try_from(count).unwrap_or(0)))
            })
            .collect()
    }

    /// Deletes the session with its events and usage. Nothing of other sessions changes.
    pub async fn delete_session(&self, id: &SessionId) -> Result<(), StoreError> {
        self.write("delete a session", |mut tx| async move {
            sqlx::query("DELETE FROM usage WHERE session_id = ?1").bind(id.as_str()).execute(&mut *tx).await?;
            sqlx::query("DELETE FROM events WHERE session_id = ?1").bind(id.as_str()).execute(&mut *tx).await?;
            sqlx::query("DELETE FROM session_moves WHERE session_id = ?1").bind(id.as_str()).execute(&mut *tx).await?;
            let deleted = sqlx::query("DELETE FROM sessions WHERE id = ?1").bind(id.as_str()).execute(&mut *tx).await?;
            if deleted.rows_affected() == 0 {
                return Err(StoreError::session_not_found(id));
            }
            tx.commit().await?;
            Ok(())
        })
        .await?;
        tracing::debug!(session = %id, "deleted the session");
        Ok(())
    }
}

async fn create_session(
    mut tx: Transaction<'static, Sqlite>,
    id: &SessionId,
    new: &NewSession,
) -> Result<Session, StoreError> {
    let now = now_ms();
    let inserted = sqlx::query(
        "INSERT INTO sessions (id, title, status, repository, model, channel, created_ms, updated_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(id.as_str())
    .bind(new.title.as_deref())
    .bind(SessionStatus::Idle.as_str())
    .bind(new.repository.as_deref())
    .bind(new.model.as_str())
    .bind(new.channel.as_str())
    .bind(now)
    .execute(&mut *tx)
    .await?;
    if inserted.rows_affected() == 0 {
        return Err(StoreError::AlreadyExists(format!("session {id}")));
    }
    let list_key: i64 = sqlx::query_scalar(
        "INSERT INTO session_moves (session_id, prev_key, at_ms) VALUES (?1, NULL, ?2) RETURNING list_key",
    )
    .bind(id.as_str())
    .bind(now)
    .fetch_one(&mut *tx)
    .await?;
    let row = sqlx::query(concat!("UPDATE sessions SET list_key = ?2 WHERE id = ?1 RETURNING ", session_columns!()))
        .bind(id.as_str())
        .bind(list_key)
        .fetch_one(&mut *tx)
        .await?;
    let session = session_from_row(&row)?;
    prune_moves(&mut tx, now).await?;
    tx.commit().await?;
    tracing::debug!(session = %id, channel = %new.channel, "created a session");
    Ok(session)
}

/// Gives the session a new, highest list key (it becomes the most recently updated),
/// remembering the old one for listings under way. The caller stores the returned key in
/// `sessions.list_key` within the same transaction.
pub(crate) async fn move_session(conn: &mut SqliteConnection, id: &SessionId, now: i64) -> Result<i64, StoreError> {
    sqlx::query_scalar(
        "INSERT INTO session_moves (session_id, prev_key, at_ms)
         SELECT id, list_key, ?2 FROM sessions WHERE id = ?1
         RETURNING list_key",
    )
    .bind(id.as_str())
    .bind(now)
    .fetch_optional(conn)
    .await?
    .ok_or_else(|| StoreError::session_not_found(id))
}

/// Forgets the listing history older than any valid cursor: it is no longer needed.
pub(crate) async fn prune_moves(conn: &mut SqliteConnection, now: i64) -> Result<(), StoreError> {
    let pruned = sqlx::query("DELETE FROM session_moves WHERE at_ms < ?1")
        .bind(now.saturating_sub(MOVES_KEPT_MS))
        .execute(conn)
        .await?;
    if pruned.rows_affected() > 0 {
        tracing::debug!(rows = pruned.rows_affected(), "pruned the session listing history");
    }
    Ok(())
}

pub(crate) fn session_from_row(row: &SqliteRow) -> Result<Session, StoreError> {
    let id: String = row.try_get("id")?;
    let status: String = row.try_get("status")?;
    let metadata: String = row.try_get("metadata")?;
    let last_seq: i64 = row.try_get("last_seq")?;
    Ok(Session {
        status: parse_status(&status).ok_or_else(|| {
            StoreError::Corrupt(format!("session {id} has a status this rswe does not know: {status:?} — upgrade rswe"))
        })?,
        metadata: serde_json::from_str(&metadata)
            .map_err(|error| StoreError::Corrupt(format!("session {id} has unreadable metadata: {error}")))?,
        last_seq: u64::try_from(last_seq)
            .map_err(|_| StoreError::Corrupt(format!("session {id} has a negative last_seq {last_seq}")))?,
        title: row.try_get("title")?,
        repository: row.try_get("repository")?,
        model: row.try_get("model")?,
        channel: row.try_get("channel")?,
        created_ms: row.try_get("created_ms")?,
        updated_ms: row.try_get("updated_ms")?,
        cost_usd: row.try_get("cost_usd")?,
        cost_unknown: row.try_get("cost_unknown")?,
        last_message: row.try_get("last_message")?,
        id: parse_session_id("sessions", &id)?,
    })
}

/// A session id read from `table`; a malformed one means the database is corrupt.
pub(crate) fn parse_session_id(table: &str, id: &str) -> Result<SessionId, StoreError> {
    SessionId::parse(id).ok_or_else(|| StoreError::Corrupt(format!("the {table} table holds an invalid id {id:?}")))
}

fn parse_status(text: &str) -> Option<SessionStatus> {
    SessionStatus::parse(text)
}

/// A one-line preview of a message: whitespace collapsed, at most [`PREVIEW_CHARS`]
/// characters, an ellipsis when cut.
pub(crate) fn preview(text: &str) -> String {
    let mut out = String::new();
    let mut chars = 0;
    for word in text.split_whitespace() {
        for c in (!out.is_empty()).then_some(' ').into_iter().chain(word.chars()) {
            if chars == PREVIEW_CHARS {
                out.push('…');
                return out;
            }
            out.push(c);
            chars += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn previews_are_one_short_line() {
        assert_eq!(preview("  hello\n\n  world\t!  "), "hello world !");
        let long = "é".repeat(500);
        let cut = preview(&long);
        assert_eq!(cut.chars().count(), PREVIEW_CHARS + 1);
        assert!(cut.ends_with('…'));
        assert_eq!(preview(&"a".repeat(PREVIEW_CHARS)), "a".repeat(PREVIEW_CHARS));
    }

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let cursor = SessionCursor::new(&ListPosition { horizon: 7, key: 3, started_ms: 1_700_000_000_000 });
        let position = cursor.position().unwrap();
        assert_eq!((position.horizon, position.key, position.started_ms), (7, 3, 1_700_000_000_000));
        for garbage in ["", "1.2", "1.2.3.4", "a.b.c"] {
            assert!(matches!(SessionCursor::from(garbage.to_string()).position(), Err(StoreError::InvalidCursor(_))));
        }
    }

    #[tokio::test]
    async fn old_cursors_are_refused() {
        let store = Store::open_in_memory().await.unwrap();
        let started_ms = now_ms() - CURSOR_LIFETIME_MS - 1;
        let cursor = SessionCursor::new(&ListPosition { horizon: 1, key: 1, started_ms });
        let error =
            store.list_sessions(SessionFilter { before: Some(cursor), ..Default::default() }).await.unwrap_err();
        assert_eq!(error.to_string(), "the listing cursor is more than an hour old — list again from the first page");
    }
}
