//! The web UI over HTTP: pages need a browser sign-in and assets do not, the session list
//! filters and pages, and nothing a model, a repository or a person writes can run in a
//! page — neither as the page loads nor as it arrives live.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use base64::Engine;
use common::TestServer;
use futures::StreamExt;
use reqwest::Method;
use rswe_protocol::{SessionId, SessionStatus};
use rswe_server::auth::BrowserLogin;
use rswe_server::service::Activity;
use rswe_store::{NewSession, SessionUpdate};
use rswe_test_support::{Response, Script, Turn};
use serde_json::{Value, json};
use std::time::Duration;

/// The payloads: a model's, a repository file's, a person's.
const SCRIPT: &str = "<script>window.__xss=1</script>";
const IMG: &str = r#"<img src=x onerror="window.__xss=1">"#;

/// A page or fragment as the signed-in browser gets it.
async fn page(server: &TestServer, login: &BrowserLogin, path: &str) -> (u16, reqwest::header::HeaderMap, String) {
    let response = server.browser(login, Method::GET, path).send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.text().await.unwrap())
}

/// Waits (bounded) until the session's stored status is `status` and nothing runs for it.
async fn wait_status(server: &TestServer, id: &SessionId, status: SessionStatus) {
    for _ in 0..600 {
        let session = server.store().session(id).await.unwrap().unwrap();
        if session.status == status && server.state().service.activity(id) == Activity::Resting {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("session {id} never became {status:?}");
}

/// One server-sent event.
#[derive(Debug, Default, Clone)]
struct Sse {
    event: String,
    id: Option<String>,
    data: String,
}

/// Reads server-sent events until `done` says so; fails after 30 seconds.
async fn read_events(response: reqwest::Response, mut done: impl FnMut(&Sse) -> bool) -> Vec<Sse> {
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_string();
    assert!(content_type.starts_with("text/event-stream"), "{content_type}");
    let mut stream = response.bytes_stream();
    let mut buffer: Vec<u8> = Vec::new();
    let mut events = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let chunk = tokio::time::timeout_at(deadline, stream.next())
            .await
            .unwrap_or_else(|_| panic!("no end in sight; events so far: {events:#?}"))
            .expect("the stream ended")
            .unwrap();
        buffer.extend_from_slice(&chunk);
        while let Some(end) = buffer.windows(2).position(|w| w == b"\n\n") {
            let block = String::from_utf8(buffer.drain(..end + 2).collect()).unwrap();
            let mut event = Sse::default();
            for line in block.lines() {
                if let Some(name) = line.strip_prefix("event:") {
                    event.event = name.trim().to_string();
                } else if let Some(id) = line.strip_prefix("id:") {
                    event.id = Some(id.trim().to_string());
                } else if let Some(data) = line.strip_prefix("data:") {
                    if !event.data.is_empty() {
                        event.data.push('\n');
                    }
                    event.data.push_str(data.strip_prefix(' ').unwrap_or(data));
                }
            }
            if event.event.is_empty() && event.data.is_empty() {
                continue; // a keep-alive comment
            }
            events.push(event.clone());
            if done(&event) {
                return events;
            }
        }
    }
}

/// The opening tags of an HTML text, lowercased: `<a href="…">`, `<pre>`, …
fn tags(html: &str) -> Vec<String> {
    let lower = html.to_lowercase();
    let mut tags = Vec::new();
    let mut rest = lower.as_str();
    while let Some(start) = rest.find('<') {
        rest = &rest[start..];
        let is_tag = rest[1..].chars().next().is_some_and(|c| c.is_ascii_alphabetic());
        let end = rest.find('>').map_or(rest.len(), |i| i + 1);
        if is_tag {
            tags.push(rest[..end].to_string());
        }
        rest = &rest[1..];
    }
    tags
}

/// Nothing in `html` can run: no script but this server's own, no element that loads or
/// runs something, no event handler, no `javascript:` URL.
fn assert_inert(html: &str) {
    for tag in tags(html) {
        let name: String = tag[1..].chars().take_while(|c| c.is_ascii_alphanumeric()).collect();
        if name == "script" {
            assert!(tag.starts_with(r#"<script src="/assets/"#), "a script that is not ours: {tag}");
            continue;
        }
        let ours = match name.as_str() {
            "form" => {
                ["id=\"new-form\"", "id=\"message-form\"", "id=\"key-form\"", "action=\"/logout\"", "action=\"/costs\""]
                    .iter()
                    .any(|mark| tag.contains(mark))
            }
            "link" => tag.contains("href=\"/assets/"),
            "meta" => !tag.contains("http-equiv"),
            "iframe" | "frame" | "object" | "embed" | "svg" | "math" | "base" | "style" | "video" | "audio" => false,
            _ => true,
        };
        assert!(ours, "a dangerous element: {tag}");
        if name == "img" {
            assert!(tag.contains(r#"src="data:image/"#), "an image from elsewhere: {tag}");
        }
        for attribute in tag.split_whitespace().skip(1) {
            assert!(!attribute.starts_with("on"), "an event handler: {tag}");
        }
        assert!(!tag.contains("javascript:"), "a javascript: URL: {tag}");
        assert!(!tag.contains("style="), "an inline style: {tag}");
    }
}

/// `&#x2f;` and friends back to what they stand for, for links read from pages.
fn unescape(text: &str) -> String {
    text.replace("&#x2f;", "/").replace("&quot;", "\"").replace("&#x27;", "'").replace("&amp;", "&")
}

fn href_of(html: &str, id: &str) -> Option<String> {
    let pattern = format!(r#"id="{id}" href=""#);
    let rest = &html[html.find(&pattern)? + pattern.len()..];
    Some(unescape(&rest[..rest.find('"')?]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_need_a_sign_in_and_assets_do_not() {
    let server = TestServer::start(Script::new()).await;
    for path in ["/", "/new", "/costs", "/keys", "/sessions/abc", "/sessions/abc/live"] {
        let response = server.anonymous(Method::GET, path).send().await.unwrap();
        assert!(response.status().is_redirection(), "{path}: {}", response.status());
        let location = response.headers()["location"].to_str().unwrap();
        assert!(location.starts_with("/login"), "{path}: {location}");
    }

    for (name, content_type) in [
        ("app.css", "text/css; charset=utf-8"),
        ("app.js", "text/javascript; charset=utf-8"),
        ("session.js", "text/javascript; charset=utf-8"),
        ("favicon.svg", "image/svg+xml"),
    ] {
        let response = server.anonymous(Method::GET, &format!("/assets/{name}")).send().await.unwrap();
        assert_eq!(response.status(), 200, "{name}");
        assert_eq!(response.headers()["content-type"], content_type);
        assert_eq!(response.headers()["cache-control"], "public, max-age=31536000, immutable");
        assert_eq!(response.headers()["x-content-type-options"], "nosniff");
        let etag = response.headers()["etag"].to_str().unwrap().to_string();
        assert!(!response.bytes().await.unwrap().is_empty());
        let again = server
            .anonymous(Method::GET, &format!("/assets/{name}"))
            .header("if-none-match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 304, "{name}");
    }
    let missing = server.anonymous(Method::GET, "/assets/nope.js").send().await.unwrap();
    assert_eq!(missing.status(), 404);

    let login = server.sign_in().await;
    for path in ["/", "/new", "/costs", "/keys"] {
        let (status, headers, html) = page(&server, &login, path).await;
        assert_eq!(status, 200, "{path}: {html}");
        assert!(headers["content-type"].to_str().unwrap().starts_with("text/html"), "{path}");
        let policy = headers["content-security-policy"].to_str().unwrap();
        assert!(policy.contains("script-src 'self'") && !policy.contains("unsafe-inline"), "{policy}");
        assert_eq!(headers["cache-control"], "no-store");
        assert!(html.contains(&format!(r#"<meta name="csrf-token" content="{}">"#, login.csrf)), "{path}");
        assert!(html.contains(r#"<form class="logout" method="post" action="/logout">"#), "{path}");
        assert!(html.contains(r#"<script src="/assets/app.js?v="#), "{path}");
        assert_inert(&html);
    }
    let (_, _, new) = page(&server, &login, "/new").await;
    for id in ["new-task", "new-repository", "new-model", "new-title", "new-files", "new-submit"] {
        assert!(new.contains(&format!(r#"id="{id}""#)), "{id} is missing: {new}");
    }
    assert!(new.contains(&format!(r#"<option value="{}" selected>"#, common::MODEL.replace('/', "&#x2f;"))), "{new}");

    let (status, _, html) = page(&server, &login, "/sessions/0000000000000000").await;
    assert_eq!(status, 404);
    assert!(html.contains("No such session"), "{html}");
    let (status, _, _) = page(&server, &login, "/sessions/0000000000000000/live").await;
    assert_eq!(status, 404);
    let (status, _, _) = page(&server, &login, "/sessions/Not%20an%20id").await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_a_model_a_repository_or_a_person_writes_runs_in_a_page() {
    let script = Script::new()
        .turn(
            Response::new()
                .text(format!("Let me look. {SCRIPT} {IMG} [click](javascript:window.__xss=1)"))
                .tool_use("shell", json!({ "command": "cat .rswe/inbox/evil.html" })),
        )
        .turn(Turn::text(format!(
            "Done: {IMG}\n\n<svg onload=\"window.__xss=1\"></svg><iframe src=\"javascript:1\"></iframe>\n\n\
             ```html\n{SCRIPT}\n```\n\nOpened https://github.com/acme/app/pull/7"
        )));
    let server = TestServer::start(script).await;
    let login = server.sign_in().await;
    let file = format!("{SCRIPT}<b onmouseover=\"window.__xss=1\">hi</b>");
    let response = server
        .browser(&login, Method::POST, "/api/v1/sessions")
        .json(&json!({
            "message": format!("Show me the file {SCRIPT}"),
            "title": format!("{SCRIPT} title"),
            "attachments": [{
                "name": "evil.html",
                "media_type": "text/html",
                "data": base64::engine::general_purpose::STANDARD.encode(&file),
            }],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    let body: Value = response.json().await.unwrap();
    let id = SessionId::parse(body["id"].as_str().unwrap()).unwrap();

    // The live stream from the start: every logged event as the page renders it.
    let live = server.browser(&login, Method::GET, &format!("/sessions/{id}/live?after=0")).send().await.unwrap();
    let events = read_events(live, |event| {
        event.event == "log" && {
            let update: Value = serde_json::from_str(&event.data).unwrap();
            update["kind"] == "status_changed" && update["status"] == "waiting"
        }
    })
    .await;
    let updates: Vec<Value> =
        events.iter().filter(|e| e.event == "log").map(|e| serde_json::from_str(&e.data).unwrap()).collect();
    for (event, update) in events.iter().filter(|e| e.event == "log").zip(&updates) {
        assert_eq!(event.id.as_deref(), Some(update["seq"].to_string().as_str()), "the SSE id is the seq");
    }
    let seqs: Vec<u64> = updates.iter().map(|u| u["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "every event once, in order");
    let mut fragments = String::new();
    for update in &updates {
        for op in update["ops"].as_array().unwrap() {
            fragments.push_str(op["html"].as_str().unwrap());
        }
        for panel in ["todo", "links"] {
            if let Some(html) = update[panel].as_str() {
                fragments.push_str(html);
            }
        }
    }
    assert_inert(&fragments);
    assert!(!fragments.to_lowercase().contains("<script"), "{fragments}");
    // The payloads were there, as text.
    assert!(fragments.contains("&lt;script&gt;window.__xss=1&lt;&#x2f;script&gt;"), "{fragments}");
    assert!(fragments.contains(r#"class="tool-card" id="tool-"#), "{fragments}");
    assert!(fragments.contains(r#"data-status="done""#), "{fragments}");
    let last = updates.last().unwrap();
    assert_eq!(last["status_label"], "Waiting for you");
    assert_eq!(last["working"], false);
    assert!(last["cost"].as_str().unwrap().starts_with('$'), "{last}");
    let links = updates.iter().find_map(|u| u["links"].as_str()).expect("the pull request was found");
    assert!(links.contains("acme&#x2f;app#7"), "{links}");

    wait_status(&server, &id, SessionStatus::Waiting).await;
    let (status, _, html) = page(&server, &login, &format!("/sessions/{id}")).await;
    assert_eq!(status, 200, "{html}");
    assert_inert(&html);
    let scripts: Vec<String> = tags(&html).into_iter().filter(|t| t.starts_with("<script")).collect();
    assert_eq!(scripts.len(), 2, "app.js and session.js, nothing else: {scripts:?}");
    assert!(html.contains("&lt;script&gt;window.__xss=1&lt;&#x2f;script&gt; title"), "the title is text");
    for id_attribute in ["message-input", "message-send", "message-files", "interrupt", "stop", "delete", "todo"] {
        assert!(html.contains(&format!(r#"id="{id_attribute}""#)), "{id_attribute} is missing");
    }
    assert!(html.contains(r#"<button id="interrupt" type="button""#) && html.contains("disabled>Interrupt"), "{html}");
    assert!(html.contains(&format!(r#"data-last-seq="{}""#, seqs.len())), "{html}");
    assert!(html.contains(r#"class="msg user""#) && html.contains(r#"class="msg assistant""#), "{html}");
    // What arrived live is what the page shows: the same fragments, replacements applied.
    let replaced: Vec<&str> = updates
        .iter()
        .flat_map(|u| u["ops"].as_array().unwrap())
        .filter(|op| op["op"] == "replace")
        .filter_map(|op| op["id"].as_str())
        .collect();
    for update in &updates {
        for op in update["ops"].as_array().unwrap() {
            let superseded = op["op"] == "append" && op["id"].as_str().is_some_and(|id| replaced.contains(&id));
            if !superseded {
                let fragment = op["html"].as_str().unwrap();
                assert!(html.contains(fragment), "the page lacks a live fragment: {fragment}");
            }
        }
    }

    // A browser that reconnects resumes after its Last-Event-ID.
    let resumed = server
        .browser(&login, Method::GET, &format!("/sessions/{id}/live?after=0"))
        .header("last-event-id", "3")
        .send()
        .await
        .unwrap();
    let first = read_events(resumed, |event| event.event == "log").await;
    assert_eq!(first.last().unwrap().id.as_deref(), Some("4"));

    // The list shows it, and the costs.
    let (_, _, list) = page(&server, &login, "/").await;
    assert_inert(&list);
    assert!(list.contains(&format!(r#"data-session-id="{id}""#)), "{list}");
    assert!(list.contains(r#"data-status="waiting" data-field="status">Waiting for you"#), "{list}");
    let (_, _, costs) = page(&server, &login, "/costs").await;
    assert_inert(&costs);
    assert!(costs.contains(r#"id="by-model""#), "{costs}");
    assert!(costs.contains("claude-sonnet-4-5"), "{costs}");
    assert!(costs.contains(&format!("/sessions/{id}").replace('/', "&#x2f;")), "{costs}");
    server.fake.assert_no_violations();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_list_filters_and_pages() {
    let server = TestServer::start(Script::new()).await;
    let login = server.sign_in().await;
    let store = server.store();
    let mut ids = Vec::new();
    for i in 0..53 {
        let title = (i % 10 != 0).then(|| format!("Task {i}"));
        let session = store
            .create_session(NewSession {
                title,
                model: common::MODEL.into(),
                channel: "api".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        ids.push(session.id);
    }
    for id in &ids[..3] {
        store
            .update_session(id, SessionUpdate { status: Some(SessionStatus::Failed), ..Default::default() })
            .await
            .unwrap();
    }
    store
        .update_session(&ids[10], SessionUpdate { last_message: Some("<b>a preview</b>".into()), ..Default::default() })
        .await
        .unwrap();

    let rows = |html: &str| html.matches("data-session-id=\"").count() - 1; // less the row template
    let (status, _, first) = page(&server, &login, "/").await;
    assert_eq!(status, 200);
    assert_eq!(rows(&first), 50);
    assert!(first.contains("&lt;b&gt;a preview&lt;&#x2f;b&gt;"), "an untitled session shows its last message");
    assert!(first.contains(">Untitled session<"), "{first}");
    let older = href_of(&first, "older").expect("an older link");
    let (status, _, second) = page(&server, &login, &older).await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(rows(&second), 3);
    assert!(href_of(&second, "older").is_none());
    assert!(second.contains(r#"id="newest""#));
    assert!(second.contains(r#"data-first-page="false""#));

    let (_, _, failed) = page(&server, &login, "/?status=failed").await;
    assert_eq!(rows(&failed), 3);
    assert!(failed.contains(r#"id="filter-failed" href="/?status=failed" aria-current="true""#), "{failed}");
    let (status, _, _) = page(&server, &login, "/?status=sleeping").await;
    assert_eq!(status, 400);
    let (status, _, expired) = page(&server, &login, "/?cursor=garbage").await;
    assert_eq!(status, 400, "{expired}");
}
