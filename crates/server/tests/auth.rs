//! Authentication over HTTP: API keys on every protected route, the one-time sign-in
//! link, browser sessions with their CSRF token, the sign-in page, revoked keys.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Options, TestServer};
use reqwest::header::{CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE, WWW_AUTHENTICATE};
use reqwest::{Method, StatusCode};
use rswe_protocol::SessionId;
use rswe_server::auth::{BrowserLogin, CSRF_HEADER, Principal};
use rswe_test_support::Script;
use serde_json::{Value, json};

/// Shaped like a key, but no server made it.
fn unknown_key() -> String {
    format!("rswe_aaaaaaaa_{}", "A".repeat(32))
}

fn cookie(login: &BrowserLogin) -> String {
    format!("rswe_session={}", login.cookie_value)
}

/// `application/x-www-form-urlencoded`, as a browser sends a form.
fn form(fields: &[(&str, &str)]) -> String {
    let encode = |text: &str| {
        text.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => char::from(b).to_string(),
                b' ' => "+".into(),
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    fields.iter().map(|(name, value)| format!("{}={}", encode(name), encode(value))).collect::<Vec<_>>().join("&")
}

fn post_form(server: &TestServer, path: &str, fields: &[(&str, &str)]) -> reqwest::RequestBuilder {
    server.anonymous(Method::POST, path).header(CONTENT_TYPE, "application/x-www-form-urlencoded").body(form(fields))
}

fn header(response: &reqwest::Response, name: impl reqwest::header::AsHeaderName) -> String {
    response.headers().get(name).map(|v| v.to_str().unwrap().to_string()).unwrap_or_default()
}

async fn assert_unauthorized(response: reqwest::Response, what: &str) {
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{what}");
    assert!(header(&response, WWW_AUTHENTICATE).starts_with("Bearer"), "{what}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized", "{what}: {body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("Authorization: Bearer") && message.contains("rswe keys create"), "{what}: {message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_protected_route_wants_a_valid_key_and_takes_one() {
    let server = TestServer::start(Script::new()).await;
    let routes = rswe_server::api::routes();
    assert!(routes.iter().filter(|r| !r.public).count() > 10);
    for route in &routes {
        let path = route.path.replace("{id}", SessionId::new().as_str());
        let what = format!("{} {path}", route.method);
        if route.public {
            let response = server.anonymous(route.method.clone(), &path).send().await.unwrap();
            assert!(response.status().is_success(), "{what} is public: {}", response.status());
            continue;
        }
        let method = || route.method.clone();
        assert_unauthorized(server.anonymous(method(), &path).send().await.unwrap(), &format!("{what}, no key")).await;
        for wrong in [unknown_key(), "nonsense".to_string(), format!("{}x", server.api_key())] {
            let bearer = server.anonymous(method(), &path).bearer_auth(&wrong).send().await.unwrap();
            assert_unauthorized(bearer, &format!("{what}, Bearer {wrong}")).await;
            let header = server.anonymous(method(), &path).header("x-api-key", &wrong).send().await.unwrap();
            assert_unauthorized(header, &format!("{what}, x-api-key {wrong}")).await;
        }
        // A session cookie that is not one.
        let forged = server.anonymous(method(), &path).header(COOKIE, "rswe_session=forged").send().await.unwrap();
        assert_unauthorized(forged, &format!("{what}, forged cookie")).await;

        let bearer = server.request(method(), &path).send().await.unwrap();
        assert!(!matches!(bearer.status().as_u16(), 401 | 403), "{what} refused a valid key: {}", bearer.status());
        let header = server.anonymous(method(), &path).header("x-api-key", server.api_key()).send().await.unwrap();
        assert!(!matches!(header.status().as_u16(), 401 | 403), "{what} refused x-api-key: {}", header.status());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sign_in_link_works_once() {
    let options = Options { create_api_key: false, ..Default::default() };
    let server = TestServer::start_with(Script::new(), options).await;
    let token = server.state().auth.first_start_token().await.unwrap().expect("no key yet: a token");

    let response = server
        .anonymous(Method::GET, &format!("/login?token={token}&next=%2Fsessions%3Ftab%3Dlog"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(header(&response, LOCATION), "/sessions?tab=log");
    let set_cookie = header(&response, SET_COOKIE);
    assert!(set_cookie.starts_with("rswe_session="), "{set_cookie}");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set_cookie.contains(attribute), "{attribute}: {set_cookie}");
    }
    assert!(!set_cookie.contains("Secure"), "plain http: {set_cookie}");
    let session_cookie = set_cookie.split(';').next().unwrap().to_string();

    let models = server.anonymous(Method::GET, "/api/v1/models").header(COOKIE, &session_cookie).send().await.unwrap();
    assert_eq!(models.status(), StatusCode::OK, "the cookie signs in");

    let again = server.anonymous(Method::GET, &format!("/login?token={token}")).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::UNAUTHORIZED);
    assert!(again.headers().get(SET_COOKIE).is_none());
    assert!(again.text().await.unwrap().contains("already used or has expired"));

    let wrong = server.anonymous(Method::GET, "/login?token=guess").send().await.unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);

    // Signed in, the page sends the browser on.
    let page =
        server.anonymous(Method::GET, "/login?next=/usage").header(COOKIE, &session_cookie).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::SEE_OTHER);
    assert_eq!(header(&page, LOCATION), "/usage");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_requests_that_change_state_need_the_csrf_header() {
    let server = TestServer::start(Script::new()).await;
    let login = server.sign_in().await;
    let with_cookie = |method: Method, path: &str| server.anonymous(method, path).header(COOKIE, cookie(&login));

    let read = with_cookie(Method::GET, "/api/v1/keys").send().await.unwrap();
    assert_eq!(read.status(), StatusCode::OK, "reading needs no CSRF token");

    let body = json!({ "name": "from the browser" });
    let missing = with_cookie(Method::POST, "/api/v1/keys").json(&body).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::FORBIDDEN);
    let error: Value = missing.json().await.unwrap();
    assert_eq!(error["error"]["code"], "forbidden");
    assert!(error["error"]["message"].as_str().unwrap().contains(CSRF_HEADER));

    let wrong = with_cookie(Method::POST, "/api/v1/keys")
        .header(CSRF_HEADER, "not-the-token")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);

    let interrupt = format!("/api/v1/sessions/{}/interrupt", SessionId::new());
    let stopped = with_cookie(Method::POST, &interrupt).send().await.unwrap();
    assert_eq!(stopped.status(), StatusCode::FORBIDDEN);

    let right = server.browser(&login, Method::POST, "/api/v1/keys").json(&body).send().await.unwrap();
    assert_eq!(right.status(), StatusCode::CREATED);
    let passes = server.browser(&login, Method::POST, &interrupt).send().await.unwrap();
    assert_eq!(passes.status(), StatusCode::NOT_FOUND, "authenticated; the session just does not exist");

    // An API key needs no CSRF token.
    assert_eq!(server.post("/api/v1/keys").json(&body).send().await.unwrap().status(), StatusCode::CREATED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_made_over_the_api_work_until_revoked() {
    let server = TestServer::start(Script::new()).await;
    let response = server.post("/api/v1/keys").json(&json!({ "name": "ci" })).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: Value = response.json().await.unwrap();
    let key = created["key"].as_str().unwrap().to_string();
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(created["name"], "ci");
    assert!(key.starts_with(&format!("rswe_{id}_")), "{key}");

    let list: Value = server.get("/api/v1/keys").send().await.unwrap().json().await.unwrap();
    let keys = list["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0]["id"], id.as_str(), "newest first");
    assert!(keys.iter().all(|k| k.get("key").is_none()), "keys are never listed: {list}");
    assert!(!list.to_string().contains(&key));

    let use_key = || server.anonymous(Method::GET, "/api/v1/models").bearer_auth(&key);
    assert_eq!(use_key().send().await.unwrap().status(), StatusCode::OK);
    let header = server.anonymous(Method::GET, "/api/v1/models").header("x-api-key", &key).send().await.unwrap();
    assert_eq!(header.status(), StatusCode::OK);

    // A browser signed in with the key is signed out with it.
    let login = server.state().auth.sign_in_with_key(&key).await.unwrap().unwrap();
    let browser = || server.anonymous(Method::GET, "/api/v1/models").header(COOKIE, cookie(&login));
    assert_eq!(browser().send().await.unwrap().status(), StatusCode::OK);

    let revoked = server.delete(&format!("/api/v1/keys/{id}")).send().await.unwrap();
    assert_eq!(revoked.status(), StatusCode::NO_CONTENT);
    assert_unauthorized(use_key().send().await.unwrap(), "a revoked key").await;
    assert_unauthorized(browser().send().await.unwrap(), "a session of a revoked key").await;
    let again = server.delete(&format!("/api/v1/keys/{id}")).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::NOT_FOUND);
    let list: Value = server.get("/api/v1/keys").send().await.unwrap().json().await.unwrap();
    assert_eq!(list["keys"].as_array().unwrap().len(), 1);

    for bad in [json!({ "name": "" }), json!({ "name": "  " }), json!({ "name": "x", "admin": true }), json!({})] {
        let response = server.post("/api/v1/keys").json(&bad).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{bad}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"]["code"], "bad_request");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sign_in_page_takes_a_key_and_sign_out_needs_the_csrf_field() {
    let server = TestServer::start(Script::new()).await;
    let page = server.anonymous(Method::GET, "/login?next=/sessions").send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(header(&page, "cache-control"), "no-store");
    let html = page.text().await.unwrap();
    assert!(html.contains("<form") && html.contains("name=\"key\"") && html.contains("value=\"&#x2f;sessions\""));

    let wrong = post_form(&server, "/login", &[("key", &unknown_key()), ("next", "/x")]).send().await.unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(wrong.headers().get(SET_COOKIE).is_none());
    assert!(wrong.text().await.unwrap().contains("not valid"));
    let empty = post_form(&server, "/login", &[("key", "")]).send().await.unwrap();
    assert_eq!(empty.status(), StatusCode::UNAUTHORIZED);

    let key = server.api_key().to_string();
    for (next, expected) in [("/sessions/abc?x=1", "/sessions/abc?x=1"), ("//evil.example/", "/"), ("https://e.x", "/")]
    {
        let response = post_form(&server, "/login", &[("key", &key), ("next", next)]).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{next}");
        assert_eq!(header(&response, LOCATION), expected, "{next}");
        assert!(header(&response, SET_COOKIE).starts_with("rswe_session="));
    }

    let login = server.sign_in().await;
    let signed_in = || server.anonymous(Method::GET, "/api/v1/models").header(COOKIE, cookie(&login));
    let forged =
        post_form(&server, "/logout", &[("csrf", "guess")]).header(COOKIE, cookie(&login)).send().await.unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert_eq!(signed_in().send().await.unwrap().status(), StatusCode::OK, "still signed in");

    let out =
        post_form(&server, "/logout", &[("csrf", &login.csrf)]).header(COOKIE, cookie(&login)).send().await.unwrap();
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert_eq!(header(&out, LOCATION), "/login");
    assert!(header(&out, SET_COOKIE).contains("Max-Age=0"));
    assert_eq!(signed_in().send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_send_strangers_to_the_sign_in_page() {
    use axum::routing::get;
    let server = TestServer::start(Script::new()).await;
    let state = server.state().clone();
    let app = axum::Router::new()
        .route(
            "/page",
            get(|principal: axum::Extension<Principal>| async move { principal.name.clone() })
                .post(|| async { "changed" }),
        )
        .layer(axum::middleware::from_fn_with_state(state.clone(), rswe_server::auth::require_ui))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let stranger = server.http.get(format!("{url}/page?tab=a b")).send().await.unwrap();
    assert_eq!(stranger.status(), StatusCode::SEE_OTHER);
    assert_eq!(header(&stranger, LOCATION), "/login?next=%2Fpage%3Ftab%3Da%2520b");
    let post = server.http.post(format!("{url}/page")).send().await.unwrap();
    assert_eq!(post.status(), StatusCode::UNAUTHORIZED);
    let keyed = server.http.get(format!("{url}/page")).bearer_auth(server.api_key()).send().await.unwrap();
    assert_eq!(keyed.status(), StatusCode::SEE_OTHER, "pages take the browser session only");

    let login = server.sign_in().await;
    let page = server.http.get(format!("{url}/page")).header(COOKIE, cookie(&login)).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(page.text().await.unwrap(), "web");
}
