//! The web UI: server-rendered pages, a little JavaScript for live updates.
//!
//! Pages are minijinja templates embedded in the binary, with HTML auto-escaping on;
//! what models and repositories write is escaped, or rendered from Markdown and
//! sanitised ([`markdown`]). The scripts and the stylesheet are embedded too and served
//! at `/assets/…` without authentication. A Content-Security-Policy lets pages run only
//! those scripts, so nothing that slipped into a page could run either.
//!
//! Routes: `/` (sessions, new-session form), `/new`, `/sessions/{id}` and its live
//! stream `/sessions/{id}/live`, `/costs`, `/keys`, `/assets/{name}`.

mod assets;
mod conversation;
mod format;
mod live;
pub mod markdown;
mod templates;

use crate::AppState;
use crate::auth::Principal;
use crate::service::Activity;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use conversation::{Page, Transcript};
use minijinja::value::Serde;
use minijinja::{Value, context};
use rswe_protocol::{Event, SessionId, SessionStatus};
use rswe_store::{Session, SessionFilter, StoreError};
use serde::{Deserialize, Serialize};

pub use assets::url as asset_url;
pub(crate) use format::query_component;

/// Sessions per page of the list.
const PAGE_SIZE: u32 = 50;

/// What pages may load and do: only this server's scripts and styles, images inline
/// (`data:`) or from here, requests only to here, never framed.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

pub fn router(state: &AppState) -> Router<AppState> {
    let pages = Router::new()
        .route("/", get(sessions_page))
        .route("/new", get(new_page))
        .route("/sessions/{id}", get(session_page))
        .route("/sessions/{id}/live", get(live::stream))
        .route("/costs", get(costs_page))
        .route("/keys", get(keys_page))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), crate::auth::require_ui))
        .route_layer(axum::middleware::from_fn(page_headers));
    Router::new().route("/assets/{name}", get(assets::serve)).merge(pages)
}

/// Headers of every page: the content policy, no caching of private pages, no framing.
async fn page_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let defaults: [(HeaderName, &str); 5] = [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "same-origin"),
        (header::CACHE_CONTROL, "no-store"),
    ];
    for (name, value) in defaults {
        if !headers.contains_key(&name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    }
    response
}

type Who = Option<Extension<Principal>>;

/// Renders a page with the layout's values (`page`, `csrf`, `signed_in`) added.
fn page(status: StatusCode, template: &str, name: &str, who: &Who, values: Value) -> Response {
    let csrf = who.as_ref().and_then(|p| p.csrf.clone()).unwrap_or_default();
    let signed_in = who.as_ref().is_some_and(|p| p.csrf.is_some());
    let context = context! { page => name, csrf, signed_in, ..values };
    match templates::render(template, context) {
        Ok(html) => (status, Html(html)).into_response(),
        Err(error) => {
            tracing::error!(%error, "could not render a page");
            (StatusCode::INTERNAL_SERVER_ERROR, "the page could not be rendered; the server's log says why")
                .into_response()
        }
    }
}

fn error_page(status: StatusCode, title: &str, message: &str, who: &Who) -> Response {
    if status.is_server_error() {
        tracing::error!(%status, message, "a page failed");
    }
    page(status, "error.html", "error", who, context! { title, message, status => status.as_u16() })
}

fn store_failed(error: &StoreError, who: &Who) -> Response {
    error_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        &format!("The sessions could not be read: {error}"),
        who,
    )
}

/// The models the picker offers: the configured ones, the default first if missing.
fn models(state: &AppState) -> Vec<String> {
    let mut models = state.settings.models.clone();
    if !models.contains(&state.settings.default_model) {
        models.insert(0, state.settings.default_model.clone());
    }
    models
}

/// One row of the session list. `assets/app.js` fills the same fields from the live
/// stream's JSON.
#[derive(Debug, Serialize, Default)]
struct Row {
    id: String,
    status: &'static str,
    status_label: &'static str,
    title: String,
    last_message: String,
    repository: String,
    cost: String,
    updated_ms: i64,
    updated_iso: String,
    updated_title: String,
    updated_rel: String,
}

fn row(state: &AppState, session: &Session, now: i64) -> Row {
    let queued = state.service.activity(&session.id) == Activity::Queued;
    let (status, status_label) = format::status(session.status, queued);
    let last_message = session.last_message.clone().unwrap_or_default();
    let (title, last_message) = match &session.title {
        Some(title) if !title.trim().is_empty() => (title.clone(), last_message),
        _ if !last_message.is_empty() => (last_message, String::new()),
        _ => ("Untitled session".to_string(), String::new()),
    };
    Row {
        id: session.id.to_string(),
        status,
        status_label,
        title,
        last_message,
        repository: session.repository.clone().unwrap_or_default(),
        cost: format::usd(session.cost_usd, session.cost_unknown),
        updated_ms: session.updated_ms,
        updated_iso: format::iso(session.updated_ms),
        updated_title: format::datetime(session.updated_ms),
        updated_rel: format::relative(session.updated_ms, now),
    }
}

#[derive(Debug, Default, Deserialize)]
struct ListParams {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    cursor: Option<String>,
}

