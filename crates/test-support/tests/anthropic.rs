//! The Anthropic Messages wire format over real HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{client, letters, parse_sse, read_body};
use futures::StreamExt;
use rswe_test_support::{Api, ErrorKind, Failure, FakeModelServer, Response, Script};
use serde_json::{Value, json};

async fn post(server: &FakeModelServer, body: Value) -> reqwest::Response {
    client()
        .post(format!("{}/v1/messages", server.anthropic_base_url()))
        .header("x-api-key", "sk-ant-fake")
        .header("anthropic-version", "2023-06-01")
        .json(&body)
        .send()
        .await
        .unwrap()
}

fn hello(stream: bool) -> Value {
    json!({
        "model": "claude-sonnet-4-5",
        "max_tokens": 1024,
        "stream": stream,
        "messages": [{"role": "user", "content": "hello"}],
    })
}

fn rich_turn() -> Response {
    Response::new()
        .thinking("I should list the files and read the readme.", "sig-abc")
        .text("Let me look at the repository first.")
        .tool_use_with_id("toolu_given", "list_files", json!({"path": ".", "recursive": true}))
        .tool_use("read_file", json!({"path": "README.md"}))
}

/// Rebuilds the content blocks from a stream's events.
fn assemble(events: &[common::Sse]) -> (Vec<Value>, Value, Value) {
    let mut blocks: Vec<Value> = Vec::new();
    let mut json_parts: Vec<String> = Vec::new();
    let mut start = Value::Null;
    let mut delta = Value::Null;
    for e in events {
        let data = e.json();
        assert_eq!(data["type"].as_str(), e.event.as_deref(), "event name matches type");
        match e.event.as_deref().unwrap() {
            "message_start" => start = data,
            "content_block_start" => {
                assert_eq!(data["index"], blocks.len());
                blocks.push(data["content_block"].clone());
                json_parts.push(String::new());
            }
            "content_block_delta" => {
                let i = data["index"].as_u64().unwrap() as usize;
                let d = &data["delta"];
                match d["type"].as_str().unwrap() {
                    "text_delta" => {
                        let t = format!("{}{}", blocks[i]["text"].as_str().unwrap(), d["text"].as_str().unwrap());
                        blocks[i]["text"] = json!(t);
                    }
                    "thinking_delta" => {
                        let t =
                            format!("{}{}", blocks[i]["thinking"].as_str().unwrap(), d["thinking"].as_str().unwrap());
                        blocks[i]["thinking"] = json!(t);
                    }
                    "signature_delta" => blocks[i]["signature"] = d["signature"].clone(),
                    "input_json_delta" => json_parts[i].push_str(d["partial_json"].as_str().unwrap()),
                    other => panic!("unexpected delta {other}"),
                }
            }
            "content_block_stop" => {
                let i = data["index"].as_u64().unwrap() as usize;
                if blocks[i]["type"] == "tool_use" {
                    blocks[i]["input"] = serde_json::from_str(&json_parts[i]).unwrap();
                }
            }
            "message_delta" => delta = data,
            "ping" | "message_stop" => {}
            other => panic!("unexpected event {other}"),
        }
    }
    (blocks, start, delta)
}

