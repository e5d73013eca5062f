#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The Web API client against the fake Slack.

use std::time::{Duration, Instant};

use rswe_slack::api::{BotIdentity, SlackApi, SlackError};
use rswe_test_support::slack::{FakeSlack, UPLOAD_URL, URL_PRIVATE};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(10);

async fn setup() -> (FakeSlack, SlackApi) {
    let fake = FakeSlack::start().await;
    let api = SlackApi::new(&fake.api_url(), fake.bot_token()).unwrap();
    (fake, api)
}

#[tokio::test]
async fn auth_test_tells_who_the_bot_is() {
    let (fake, api) = setup().await;
    let me = api.auth_test().await.unwrap();
    assert_eq!(me, BotIdentity { user_id: "U0BOT".into(), team_id: "T0TEAM".into(), bot_id: Some("B0BOT".into()) });
    let calls = fake.calls_to("auth.test");
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].token.as_deref(), Some("xoxb-test"));
}

#[tokio::test]
async fn post_message_in_a_thread() {
    let (fake, api) = setup().await;
    let ts = api.post_message("C1", Some("1699999999.000001"), "*hello* <https://example.com|there>").await.unwrap();
    let second = api.post_message("C1", None, "top level").await.unwrap();
    assert!(second > ts, "{second} after {ts}");

    let calls = fake.calls_to("chat.postMessage");
    assert_eq!(calls.len(), 2);
    let call = &calls[0];
    assert_eq!(call.token.as_deref(), Some("xoxb-test"));
    assert_eq!(call.content_type.as_deref(), Some("application/json; charset=utf-8"));
    assert_eq!(call.arg("channel"), Some("C1"));
    assert_eq!(call.arg("thread_ts"), Some("1699999999.000001"));
    assert_eq!(call.arg("text"), Some("*hello* <https://example.com|there>"));
    assert_eq!(call.body["unfurl_links"], json!(false));
    assert!(calls[1].body.get("thread_ts").is_none());
}

#[tokio::test]
async fn rate_limits_wait_for_retry_after() {
    let (fake, api) = setup().await;
    fake.rate_limit("chat.postMessage", 2, 1);
    let ts = api.post_message("C1", None, "patience").await.unwrap();
    assert!(!ts.is_empty());

    let calls = fake.calls_to("chat.postMessage");
    assert_eq!(calls.iter().map(|c| c.status).collect::<Vec<_>>(), [429, 429, 200]);
    let first_wait = calls[1].at - calls[0].at;
    let total = calls[2].at - calls[0].at;
    assert!(first_wait >= Duration::from_secs(1), "retried after {first_wait:?}");
    assert!(total >= Duration::from_secs(2), "succeeded after {total:?}");
    assert!(total < Duration::from_secs(10), "succeeded after {total:?}");
}

#[tokio::test]
async fn rate_limits_give_up_after_five_attempts() {
    let (fake, api) = setup().await;
    fake.rate_limit("auth.test", 10, 0);
    let error = api.auth_test().await.unwrap_err();
    assert!(matches!(error, SlackError::RateLimited { .. }), "{error:?}");
    assert_eq!(fake.calls_to("auth.test").len(), 5);
}

#[tokio::test]
async fn server_errors_are_retried() {
    let (fake, api) = setup().await;
    fake.http_error("auth.test", 2, 503);
    api.auth_test().await.unwrap();
    let statuses: Vec<u16> = fake.calls_to("auth.test").iter().map(|c| c.status).collect();
    assert_eq!(statuses, [503, 503, 200]);
}

#[tokio::test]
async fn not_in_channel_says_to_invite_the_bot() {
    let (fake, api) = setup().await;
    fake.fail("chat.postMessage", "not_in_channel");
    let error = api.post_message("C1", None, "hi").await.unwrap_err();
    assert_eq!(error.api_error(), Some("not_in_channel"));
    let message = error.to_string();
    assert!(message.contains("not_in_channel") && message.contains("/invite @rswe"), "{message}");
    // Errors Slack answers are not retried.
    assert_eq!(fake.calls_to("chat.postMessage").len(), 1);
}

