#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The legacy HTTP+SSE transport against the reference server (`server-everything sse`),
//! which ./scripts/test installs in `.test-peers`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use rswe_mcp::legacy_sse;
use rswe_test_support::peers::{HttpPeer, free_port};

const TIMEOUT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread")]
async fn talks_to_the_reference_server() {
    let server = HttpPeer::everything("sse").await;
    let port = server.port;
    let headers = BTreeMap::from([("Authorization".to_owned(), "Bearer unused".to_owned())]);

    let transport = legacy_sse::connect(&format!("http://127.0.0.1:{port}/sse"), &headers, TIMEOUT).await.unwrap();
    let client = tokio::time::timeout(TIMEOUT, ().serve(transport)).await.unwrap().unwrap();

    let tools = tokio::time::timeout(TIMEOUT, client.peer().list_all_tools()).await.unwrap().unwrap();
    assert!(tools.iter().any(|tool| tool.name == "echo"), "no echo tool in {tools:?}");

    let arguments = serde_json::json!({"message": "hello"}).as_object().cloned().unwrap();
    let call = client.peer().call_tool(CallToolRequestParams::new("echo").with_arguments(arguments));
    let result = tokio::time::timeout(TIMEOUT, call).await.unwrap().unwrap();
    let text: String = result.content.iter().filter_map(|c| c.as_text()).map(|t| t.text.as_str()).collect();
    assert!(text.contains("hello"), "echo answered {result:?}");

    // A URL the server does not serve.
    let started = Instant::now();
    let error = legacy_sse::connect(&format!("http://127.0.0.1:{port}/nope"), &headers, TIMEOUT)
        .await
        .err()
        .expect("connecting to a 404 URL succeeded");
    assert!(error.contains("404"), "{error}");
    assert!(started.elapsed() < TIMEOUT, "{error}");

    tokio::time::timeout(TIMEOUT, client.cancel()).await.unwrap().unwrap();
}

#[tokio::test]
async fn nothing_listening_is_a_clear_error_within_the_timeout() {
    let url = format!("http://127.0.0.1:{}/sse", free_port());
    let timeout = Duration::from_secs(5);
    let started = Instant::now();
    let error = legacy_sse::connect(&url, &BTreeMap::new(), timeout)
        .await
        .err()
        .expect("connecting where nothing listens succeeded");
    assert!(started.elapsed() < timeout + Duration::from_secs(1), "took {:?}", started.elapsed());
    assert!(error.contains(&url), "{error}");
    assert!(error.to_lowercase().contains("connect"), "{error}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_session_ends_when_the_server_goes_away() {
    let mut server = HttpPeer::everything("sse").await;
    let url = server.url("/sse");
    let transport = legacy_sse::connect(&url, &BTreeMap::new(), TIMEOUT).await.unwrap();
    let client = tokio::time::timeout(TIMEOUT, ().serve(transport)).await.unwrap().unwrap();

    server.kill().await;
    let reason = tokio::time::timeout(TIMEOUT, client.waiting()).await.unwrap().unwrap();
    assert!(matches!(reason, rmcp::service::QuitReason::Closed), "{reason:?}");
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    // The kernel completes the TCP handshake for the backlog; nobody ever answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/sse", listener.local_addr().unwrap());
    let timeout = Duration::from_millis(500);
    let started = Instant::now();
    let error = legacy_sse::connect(&url, &BTreeMap::new(), timeout).await.err().expect("connected to a mute server");
    assert!(started.elapsed() < timeout + Duration::from_secs(2), "took {:?}", started.elapsed());
    assert!(error.contains("no response within"), "{error}");
}
