//! Who may use the server: API keys, the one-time sign-in link, browser sessions.
//!
//! - **API keys** (`rswe_<id>_<secret>`) are made by `rswe keys create` or the API, shown
//!   once and stored only hashed. Requests carry one as `Authorization: Bearer <key>` or
//!   `x-api-key: <key>`, and need nothing else.
//! - **The sign-in link**: while no key exists, [`Auth::first_start_token`] makes a token
//!   that lives only in memory for an hour; `/login?token=` redeems it once.
//! - **Browser sessions**: signing in (with a key or the link) sets the `rswe_session`
//!   cookie (HttpOnly, SameSite=Strict, Secure behind https), stored hashed for 7 days.
//!   State-changing requests made with the cookie must carry the session's CSRF token:
//!   API calls in the `x-csrf-token` header, form posts in a `csrf` field that the form's
//!   handler checks with [`Auth::check_csrf`].
//!
//! Secrets never reach the logs: failed attempts are logged at info level with the key's
//! id at most.

mod pages;
pub mod secrets;

use crate::api::ApiError;
use crate::{AppState, ServerSettings};
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use rswe_store::{ApiKey, NewWebSession, Store, StoreError};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub use pages::router;
pub use secrets::{generate_api_key, hash_secret, key_id, secrets_equal};

/// The name of the browser session cookie.
pub const COOKIE: &str = "rswe_session";
/// The header that carries a browser session's CSRF token on state-changing API calls.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// The header that may carry an API key instead of `Authorization: Bearer`.
pub const KEY_HEADER: &str = "x-api-key";

/// How long a browser session lasts.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(7 * 24 * 60 * 60);
/// How long the one-time sign-in token is valid.
pub const SIGN_IN_LIFETIME: Duration = Duration::from_secs(60 * 60);

/// Length of cookie values, CSRF and sign-in tokens (letters and digits: ~190 to 250 bits).
const COOKIE_LEN: usize = 43;
const CSRF_LEN: usize = 32;
const SIGN_IN_LEN: usize = 32;

/// How often, at most, a key's last use is written down.
const TOUCH_INTERVAL_MS: i64 = 60_000;

/// What people are told when a request has no credentials.
const HOW_TO_AUTHENTICATE: &str = "send an API key as `Authorization: Bearer <key>` (or `x-api-key: <key>`); create \
                                   one on the server with `rswe keys create NAME`";

/// Why a key or sign-in operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The request was wrong, e.g. a key without a name.
    #[error("{0}")]
    Invalid(String),
    /// The operating system could not provide random bytes.
    #[error("cannot make a secret: the operating system's random number generator failed ({0}); try again")]
    Random(getrandom::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<getrandom::Error> for AuthError {
    fn from(error: getrandom::Error) -> Self {
        AuthError::Random(error)
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::Invalid(message) => ApiError::bad_request(message),
            AuthError::Random(_) => ApiError::internal(error.to_string()),
            AuthError::Store(error) => error.into(),
        }
    }
}

/// A browser that just signed in: the cookie to set and its session's CSRF token.
#[derive(Clone)]
pub struct BrowserLogin {
    pub cookie_value: String,
    pub csrf: String,
}

impl std::fmt::Debug for BrowserLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrowserLogin").finish_non_exhaustive()
    }
}

/// Who made a request, put in the request's extensions by [`require_api`] and
/// [`require_ui`].
#[derive(Clone)]
pub struct Principal {
    /// A name for logs and message authors: the key's name, or "web".
    pub name: String,
    /// The CSRF token of a browser session, for pages to put in forms; `None` for
    /// requests made with an API key.
    pub csrf: Option<String>,
}

impl Principal {
    /// Whether `token` is this browser session's CSRF token. Always true for API keys,
    /// which browsers never send by themselves.
    pub fn csrf_matches(&self, token: &str) -> bool {
        match &self.csrf {
            Some(csrf) => secrets_equal(csrf.as_bytes(), token.as_bytes()),
            None => true,
        }
    }
}