#[tokio::test]
async fn missing_scope_names_the_scope() {
    let (fake, api) = setup().await;
    fake.fail_with("reactions.add", json!({"ok": false, "error": "missing_scope", "needed": "reactions:write"}));
    let error = api.add_reaction("C1", "1700000000.000100", "eyes").await.unwrap_err();
    assert!(error.is_auth());
    let message = error.to_string();
    assert!(message.contains("reactions:write") && message.contains("add it"), "{message}");
}

#[tokio::test]
async fn a_wrong_token_is_invalid_auth() {
    let fake = FakeSlack::start().await;
    let api = SlackApi::new(&fake.api_url(), "xoxb-wrong").unwrap();
    let error = api.post_message("C1", None, "hi").await.unwrap_err();
    assert_eq!(error.api_error(), Some("invalid_auth"));
    assert!(error.is_auth());
    assert!(error.to_string().contains("SLACK_BOT_TOKEN"), "{error}");
    assert_eq!(fake.calls_to("chat.postMessage")[0].token.as_deref(), Some("xoxb-wrong"));
}

#[tokio::test]
async fn reactions_tolerate_already_reacted() {
    let (fake, api) = setup().await;
    api.add_reaction("C1", "1700000000.000100", ":eyes:").await.unwrap();
    api.add_reaction("C1", "1700000000.000100", "eyes").await.unwrap();
    let calls = fake.calls_to("reactions.add");
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].arg("timestamp"), Some("1700000000.000100"));
    assert_eq!(calls[0].arg("name"), Some("eyes"));
}

#[tokio::test]
async fn upload_file_uses_the_external_upload_flow() {
    let (fake, api) = setup().await;
    let bytes: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    api.upload_file("C1", Some("1700000000.000100"), "report final.bin", bytes.clone(), Some("here it is"))
        .await
        .unwrap();

    let methods: Vec<String> = fake.calls().into_iter().map(|c| c.method).collect();
    assert_eq!(methods, ["files.getUploadURLExternal", UPLOAD_URL, "files.completeUploadExternal"]);
    let get_url = &fake.calls_to("files.getUploadURLExternal")[0];
    assert_eq!(get_url.content_type.as_deref(), Some("application/x-www-form-urlencoded"));
    assert_eq!(get_url.arg("filename"), Some("report final.bin"));
    assert_eq!(get_url.arg("length"), Some("70000"));

    let uploaded = fake.uploaded_files();
    assert_eq!(uploaded.len(), 1);
    let file = &uploaded[0];
    assert_eq!(file.bytes, bytes);
    assert_eq!(file.filename, "report final.bin");
    assert_eq!(file.title.as_deref(), Some("report final.bin"));
    assert_eq!(file.channel.as_deref(), Some("C1"));
    assert_eq!(file.thread_ts.as_deref(), Some("1700000000.000100"));
    assert_eq!(file.initial_comment.as_deref(), Some("here it is"));
}

#[tokio::test]
async fn download_file_returns_the_bytes_within_the_limit() {
    let (fake, api) = setup().await;
    let bytes = b"a person's attachment".to_vec();
    let url = fake.add_file("notes.txt", bytes.clone());

    assert_eq!(api.download_file(&url, 1024).await.unwrap(), bytes);
    let downloads = fake.calls_to(URL_PRIVATE);
    assert_eq!(downloads[0].token.as_deref(), Some("xoxb-test"));

    let error = api.download_file(&url, bytes.len() - 1).await.unwrap_err();
    assert!(matches!(error, SlackError::TooLarge { .. }), "{error:?}");
    assert_eq!(api.download_file(&url, bytes.len()).await.unwrap(), bytes);
}

#[tokio::test]
async fn download_file_without_access_explains_the_scope() {
    let fake = FakeSlack::start().await;
    let url = fake.add_file("notes.txt", b"secret".to_vec());
    let api = SlackApi::new(&fake.api_url(), "xoxb-other-workspace").unwrap();
    let error = api.download_file(&url, 1024).await.unwrap_err();
    assert!(error.to_string().contains("files:read"), "{error}");
}

#[tokio::test]
async fn download_file_never_sends_the_token_elsewhere() {
    let (fake, api) = setup().await;
    let error = api.download_file("https://files.example.com/files-pri/T1-F1/x.png", 1024).await.unwrap_err();
    assert!(matches!(error, SlackError::Config(_)), "{error:?}");
    assert!(error.to_string().contains("files.example.com"), "{error}");
    assert!(fake.calls().is_empty());
}

