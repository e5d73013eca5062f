use super::*;

async fn auth(public_url: &str) -> Auth {
    let settings = ServerSettings { public_url: public_url.into(), ..Default::default() };
    Auth::new(Store::open_in_memory().await.unwrap(), &settings)
}

fn browser(csrf: &str) -> Principal {
    Principal { name: "web".into(), csrf: Some(csrf.into()) }
}

#[tokio::test]
async fn cookies_are_http_only_strict_and_secure_behind_https() {
    let login = BrowserLogin { cookie_value: "abc123".into(), csrf: "c".into() };
    let plain = auth("http://127.0.0.1:8080").await;
    let cookie = plain.set_cookie(&login);
    assert!(cookie.starts_with("rswe_session=abc123;"), "{cookie}");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=604800"] {
        assert!(cookie.split("; ").any(|a| a == attribute), "{attribute} missing from {cookie}");
    }
    assert!(!cookie.contains("Secure"), "{cookie}");
    let secure = auth("HTTPS://rswe.example.com").await.set_cookie(&login);
    assert!(secure.split("; ").any(|a| a == "Secure"), "{secure}");
    let cleared = plain.clear_cookie();
    assert!(cleared.starts_with("rswe_session=;") && cleared.contains("Max-Age=0"), "{cleared}");
    assert!(cleared.contains("HttpOnly") && cleared.contains("SameSite=Strict"), "{cleared}");
}

#[test]
fn csrf_must_match_for_browsers_and_is_not_needed_with_keys() {
    assert!(Auth::check_csrf(&browser("token-1"), "token-1"));
    assert!(!Auth::check_csrf(&browser("token-1"), "token-2"));
    assert!(!Auth::check_csrf(&browser("token-1"), ""));
    assert!(!Auth::check_csrf(&browser("token-1"), "token-1 "));
    assert!(Auth::check_csrf(&Principal { name: "ci".into(), csrf: None }, ""));
}

#[test]
fn debug_output_holds_no_secrets() {
    let login = BrowserLogin { cookie_value: "cookie-secret".into(), csrf: "csrf-secret".into() };
    assert!(!format!("{login:?}").contains("secret"));
    assert!(!format!("{:?}", browser("csrf-secret")).contains("secret"));
    let created = CreatedKey {
        info: KeyInfo { id: "abcd1234".into(), name: "ci".into(), created_ms: 0, last_used_ms: None },
        key: "rswe_abcd1234_secret".into(),
    };
    assert!(!format!("{created:?}").contains("secret"));
}

#[test]
fn keys_are_read_from_either_header_and_cookies_from_the_cookie_header() {
    let mut headers = HeaderMap::new();
    assert_eq!(presented_key(&headers), None);
    headers.insert(KEY_HEADER, HeaderValue::from_static("from-x-api-key"));
    assert_eq!(presented_key(&headers), Some("from-x-api-key"));
    headers.insert(header::AUTHORIZATION, HeaderValue::from_static("bearer  from-bearer "));
    assert_eq!(presented_key(&headers), Some("from-bearer"), "Bearer wins, any case");
    headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic dXNlcjpwYXNz"));
    assert_eq!(presented_key(&headers), Some("from-x-api-key"), "other schemes are not keys");

    let mut headers = HeaderMap::new();
    headers.insert(header::COOKIE, HeaderValue::from_static("theme=dark; rswe_session=v4lue; other=1"));
    assert_eq!(session_cookie(&headers), Some("v4lue"));
    headers.insert(header::COOKIE, HeaderValue::from_static("xrswe_session=no; rswe_session="));
    assert_eq!(session_cookie(&headers), None);
}