impl std::fmt::Debug for Principal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Principal").field("name", &self.name).field("browser", &self.csrf.is_some()).finish()
    }
}

/// The one-time sign-in token, in memory only.
struct SignInToken {
    value: String,
    expires: Instant,
}

/// Keys, sign-in tokens and browser sessions.
pub struct Auth {
    store: Store,
    secure_cookies: bool,
    sign_in: Mutex<Option<SignInToken>>,
    /// When each key's use was last written down, to write at most once a minute.
    touched: Mutex<HashMap<String, i64>>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth").field("secure_cookies", &self.secure_cookies).finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Auth {
    pub fn new(store: Store, settings: &ServerSettings) -> Self {
        Auth {
            store,
            secure_cookies: settings.public_url.trim().to_ascii_lowercase().starts_with("https://"),
            sign_in: Mutex::new(None),
            touched: Mutex::new(HashMap::new()),
        }
    }

    /// While no API key exists: a new one-time sign-in token, valid for an hour, to print
    /// as `<public_url>/login?token=...` (to a terminal, never to a log). Replaces any
    /// earlier one. `None` once a key exists.
    pub async fn first_start_token(&self) -> Result<Option<String>, AuthError> {
        if self.store.count_api_keys().await? > 0 {
            return Ok(None);
        }
        self.new_sign_in_token().map(Some)
    }

    /// A new one-time sign-in token, valid for an hour, replacing any earlier one.
    pub fn new_sign_in_token(&self) -> Result<String, AuthError> {
        let value = secrets::random_token(SIGN_IN_LEN)?;
        *lock(&self.sign_in) = Some(SignInToken { value: value.clone(), expires: Instant::now() + SIGN_IN_LIFETIME });
        Ok(value)
    }

    /// Redeems the one-time sign-in token: a browser session, and the token is gone.
    /// `None` when the token is wrong, used or expired.
    pub async fn sign_in_with_token(&self, token: &str) -> Result<Option<BrowserLogin>, AuthError> {
        let taken = {
            let mut slot = lock(&self.sign_in);
            let valid = slot.as_ref().is_some_and(|t| secrets_equal(t.value.as_bytes(), token.as_bytes()));
            if slot.as_ref().is_some_and(|t| t.expires <= Instant::now()) {
                *slot = None;
                None
            } else if valid {
                slot.take()
            } else {
                None
            }
        };
        let Some(taken) = taken else {
            tracing::info!("refused a sign-in link: wrong, already used or expired");
            return Ok(None);
        };
        match self.start_session(None).await {
            Ok(login) => {
                tracing::info!("signed in a browser with the one-time sign-in link");
                Ok(Some(login))
            }
            Err(error) => {
                // Nothing was signed in: the link stays usable.
                let mut slot = lock(&self.sign_in);
                if slot.is_none() {
                    *slot = Some(taken);
                }
                Err(error)
            }
        }
    }

    /// Signs a browser in with an API key. `None` when the key is not valid.
    pub async fn sign_in_with_key(&self, key: &str) -> Result<Option<BrowserLogin>, AuthError> {
        let Some(row) = self.verify_key(key.trim()).await? else {
            return Ok(None);
        };
        let login = self.start_session(Some(&row.id)).await?;
        tracing::info!(key_id = %row.id, key_name = %row.name, "signed in a browser with an API key");
        Ok(Some(login))
    }

    /// Ends the browser session of this cookie value, if there is one.
    pub async fn sign_out(&self, cookie_value: &str) -> Result<(), AuthError> {
        self.store.delete_web_session(&hash_secret(cookie_value)).await?;
        Ok(())
    }

    /// The `Set-Cookie` header value that signs a browser in.
    pub fn set_cookie(&self, login: &BrowserLogin) -> String {
        self.cookie(&login.cookie_value, SESSION_LIFETIME.as_secs())
    }

