//! API keys and browser sessions for `rswe serve`. The store keeps only hashes of the
//! secrets; making, hashing and comparing them is the server's business.

use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use crate::error::StoreError;
use crate::store::{Store, now_ms};

/// How often, at most, [`Store::touch_api_key`] records a key's use.
const TOUCH_INTERVAL_MS: i64 = 60_000;

/// An API key as stored: never the key itself, only its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    /// The key's public part, used to find it.
    pub id: String,
    /// What the key is for, e.g. "ci".
    pub name: String,
    /// The hash of the whole key, as the server made it.
    pub key_hash: Vec<u8>,
    pub created_ms: i64,
    /// When the key was last used (recorded at most about once a minute).
    pub last_used_ms: Option<i64>,
    /// When the key was revoked; a revoked key must never be accepted.
    pub revoked_ms: Option<i64>,
}

/// A signed-in browser.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebSession {
    /// The hash of the session cookie's value.
    pub id_hash: Vec<u8>,
    /// The token the session's state-changing requests must carry.
    pub csrf: String,
    pub created_ms: i64,
    pub expires_ms: i64,
    /// The API key the browser signed in with; `None` for the one-time sign-in link.
    pub key_id: Option<String>,
}

/// What [`Store::create_web_session`] needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWebSession<'a> {
    pub id_hash: &'a [u8],
    pub csrf: &'a str,
    pub expires_ms: i64,
    pub key_id: Option<&'a str>,
}

/// The columns of an `api_keys` row, as [`key_from_row`] reads them.
macro_rules! key_columns {
    () => {
        "id, name, key_hash, created_ms, last_used_ms, revoked_ms"
    };
}

/// The columns of a `web_sessions` row, as [`session_from_row`] reads them.
macro_rules! session_columns {
    () => {
        "id_hash, csrf, created_ms, expires_ms, key_id"
    };
}

impl Store {
    /// Stores a new API key. `id` must be new: [`StoreError::AlreadyExists`] otherwise.
    pub async fn create_api_key(&self, id: &str, name: &str, key_hash: &[u8]) -> Result<ApiKey, StoreError> {
        if id.is_empty() {
            return Err(StoreError::Invalid("an API key needs a non-empty id".into()));
        }
        let key = ApiKey {
            id: id.to_string(),
            name: name.to_string(),
            key_hash: key_hash.to_vec(),
            created_ms: now_ms(),
            last_used_ms: None,
            revoked_ms: None,
        };
        self.write("create an API key", |mut tx| {
            let key = &key;
            async move {
                let inserted = sqlx::query(
                    "INSERT INTO api_keys (id, name, key_hash, created_ms) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (id) DO NOTHING",
                )
                .bind(&key.id)
                .bind(&key.name)
                .bind(&key.key_hash)
                .bind(key.created_ms)
                .execute(&mut *tx)
                .await?;
                if inserted.rows_affected() == 0 {
                    return Err(StoreError::AlreadyExists(format!("API key {}", key.id)));
                }
                tx.commit().await?;
                Ok(())
            }
        })
        .await?;
        Ok(key)
    }

    /// The key with this id, revoked or not, or `None` when there is none.
    pub async fn api_key(&self, id: &str) -> Result<Option<ApiKey>, StoreError> {
        let row = sqlx::query(concat!("SELECT ", key_columns!(), " FROM api_keys WHERE id = ?1"))
            .bind(id)
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(key_from_row).transpose()
    }

