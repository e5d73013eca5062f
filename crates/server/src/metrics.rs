//! Health, readiness and Prometheus metrics.
//!
//! Counts that must survive restarts (sessions by status, tokens and dollars by model)
//! are read from the store at each scrape; the rest (tool calls, HTTP latency) are
//! counted in memory since the start.

use crate::bus::{BusEvent, BusMessage};
use crate::{AppState, SessionService};
use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use rswe_agent::LiveEvent;
use rswe_protocol::{EventKind, SessionStatus};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio_util::sync::CancellationToken;

/// Upper bounds of the HTTP latency buckets, in seconds.
const BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
struct Counters {
    /// (method, route, status) → latency.
    http: BTreeMap<(String, String, u16), Histogram>,
    /// (tool, failed) → calls.
    tools: BTreeMap<(String, bool), u64>,
}

/// The in-memory counters.
#[derive(Default)]
pub struct Metrics {
    counters: Mutex<Counters>,
}

impl Metrics {
    pub fn new() -> Self {
        Metrics::default()
    }

    fn counters(&self) -> MutexGuard<'_, Counters> {
        self.counters.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn observe_http(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let mut counters = self.counters();
        let histogram = counters.http.entry((method.to_string(), route.to_string(), status)).or_default();
        histogram.count += 1;
        histogram.sum += seconds;
        for (count, bound) in histogram.counts.iter_mut().zip(BUCKETS) {
            if seconds <= bound {
                *count += 1;
            }
        }
    }

    /// Counts what the sessions do (tool calls and failures), until `closing`.
    pub async fn follow(self: Arc<Self>, mut bus: broadcast::Receiver<Arc<BusMessage>>, closing: CancellationToken) {
        loop {
            let message = tokio::select! {
                () = closing.cancelled() => return,
                message = bus.recv() => message,
            };
            match message {
                Ok(message) => {
                    if let BusEvent::Live(LiveEvent::Logged(event)) = &message.event
                        && let EventKind::ToolResult { name, is_error, .. } = &event.kind
                    {
                        *self.counters().tools.entry((name.clone(), *is_error)).or_default() += 1;
                    }
                }
                Err(RecvError::Lagged(missed)) => tracing::debug!(missed, "metrics missed bus messages"),
                Err(RecvError::Closed) => return,
            }
        }
    }