#[tokio::test]
async fn streamed_and_plain_responses_decode_to_the_script() {
    let server = FakeModelServer::start(Script::new().turn(rich_turn()).turn(rich_turn())).await;

    let response = post(&server, hello(true)).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let events = parse_sse(&response.text().await.unwrap());
    let names: Vec<&str> = events.iter().map(|e| e.event.as_deref().unwrap()).collect();
    assert_eq!(names[..2], ["message_start", "ping"]);
    assert_eq!(names[names.len() - 2..], ["message_delta", "message_stop"]);
    // Text and tool input arrive in several pieces.
    let text_deltas = events.iter().filter(|e| e.data.contains("\"text_delta\"")).count();
    let json_deltas = events.iter().filter(|e| e.data.contains("\"input_json_delta\"")).count();
    assert!(text_deltas >= 2 && json_deltas >= 4, "{text_deltas} {json_deltas}");

    let (blocks, start, delta) = assemble(&events);
    assert_eq!(start["message"]["model"], "claude-sonnet-4-5");
    assert_eq!(start["message"]["usage"]["output_tokens"], 1);
    assert_eq!(delta["delta"]["stop_reason"], "tool_use");
    assert_eq!(blocks.len(), 4);
    assert_eq!(
        blocks[0],
        json!({"type": "thinking", "thinking": "I should list the files and read the readme.", "signature": "sig-abc"})
    );
    assert_eq!(blocks[1], json!({"type": "text", "text": "Let me look at the repository first."}));
    assert_eq!(
        blocks[2],
        json!({"type": "tool_use", "id": "toolu_given", "name": "list_files", "input": {"path": ".", "recursive": true}})
    );
    assert_eq!(blocks[3]["name"], "read_file");
    assert_eq!(blocks[3]["input"], json!({"path": "README.md"}));
    assert!(blocks[3]["id"].as_str().unwrap().starts_with("toolu_"));

    let response = post(&server, hello(false)).await;
    assert_eq!(response.status(), 200);
    let message: Value = response.json().await.unwrap();
    assert_eq!(message["type"], "message");
    assert_eq!(message["role"], "assistant");
    assert!(message["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(message["stop_reason"], "tool_use");
    assert_eq!(message["stop_sequence"], Value::Null);
    assert_eq!(message["content"].as_array().unwrap()[..3], blocks[..3]);
    assert_eq!(message["content"][3]["input"], json!({"path": "README.md"}));
    let usage = &message["usage"];
    // {"type":"text","text":"hello"} is 30 bytes: 8 tokens.
    assert_eq!(usage["input_tokens"], 8);
    assert_eq!(usage["cache_read_input_tokens"], 0);
    assert_eq!(usage["cache_creation_input_tokens"], 0);
    assert!(usage["output_tokens"].as_u64().unwrap() > 10);

    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].api, Api::Anthropic);
    assert!(requests[0].stream && !requests[1].stream);
    assert_eq!(requests[0].model, "claude-sonnet-4-5");
    assert_eq!(requests[0].header("X-Api-Key"), Some("sk-ant-fake"));
    assert_eq!(requests[0].path, "/v1/messages");
    assert_eq!(requests[1].usage.unwrap().input_tokens, 8);
    assert_eq!(server.turns_remaining(), 0);
    server.assert_no_violations();
}

#[tokio::test]
async fn checks_catch_an_unanswered_tool_use_and_a_fifth_breakpoint() {
    let server = FakeModelServer::start(Script::new().turn("unused")).await;
    let body = json!({
        "model": "claude-sonnet-4-5",
        "max_tokens": 1024,
        "messages": [
            {"role": "user", "content": "list the files"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "ls", "input": {}}]},
            {"role": "user", "content": [{"type": "text", "text": "never mind"}]},
        ],
    });
    let response = post(&server, body).await;
    assert_eq!(response.status(), 400);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["type"], "error");
    assert_eq!(error["error"]["type"], "invalid_request_error");
    assert!(error["error"]["message"].as_str().unwrap().contains("`tool_use` ids were found without `tool_result`"));

    let cc = json!({"type": "ephemeral"});
    let body = json!({
        "model": "claude-sonnet-4-5",
        "max_tokens": 1024,
        "tools": [{"name": "ls", "description": "list", "input_schema": {"type": "object"}, "cache_control": cc}],
        "system": [{"type": "text", "text": "one", "cache_control": cc}, {"type": "text", "text": "two", "cache_control": cc}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "a", "cache_control": cc}, {"type": "text", "text": "b", "cache_control": cc}]},
        ],
    });
    let response = post(&server, body).await;
    assert_eq!(response.status(), 400);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["message"], "A maximum of 4 blocks with cache_control may be provided. Found 5.");

    // A stray tool_result.
    let body = json!({
        "model": "claude-sonnet-4-5",
        "max_tokens": 1024,
        "messages": [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_x", "content": "ok"}]}],
    });
    assert_eq!(post(&server, body).await.status(), 400);

    let violations = server.violations();
    assert_eq!(violations.len(), 3, "{violations:?}");
    assert!(violations[1].contains("Found 5"));
    // Rejected requests consume no turn.
    assert_eq!(server.turns_remaining(), 1);
    assert!(server.requests().iter().all(|r| r.status == 400 && r.usage.is_none()));
}