    /// The `Set-Cookie` header value that removes the session cookie.
    pub fn clear_cookie(&self) -> String {
        self.cookie("", 0)
    }

    fn cookie(&self, value: &str, max_age: u64) -> String {
        let secure = if self.secure_cookies { "; Secure" } else { "" };
        format!("{COOKIE}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}")
    }

    /// Whether a form's `csrf` field matches the session that posted it. Form handlers
    /// behind [`require_ui`] must check it before changing anything.
    pub fn check_csrf(principal: &Principal, token: &str) -> bool {
        principal.csrf_matches(token)
    }

    /// Creates an API key; the key is in the answer and nowhere else.
    pub async fn create_key(&self, name: &str) -> Result<CreatedKey, AuthError> {
        new_api_key(&self.store, name).await
    }

    /// The keys not revoked, newest first.
    pub async fn list(&self) -> Result<KeyList, AuthError> {
        list_api_keys(&self.store).await
    }

    /// Revokes a key and ends the browser sessions signed in with it. `false` when there
    /// is no such key (or it was revoked already).
    pub async fn revoke(&self, id: &str) -> Result<bool, AuthError> {
        let revoked = self.store.revoke_api_key(id).await?;
        if revoked {
            lock(&self.touched).remove(id);
            tracing::info!(key_id = %id, "revoked an API key");
        }
        Ok(revoked)
    }

    /// Who this API key belongs to, `None` when it is not valid. Records its use.
    pub async fn authenticate_key(&self, key: &str) -> Result<Option<Principal>, AuthError> {
        let Some(row) = self.verify_key(key).await? else {
            return Ok(None);
        };
        self.touch(&row.id).await;
        Ok(Some(Principal { name: row.name, csrf: None }))
    }

    /// Who this session cookie belongs to, `None` when the session is unknown or over.
    pub async fn authenticate_cookie(&self, cookie_value: &str) -> Result<Option<Principal>, AuthError> {
        if cookie_value.is_empty() {
            return Ok(None);
        }
        let hash = hash_secret(cookie_value);
        let Some(session) = self.store.web_session(&hash).await? else {
            return Ok(None);
        };
        if !secrets_equal(&session.id_hash, &hash) {
            return Ok(None);
        }
        Ok(Some(Principal { name: "web".into(), csrf: Some(session.csrf) }))
    }

    async fn verify_key(&self, key: &str) -> Result<Option<ApiKey>, AuthError> {
        Ok(verify_api_key(&self.store, key).await?)
    }

    async fn touch(&self, id: &str) {
        let now = now_ms();
        {
            let mut touched = lock(&self.touched);
            if touched.get(id).is_some_and(|&last| now - last < TOUCH_INTERVAL_MS) {
                return;
            }
            touched.insert(id.to_string(), now);
        }
        if let Err(error) = self.store.touch_api_key(id, now).await {
            tracing::warn!(key_id = %id, %error, "could not record an API key's use");
        }
    }

    async fn start_session(&self, key_id: Option<&str>) -> Result<BrowserLogin, AuthError> {
        let cookie_value = secrets::random_token(COOKIE_LEN)?;
        let csrf = secrets::random_token(CSRF_LEN)?;
        let now = now_ms();
        let lifetime = i64::try_from(SESSION_LIFETIME.as_millis()).unwrap_or(i64::MAX);
        if let Err(error) = self.store.prune_web_sessions(now).await {
            tracing::warn!(%error, "could not forget expired browser sessions");
        }
        self.store
            .create_web_session(NewWebSession {
                id_hash: &hash_secret(&cookie_value),
                csrf: &csrf,
                expires_ms: now.saturating_add(lifetime),
                key_id,
            })
            .await?;
        Ok(BrowserLogin { cookie_value, csrf })
    }
}