#[tokio::test]
async fn keys_are_stored_hashed_verified_and_revoked() {
    let auth = auth("http://localhost").await;
    let created = auth.create_key("  ci  ").await.unwrap();
    assert_eq!(created.info.name, "ci");
    let stored = auth.store.api_key(&created.info.id).await.unwrap().unwrap();
    assert_eq!(stored.key_hash, hash_secret(&created.key).to_vec());
    assert!(!stored.key_hash.windows(created.key.len()).any(|w| w == created.key.as_bytes()));

    let principal = auth.authenticate_key(&created.key).await.unwrap().unwrap();
    assert_eq!(principal.name, "ci");
    assert!(principal.csrf.is_none());
    let used = auth.store.api_key(&created.info.id).await.unwrap().unwrap();
    assert!(used.last_used_ms.is_some(), "use is recorded");

    // Right id, wrong secret; unknown id; garbage.
    let mut wrong = created.key.clone();
    let last = if wrong.ends_with('A') { "B" } else { "A" };
    wrong.replace_range(wrong.len() - 1.., last);
    assert!(auth.authenticate_key(&wrong).await.unwrap().is_none());
    let other = generate_api_key().unwrap();
    assert!(auth.authenticate_key(&other.key).await.unwrap().is_none());
    assert!(auth.authenticate_key("nonsense").await.unwrap().is_none());

    let listed = auth.list().await.unwrap();
    assert_eq!(listed.keys.len(), 1);
    assert!(auth.revoke(&created.info.id).await.unwrap());
    assert!(!auth.revoke(&created.info.id).await.unwrap());
    assert!(auth.authenticate_key(&created.key).await.unwrap().is_none(), "revoked");
    assert!(auth.list().await.unwrap().keys.is_empty());
}

#[tokio::test]
async fn keys_need_a_sensible_name() {
    let auth = auth("http://localhost").await;
    for bad in ["", "   ", "two\nlines", &"x".repeat(101)] {
        let error = auth.create_key(bad).await.unwrap_err();
        assert!(matches!(error, AuthError::Invalid(_)), "{bad:?}: {error}");
    }
    assert!(auth.create_key(&"x".repeat(100)).await.is_ok());
}

#[tokio::test]
async fn the_first_start_token_signs_in_once_and_only_while_no_key_exists() {
    let auth = auth("http://localhost").await;
    let token = auth.first_start_token().await.unwrap().unwrap();
    assert!(auth.sign_in_with_token("wrong").await.unwrap().is_none());
    assert!(auth.sign_in_with_token("").await.unwrap().is_none());
    let login = auth.sign_in_with_token(&token).await.unwrap().unwrap();
    assert!(auth.sign_in_with_token(&token).await.unwrap().is_none(), "used up");

    let principal = auth.authenticate_cookie(&login.cookie_value).await.unwrap().unwrap();
    assert_eq!(principal.name, "web");
    assert_eq!(principal.csrf.as_deref(), Some(login.csrf.as_str()));
    assert!(auth.authenticate_cookie("not-a-session").await.unwrap().is_none());
    assert!(auth.authenticate_cookie("").await.unwrap().is_none());
    // Only the hash of the cookie is stored.
    assert!(auth.store.web_session(login.cookie_value.as_bytes()).await.unwrap().is_none());

    auth.sign_out(&login.cookie_value).await.unwrap();
    assert!(auth.authenticate_cookie(&login.cookie_value).await.unwrap().is_none());

    auth.create_key("admin").await.unwrap();
    assert!(auth.first_start_token().await.unwrap().is_none());
}

#[tokio::test]
async fn an_expired_token_is_refused_and_forgotten() {
    let auth = auth("http://localhost").await;
    let token = auth.new_sign_in_token().unwrap();
    if let Some(slot) = lock(&auth.sign_in).as_mut() {
        slot.expires = Instant::now() - Duration::from_secs(1);
    }
    assert!(auth.sign_in_with_token(&token).await.unwrap().is_none());
    assert!(lock(&auth.sign_in).is_none());
}

#[tokio::test]
async fn a_new_token_replaces_the_old_one() {
    let auth = auth("http://localhost").await;
    let old = auth.new_sign_in_token().unwrap();
    let new = auth.new_sign_in_token().unwrap();
    assert!(auth.sign_in_with_token(&old).await.unwrap().is_none());
    assert!(auth.sign_in_with_token(&new).await.unwrap().is_some());
}

#[tokio::test]
async fn signing_in_with_a_key_makes_a_session_that_ends_with_the_key() {
    let auth = auth("http://localhost").await;
    let created = auth.create_key("alice").await.unwrap();
    assert!(auth.sign_in_with_key("rswe_nope").await.unwrap().is_none());
    let login = auth.sign_in_with_key(&format!(" {} ", created.key)).await.unwrap().unwrap();
    assert!(auth.authenticate_cookie(&login.cookie_value).await.unwrap().is_some());
    let other = auth.sign_in_with_key(&created.key).await.unwrap().unwrap();
    assert_ne!(login.cookie_value, other.cookie_value);
    assert_ne!(login.csrf, other.csrf);
    auth.revoke(&created.info.id).await.unwrap();
    assert!(auth.authenticate_cookie(&login.cookie_value).await.unwrap().is_none());
    assert!(auth.authenticate_cookie(&other.cookie_value).await.unwrap().is_none());
}