/// `GET /`: the sessions, most recently updated first, and the new-session form.
async fn sessions_page(
    State(state): State<AppState>,
    who: Who,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Response {
    let params = params.map(|Query(p)| p).unwrap_or_default();
    let status = match params.status.as_deref().map(str::trim).filter(|s| !s.is_empty() && *s != "all") {
        None => None,
        Some(text) => match SessionStatus::parse(text) {
            Some(status) => Some(status),
            None => {
                let message = format!("There is no status {text:?}: use working, waiting, idle, failed or stopped.");
                return error_page(StatusCode::BAD_REQUEST, "Unknown status", &message, &who);
            }
        },
    };
    let cursor = params.cursor.filter(|c| !c.is_empty());
    let first_page = cursor.is_none();
    let filter = SessionFilter { status, channel: None, limit: PAGE_SIZE, before: cursor.map(Into::into) };
    let listing = match state.store.list_sessions(filter).await {
        Ok(listing) => listing,
        Err(StoreError::InvalidCursor(_)) => {
            let message = "This page of the list is more than an hour old. Start again from the newest sessions.";
            return error_page(StatusCode::BAD_REQUEST, "This page has expired", message, &who);
        }
        Err(error) => return store_failed(&error, &who),
    };
    let now = format::now_ms();
    let rows: Vec<Row> = listing.sessions.iter().map(|session| row(&state, session, now)).collect();
    let status_name = status.map(SessionStatus::as_str).unwrap_or("");
    let with_status = |more: &str| match (status_name, more) {
        ("", "") => "/".to_string(),
        ("", more) => format!("/?{more}"),
        (name, "") => format!("/?status={name}"),
        (name, more) => format!("/?status={name}&{more}"),
    };
    let older_href =
        listing.next_cursor.map(|cursor| with_status(&format!("cursor={}", format::query_component(cursor.as_str()))));
    let filters: Vec<Value> = SessionStatus::ALL
        .iter()
        .map(|status| {
            let (name, label) = format::status(*status, false);
            context! { status => name, label }
        })
        .collect();
    let values = context! {
        rows => Value::from(Serde(&rows)),
        blank => Value::from(Serde(Row::default())),
        filter => status_name,
        filters,
        first_page,
        older_href,
        newest_href => with_status(""),
        open_form => rows.is_empty() && status.is_none() && first_page,
        models => models(&state),
        default_model => state.settings.default_model.clone(),
    };
    page(StatusCode::OK, "sessions.html", "sessions", &who, values)
}

/// `GET /new`: the new-session form on its own.
async fn new_page(State(state): State<AppState>, who: Who) -> Response {
    let values = context! { models => models(&state), default_model => state.settings.default_model.clone() };
    page(StatusCode::OK, "new.html", "new", &who, values)
}

/// Every event of a session's log, in order.
async fn whole_log(state: &AppState, id: &SessionId) -> Result<Vec<Event>, StoreError> {
    const CHUNK: u32 = 1000;
    let mut events: Vec<Event> = Vec::new();
    loop {
        let after = events.last().map_or(0, |e| e.seq);
        let chunk = state.store.events(id, after, CHUNK).await?;
        let done = chunk.len() < CHUNK as usize;
        events.extend(chunk);
        if done {
            return Ok(events);
        }
    }
}

/// What a session page's header shows for its status.
fn status_of(state: &AppState, id: &SessionId, status: SessionStatus) -> (&'static str, &'static str) {
    format::status(status, state.service.activity(id) == Activity::Queued)
}

/// The title a session page shows.
fn display_title(title: Option<&str>, first_message: Option<&str>) -> String {
    let text = title.filter(|t| !t.trim().is_empty()).or(first_message.filter(|m| !m.trim().is_empty()));
    match text {
        Some(text) => {
            let line = text.trim().lines().next().unwrap_or("").trim();
            let short: String = line.chars().take(100).collect();
            if short.len() < line.len() { format!("{short}…") } else { short }
        }
        None => "Untitled session".to_string(),
    }
}

/// `GET /sessions/{id}`: the conversation, the todo list, the links, and the controls.
async fn session_page(State(state): State<AppState>, who: Who, Path(id): Path<String>) -> Response {
    let not_found = |who: &Who| {
        error_page(StatusCode::NOT_FOUND, "No such session", "It may have been deleted, or the link is mistyped.", who)
    };
    let Some(id) = SessionId::parse(&id) else { return not_found(&who) };
    let session = match state.store.session(&id).await {
        Ok(Some(session)) => session,
        Ok(None) => return not_found(&who),
        Err(error) => return store_failed(&error, &who),
    };
    let events = match whole_log(&state, &id).await {
        Ok(events) => events,
        Err(error) => return store_failed(&error, &who),
    };
    let mut transcript = Transcript::new(session.status, session.title.clone());
    let mut conversation = Page::default();
    for event in &events {
        for piece in transcript.apply(event).0 {
            conversation.apply(piece.render());
        }
    }
    let (status, status_label) = status_of(&state, &id, transcript.status);
    let values = context! {
        id => id.to_string(),
        title => display_title(transcript.title.as_deref(), transcript.first_message.as_deref()),
        status,
        status_label,
        working => transcript.status == SessionStatus::Working,
        repository => session.repository,
        model => session.model,
        cost => transcript.cost_text(),
        created_ms => session.created_ms,
        last_seq => transcript.last_seq,
        conversation => templates::safe(conversation.html()),
        todo => templates::safe(transcript.todo_html()),
        links => templates::safe(transcript.links_html()),
    };
    page(StatusCode::OK, "session.html", "session", &who, values)
}

#[derive(Debug, Default, Deserialize)]
struct CostParams {
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    to: Option<String>,
}

#[derive(Debug, Serialize)]
struct CostRow {
    label: String,
    href: Option<String>,
    cost: f64,
    cost_text: String,
    requests: u64,
    input: u64,
    output: u64,
}

fn cost_row(label: String, href: Option<String>, totals: &rswe_store::UsageTotals) -> CostRow {
    let cost = totals.cost_usd.unwrap_or(0.0);
    CostRow {
        label,
        href,
        cost,
        cost_text: format::usd(cost, !totals.cost_is_complete()),
        requests: totals.requests,
        input: totals.usage.total_input(),
        output: totals.usage.output_tokens,
    }
}

fn cost_table(id: &str, title: &str, key: &str, rows: Vec<CostRow>) -> Value {
    let max = rows.iter().map(|r| r.cost).fold(0.0, f64::max);
    context! { id, title, key, max, rows => Value::from(Serde(&rows)) }
}

/// `GET /costs?from=YYYY-MM-DD&to=YYYY-MM-DD`: what the models cost, by day, month,
/// model and session.
async fn costs_page(
    State(state): State<AppState>,
    who: Who,
    params: Result<Query<CostParams>, QueryRejection>,
) -> Response {
    let params = params.map(|Query(p)| p).unwrap_or_default();
    let (report, error) = match crate::api::sessions::report(&state, params.from.as_deref(), params.to.as_deref()).await
    {
        Ok(report) => (report, None),
        Err(error) if error.status == StatusCode::BAD_REQUEST => {
            match crate::api::sessions::report(&state, None, None).await {
                Ok(report) => (report, Some(format!("{}; showing the last 30 days instead.", error.message))),
                Err(error) => return error_page(error.status, "Something went wrong", &error.message, &who),
            }
        }
        Err(error) => return error_page(error.status, "Something went wrong", &error.message, &who),
    };
    let by_day = report.by_day.iter().rev().map(|day| cost_row(day.day.clone(), None, &day.totals)).collect();
    let by_month =
        report.by_month.iter().rev().map(|month| cost_row(month.month.clone(), None, &month.totals)).collect();
    let mut by_model: Vec<CostRow> =
        report.by_model.iter().map(|model| cost_row(model.model.clone(), None, &model.totals)).collect();
    by_model.sort_by(|a, b| b.cost.total_cmp(&a.cost));
    let by_session = report
        .by_session
        .iter()
        .map(|session| {
            let label = session.title.clone().unwrap_or_else(|| format!("Session {}", session.session_id));
            cost_row(label, Some(format!("/sessions/{}", session.session_id)), &session.totals)
        })
        .collect();
    let tables = vec![
        cost_table("by-day", "By day", "Day", by_day),
        cost_table("by-month", "By month", "Month", by_month),
        cost_table("by-model", "By model", "Model", by_model),
        cost_table("by-session", "By session", "Session", by_session),
    ];
    let today = format::now_ms();
    let day = |days_ago: i64| crate::api::sessions::format_day(today - days_ago * 86_400_000);
    let this_month = format!("{}-01", &day(0)[..7]);
    let quick: Vec<Value> = [("Last 7 days", day(6)), ("Last 30 days", day(29)), ("Last 90 days", day(89))]
        .into_iter()
        .chain([("This month", this_month)])
        .map(|(label, from)| {
            let current = report.from == from && report.to == day(0);
            context! { label, current, href => format!("/costs?from={from}&to={}", day(0)) }
        })
        .collect();
    let total = &report.total;
    let values = context! {
        from => report.from,
        to => report.to,
        error => error.clone(),
        quick,
        tables,
        total => context! {
            cost => format::usd(total.cost_usd.unwrap_or(0.0), !total.cost_is_complete()),
            requests => total.requests,
            input => total.usage.total_input(),
            output => total.usage.output_tokens,
            unpriced => total.unpriced_requests,
        },
    };
    page(if error.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK }, "costs.html", "costs", &who, values)
}

/// `GET /keys`: the page lists, creates and revokes keys through the API.
async fn keys_page(who: Who) -> Response {
    page(StatusCode::OK, "keys.html", "keys", &who, context! {})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_fall_back_to_the_first_message() {
        assert_eq!(display_title(Some("Fix CI"), Some("hello")), "Fix CI");
        assert_eq!(display_title(None, Some("Please fix\nthe build")), "Please fix");
        assert_eq!(display_title(Some("  "), None), "Untitled session");
        assert_eq!(display_title(None, Some(&"é".repeat(150))).chars().count(), 101);
    }
}
