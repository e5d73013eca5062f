//! What the Slack channel keeps: received messages until handled, threads bound to
//! sessions with how far each was told, approved people, and things said once.

use rswe_protocol::SessionId;
use sqlx::Row;

use crate::error::StoreError;
use crate::store::{Store, now_ms};

/// A Slack message received and not yet handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlackInboxItem {
    /// `<channel>/<ts>`.
    pub key: String,
    /// The event JSON.
    pub event: String,
}

/// A thread bound to a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlackThread {
    pub channel: String,
    pub thread_ts: String,
    pub session_id: SessionId,
    /// The last event of the session posted to the thread, or passed over.
    pub delivered_seq: u64,
}

impl Store {
    /// Records a received message; `false` when it was received before (a retry, or the
    /// other event of the same message), which must then be ignored.
    pub async fn slack_receive(&self, key: &str, event: &str) -> Result<bool, StoreError> {
        self.write("record a Slack message", |mut tx| async move {
            let inserted = sqlx::query(
                "INSERT INTO slack_inbox (key, event, received_ms) VALUES (?1, ?2, ?3) ON CONFLICT (key) DO NOTHING",
            )
            .bind(key)
            .bind(event)
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(inserted.rows_affected() == 1)
        })
        .await
    }

    /// Marks a received message handled.
    pub async fn slack_handled(&self, key: &str) -> Result<(), StoreError> {
        self.write("mark a Slack message handled", |mut tx| async move {
            sqlx::query("UPDATE slack_inbox SET handled_ms = ?2 WHERE key = ?1")
                .bind(key)
                .bind(now_ms())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    /// Forgets handled messages, and notices said, older than `days`; how many rows went.
    pub async fn slack_prune(&self, days: u32) -> Result<u64, StoreError> {
        let before = now_ms() - i64::from(days) * 24 * 3600 * 1000;
        self.write("prune old Slack messages", |mut tx| async move {
            let inbox = sqlx::query("DELETE FROM slack_inbox WHERE handled_ms IS NOT NULL AND received_ms <= ?1")
                .bind(before)
                .execute(&mut *tx)
                .await?;
            let said =
                sqlx::query("DELETE FROM slack_said WHERE created_ms <= ?1").bind(before).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(inbox.rows_affected() + said.rows_affected())
        })
        .await
    }

    /// Messages received and not handled (a crash came between), oldest first.
    pub async fn slack_pending(&self, limit: u32) -> Result<Vec<SlackInboxItem>, StoreError> {
        let rows = sqlx::query(
            "SELECT key, event FROM slack_inbox WHERE handled_ms IS NULL ORDER BY received_ms, key LIMIT ?1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(|row| Ok(SlackInboxItem { key: row.try_get(0)?, event: row.try_get(1)? })).collect()
    }

    /// Binds a thread to a session, told from `delivered_seq` on; a thread bound before
    /// follows the new session.
    pub async fn slack_bind_thread(
        &self,
        channel: &str,
        thread_ts: &str,
        session: &SessionId,
        delivered_seq: u64,
    ) -> Result<(), StoreError> {
        let seq = i64::try_from(delivered_seq).unwrap_or(i64::MAX);
        self.write("bind a Slack thread", |mut tx| async move {
            sqlx::query(
                "INSERT INTO slack_threads (channel, thread_ts, session_id, delivered_seq, created_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (channel, thread_ts) DO UPDATE SET session_id = ?3, delivered_seq = ?4",
            )
            .bind(channel)
            .bind(thread_ts)
            .bind(session.as_str())
            .bind(seq)
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    /// The session a thread follows.
    pub async fn slack_thread(&self, channel: &str, thread_ts: &str) -> Result<Option<SlackThread>, StoreError> {
        let row = sqlx::query(
            "SELECT channel, thread_ts, session_id, delivered_seq FROM slack_threads WHERE channel = ?1 AND thread_ts = ?2",
        )
        .bind(channel)
        .bind(thread_ts)
        .fetch_optional(&self.reader)
        .await?;
        row.as_ref().map(thread_from_row).transpose()
    }

    /// The threads following a session.
    pub async fn slack_threads_of(&self, session: &SessionId) -> Result<Vec<SlackThread>, StoreError> {
        let rows = sqlx::query(
            "SELECT channel, thread_ts, session_id, delivered_seq FROM slack_threads WHERE session_id = ?1
             ORDER BY created_ms",
        )
        .bind(session.as_str())
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(thread_from_row).collect()
    }

    /// Every bound thread (to catch up after a restart).
    pub async fn slack_all_threads(&self) -> Result<Vec<SlackThread>, StoreError> {
        let rows = sqlx::query("SELECT channel, thread_ts, session_id, delivered_seq FROM slack_threads")
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(thread_from_row).collect()
    }

    /// Records how far a thread was told about `session`; `false` when the thread no
    /// longer follows that session (it was taken over), so its delivery must stop.
    pub async fn slack_delivered(
        &self,
        channel: &str,
        thread_ts: &str,
        session: &SessionId,
        seq: u64,
    ) -> Result<bool, StoreError> {
        let seq = i64::try_from(seq).unwrap_or(i64::MAX);
        self.write("record a Slack delivery", |mut tx| async move {
            let updated = sqlx::query(
                "UPDATE slack_threads SET delivered_seq = MAX(delivered_seq, ?4)
                 WHERE channel = ?1 AND thread_ts = ?2 AND session_id = ?3",
            )
            .bind(channel)
            .bind(thread_ts)
            .bind(session.as_str())
            .bind(seq)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(updated.rows_affected() == 1)
        })
        .await
    }

    /// Approves a person; `false` when they were approved already.
    pub async fn slack_approve(&self, user: &str, by: &str) -> Result<bool, StoreError> {
        self.write("approve a Slack user", |mut tx| async move {
            let inserted = sqlx::query(
                "INSERT INTO slack_approvals (user_id, approved_by, created_ms) VALUES (?1, ?2, ?3)
                 ON CONFLICT (user_id) DO NOTHING",
            )
            .bind(user)
            .bind(by)
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(inserted.rows_affected() == 1)
        })
        .await
    }

    /// Revokes a person's approval; `false` when they had none.
    pub async fn slack_revoke(&self, user: &str) -> Result<bool, StoreError> {
        self.write("revoke a Slack user", |mut tx| async move {
            let deleted =
                sqlx::query("DELETE FROM slack_approvals WHERE user_id = ?1").bind(user).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(deleted.rows_affected() == 1)
        })
        .await
    }

    pub async fn slack_is_approved(&self, user: &str) -> Result<bool, StoreError> {
        let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM slack_approvals WHERE user_id = ?1")
            .bind(user)
            .fetch_optional(&self.reader)
            .await?;
        Ok(found.is_some())
    }

    /// Records that something was said; `false` when it was said before.
    pub async fn slack_say_once(&self, key: &str) -> Result<bool, StoreError> {
        self.write("record a Slack notice", |mut tx| async move {
            let inserted =
                sqlx::query("INSERT INTO slack_said (key, created_ms) VALUES (?1, ?2) ON CONFLICT (key) DO NOTHING")
                    .bind(key)
                    .bind(now_ms())
                    .execute(&mut *tx)
                    .await?;
            tx.commit().await?;
            Ok(inserted.rows_affected() == 1)
        })
        .await
    }
}

fn thread_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<SlackThread, StoreError> {
    let session: String = row.try_get(2)?;
    let seq: i64 = row.try_get(3)?;
    Ok(SlackThread {
        channel: row.try_get(0)?,
        thread_ts: row.try_get(1)?,
        session_id: crate::session::parse_session_id("slack_threads", &session)?,
        delivered_seq: u64::try_from(seq).unwrap_or(0),
    })
}
