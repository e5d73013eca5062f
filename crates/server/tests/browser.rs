//! The web UI in a real browser: headless Chromium driven over WebDriver signs in with
//! the one-time link, starts a session from the form, watches a tool card run live,
//! sends a message while the agent works, and interrupts it. Screenshots of the session
//! view are saved under `target/tmp/screenshots/`; look at them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod support;

use common::TestServer;
use rswe_protocol::SessionId;
use rswe_test_support::{Response, Script, Turn};
use serde_json::json;
use std::path::PathBuf;
use std::time::Duration;
use support::webdriver::Browser;

/// Waits (at most 60 s) for the file `go` in the workspace.
const WAIT_FOR_GO: &str = "echo 'building the project…'; for i in $(seq 1 1200); do [ -f go ] && break; sleep 0.05; done; \
                           echo 'tests: 42 passed'";
/// Runs until interrupted (at most 60 s).
const SLOW_SUITE: &str =
    "echo 'running the slow suite…'; for i in $(seq 1 1200); do [ -f never ] && break; sleep 0.05; done";

/// A shell card that is running.
const RUNNING: &str = "document.querySelector('.tool-card[data-tool=shell][data-status=running]')";

const LIVE: Duration = Duration::from_secs(30);

fn shell(command: &str) -> Turn {
    Response::new().text("Let me build it and run the tests.").tool_use("shell", json!({ "command": command })).into()
}

fn screenshots() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_started_in_the_browser_works_live_takes_a_message_and_is_interrupted() {
    let answer = "The build passes and **42 tests** are green.\n\n```rust\nfn main() {\n    println!(\"ok\");\n}\n```\n\n\
                  I noted your message: the changelog is updated too.";
    let script = Script::new().turns(vec![
        shell(WAIT_FOR_GO),
        Turn::text(answer),
        Response::new()
            .tool_use(
                "todo",
                json!({ "items": [
                { "id": "1", "content": "Build the project", "status": "completed" },
                { "id": "2", "content": "Run the slow suite", "status": "in_progress" }
            ] }),
            )
            .into(),
        shell(SLOW_SUITE),
    ]);
    let server = TestServer::start(script).await;
    let browser = Browser::start().await;

    // Sign in with the one-time link, as the terminal shows it on the first start.
    let token = server.state().auth.new_sign_in_token().unwrap();
    browser.goto(&format!("{}/login?token={token}", server.url)).await;
    browser.wait_for("the sessions page", "return location.pathname === '/'", LIVE).await;

    // A new session from the form, sent with Ctrl+Enter.
    let task = browser.find("#new-task").await;
    task.click().await;
    task.send_keys("Build the project and run the tests").await;
    task.send_keys("\u{E009}\u{E007}\u{E009}").await;
    let path = browser
        .wait_for("the session page", "return location.pathname.startsWith('/sessions/') && location.pathname", LIVE)
        .await;
    let id = SessionId::parse(path.as_str().unwrap().trim_start_matches("/sessions/")).unwrap();

    // The tool card appears while the command runs, with its output streaming in.
    browser.wait_for("a running tool card", &format!("return {RUNNING}"), LIVE).await;
    browser
        .wait_for(
            "live output",
            &format!("const c = {RUNNING}; return c && c.textContent.includes('building the project')"),
            LIVE,
        )
        .await;
    browser.screenshot(&screenshots().join("session-running.png")).await;

    // A message while the agent works reaches the model at its next step.
    let input = browser.find("#message-input").await;
    input.click().await;
    input.send_keys("Also update the changelog, please.").await;
    browser.find("#message-send").await.click().await;
    browser
        .wait_for(
            "my message in the conversation",
            "return [...document.querySelectorAll('.msg.user')].some(m => m.textContent.includes('update the changelog'))",
            LIVE,
        )
        .await;
    std::fs::write(server.state().service.workspace(&id).join("go"), "").unwrap();
    browser
        .wait_for(
            "the finished card",
            "return document.querySelector('.tool-card[data-tool=shell][data-status=done]')",
            LIVE,
        )
        .await;
    browser
        .wait_for(
            "the answer, rendered from Markdown",
            "return [...document.querySelectorAll('.msg.assistant strong')].some(s => s.textContent === '42 tests')",
            LIVE,
        )
        .await;
    let second = server.fake.requests()[1].body["messages"].to_string();
    assert!(second.contains("update the changelog"), "the steering message reached the model: {second}");

    // Another message starts more work; Interrupt stops it.
    let input = browser.find("#message-input").await;
    input.click().await;
    input.send_keys("Now run the slow suite.").await;
    browser.find("#message-send").await.click().await;
    browser
        .wait_for(
            "the slow suite running",
            &format!("const c = {RUNNING}; return c && c.textContent.includes('slow suite')"),
            LIVE,
        )
        .await;
    browser.screenshot(&screenshots().join("session-working.png")).await;
    browser.find("#interrupt").await.click().await;
    browser
        .wait_for(
            "the interruption",
            &format!("return !{RUNNING} && document.querySelector('.event.interrupted')"),
            LIVE,
        )
        .await;
    let status = server.store().session(&id).await.unwrap().unwrap().status;
    assert_eq!(status.as_str(), "idle");
    assert_eq!(server.fake.requests().len(), 4, "nothing was asked after the interrupt");
    assert_eq!(browser.eval("return window.__xss || null").await, serde_json::Value::Null);

    browser.screenshot(&screenshots().join("session.png")).await;
    browser.set_window_size(390, 844).await;
    browser.screenshot(&screenshots().join("session-phone.png")).await;
    browser.goto(&format!("{}/", server.url)).await;
    browser.find(".session-row").await;
    browser.set_window_size(1280, 900).await;
    browser.screenshot(&screenshots().join("sessions.png")).await;
    browser.goto(&format!("{}/costs", server.url)).await;
    let total = browser.find("#cost-total").await.text().await;
    assert!(total.starts_with('$'), "the period's cost is shown: {total:?}");
    browser.screenshot(&screenshots().join("costs.png")).await;
    server.fake.assert_no_violations();
}