    /// The keys not revoked, newest first.
    pub async fn list_api_keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            key_columns!(),
            " FROM api_keys WHERE revoked_ms IS NULL ORDER BY created_ms DESC, rowid DESC"
        ))
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(key_from_row).collect()
    }

    /// How many keys are not revoked.
    pub async fn count_api_keys(&self) -> Result<u64, StoreError> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM api_keys WHERE revoked_ms IS NULL")
            .fetch_one(&self.reader)
            .await?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    /// Revokes the key and ends the browser sessions signed in with it. `false` when
    /// there is no such key or it was revoked already.
    pub async fn revoke_api_key(&self, id: &str) -> Result<bool, StoreError> {
        self.write("revoke an API key", |mut tx| async move {
            let revoked = sqlx::query("UPDATE api_keys SET revoked_ms = ?2 WHERE id = ?1 AND revoked_ms IS NULL")
                .bind(id)
                .bind(now_ms())
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM web_sessions WHERE key_id = ?1").bind(id).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(revoked.rows_affected() == 1)
        })
        .await
    }

    /// Records that the key was used at `now_ms`, unless its use was recorded less than a
    /// minute before. `true` when it wrote.
    pub async fn touch_api_key(&self, id: &str, now_ms: i64) -> Result<bool, StoreError> {
        self.write("record an API key's use", |mut tx| async move {
            let updated = sqlx::query(
                "UPDATE api_keys SET last_used_ms = ?2
                 WHERE id = ?1 AND (last_used_ms IS NULL OR last_used_ms <= ?2 - ?3)",
            )
            .bind(id)
            .bind(now_ms)
            .bind(TOUCH_INTERVAL_MS)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(updated.rows_affected() == 1)
        })
        .await
    }

    /// Stores a new browser session.
    pub async fn create_web_session(&self, new: NewWebSession<'_>) -> Result<WebSession, StoreError> {
        let session = WebSession {
            id_hash: new.id_hash.to_vec(),
            csrf: new.csrf.to_string(),
            created_ms: now_ms(),
            expires_ms: new.expires_ms,
            key_id: new.key_id.map(str::to_string),
        };
        self.write("create a browser session", |mut tx| {
            let session = &session;
            async move {
                let inserted = sqlx::query(
                    "INSERT INTO web_sessions (id_hash, csrf, created_ms, expires_ms, key_id)
                     VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (id_hash) DO NOTHING",
                )
                .bind(&session.id_hash)
                .bind(&session.csrf)
                .bind(session.created_ms)
                .bind(session.expires_ms)
                .bind(&session.key_id)
                .execute(&mut *tx)
                .await?;
                if inserted.rows_affected() == 0 {
                    return Err(StoreError::AlreadyExists("a browser session with that cookie".into()));
                }
                tx.commit().await?;
                Ok(())
            }
        })
        .await?;
        Ok(session)
    }

    /// The browser session whose cookie hashes to `id_hash`, or `None` when there is none,
    /// it expired, or the key it signed in with was revoked.
    pub async fn web_session(&self, id_hash: &[u8]) -> Result<Option<WebSession>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            session_columns!(),
            " FROM web_sessions WHERE id_hash = ?1 AND expires_ms > ?2
               AND (key_id IS NULL OR key_id IN (SELECT id FROM api_keys WHERE revoked_ms IS NULL))"
        ))
        .bind(id_hash)
        .bind(now_ms())
        .fetch_optional(&self.reader)
        .await?;
        row.as_ref().map(session_from_row).transpose()
    }

    /// Ends a browser session. `false` when there was none.
    pub async fn delete_web_session(&self, id_hash: &[u8]) -> Result<bool, StoreError> {
        self.write("delete a browser session", |mut tx| async move {
            let deleted =
                sqlx::query("DELETE FROM web_sessions WHERE id_hash = ?1").bind(id_hash).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(deleted.rows_affected() == 1)
        })
        .await
    }

    /// Forgets the browser sessions that expired at or before `now_ms`, and says how many.
    pub async fn prune_web_sessions(&self, now_ms: i64) -> Result<u64, StoreError> {
        self.write("prune browser sessions", |mut tx| async move {
            let deleted =
                sqlx::query("DELETE FROM web_sessions WHERE expires_ms <= ?1").bind(now_ms).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(deleted.rows_affected())
        })
        .await
    }
}

fn key_from_row(row: &SqliteRow) -> Result<ApiKey, StoreError> {
    Ok(ApiKey {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        key_hash: row.try_get("key_hash")?,
        created_ms: row.try_get("created_ms")?,
        last_used_ms: row.try_get("last_used_ms")?,
        revoked_ms: row.try_get("revoked_ms")?,
    })
}

fn session_from_row(row: &SqliteRow) -> Result<WebSession, StoreError> {
    Ok(WebSession {
        id_hash: row.try_get("id_hash")?,
        csrf: row.try_get("csrf")?,
        created_ms: row.try_get("created_ms")?,
        expires_ms: row.try_get("expires_ms")?,
        key_id: row.try_get("key_id")?,
    })
}
