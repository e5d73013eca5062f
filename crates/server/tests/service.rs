//! The session service in-process: sessions created over HTTP run, steer, stop and
//! resume against the real store, sandbox and the fake model server.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::TestServer;
use rswe_protocol::{EventKind, SessionId, SessionStatus};
use rswe_test_support::{Script, Turn};
use serde_json::{Value, json};
use std::time::Duration;

/// Waits (bounded) until the session's stored status is `status`.
async fn wait_status(server: &TestServer, id: &SessionId, status: SessionStatus) {
    for _ in 0..600 {
        let session = server.store().session(id).await.unwrap().unwrap();
        if session.status == status && server.state().service.activity(id) == rswe_server::service::Activity::Resting {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("session {id} never became {status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_created_over_http_runs_a_tool_and_answers() {
    let script = Script::new()
        .turn(Turn::tool_use("shell", json!({ "command": "echo hello from the sandbox" })))
        .turn(Turn::text("All done."));
    let server = TestServer::start(script).await;
    let response = server.post("/api/v1/sessions").json(&json!({ "message": "say hello" })).send().await.unwrap();
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    let id = SessionId::parse(body["id"].as_str().unwrap()).unwrap();
    wait_status(&server, &id, SessionStatus::Waiting).await;
    let events = server.store().events(&id, 0, 1000).await.unwrap();
    let output = events
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::ToolResult { content, .. } => Some(format!("{content:?}")),
            _ => None,
        })
        .unwrap();
    assert!(output.contains("hello from the sandbox"), "{output}");
    server.fake.assert_no_violations();

    // Health, readiness, and what the metrics say about it (no key needed by default).
    let health = server.anonymous(reqwest::Method::GET, "/healthz").send().await.unwrap();
    assert_eq!(health.status(), 200);
    let ready = server.anonymous(reqwest::Method::GET, "/readyz").send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let metrics = server.anonymous(reqwest::Method::GET, "/metrics").send().await.unwrap();
    assert_eq!(metrics.status(), 200);
    let text = metrics.text().await.unwrap();
    for line in [
        "rswe_sessions{status=\"waiting\"} 1",
        "rswe_sessions{status=\"working\"} 0",
        "rswe_tool_calls_total{tool=\"shell\",outcome=\"ok\"} 1",
        "rswe_model_requests_total{model=\"anthropic/claude-sonnet-4-5\"} 2",
        "rswe_http_request_duration_seconds_count{method=\"POST\",route=\"/api/v1/sessions\",status=\"201\"} 1",
    ] {
        assert!(text.lines().any(|l| l == line), "no `{line}` in\n{text}");
    }
    assert!(text.contains("rswe_model_cost_dollars_total{model=\"anthropic/claude-sonnet-4-5\"} 0."), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_can_require_a_key() {
    let mut options = common::Options::default();
    options.settings.metrics_public = false;
    let server = TestServer::start_with(Script::new(), options).await;
    let anonymous = server.anonymous(reqwest::Method::GET, "/metrics").send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let with_key = server.get("/metrics").send().await.unwrap();
    assert_eq!(with_key.status(), 200);
    let health = server.anonymous(reqwest::Method::GET, "/healthz").send().await.unwrap();
    assert_eq!(health.status(), 200);
}

/// Whether a process is alive (not gone, not a zombie).
fn alive(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| !stat.contains(") Z "))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sessions_mcp_servers_start_with_it_and_stop_when_it_rests() {
    let markers = tempfile::tempdir().unwrap();
    let servers = rswe_mcp::McpConfig::from_json(
        &json!({ "mcpServers": { "probe": {
            "command": rswe_test_support::peers::python(),
            "args": [rswe_test_support::peers::misbehaving_server(), "ok"],
            "env": { "MARKER_DIR": markers.path() },
            "trusted": true,
        }}})
        .to_string(),
        &|_| None,
    )
    .unwrap();
    let options = common::Options {
        idle_release: Duration::from_millis(300),
        mcp: rswe_server::McpServiceConfig { servers, ..Default::default() },
        ..Default::default()
    };
    let script = Script::new()
        .turn(Turn::tool_use("mcp__probe__echo", json!({ "text": "via serve" })))
        .turn(Turn::text("It echoed."))
        .turn(Turn::tool_use("mcp__probe__echo", json!({ "text": "once more" })))
        .turn(Turn::text("Again."));
    let server = TestServer::start_with(script, options).await;
    let response = server.post("/api/v1/sessions").json(&json!({ "message": "echo something" })).send().await.unwrap();
    let id = SessionId::parse(response.json::<Value>().await.unwrap()["id"].as_str().unwrap()).unwrap();
    wait_status(&server, &id, SessionStatus::Waiting).await;
    let requests = server.fake.requests();
    assert!(requests[1].body.to_string().contains("echo: via serve"), "the MCP result reached the model");
    let first = std::fs::read_to_string(markers.path().join("started")).unwrap();

    // Resting past idle_release: the server is stopped with the sandbox.
    let mut stopped = false;
    for _ in 0..400 {
        if !alive(&first) {
            stopped = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(stopped, "the MCP server {first} still runs after the session rested");

    // Spoken to again, the session starts it again.
    let response =
        server.post(&format!("/api/v1/sessions/{id}/messages")).json(&json!({ "text": "again" })).send().await;
    assert!(response.unwrap().status().is_success());
    wait_status(&server, &id, SessionStatus::Waiting).await;
    assert!(server.fake.requests()[3].body.to_string().contains("echo: once more"));
    let second = std::fs::read_to_string(markers.path().join("started")).unwrap();
    assert_ne!(first, second, "a new instance");
    server.fake.assert_no_violations();
}
