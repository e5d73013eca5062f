//! What the GitHub channel keeps: webhook deliveries until handled, the issues and pull
//! requests bound to sessions, and where each session's answers go with how far they
//! were posted.

use rswe_protocol::SessionId;
use sqlx::Row;

use crate::error::StoreError;
use crate::store::{Store, now_ms};

/// A webhook delivery received and not yet handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitHubInboxItem {
    /// GitHub's delivery id (`X-GitHub-Delivery`).
    pub delivery_id: String,
    /// The `X-GitHub-Event` header.
    pub event: String,
    /// The JSON payload.
    pub payload: String,
}

/// An issue or a pull request bound to a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitHubItem {
    /// Lowercase `owner/name`.
    pub repo: String,
    pub number: u64,
    /// Whether this item started the session.
    pub origin: bool,
}

/// Where a session's answers go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitHubReplyTarget {
    pub session_id: SessionId,
    /// Lowercase `owner/name`.
    pub repo: String,
    pub number: u64,
    /// The last event of the session posted there, or passed over.
    pub delivered_seq: u64,
}

fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn to_u64(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

impl Store {
    /// Records a delivery; `false` when it was received before (a redelivery), which must
    /// then be ignored.
    pub async fn github_receive(&self, delivery_id: &str, event: &str, payload: &str) -> Result<bool, StoreError> {
        self.write("record a GitHub delivery", |mut tx| async move {
            let inserted = sqlx::query(
                "INSERT INTO github_inbox (delivery_id, event, payload, received_ms) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (delivery_id) DO NOTHING",
            )
            .bind(delivery_id)
            .bind(event)
            .bind(payload)
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(inserted.rows_affected() == 1)
        })
        .await
    }

    /// Marks a delivery handled.
    pub async fn github_handled(&self, delivery_id: &str) -> Result<(), StoreError> {
        self.write("mark a GitHub delivery handled", |mut tx| async move {
            sqlx::query("UPDATE github_inbox SET handled_ms = ?2 WHERE delivery_id = ?1")
                .bind(delivery_id)
                .bind(now_ms())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    /// Deliveries received and not handled (a crash came between), oldest first.
    pub async fn github_pending(&self, limit: u32) -> Result<Vec<GitHubInboxItem>, StoreError> {
        let rows = sqlx::query(
            "SELECT delivery_id, event, payload FROM github_inbox WHERE handled_ms IS NULL
             ORDER BY received_ms, delivery_id LIMIT ?1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(GitHubInboxItem { delivery_id: row.try_get(0)?, event: row.try_get(1)?, payload: row.try_get(2)? })
            })
            .collect()
    }

    /// Forgets handled deliveries older than `days`; how many went.
    pub async fn github_prune(&self, days: u32) -> Result<u64, StoreError> {
        let before = now_ms() - i64::from(days) * 24 * 3600 * 1000;
        self.write("prune old GitHub deliveries", |mut tx| async move {
            let pruned = sqlx::query("DELETE FROM github_inbox WHERE handled_ms IS NOT NULL AND received_ms <= ?1")
                .bind(before)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(pruned.rows_affected())
        })
        .await
    }

    /// Binds an issue or a pull request (`owner/name`, any case) to a session; an item
    /// bound before follows the new session.
    pub async fn github_bind_item(
        &self,
        repo: &str,
        number: u64,
        session: &SessionId,
        origin: bool,
    ) -> Result<(), StoreError> {
        let repo = repo.to_ascii_lowercase();
        let repo = repo.as_str();
        self.write("bind a GitHub item", |mut tx| async move {
            sqlx::query(
                "INSERT INTO github_items (repo, number, session_id, origin, created_ms) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (repo, number) DO UPDATE SET session_id = ?3, origin = ?4",
            )
            .bind(repo)
            .bind(to_i64(number))
            .bind(session.as_str())
            .bind(i64::from(origin))
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    /// The session an issue or a pull request is bound to.
    pub async fn github_item_session(&self, repo: &str, number: u64) -> Result<Option<SessionId>, StoreError> {
        let session: Option<String> =
            sqlx::query_scalar("SELECT session_id FROM github_items WHERE repo = ?1 AND number = ?2")
                .bind(repo.to_ascii_lowercase())
                .bind(to_i64(number))
                .fetch_optional(&self.reader)
                .await?;
        session.map(|id| crate::session::parse_session_id("github_items", &id)).transpose()
    }

    /// The items bound to a session, in the order they were bound.
    pub async fn github_items_of(&self, session: &SessionId) -> Result<Vec<GitHubItem>, StoreError> {
        let rows = sqlx::query(
            "SELECT repo, number, origin FROM github_items WHERE session_id = ?1 ORDER BY created_ms, repo, number",
        )
        .bind(session.as_str())
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(item_from_row).collect()
    }

    /// The item that started a session, if one did.
    pub async fn github_origin(&self, session: &SessionId) -> Result<Option<GitHubItem>, StoreError> {
        let row = sqlx::query(
            "SELECT repo, number, origin FROM github_items WHERE session_id = ?1 AND origin = 1
             ORDER BY created_ms LIMIT 1",
        )
        .bind(session.as_str())
        .fetch_optional(&self.reader)
        .await?;
        row.as_ref().map(item_from_row).transpose()
    }

    /// Makes an item where the session's answers go. A new target is told from
    /// `delivered_seq` on; the current target again keeps how far it was told.
    pub async fn github_reply_to(
        &self,
        session: &SessionId,
        repo: &str,
        number: u64,
        delivered_seq: u64,
    ) -> Result<(), StoreError> {
        let repo = repo.to_ascii_lowercase();
        let repo = repo.as_str();
        self.write("set where a session answers on GitHub", |mut tx| async move {
            sqlx::query(
                "INSERT INTO github_replies (session_id, repo, number, delivered_seq) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (session_id) DO UPDATE SET
                     delivered_seq = CASE WHEN repo = ?2 AND number = ?3 THEN delivered_seq ELSE ?4 END,
                     repo = ?2,
                     number = ?3",
            )
            .bind(session.as_str())
            .bind(repo)
            .bind(to_i64(number))
            .bind(to_i64(delivered_seq))
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    /// Where a session's answers go, if anywhere.
    pub async fn github_reply_target(&self, session: &SessionId) -> Result<Option<GitHubReplyTarget>, StoreError> {
        let row =
            sqlx::query("SELECT session_id, repo, number, delivered_seq FROM github_replies WHERE session_id = ?1")
                .bind(session.as_str())
                .fetch_optional(&self.reader)
                .await?;
        row.as_ref().map(target_from_row).transpose()
    }

    /// Every session's reply target (to catch up after a restart).
    pub async fn github_all_reply_targets(&self) -> Result<Vec<GitHubReplyTarget>, StoreError> {
        let rows = sqlx::query("SELECT session_id, repo, number, delivered_seq FROM github_replies")
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(target_from_row).collect()
    }

    /// Records how far the session's reply target was told (never backwards); `false`
    /// when the session has no reply target.
    pub async fn github_delivered(&self, session: &SessionId, seq: u64) -> Result<bool, StoreError> {
        self.write("record a GitHub delivery", |mut tx| async move {
            let updated =
                sqlx::query("UPDATE github_replies SET delivered_seq = MAX(delivered_seq, ?2) WHERE session_id = ?1")
                    .bind(session.as_str())
                    .bind(to_i64(seq))
                    .execute(&mut *tx)
                    .await?;
            tx.commit().await?;
            Ok(updated.rows_affected() == 1)
        })
        .await
    }
}

fn item_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<GitHubItem, StoreError> {
    let number: i64 = row.try_get(1)?;
    let origin: i64 = row.try_get(2)?;
    Ok(GitHubItem { repo: row.try_get(0)?, number: to_u64(number), origin: origin != 0 })
}

fn target_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<GitHubReplyTarget, StoreError> {
    let session: String = row.try_get(0)?;
    let number: i64 = row.try_get(2)?;
    let seq: i64 = row.try_get(3)?;
    Ok(GitHubReplyTarget {
        session_id: crate::session::parse_session_id("github_replies", &session)?,
        repo: row.try_get(1)?,
        number: to_u64(number),
        delivered_seq: to_u64(seq),
    })
}