fn cached_request(stream: bool, messages: Value) -> Value {
    json!({
        "model": "claude-sonnet-4-5",
        "max_tokens": 1024,
        "stream": stream,
        // {"type":"text","text":"<4075 letters>"} is 4100 bytes: 1025 tokens.
        "system": [{"type": "text", "text": letters(4075), "cache_control": {"type": "ephemeral"}}],
        "messages": messages,
    })
}

async fn usage_of(server: &FakeModelServer, body: Value) -> Value {
    let stream = body["stream"] == true;
    let response = post(server, body).await;
    assert_eq!(response.status(), 200);
    if stream {
        let events = parse_sse(&response.text().await.unwrap());
        let mut usage = events[0].json()["message"]["usage"].clone();
        usage["output_tokens"] = events.iter().rev().nth(1).unwrap().json()["usage"]["output_tokens"].clone();
        usage
    } else {
        response.json::<Value>().await.unwrap()["usage"].clone()
    }
}

#[tokio::test]
async fn cache_writes_then_reads_a_repeated_prefix() {
    let server =
        FakeModelServer::start(Script::new().turns(["one", "two", "three", "four"].map(|t| Response::new().text(t))))
            .await;
    // {"type":"text","text":"hi"} is 27 bytes: 7 tokens.
    let first = json!([{"role": "user", "content": "hi"}]);
    let usage = usage_of(&server, cached_request(false, first.clone())).await;
    assert_eq!(usage["input_tokens"], 7);
    assert_eq!(usage["cache_creation_input_tokens"], 1025);
    assert_eq!(usage["cache_read_input_tokens"], 0);
    // [{"type":"text","text":"one"}] is 30 bytes: 8 output tokens.
    assert_eq!(usage["output_tokens"], 8);

    let usage = usage_of(&server, cached_request(true, first)).await;
    assert_eq!(usage["input_tokens"], 7);
    assert_eq!(usage["cache_creation_input_tokens"], 0);
    assert_eq!(usage["cache_read_input_tokens"], 1025);

    // The conversation grows; the breakpoint moves to its end. The lookback finds the
    // cached system prefix: read 1025, write the new 7 + 8 + 8 tokens.
    let longer = json!([
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": [{"type": "text", "text": "hello"}]},
        {"role": "user", "content": [{"type": "text", "text": "more", "cache_control": {"type": "ephemeral"}}]},
    ]);
    let usage = usage_of(&server, cached_request(false, longer.clone())).await;
    assert_eq!(usage["input_tokens"], 0);
    assert_eq!(usage["cache_read_input_tokens"], 1025);
    assert_eq!(usage["cache_creation_input_tokens"], 23);

    let usage = usage_of(&server, cached_request(true, longer)).await;
    assert_eq!(usage["input_tokens"], 0);
    assert_eq!(usage["cache_read_input_tokens"], 1048);
    assert_eq!(usage["cache_creation_input_tokens"], 0);

    let recorded: Vec<_> = server.requests().iter().map(|r| r.usage.unwrap()).collect();
    assert_eq!(recorded[2].cache_write_tokens, 23);
    assert_eq!(recorded[3].cache_read_tokens, 1048);
    server.assert_no_violations();
}

