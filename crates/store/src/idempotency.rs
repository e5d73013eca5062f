use crate::error::StoreError;
use crate::store::{Store, now_ms};

impl Store {
    /// Claims `key` within `scope` (e.g. "slack-event", "github-delivery"): `true` the
    /// first time, `false` ever after, also when several callers claim it at once. Handle
    /// the request only when the claim returns `true`.
    pub async fn claim_idempotency_key(&self, scope: &str, key: &str) -> Result<bool, StoreError> {
        self.write("claim an idempotency key", |mut tx| async move {
            let inserted = sqlx::query(
                "INSERT INTO idempotency_keys (scope, key, created_ms) VALUES (?1, ?2, ?3)
                 ON CONFLICT (scope, key) DO NOTHING",
            )
            .bind(scope)
            .bind(key)
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(inserted.rows_affected() == 1)
        })
        .await
    }

    /// Forgets the idempotency keys claimed before `before_ms`, in every scope, and says
    /// how many. A forgotten key can be claimed again.
    pub async fn prune_idempotency_keys(&self, before_ms: i64) -> Result<u64, StoreError> {
        self.write("prune idempotency keys", |mut tx| async move {
            let deleted = sqlx::query("DELETE FROM idempotency_keys WHERE created_ms < ?1")
                .bind(before_ms)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(deleted.rows_affected())
        })
        .await
    }
}