/// Creates an API key named `name` in `store`. The key is in the answer and nowhere else;
/// the store keeps its hash.
pub async fn new_api_key(store: &Store, name: &str) -> Result<CreatedKey, AuthError> {
    let name = valid_name(name)?;
    let mut attempt = 1;
    loop {
        let generated = generate_api_key()?;
        match store.create_api_key(&generated.id, &name, &generated.hash).await {
            Ok(row) => {
                tracing::info!(key_id = %row.id, key_name = %row.name, "created an API key");
                return Ok(CreatedKey { info: KeyInfo::from(row), key: generated.key });
            }
            // Two keys drew the same id (one chance in 36^8): draw again.
            Err(StoreError::AlreadyExists(_)) if attempt < 3 => attempt += 1,
            Err(error) => return Err(error.into()),
        }
    }
}

/// The API keys of `store` not revoked, newest first.
pub async fn list_api_keys(store: &Store) -> Result<KeyList, AuthError> {
    Ok(KeyList { keys: store.list_api_keys().await?.into_iter().map(KeyInfo::from).collect() })
}

/// The stored key `key` is, when it is a valid one: well formed, known, not revoked, and
/// its hash matches (compared in constant time).
pub async fn verify_api_key(store: &Store, key: &str) -> Result<Option<ApiKey>, StoreError> {
    let Some(id) = key_id(key) else {
        return Ok(None);
    };
    let Some(row) = store.api_key(id).await? else {
        return Ok(None);
    };
    let matches = secrets_equal(&hash_secret(key), &row.key_hash);
    Ok((matches && row.revoked_ms.is_none()).then_some(row))
}

/// The longest key name accepted, in characters.
const MAX_NAME_CHARS: usize = 100;

fn valid_name(name: &str) -> Result<String, AuthError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(AuthError::Invalid(
            "an API key needs a name that says what it is for, e.g. \"ci\" or \"alice's laptop\"".into(),
        ));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(AuthError::Invalid(format!("the key's name is too long: use at most {MAX_NAME_CHARS} characters")));
    }
    if name.chars().any(char::is_control) {
        return Err(AuthError::Invalid("the key's name must not contain control characters or line breaks".into()));
    }
    Ok(name.to_string())
}

use crate::now_ms;

/// The API key a request carries: `Authorization: Bearer <key>`, else `x-api-key`.
pub fn presented_key(headers: &HeaderMap) -> Option<&str> {
    let bearer = headers.get_all(header::AUTHORIZATION).iter().find_map(|value| {
        let value = value.to_str().ok()?.trim();
        let (scheme, token) = value.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
    });
    bearer.or_else(|| headers.get(KEY_HEADER).and_then(|v| v.to_str().ok()).map(str::trim))
}

/// The value of the session cookie a request carries.
pub fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, value)| *name == COOKIE && !value.is_empty())
        .map(|(_, value)| value.trim_matches('"'))
}

/// 401 with the API's JSON error body and a `WWW-Authenticate` challenge.
fn unauthorized(message: String) -> Response {
    let mut response = ApiError::unauthorized(message).into_response();
    response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"rswe\""));
    response
}