    /// The Prometheus text exposition of everything.
    pub async fn render(&self, state: &AppState) -> Result<String, rswe_store::StoreError> {
        let mut out = String::new();
        let by_status = state.store.count_sessions_by_status().await?;
        metric(&mut out, "rswe_sessions", "gauge", "Sessions by status.");
        for status in SessionStatus::ALL {
            let count = by_status.iter().find(|(s, _)| *s == status).map_or(0, |(_, n)| *n);
            let _ = writeln!(out, "rswe_sessions{{status=\"{}\"}} {count}", status.as_str());
        }
        let (running, queued, sandboxes) = state.service.counts();
        metric(&mut out, "rswe_sessions_running", "gauge", "Sessions whose agent is working now.");
        let _ = writeln!(out, "rswe_sessions_running {running}");
        metric(&mut out, "rswe_sessions_queued", "gauge", "Sessions waiting for a free working slot.");
        let _ = writeln!(out, "rswe_sessions_queued {queued}");
        metric(&mut out, "rswe_sandboxes", "gauge", "Sandboxes held by sessions.");
        let _ = writeln!(out, "rswe_sandboxes {sandboxes}");

        let usage = state.store.usage_by_model(0, i64::MAX).await?;
        metric(&mut out, "rswe_model_tokens_total", "counter", "Model tokens by model and kind.");
        for model in &usage {
            let u = &model.totals.usage;
            for (kind, value) in [
                ("input", u.input_tokens),
                ("output", u.output_tokens),
                ("cache_read", u.cache_read_tokens),
                ("cache_write", u.cache_write_tokens),
            ] {
                let _ = writeln!(
                    out,
                    "rswe_model_tokens_total{{model=\"{}\",kind=\"{kind}\"}} {value}",
                    label(&model.model)
                );
            }
        }
        metric(&mut out, "rswe_model_cost_dollars_total", "counter", "Dollars spent on models (known prices).");
        for model in &usage {
            let cost = model.totals.cost_usd.unwrap_or(0.0);
            let _ = writeln!(out, "rswe_model_cost_dollars_total{{model=\"{}\"}} {cost}", label(&model.model));
        }
        metric(&mut out, "rswe_model_requests_total", "counter", "Model requests by model.");
        for model in &usage {
            let _ = writeln!(
                out,
                "rswe_model_requests_total{{model=\"{}\"}} {}",
                label(&model.model),
                model.totals.requests
            );
        }

        let counters = self.counters();
        metric(&mut out, "rswe_tool_calls_total", "counter", "Tool calls since the start, by tool and outcome.");
        for ((tool, failed), count) in &counters.tools {
            let outcome = if *failed { "error" } else { "ok" };
            let _ = writeln!(out, "rswe_tool_calls_total{{tool=\"{}\",outcome=\"{outcome}\"}} {count}", label(tool));
        }
        metric(&mut out, "rswe_http_request_duration_seconds", "histogram", "HTTP request latency by route.");
        for ((method, route, status), histogram) in &counters.http {
            let labels = format!("method=\"{method}\",route=\"{}\",status=\"{status}\"", label(route));
            for (count, bound) in histogram.counts.iter().zip(BUCKETS) {
                let _ = writeln!(out, "rswe_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {count}");
            }
            let _ =
                writeln!(out, "rswe_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}", histogram.count);
            let _ = writeln!(out, "rswe_http_request_duration_seconds_sum{{{labels}}} {}", histogram.sum);
            let _ = writeln!(out, "rswe_http_request_duration_seconds_count{{{labels}}} {}", histogram.count);
        }
        Ok(out)
    }
}

fn metric(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A label value with `\`, `"` and newlines escaped.
fn label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// `/metrics` (behind a key unless `metrics_public`), `/healthz`, `/readyz`.
pub fn router(state: &AppState) -> Router<AppState> {
    let mut metrics = Router::new().route("/metrics", get(scrape));
    if !state.settings.metrics_public {
        metrics = metrics.route_layer(axum::middleware::from_fn_with_state(state.clone(), crate::auth::require_api));
    }
    Router::new().route("/healthz", get(healthz)).route("/readyz", get(readyz)).merge(metrics)
}

async fn scrape(State(state): State<AppState>) -> Response {
    match state.metrics.render(&state).await {
        Ok(text) => ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response(),
        Err(error) => {
            tracing::error!(%error, "cannot gather metrics");
            (StatusCode::INTERNAL_SERVER_ERROR, format!("cannot gather metrics: {error}\n")).into_response()
        }
    }
}

/// The process is up.
async fn healthz() -> &'static str {
    "ok\n"
}

/// The server takes work: the database answers and it is not shutting down.
async fn readyz(State(state): State<AppState>) -> (StatusCode, String) {
    if is_closing(&state.service) {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n".into());
    }
    match state.store.count_sessions_by_status().await {
        Ok(_) => (StatusCode::OK, "ready\n".into()),
        Err(error) => (StatusCode::SERVICE_UNAVAILABLE, format!("the database does not answer: {error}\n")),
    }
}

fn is_closing(service: &SessionService) -> bool {
    service.closing().is_cancelled()
}

/// Times every request by its route pattern (never the raw path, so ids do not explode
/// the label set).
pub async fn track_http(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    // Only the methods the server knows become labels: any other would grow the set.
    let method = match request.method().as_str() {
        known @ ("GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" | "OPTIONS") => known,
        _ => "other",
    }
    .to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let response = next.run(request).await;
    state.metrics.observe_http(&method, &route, response.status().as_u16(), started.elapsed().as_secs_f64());
    response
}
