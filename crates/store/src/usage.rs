use rswe_protocol::{SessionId, Usage};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use crate::error::StoreError;
use crate::store::Store;

/// Tokens, requests and dollars summed over some model requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct UsageTotals {
    pub usage: Usage,
    /// How many model requests.
    pub requests: u64,
    /// The sum of the known costs, in dollars; `None` when no request had a known price.
    pub cost_usd: Option<f64>,
    /// Requests whose price was unknown. When not 0, `cost_usd` is a lower bound.
    pub unpriced_requests: u64,
}

impl UsageTotals {
    /// Every request had a known price, so `cost_usd` is the whole cost.
    pub fn cost_is_complete(&self) -> bool {
        self.unpriced_requests == 0
    }
}

impl std::ops::Add for UsageTotals {
    type Output = UsageTotals;
    fn add(self, rhs: UsageTotals) -> UsageTotals {
        UsageTotals {
            usage: self.usage + rhs.usage,
            requests: self.requests + rhs.requests,
            cost_usd: match (self.cost_usd, rhs.cost_usd) {
                (Some(a), Some(b)) => Some(a + b),
                (a, b) => a.or(b),
            },
            unpriced_requests: self.unpriced_requests + rhs.unpriced_requests,
        }
    }
}

impl std::ops::AddAssign for UsageTotals {
    fn add_assign(&mut self, rhs: UsageTotals) {
        *self = *self + rhs;
    }
}

/// Usage of one model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ModelUsage {
    pub model: String,
    pub totals: UsageTotals,
}

/// Usage of one session: in all, and per model (sorted by model name).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SessionUsage {
    pub total: UsageTotals,
    pub by_model: Vec<ModelUsage>,
}

/// Usage of one UTC day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DayUsage {
    /// `YYYY-MM-DD`, UTC.
    pub day: String,
    /// Midnight UTC starting the day, in milliseconds since the Unix epoch.
    pub start_ms: i64,
    pub totals: UsageTotals,
}

/// Usage of one session over a period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SessionPeriodUsage {
    pub session_id: SessionId,
    /// The session's title; `None` when untitled or deleted.
    pub title: Option<String>,
    pub totals: UsageTotals,
}

/// The aggregate columns every usage query selects.
macro_rules! totals_columns {
    () => {
        "COUNT(*) AS requests, SUM(input_tokens) AS input_tokens, SUM(output_tokens) AS output_tokens,
         SUM(cache_read_tokens) AS cache_read_tokens, SUM(cache_write_tokens) AS cache_write_tokens,
         SUM(cost_usd) AS cost_usd, COUNT(*) - COUNT(cost_usd) AS unpriced_requests"
    };
}

impl Store {
    /// The session's model usage, per model and in all.
    pub async fn usage_by_session(&self, id: &SessionId) -> Result<SessionUsage, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT model, ",
            totals_columns!(),
            " FROM usage WHERE session_id = ?1 GROUP BY model ORDER BY model"
        ))
        .bind(id.as_str())
        .fetch_all(&self.reader)
        .await?;
        if rows.is_empty() && self.session(id).await?.is_none() {
            return Err(StoreError::session_not_found(id));
        }
        let by_model = rows.iter().map(model_usage_from_row).collect::<Result<Vec<_>, _>>()?;
        let total = by_model.iter().fold(UsageTotals::default(), |sum, model| sum + model.totals);
        Ok(SessionUsage { total, by_model })
    }

    /// Usage of every session per model, of requests made from `from_ms` (inclusive) to
    /// `to_ms` (exclusive), sorted by model name.
    pub async fn usage_by_model(&self, from_ms: i64, to_ms: i64) -> Result<Vec<ModelUsage>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT model, ",
            totals_columns!(),
            " FROM usage WHERE at_ms >= ?1 AND at_ms < ?2 GROUP BY model ORDER BY model"
        ))
        .bind(from_ms)
        .bind(to_ms)
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(model_usage_from_row).collect()
    }

    /// Usage of every session per UTC day, of requests made from `from_ms` (inclusive) to
    /// `to_ms` (exclusive), oldest day first. Days without requests are left out.
    pub async fn usage_by_day(&self, from_ms: i64, to_ms: i64) -> Result<Vec<DayUsage>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT start_ms, date(start_ms / 1000, 'unixepoch') AS day, ",
            totals_columns!(),
            " FROM (SELECT *, at_ms - (((at_ms % 86400000) + 86400000) % 86400000) AS start_ms FROM usage
                    WHERE at_ms >= ?1 AND at_ms < ?2)
              GROUP BY start_ms ORDER BY start_ms"
        ))
        .bind(from_ms)
        .bind(to_ms)
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(DayUsage {
                    day: row.try_get("day")?,
                    start_ms: row.try_get("start_ms")?,
                    totals: totals_from_row(row)?,
                })
            })
            .collect()
    }
}

impl Store {
    /// The sessions that used models from `from_ms` (inclusive) to `to_ms` (exclusive),
    /// costliest first, at most `limit`.
    pub async fn usage_by_sessions(
        &self,
        from_ms: i64,
        to_ms: i64,
        limit: u32,
    ) -> Result<Vec<SessionPeriodUsage>, StoreError> {
        // Summed first, then joined: `sessions` has columns named like the sums.
        let rows = sqlx::query(concat!(
            "SELECT t.*, s.title AS title FROM (
                SELECT session_id, ",
            totals_columns!(),
            " FROM usage WHERE at_ms >= ?1 AND at_ms < ?2 GROUP BY session_id
             ) t LEFT JOIN sessions s ON s.id = t.session_id
             ORDER BY COALESCE(t.cost_usd, 0) DESC, t.session_id LIMIT ?3"
        ))
        .bind(from_ms)
        .bind(to_ms)
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|row| {
                let id: String = row.try_get("session_id")?;
                Ok(SessionPeriodUsage {
                    session_id: crate::session::parse_session_id("usage", &id)?,
                    title: row.try_get("title")?,
                    totals: totals_from_row(row)?,
                })
            })
            .collect()
    }
}

fn model_usage_from_row(row: &SqliteRow) -> Result<ModelUsage, StoreError> {
    Ok(ModelUsage { model: row.try_get("model")?, totals: totals_from_row(row)? })
}

fn totals_from_row(row: &SqliteRow) -> Result<UsageTotals, StoreError> {
    let count = |column: &str| -> Result<u64, StoreError> {
        let value: i64 = row.try_get(column)?;
        u64::try_from(value).map_err(|_| StoreError::Corrupt(format!("the usage table holds a negative {column}")))
    };
    Ok(UsageTotals {
        usage: Usage {
            input_tokens: count("input_tokens")?,
            output_tokens: count("output_tokens")?,
            cache_read_tokens: count("cache_read_tokens")?,
            cache_write_tokens: count("cache_write_tokens")?,
        },
        requests: count("requests")?,
        cost_usd: row.try_get("cost_usd")?,
        unpriced_requests: count("unpriced_requests")?,
    })
}
