//! Sessions: create, list, get, delete, message, interrupt, stop, usage.

use super::error::ApiError;
use super::types::*;
use crate::AppState;
use crate::auth::Principal;
use crate::service::{Attachment, CreateSession, NewMessage};
use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use rswe_protocol::SessionId;
use rswe_store::{Session, SessionFilter, UsageTotals};

/// The JSON body, or a 400 that says what is wrong with it.
pub(super) fn body<T>(body: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    body.map(|Json(value)| value).map_err(ApiError::from)
}

pub(super) fn query<T>(query: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    query.map(|Query(value)| value).map_err(ApiError::from)
}

pub(super) fn session_id(text: &str) -> Result<SessionId, ApiError> {
    SessionId::parse(text).ok_or_else(|| ApiError::not_found(format!("no session {text}")))
}

pub(super) fn view(state: &AppState, session: Session) -> SessionView {
    let activity = state.service.activity(&session.id);
    SessionView { session, activity }
}

fn author(principal: &Option<axum::Extension<Principal>>) -> Option<String> {
    principal.as_ref().map(|p| p.name.clone())
}

fn attachments(bodies: Vec<AttachmentBody>) -> Result<Vec<Attachment>, ApiError> {
    bodies
        .into_iter()
        .map(|body| {
            let data = base64::engine::general_purpose::STANDARD
                .decode(body.data.trim())
                .map_err(|e| ApiError::bad_request(format!("attachment {:?} is not valid base64: {e}", body.name)))?;
            let media_type = body.media_type.filter(|t| !t.trim().is_empty()).unwrap_or_else(|| guess_type(&body.name));
            Ok(Attachment { name: body.name, media_type, data })
        })
        .collect()
}

/// A media type from a file name's extension.
pub fn guess_type(name: &str) -> String {
    let extension = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    match extension.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "txt" | "md" | "log" | "csv" => "text/plain",
        "json" => "application/json",
        "pdf" => "application/pdf",
        _ => "application/octet-stream",
    }
    .to_string()
}

pub async fn create(
    State(state): State<AppState>,
    principal: Option<axum::Extension<Principal>>,
    request: Result<Json<CreateSessionRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let request = body(request)?;
    let channel = if principal.as_ref().is_some_and(|p| p.csrf.is_some()) { "web" } else { "api" };
    let session = state
        .service
        .create(CreateSession {
            message: NewMessage {
                text: request.message,
                attachments: attachments(request.attachments)?,
                author: author(&principal),
            },
            repository: request.repository,
            model: request.model,
            title: request.title,
            channel: channel.into(),
            github_item: None,
        })
        .await?;
    let location = format!("/api/v1/sessions/{}", session.id);
    Ok((StatusCode::CREATED, [(axum::http::header::LOCATION, location)], Json(view(&state, session))).into_response())
}

pub async fn list(
    State(state): State<AppState>,
    params: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<SessionList>, ApiError> {
    let params = query(params)?;
    let limit = params.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad_request("limit must be between 1 and 500"));
    }
    let page = state
        .store
        .list_sessions(SessionFilter {
            status: params.status,
            channel: params.channel,
            limit,
            before: params.cursor.map(Into::into),
        })
        .await?;
    Ok(Json(SessionList {
        sessions: page.sessions.into_iter().map(|s| view(&state, s)).collect(),
        next_cursor: page.next_cursor.map(|c| c.to_string()),
    }))
}

