//! `/login` and `/logout`: the sign-in page, the one-time link, signing out.

use super::{Auth, BrowserLogin, session_cookie};
use crate::AppState;
use axum::Router;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, HeaderName, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};

/// The sign-in page's template (rendered with HTML auto-escaping).
const LOGIN_TEMPLATE: &str = include_str!("../../templates/login.html");

/// Headers of every page here: never cached, never framed, no referrer (the sign-in
/// link's token is in the URL).
const PAGE_HEADERS: [(HeaderName, &str); 4] = [
    (header::CACHE_CONTROL, "no-store"),
    (header::REFERRER_POLICY, "no-referrer"),
    (header::X_FRAME_OPTIONS, "DENY"),
    (
        header::CONTENT_SECURITY_POLICY,
        "default-src 'self'; style-src 'self' 'unsafe-inline'; script-src 'none'; frame-ancestors 'none'; \
         form-action 'self'; base-uri 'none'",
    ),
];

/// `/login`, `/logout`.
pub fn router(_state: &AppState) -> Router<AppState> {
    Router::new().route("/login", get(login_page).post(login_submit)).route("/logout", post(logout))
}

#[derive(Debug, Default, serde::Deserialize)]
struct LoginQuery {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    next: Option<String>,
}

#[derive(Default, serde::Deserialize)]
struct LoginForm {
    #[serde(default)]
    key: String,
    #[serde(default)]
    next: Option<String>,
}

#[derive(Default, serde::Deserialize)]
struct LogoutForm {
    #[serde(default)]
    csrf: String,
}

/// `GET /login`: redeems `?token=`, or shows the form.
async fn login_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<LoginQuery>, QueryRejection>,
) -> Response {
    let query = query.map(|Query(q)| q).unwrap_or_default();
    let next = safe_next(query.next.as_deref());
    if let Some(token) = query.token.as_deref().filter(|t| !t.is_empty()) {
        return match state.auth.sign_in_with_token(token).await {
            Ok(Some(login)) => signed_in(&state.auth, &login, next),
            Ok(None) => page(
                StatusCode::UNAUTHORIZED,
                Some(
                    "This sign-in link was already used or has expired. Sign in with an API key instead: create one \
                     on the server with: rswe keys create NAME",
                ),
                next,
            ),
            Err(error) => failed(&error),
        };
    }
    // Already signed in: nothing to do here.
    if let Some(cookie) = session_cookie(&headers)
        && let Ok(Some(_)) = state.auth.authenticate_cookie(cookie).await
    {
        return redirect(next, None);
    }
    page(StatusCode::OK, None, next)
}

/// `POST /login`: signs in with the pasted API key.
async fn login_submit(State(state): State<AppState>, form: Result<Form<LoginForm>, FormRejection>) -> Response {
    let form = match form {
        Ok(Form(form)) => form,
        Err(rejection) => {
            return page(StatusCode::BAD_REQUEST, Some(&format!("The form was not readable: {rejection}")), "/");
        }
    };
    let next = safe_next(form.next.as_deref());
    if form.key.trim().is_empty() {
        return page(StatusCode::UNAUTHORIZED, Some("Paste an API key to sign in."), next);
    }
    match state.auth.sign_in_with_key(&form.key).await {
        Ok(Some(login)) => signed_in(&state.auth, &login, next),
        Ok(None) => {
            tracing::info!("refused a sign-in with an API key that is not valid");
            page(
                StatusCode::UNAUTHORIZED,
                Some(
                    "That API key is not valid: it may be mistyped, revoked, or from another server. Create a new \
                     one on the server with: rswe keys create NAME",
                ),
                next,
            )
        }
        Err(error) => failed(&error),
    }
}

