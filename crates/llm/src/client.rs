//! The provider trait and [`Model`], which sends requests with timeouts and retries.

use crate::catalog::{Caching, ModelInfo};
use crate::error::{LlmError, TimeoutPhase};
use crate::request::{ModelRequest, ModelResponse};
use crate::stream::{Accumulator, EventStream, StreamEvent};
use futures::StreamExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One model provider's wire protocol. Implementations send exactly one request per
/// call and translate the answer into neutral [`StreamEvent`]s; retries, timeouts and
/// request preparation are [`Model`]'s job.
#[async_trait::async_trait]
pub trait ModelClient: Send + Sync {
    /// A short name for messages and metrics: "anthropic", "openai", "bedrock".
    fn provider(&self) -> &'static str;

    /// Starts one streamed request. Resolves when the response headers arrive.
    async fn stream(&self, model: &ModelInfo, request: &ModelRequest) -> Result<EventStream, LlmError>;
}

/// How long to wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// For the connection and the response headers.
    pub response: Duration,
    /// Between two pieces of a streamed answer.
    pub idle: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts { response: Duration::from_secs(120), idle: Duration::from_secs(120) }
    }
}

/// Exponential backoff with full jitter, bounded in attempts and in total time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// No retry starts once this much time has passed since the first attempt.
    pub max_elapsed: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
            max_elapsed: Duration::from_secs(300),
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub fn none() -> Self {
        RetryPolicy { max_attempts: 1, ..Default::default() }
    }

    /// The wait before retry number `retry` (1 for the first retry): the provider's
    /// `retry-after` when it gave one, otherwise a uniform draw from zero to the
    /// exponential cap.
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(wait) = retry_after {
            return wait;
        }
        let exponent = retry.saturating_sub(1).min(20);
        let cap = self.base_delay.saturating_mul(1 << exponent).min(self.max_delay);
        let nanos = u64::try_from(cap.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(fastrand::u64(0..=nanos))
    }
}

/// What [`Model::send`] tells its observer while it works.
#[derive(Debug, Clone)]
pub enum ModelEvent {
    /// A piece of the answer as it streams in.
    Delta(StreamEvent),
    /// The attempt failed and another follows after `delay`. Everything streamed since the
    /// last `Retrying` (or the start) is void: the next attempt starts the answer afresh.
    Retrying { attempt: u32, delay: Duration, error: LlmError },
}

/// A model ready to be asked: catalog facts, the provider's client, and the policies.
#[derive(Clone)]
pub struct Model {
    info: ModelInfo,
    client: Arc<dyn ModelClient>,
    retry: RetryPolicy,
    timeouts: Timeouts,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model").field("info", &self.info).field("retry", &self.retry).finish_non_exhaustive()
    }
}

impl Model {
    pub fn new(info: ModelInfo, client: Arc<dyn ModelClient>) -> Self {
        Model { info, client, retry: RetryPolicy::default(), timeouts: Timeouts::default() }
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    pub fn with_timeouts(mut self, timeouts: Timeouts) -> Self {
        self.timeouts = timeouts;
        self
    }

    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// Sends the request and waits for the whole answer.
    pub async fn complete(&self, request: &ModelRequest) -> Result<ModelResponse, LlmError> {
        self.send(request, &mut |_| {}).await
    }

    /// Sends the request, streaming its pieces to `observer`, and returns the complete
    /// answer. Retryable failures are retried as whole requests per the retry policy; a
    /// broken stream is never half-applied (see [`ModelEvent::Retrying`]).
    pub async fn send(
        &self,
        request: &ModelRequest,
        observer: &mut (dyn FnMut(ModelEvent) + Send),
    ) -> Result<ModelResponse, LlmError> {
        let request = self.prepare(request);
        let started = Instant::now();
        let mut attempt = 1;
        loop {
            let error = match self.attempt(&request, observer).await {
                Ok(response) => return Ok(response),
                Err(error) => error,
            };
            if !error.is_retryable() || attempt >= self.retry.max_attempts {
                return Err(error);
            }
            let delay = self.retry.delay(attempt, error.retry_after());
            if started.elapsed() + delay > self.retry.max_elapsed {
                tracing::warn!(model = %self.info.id, %error, "giving up: the retry time budget is spent");
                return Err(error);
            }
            tracing::warn!(model = %self.info.id, attempt, ?delay, %error, "model request failed; retrying");
            observer(ModelEvent::Retrying { attempt, delay, error });
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    async fn attempt(
        &self,
        request: &ModelRequest,
        observer: &mut (dyn FnMut(ModelEvent) + Send),
    ) -> Result<ModelResponse, LlmError> {
        let provider = self.client.provider();
        let mut stream =
            tokio::time::timeout(self.timeouts.response, self.client.stream(&self.info, request)).await.map_err(
                |_| LlmError::Timeout { provider, phase: TimeoutPhase::Response, after: self.timeouts.response },
            )??;
        let mut accumulator = Accumulator::new(provider);
        loop {
            let next = tokio::time::timeout(self.timeouts.idle, stream.next())
                .await
                .map_err(|_| LlmError::Timeout { provider, phase: TimeoutPhase::Idle, after: self.timeouts.idle })?;
            match next {
                Some(Ok(event)) => {
                    accumulator.apply(&event)?;
                    let end = event == StreamEvent::MessageEnd;
                    observer(ModelEvent::Delta(event));
                    if end {
                        break;
                    }
                }
                Some(Err(error)) => return Err(error),
                None => break,
            }
        }
        accumulator.finish()
    }

    /// Fits the request to what the model supports: the default output limit, thinking
    /// only where supported, and cache breakpoints only where and as many as allowed.
    fn prepare(&self, request: &ModelRequest) -> ModelRequest {
        let mut request = request.clone();
        let info = &self.info;
        let max_tokens = request.max_tokens.unwrap_or(info.max_output_tokens).min(info.max_output_tokens);
        request.max_tokens = Some(max_tokens.max(1));
        if request.thinking.is_some() && !info.thinking {
            tracing::debug!(model = %info.id, "extended thinking is not supported; sending without it");
            request.thinking = None;
        }
        if let Some(thinking) = &mut request.thinking {
            // The budget must stay below the output limit.
            thinking.budget_tokens = thinking.budget_tokens.min(max_tokens.saturating_sub(1)).max(1024);
            if thinking.budget_tokens >= max_tokens {
                request.thinking = None;
            }
        }
        match info.caching {
            Caching::Explicit => {
                if !info.cache_tools {
                    request.tools_cache_breakpoint = false;
                }
                let dropped = request.limit_breakpoints(info.max_cache_breakpoints);
                if dropped > 0 {
                    tracing::debug!(model = %info.id, dropped, "dropped cache breakpoints over the provider's limit");
                }
            }
            Caching::Automatic | Caching::None => request.clear_breakpoints(),
        }
        request
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_stay_under_the_cap() {
        let policy = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
            max_elapsed: Duration::from_secs(60),
        };
        for _ in 0..200 {
            assert!(policy.delay(1, None) <= Duration::from_millis(100));
            assert!(policy.delay(3, None) <= Duration::from_millis(400));
            assert!(policy.delay(30, None) <= Duration::from_millis(1000));
        }
        // Full jitter spreads the waits: not every draw is the cap.
        let draws: std::collections::HashSet<_> = (0..50).map(|_| policy.delay(5, None)).collect();
        assert!(draws.len() > 10);
        assert_eq!(policy.delay(2, Some(Duration::from_secs(7))), Duration::from_secs(7));
    }
}