pub async fn get(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<SessionView>, ApiError> {
    let id = session_id(&id)?;
    let session = state.store.session(&id).await?.ok_or_else(|| ApiError::not_found(format!("no session {id}")))?;
    Ok(Json(view(&state, session)))
}

pub async fn remove(State(state): State<AppState>, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    state.service.delete(&session_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn post_message(
    State(state): State<AppState>,
    Path(id): Path<String>,
    principal: Option<axum::Extension<Principal>>,
    request: Result<Json<PostMessageRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<MessagePosted>), ApiError> {
    let id = session_id(&id)?;
    let request = body(request)?;
    let message =
        NewMessage { text: request.text, attachments: attachments(request.attachments)?, author: author(&principal) };
    let seq = state.service.post_message(&id, message).await?;
    Ok((StatusCode::ACCEPTED, Json(MessagePosted { seq })))
}

pub async fn interrupt(
    State(state): State<AppState>,
    Path(id): Path<String>,
    principal: Option<axum::Extension<Principal>>,
) -> Result<StatusCode, ApiError> {
    state.service.interrupt(&session_id(&id)?, author(&principal)).await?;
    Ok(StatusCode::ACCEPTED)
}

pub async fn stop(
    State(state): State<AppState>,
    Path(id): Path<String>,
    principal: Option<axum::Extension<Principal>>,
) -> Result<StatusCode, ApiError> {
    state.service.stop(&session_id(&id)?, author(&principal)).await?;
    Ok(StatusCode::ACCEPTED)
}

pub async fn usage(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<rswe_store::SessionUsage>, ApiError> {
    Ok(Json(state.store.usage_by_session(&session_id(&id)?).await?))
}

const DAY_MS: i64 = 86_400_000;

pub async fn usage_report(
    State(state): State<AppState>,
    params: Result<Query<UsageQuery>, QueryRejection>,
) -> Result<Json<UsageReport>, ApiError> {
    let params = query(params)?;
    Ok(Json(report(&state, params.from.as_deref(), params.to.as_deref()).await?))
}

/// Usage from the day `from` to the day `to`, both inclusive (default: the last 30 days).
pub async fn report(state: &AppState, from: Option<&str>, to: Option<&str>) -> Result<UsageReport, ApiError> {
    let today = now_ms().div_euclid(DAY_MS) * DAY_MS;
    let to_ms = match to.filter(|t| !t.is_empty()) {
        Some(day) => parse_day(day)?,
        None => today,
    };
    let from_ms = match from.filter(|f| !f.is_empty()) {
        Some(day) => parse_day(day)?,
        None => to_ms - 29 * DAY_MS,
    };
    if from_ms > to_ms {
        return Err(ApiError::bad_request("`from` is after `to`"));
    }
    let end = to_ms + DAY_MS;
    let by_day = state.store.usage_by_day(from_ms, end).await?;
    let by_model = state.store.usage_by_model(from_ms, end).await?;
    let by_session = state.store.usage_by_sessions(from_ms, end, 100).await?;
    let mut by_month: Vec<MonthUsage> = Vec::new();
    for day in &by_day {
        let month = day.day.get(..7).unwrap_or(&day.day).to_string();
        match by_month.last_mut() {
            Some(last) if last.month == month => last.totals += day.totals,
            _ => by_month.push(MonthUsage { month, totals: day.totals }),
        }
    }
    let total = by_day.iter().fold(UsageTotals::default(), |sum, day| sum + day.totals);
    Ok(UsageReport { from: format_day(from_ms), to: format_day(to_ms), total, by_day, by_month, by_model, by_session })
}

pub async fn models(State(state): State<AppState>) -> Json<ModelList> {
    Json(ModelList { default: state.settings.default_model.clone(), models: state.settings.models.clone() })
}

use crate::now_ms;

/// `YYYY-MM-DD` (UTC) to the milliseconds of its midnight.
pub fn parse_day(text: &str) -> Result<i64, ApiError> {
    let invalid = || ApiError::bad_request(format!("{text:?} is not a date like 2026-11-25"));
    let mut parts = text.split('-');
    let (Some(y), Some(m), Some(d), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(invalid());
    };
    let (y, m, d): (i64, i64, i64) =
        (y.parse().map_err(|_| invalid())?, m.parse().map_err(|_| invalid())?, d.parse().map_err(|_| invalid())?);
    if !(1970..=9999).contains(&y) || !(1..=12).contains(&m) || !(1..=days_in_month(y, m)).contains(&d) {
        return Err(invalid());
    }
    Ok(days_from_civil(y, m, d) * DAY_MS)
}

/// The UTC date of a millisecond timestamp, `YYYY-MM-DD`.
pub fn format_day(ms: i64) -> String {
    let (y, m, d) = civil_from_days(ms.div_euclid(DAY_MS));
    format!("{y:04}-{m:02}-{d:02}")
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let month_index = (m + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + d - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let d = day_of_year - (153 * month_index + 2) / 5 + 1;
    let m = if month_index < 10 { month_index + 3 } else { month_index - 9 };
    (year_of_era + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_round_trip() {
        for day in ["1970-01-01", "2000-02-29", "2026-11-25", "2024-12-31"] {
            assert_eq!(format_day(parse_day(day).unwrap()), day);
        }
        assert_eq!(parse_day("1970-01-02").unwrap(), DAY_MS);
        for bad in ["2026-02-30", "2026-13-01", "yesterday", "2026-1"] {
            assert!(parse_day(bad).is_err(), "{bad}");
        }
    }
}