/// Lets through requests with a valid API key (`Authorization: Bearer`, `x-api-key`) or a
/// browser session cookie (with the CSRF header on state-changing methods); answers
/// others 401 with a JSON error.
pub async fn require_api(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    if let Some(key) = presented_key(request.headers()) {
        return match state.auth.authenticate_key(key).await {
            Ok(Some(principal)) => {
                request.extensions_mut().insert(principal);
                next.run(request).await
            }
            Ok(None) => {
                tracing::info!(%method, %path, key_id = key_id(key).unwrap_or("-"), "refused an API key");
                unauthorized(format!(
                    "the API key is not valid (mistyped, revoked or from another server): {HOW_TO_AUTHENTICATE}"
                ))
            }
            Err(error) => ApiError::from(error).into_response(),
        };
    }
    if let Some(cookie) = session_cookie(request.headers()) {
        return match state.auth.authenticate_cookie(cookie).await {
            Ok(Some(principal)) => {
                if !method.is_safe() {
                    let token = request.headers().get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
                    if !principal.csrf_matches(token) {
                        tracing::info!(%method, %path, "refused a browser request without the right CSRF token");
                        return ApiError::new(
                            StatusCode::FORBIDDEN,
                            format!(
                                "this request has the session cookie but not the session's CSRF token: send it in \
                                 the `{CSRF_HEADER}` header, or use an API key instead"
                            ),
                        )
                        .into_response();
                    }
                }
                request.extensions_mut().insert(principal);
                next.run(request).await
            }
            Ok(None) => {
                tracing::info!(%method, %path, "refused an unknown or expired session cookie");
                unauthorized(format!(
                    "the browser session has ended: sign in again at /login, or {HOW_TO_AUTHENTICATE}"
                ))
            }
            Err(error) => ApiError::from(error).into_response(),
        };
    }
    tracing::info!(%method, %path, "refused a request without credentials");
    unauthorized(format!("this API needs authentication: {HOW_TO_AUTHENTICATE}"))
}

/// Lets through browsers with a session cookie; sends others to `/login` (`GET` and
/// `HEAD`) or answers 401. Form handlers behind it check the form's `csrf` field with
/// [`Auth::check_csrf`].
pub async fn require_ui(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    if let Some(cookie) = session_cookie(request.headers()) {
        match state.auth.authenticate_cookie(cookie).await {
            Ok(Some(principal)) => {
                request.extensions_mut().insert(principal);
                return next.run(request).await;
            }
            Ok(None) => tracing::info!(path = %request.uri().path(), "refused an unknown or expired session cookie"),
            Err(error) => {
                tracing::error!(%error, "could not look up a browser session");
                return (StatusCode::INTERNAL_SERVER_ERROR, format!("could not check the sign-in: {error}"))
                    .into_response();
            }
        }
    }
    if matches!(*request.method(), Method::GET | Method::HEAD) {
        let target = request.uri().path_and_query().map_or("/", |p| p.as_str());
        return Redirect::to(&format!("/login?next={}", crate::ui::query_component(target))).into_response();
    }
    (StatusCode::UNAUTHORIZED, "sign in first: open /login in the browser").into_response()
}

/// The API keys, newest first; never the keys themselves.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
pub struct KeyList {
    pub keys: Vec<KeyInfo>,
}

#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
pub struct KeyInfo {
    pub id: String,
    pub name: String,
    pub created_ms: i64,
    pub last_used_ms: Option<i64>,
}

impl From<ApiKey> for KeyInfo {
    fn from(key: ApiKey) -> Self {
        KeyInfo { id: key.id, name: key.name, created_ms: key.created_ms, last_used_ms: key.last_used_ms }
    }
}

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKeyRequest {
    /// What the key is for, e.g. "ci" or "alice's laptop".
    pub name: String,
}

/// A new key: `key` is shown this once and stored only hashed.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct CreatedKey {
    #[serde(flatten)]
    pub info: KeyInfo,
    pub key: String,
}

impl std::fmt::Debug for CreatedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedKey").field("info", &self.info).finish_non_exhaustive()
    }
}

/// `GET /api/v1/keys`.
pub async fn list_keys(State(state): State<AppState>) -> Result<Json<KeyList>, ApiError> {
    Ok(Json(state.auth.list().await?))
}

/// `POST /api/v1/keys`.
pub async fn create_key(
    State(state): State<AppState>,
    request: Result<Json<CreateKeyRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<CreatedKey>), ApiError> {
    let Json(request) = request?;
    Ok((StatusCode::CREATED, Json(state.auth.create_key(&request.name).await?)))
}

/// `DELETE /api/v1/keys/{id}`.
pub async fn revoke_key(State(state): State<AppState>, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    if state.auth.revoke(&id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("no API key {id} (see GET /api/v1/keys or `rswe keys list`)")))
    }
}

#[cfg(test)]
mod tests;