#[tokio::test]
async fn socket_connections_use_the_app_token() {
    let (fake, api) = setup().await;
    let error = api.open_socket_connection(fake.app_token()).await.unwrap_err();
    assert_eq!(error.api_error(), Some("no socket url configured"));

    fake.set_socket_url("ws://127.0.0.1:1/link".into());
    assert_eq!(api.open_socket_connection(fake.app_token()).await.unwrap(), "ws://127.0.0.1:1/link");
    let calls = fake.calls_to("apps.connections.open");
    assert_eq!(calls[1].token.as_deref(), Some("xapp-test"));

    let error = api.open_socket_connection("xapp-wrong").await.unwrap_err();
    assert!(error.to_string().contains("SLACK_APP_TOKEN"), "{error}");
    let error = api.open_socket_connection("xoxb-test").await.unwrap_err();
    assert!(matches!(error, SlackError::Config(_)), "{error:?}");
}

#[tokio::test]
async fn user_names_are_looked_up_once() {
    let (fake, api) = setup().await;
    fake.set_user_name("U1", "Ada Lovelace");
    assert_eq!(api.user_name("U1").await.unwrap(), "Ada Lovelace");
    assert_eq!(api.user_name("U1").await.unwrap(), "Ada Lovelace");
    assert_eq!(api.user_name("U2").await.unwrap(), "Person U2");
    assert_eq!(fake.calls_to("users.info").len(), 2);
    assert_eq!(fake.calls_to("users.info")[0].arg("user"), Some("U1"));
}

#[tokio::test]
async fn a_rate_limited_channel_does_not_hold_up_another() {
    let (fake, api) = setup().await;
    fake.rate_limit("chat.postMessage", 1, 2);

    let slow = tokio::spawn({
        let api = api.clone();
        async move { api.post_message("CA", None, "to A").await }
    });
    let limited = fake.wait_for_call("chat.postMessage", |c| c.arg("channel") == Some("CA"), WAIT).await.unwrap();
    assert_eq!(limited.status, 429);

    let started = Instant::now();
    api.post_message("CB", None, "to B").await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(1), "B waited {:?}", started.elapsed());
    assert!(!slow.is_finished(), "A should still be waiting for its Retry-After");

    slow.await.unwrap().unwrap();
    let a: Vec<_> = fake.calls_to("chat.postMessage").into_iter().filter(|c| c.arg("channel") == Some("CA")).collect();
    let b = fake.calls_to("chat.postMessage").into_iter().find(|c| c.arg("channel") == Some("CB")).unwrap();
    assert_eq!(a.len(), 2);
    assert!(b.at < a[1].at, "B was posted before A's retry");
    assert!(a[1].at - a[0].at >= Duration::from_secs(2));
}

#[tokio::test]
async fn one_channel_keeps_its_order() {
    let (fake, api) = setup().await;
    // The first message is rate-limited; the second, asked for while the first waits,
    // must not overtake it.
    fake.rate_limit("chat.postMessage", 1, 1);
    let first = tokio::spawn({
        let api = api.clone();
        async move { api.post_message("C1", None, "first").await }
    });
    fake.wait_for_call("chat.postMessage", |c| c.status == 429, WAIT).await.unwrap();
    let second = api.post_message("C1", None, "second").await.unwrap();
    let first = first.await.unwrap().unwrap();
    assert!(first < second, "{first} before {second}");
    let texts: Vec<_> = fake
        .calls_to("chat.postMessage")
        .into_iter()
        .filter(|c| c.status == 200)
        .map(|c| c.arg("text").unwrap().to_owned())
        .collect();
    assert_eq!(texts, ["first", "second"]);
}

#[tokio::test]
async fn unknown_methods_and_form_only_methods_behave_like_slack() {
    let fake = FakeSlack::start().await;
    let client = reqwest::Client::new();
    let answer: serde_json::Value = client
        .post(format!("{}/no.such.method", fake.api_url()))
        .bearer_auth("xoxb-test")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer, json!({"ok": false, "error": "unknown_method"}));
    // users.info ignores a JSON body, as Slack does.
    let answer: serde_json::Value = client
        .post(format!("{}/users.info", fake.api_url()))
        .bearer_auth("xoxb-test")
        .json(&json!({"user": "U1"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["error"], "user_not_found");
}