#[tokio::test]
async fn errors_carry_the_right_status_and_headers() {
    let server = FakeModelServer::start(
        Script::new()
            .turn(Failure::new(ErrorKind::RateLimited).retry_after_secs(7))
            .turn(ErrorKind::Overloaded)
            .turn(ErrorKind::ServerError)
            .turn(ErrorKind::Unauthorized)
            .turn(ErrorKind::ContextWindowExceeded)
            .turn(ErrorKind::InvalidRequest)
            .context_window(5000),
    )
    .await;
    let expect = [
        (429, "rate_limit_error"),
        (529, "overloaded_error"),
        (500, "api_error"),
        (401, "authentication_error"),
        (400, "invalid_request_error"),
        (400, "invalid_request_error"),
    ];
    for (i, (status, kind)) in expect.into_iter().enumerate() {
        let response = post(&server, hello(i % 2 == 0)).await;
        assert_eq!(response.status(), status);
        let retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["type"], "error");
        assert_eq!(body["error"]["type"], kind);
        if i == 0 {
            assert_eq!(retry_after.as_deref(), Some("7"));
        }
        if i == 4 {
            assert_eq!(body["error"]["message"], "prompt is too long: 5001 tokens > 5000 maximum");
        }
    }

    // Too long for the context window: rejected without consuming a turn.
    server.push_turn("fits now");
    let long = json!({
        "model": "claude-sonnet-4-5",
        "max_tokens": 1024,
        "messages": [{"role": "user", "content": letters(20_075)}],
    });
    let response = post(&server, long).await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["message"], "prompt is too long: 5025 tokens > 5000 maximum");
    assert_eq!(server.turns_remaining(), 1);

    // Missing headers.
    let response = client()
        .post(format!("{}/v1/messages", server.base_url()))
        .header("anthropic-version", "2023-06-01")
        .json(&hello(false))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(response.json::<Value>().await.unwrap()["error"]["type"], "authentication_error");
    let response = client()
        .post(format!("{}/v1/messages", server.base_url()))
        .header("x-api-key", "k")
        .json(&hello(false))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(server.turns_remaining(), 1);

    // The last turn, then an exhausted script.
    assert_eq!(post(&server, hello(false)).await.status(), 200);
    let response = post(&server, hello(false)).await;
    assert_eq!(response.status(), 500);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["message"], "fake model script exhausted");
    assert!(server.violations().iter().any(|v| v == "fake model script exhausted"));
}

#[tokio::test]
async fn mid_stream_error_event() {
    let server = FakeModelServer::start(
        Script::new().turn(Response::new().text("partial answer").mid_stream_error(ErrorKind::Overloaded, 4)),
    )
    .await;
    let response = post(&server, hello(true)).await;
    assert_eq!(response.status(), 200);
    let events = parse_sse(&response.text().await.unwrap());
    assert_eq!(events.len(), 5);
    assert_eq!(events[4].event.as_deref(), Some("error"));
    assert_eq!(
        events[4].json(),
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    );
}

#[tokio::test]
async fn cut_malformed_and_stall() {
    let text = "This answer is long enough to be split into several pieces.";
    let server = FakeModelServer::start(
        Script::new()
            .turn(Response::new().text(text).cut_after_events(3))
            .turn(Response::new().text(text).malformed_after_events(2))
            .turn(Response::new().text(text).stall_after_events(2, 400))
            .turn(Response::new().text(text).cut_after_events(1)),
    )
    .await;

    // Cut: three events, then the connection drops without message_stop.
    let (body, broke) = read_body(post(&server, hello(true)).await).await;
    assert!(broke, "the body must end in an error");
    let events = parse_sse(&String::from_utf8(body).unwrap());
    assert_eq!(events.len(), 3);
    assert!(events.iter().all(|e| e.event.as_deref() != Some("message_stop")));

    // Malformed: two good events, then one whose data is not JSON.
    let (body, broke) = read_body(post(&server, hello(true)).await).await;
    assert!(!broke);
    let events = parse_sse(&String::from_utf8(body).unwrap());
    assert_eq!(events.len(), 3);
    events[1].json();
    assert!(serde_json::from_str::<Value>(&events[2].data).is_err());

    // Stall: two events, silence, then the connection drops.
    let response = post(&server, hello(true)).await;
    let mut stream = response.bytes_stream();
    let mut seen = String::new();
    while parse_sse(&seen).len() < 2 {
        seen.push_str(std::str::from_utf8(&stream.next().await.unwrap().unwrap()).unwrap());
    }
    assert_eq!(parse_sse(&seen).len(), 2);
    let silent = tokio::time::timeout(Duration::from_millis(150), stream.next()).await;
    assert!(silent.is_err(), "nothing arrives while the stream stalls");
    let end = tokio::time::timeout(Duration::from_secs(5), stream.next()).await.unwrap();
    assert!(matches!(end, Some(Err(_)) | None), "the stalled stream is then dropped");

    // A plain (non-streamed) request with a cut: a truncated body.
    let response = post(&server, hello(false)).await;
    assert_eq!(response.status(), 200);
    let (body, broke) = read_body(response).await;
    assert!(broke);
    assert!(serde_json::from_slice::<Value>(&body).is_err());
    server.assert_no_violations();
}
