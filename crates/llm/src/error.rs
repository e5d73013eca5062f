use std::time::Duration;

/// What went wrong talking to a model provider. The variant decides what happens next:
/// see [`LlmError::is_retryable`] and [`LlmError::class`].
#[derive(Debug, Clone, thiserror::Error)]
pub enum LlmError {
    #[error("{provider} rate limit reached: {message}")]
    RateLimited { provider: &'static str, message: String, retry_after: Option<Duration> },

    #[error("{provider} is overloaded or failing ({status}): {message}")]
    Overloaded { provider: &'static str, status: u16, message: String, retry_after: Option<Duration> },

    #[error("the prompt is larger than the model's context window ({provider}): {message}")]
    ContextWindowExceeded { provider: &'static str, message: String },

    #[error("{provider} rejected the request: {message}")]
    InvalidRequest { provider: &'static str, message: String },

    #[error("{provider} refused the credentials: {message}. Check the API key or the AWS credentials")]
    Authentication { provider: &'static str, message: String },

    #[error("{provider} did not answer within {after:?} ({phase})")]
    Timeout { provider: &'static str, phase: TimeoutPhase, after: Duration },

    #[error("the {provider} stream broke before the message was complete: {message}")]
    StreamBroken { provider: &'static str, message: String },

    #[error("could not reach {provider}: {message}")]
    Connection { provider: &'static str, message: String },

    #[error("{0}")]
    Configuration(String),
}

/// Which wait ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutPhase {
    /// No response headers arrived.
    Response,
    /// The response stream went silent.
    Idle,
}

impl std::fmt::Display for TimeoutPhase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TimeoutPhase::Response => "waiting for the response",
            TimeoutPhase::Idle => "the stream went silent",
        })
    }
}

/// A coarse grouping of errors, for circuit breakers and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    RateLimited,
    Overloaded,
    ContextWindowExceeded,
    InvalidRequest,
    Authentication,
    Timeout,
    StreamBroken,
    Connection,
    Configuration,
}

impl LlmError {
    pub fn class(&self) -> ErrorClass {
        match self {
            LlmError::RateLimited { .. } => ErrorClass::RateLimited,
            LlmError::Overloaded { .. } => ErrorClass::Overloaded,
            LlmError::ContextWindowExceeded { .. } => ErrorClass::ContextWindowExceeded,
            LlmError::InvalidRequest { .. } => ErrorClass::InvalidRequest,
            LlmError::Authentication { .. } => ErrorClass::Authentication,
            LlmError::Timeout { .. } => ErrorClass::Timeout,
            LlmError::StreamBroken { .. } => ErrorClass::StreamBroken,
            LlmError::Connection { .. } => ErrorClass::Connection,
            LlmError::Configuration(_) => ErrorClass::Configuration,
        }
    }

    /// Whether sending the same request again may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.class(),
            ErrorClass::RateLimited
                | ErrorClass::Overloaded
                | ErrorClass::Timeout
                | ErrorClass::StreamBroken
                | ErrorClass::Connection
        )
    }

    /// The wait the provider asked for, if it named one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            LlmError::RateLimited { retry_after, .. } | LlmError::Overloaded { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// Maps an HTTP error status and the provider's message to an error, for the providers
/// that speak plain HTTP. `context_window` tells whether the body names an overflow.
pub(crate) fn from_http_status(
    provider: &'static str,
    status: u16,
    message: String,
    retry_after: Option<Duration>,
    context_window: bool,
) -> LlmError {
    match status {
        401 | 403 => LlmError::Authentication { provider, message },
        413 => LlmError::ContextWindowExceeded { provider, message },
        429 => LlmError::RateLimited { provider, message, retry_after },
        _ if context_window => LlmError::ContextWindowExceeded { provider, message },
        408 | 500..=599 => LlmError::Overloaded { provider, status, message, retry_after },
        _ => LlmError::InvalidRequest { provider, message: format!("HTTP {status}: {message}") },
    }
}

/// Reads a `retry-after` header given in seconds (fractions allowed) or as an HTTP date
/// we do not parse (treated as absent).
pub(crate) fn parse_retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get("retry-after")?.to_str().ok()?;
    let seconds: f64 = value.trim().parse().ok()?;
    (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds.min(3600.0)))
}