/// `POST /logout`: ends the session (the form must carry its `csrf`), clears the cookie.
async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<LogoutForm>, FormRejection>,
) -> Response {
    let csrf = form.map(|Form(f)| f.csrf).unwrap_or_default();
    if let Some(cookie) = session_cookie(&headers) {
        match state.auth.authenticate_cookie(cookie).await {
            Ok(Some(principal)) => {
                if !Auth::check_csrf(&principal, &csrf) {
                    tracing::info!("refused a sign-out without the session's CSRF token");
                    return (
                        StatusCode::FORBIDDEN,
                        PAGE_HEADERS,
                        "This sign-out form is out of date: reload the page and sign out again.",
                    )
                        .into_response();
                }
                if let Err(error) = state.auth.sign_out(cookie).await {
                    return failed(&error);
                }
                tracing::info!("signed a browser out");
            }
            Ok(None) => {}
            Err(error) => return failed(&error),
        }
    }
    redirect("/login", Some(state.auth.clear_cookie()))
}

/// The cookie is set: on to where the browser was going.
fn signed_in(auth: &Auth, login: &BrowserLogin, next: &str) -> Response {
    redirect(next, Some(auth.set_cookie(login)))
}

/// 303 to `to`, optionally setting a cookie.
fn redirect(to: &str, cookie: Option<String>) -> Response {
    let mut response = (StatusCode::SEE_OTHER, PAGE_HEADERS, [(header::LOCATION, to)]).into_response();
    if let Some(cookie) = cookie {
        match cookie.parse() {
            Ok(value) => {
                response.headers_mut().insert(header::SET_COOKIE, value);
            }
            Err(_) => return (StatusCode::INTERNAL_SERVER_ERROR, "could not set the session cookie").into_response(),
        }
    }
    response
}

fn failed(error: &super::AuthError) -> Response {
    tracing::error!(%error, "signing in or out failed");
    (StatusCode::INTERNAL_SERVER_ERROR, PAGE_HEADERS, format!("Signing in or out failed: {error}")).into_response()
}

/// The sign-in page, with an error message when there is one.
fn page(status: StatusCode, error: Option<&str>, next: &str) -> Response {
    match render_login(error, next) {
        Ok(html) => (status, PAGE_HEADERS, Html(html)).into_response(),
        Err(error) => {
            tracing::error!(%error, "cannot render the sign-in page");
            (StatusCode::INTERNAL_SERVER_ERROR, format!("cannot render the sign-in page: {error}")).into_response()
        }
    }
}

/// Renders `templates/login.html`.
pub(crate) fn render_login(error: Option<&str>, next: &str) -> Result<String, minijinja::Error> {
    // The name ends in .html, so minijinja escapes every value for HTML.
    let env = minijinja::Environment::new();
    env.render_named_str(
        "login.html",
        LOGIN_TEMPLATE,
        minijinja::context! { error => error, next => next, stylesheet => crate::ui::asset_url("app.css") },
    )
}

/// Where to go after signing in: `next` when it is a path on this server, else `/`.
pub(crate) fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.starts_with("/\\")
                && path.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            path
        }
        _ => "/",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed_after_sign_in() {
        for good in ["/", "/sessions/abc", "/usage?from=2026-01-01&to=2026-01-31", "/a%20b"] {
            assert_eq!(safe_next(Some(good)), good);
        }
        for bad in [
            None,
            Some(""),
            Some("https://evil.example"),
            Some("//evil.example"),
            Some("/\\evil.example"),
            Some("evil"),
            Some("/a b"),
            Some("/\u{e9}"),
            Some("/x\r\nSet-Cookie: a=b"),
        ] {
            assert_eq!(safe_next(bad), "/", "{bad:?}");
        }
    }

    #[test]
    fn the_page_escapes_what_it_shows() {
        let html = render_login(Some("<script>alert(1)</script>"), "/x\"><b>").unwrap();
        assert!(!html.contains("<script>alert(1)"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
        assert!(!html.contains("\"><b>"), "{html}");
        assert!(html.contains("app.css?v="), "the stylesheet is versioned: {html}");
        assert!(html.contains("name=\"key\""));
        let plain = render_login(None, "/").unwrap();
        assert!(!plain.contains("class=\"login-error\""), "no error box without an error");
    }
}
