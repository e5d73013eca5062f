//! The OpenAI Chat Completions wire format over real HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{client, letters, parse_sse, read_body};
use rswe_test_support::{Api, ErrorKind, Failure, FakeModelServer, Response, Script, StopReason};
use serde_json::{Value, json};

async fn post(server: &FakeModelServer, body: Value) -> reqwest::Response {
    client()
        .post(format!("{}/chat/completions", server.openai_base_url()))
        .bearer_auth("sk-fake")
        .json(&body)
        .send()
        .await
        .unwrap()
}

fn hello(stream: bool) -> Value {
    json!({
        "model": "gpt-4.1",
        "max_completion_tokens": 1024,
        "stream": stream,
        "stream_options": if stream { json!({"include_usage": true}) } else { Value::Null },
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello"}],
    })
}

fn turn() -> Response {
    Response::new()
        .thinking("not shown by this format", "sig")
        .text("Looking at both files now.")
        .tool_use_with_id("call_a", "read_file", json!({"path": "src/main.rs", "limit": 200}))
        .tool_use("read_file", json!({"path": "src/lib.rs", "limit": 100}))
}

#[tokio::test]
async fn streamed_and_plain_responses_decode_to_the_script() {
    let server = FakeModelServer::start(Script::new().turn(turn()).turn(turn())).await;

    let response = post(&server, hello(true)).await;
    assert_eq!(response.status(), 200);
    let events = parse_sse(&response.text().await.unwrap());
    assert_eq!(events.last().unwrap().data, "[DONE]");
    let chunks: Vec<Value> = events[..events.len() - 1].iter().map(|e| e.json()).collect();
    assert!(chunks.iter().all(|c| c["object"] == "chat.completion.chunk"));
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");

    let mut text = String::new();
    let mut calls: Vec<(String, String, String)> = Vec::new();
    let mut argument_order = Vec::new();
    let mut finish = Value::Null;
    for chunk in &chunks[..chunks.len() - 1] {
        let choice = &chunk["choices"][0];
        let delta = &choice["delta"];
        if let Some(t) = delta["content"].as_str() {
            text.push_str(t);
        }
        for call in delta["tool_calls"].as_array().into_iter().flatten() {
            let index = call["index"].as_u64().unwrap() as usize;
            if index == calls.len() {
                assert_eq!(call["type"], "function");
                calls.push((
                    call["id"].as_str().unwrap().into(),
                    call["function"]["name"].as_str().unwrap().into(),
                    String::new(),
                ));
            }
            let args = call["function"]["arguments"].as_str().unwrap();
            if !args.is_empty() {
                argument_order.push(index);
            }
            calls[index].2.push_str(args);
        }
        if !choice["finish_reason"].is_null() {
            finish = choice["finish_reason"].clone();
        }
    }
    assert_eq!(text, "Looking at both files now.");
    assert_eq!(finish, "tool_calls");
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].0, "call_a");
    assert!(calls[1].0.starts_with("call_"));
    assert_eq!(serde_json::from_str::<Value>(&calls[0].2).unwrap(), json!({"path": "src/main.rs", "limit": 200}));
    assert_eq!(serde_json::from_str::<Value>(&calls[1].2).unwrap(), json!({"path": "src/lib.rs", "limit": 100}));
    // Fragments of the two calls interleave.
    assert_eq!(argument_order[..4], [0, 1, 0, 1]);
    // The usage chunk comes last, with no choices.
    let usage_chunk = chunks.last().unwrap();
    assert_eq!(usage_chunk["choices"], json!([]));
    // {"role":"system","content":"be brief"} 38 bytes -> 10; {"role":"user","content":"hello"} 33 -> 9.
    assert_eq!(usage_chunk["usage"]["prompt_tokens"], 19);
    assert_eq!(usage_chunk["usage"]["prompt_tokens_details"]["cached_tokens"], 0);

    let response = post(&server, hello(false)).await;
    assert_eq!(response.status(), 200);
    let completion: Value = response.json().await.unwrap();
    assert_eq!(completion["object"], "chat.completion");
    assert!(completion["id"].as_str().unwrap().starts_with("chatcmpl-"));
    let choice = &completion["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert_eq!(choice["message"]["content"], "Looking at both files now.");
    let tool_calls = choice["message"]["tool_calls"].as_array().unwrap();
    assert_eq!(tool_calls.len(), 2);
    assert_eq!(tool_calls[0]["id"], "call_a");
    assert_eq!(tool_calls[0]["type"], "function");
    assert_eq!(tool_calls[0]["function"]["name"], "read_file");
    assert_eq!(
        serde_json::from_str::<Value>(tool_calls[0]["function"]["arguments"].as_str().unwrap()).unwrap(),
        json!({"path": "src/main.rs", "limit": 200})
    );
    let usage = &completion["usage"];
    assert_eq!(usage["prompt_tokens"], 19);
    assert_eq!(usage["total_tokens"], 19 + usage["completion_tokens"].as_u64().unwrap());

    let requests = server.requests();
    assert_eq!(requests[0].api, Api::OpenAi);
    assert_eq!(requests[0].path, "/v1/chat/completions");
    assert_eq!(requests[0].header("authorization"), Some("Bearer sk-fake"));
    server.assert_no_violations();
}

#[tokio::test]
async fn plain_text_answer_and_finish_reasons() {
    let server = FakeModelServer::start(
        Script::new().turn("Just text.").turn(Response::new().text("cut short").stop_reason(StopReason::MaxTokens)),
    )
    .await;
    let completion: Value = post(&server, hello(false)).await.json().await.unwrap();
    assert_eq!(completion["choices"][0]["message"]["content"], "Just text.");
    assert!(completion["choices"][0]["message"].get("tool_calls").is_none());
    assert_eq!(completion["choices"][0]["finish_reason"], "stop");
    let events = parse_sse(&post(&server, hello(true)).await.text().await.unwrap());
    let finish: Vec<Value> = events
        .iter()
        .filter(|e| e.data != "[DONE]")
        .filter_map(|e| e.json()["choices"].get(0).map(|c| c["finish_reason"].clone()))
        .filter(|f| !f.is_null())
        .collect();
    assert_eq!(finish, [json!("length")]);
}

#[tokio::test]
async fn checks_catch_an_unanswered_tool_call() {
    let server = FakeModelServer::start(Script::new().turn("unused")).await;
    let body = json!({
        "model": "gpt-4.1",
        "messages": [
            {"role": "user", "content": "read two files"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "read_file", "arguments": "{}"}},
                {"id": "call_2", "type": "function", "function": {"name": "read_file", "arguments": "{}"}}
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "fn main() {}"},
            {"role": "user", "content": "and?"},
        ],
    });
    let response = post(&server, body).await;
    assert_eq!(response.status(), 400);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["type"], "invalid_request_error");
    assert!(error["error"]["message"].as_str().unwrap().contains("did not have response messages: call_2"));
    assert_eq!(server.violations().len(), 1);
    assert_eq!(server.turns_remaining(), 1);
}

fn convo(messages: Value) -> Value {
    json!({"model": "gpt-4.1", "messages": messages})
}

#[tokio::test]
async fn automatic_cache_reads_a_repeated_prefix() {
    let server = FakeModelServer::start(Script::new().turns(["a", "b", "c"])).await;
    // {"role":"user","content":"<4072 letters>"} is 4100 bytes: 1025 tokens.
    let long = json!({"role": "user", "content": letters(4072)});
    let usage = post(&server, convo(json!([long]))).await.json::<Value>().await.unwrap()["usage"].clone();
    assert_eq!(usage["prompt_tokens"], 1025);
    assert_eq!(usage["prompt_tokens_details"]["cached_tokens"], 0);

    // + {"role":"assistant","content":"ok"} (35 bytes: 9) + {"role":"user","content":"more"} (32 bytes: 8).
    let longer = convo(json!([long, {"role": "assistant", "content": "ok"}, {"role": "user", "content": "more"}]));
    let usage = post(&server, longer.clone()).await.json::<Value>().await.unwrap()["usage"].clone();
    assert_eq!(usage["prompt_tokens"], 1042);
    assert_eq!(usage["prompt_tokens_details"]["cached_tokens"], 1025);

    let usage = post(&server, longer).await.json::<Value>().await.unwrap()["usage"].clone();
    assert_eq!(usage["prompt_tokens_details"]["cached_tokens"], 1042);

    let recorded = server.requests()[1].usage.unwrap();
    assert_eq!((recorded.input_tokens, recorded.cache_read_tokens, recorded.cache_write_tokens), (17, 1025, 0));
}

#[tokio::test]
async fn errors_carry_the_right_status_and_headers() {
    let server = FakeModelServer::start(
        Script::new()
            .turn(Failure::new(ErrorKind::RateLimited).retry_after_secs(3))
            .turn(ErrorKind::ServerError)
            .turn(ErrorKind::Overloaded)
            .turn(ErrorKind::Unauthorized)
            .turn(ErrorKind::ContextWindowExceeded),
    )
    .await;
    let expect = [
        (429, "rate_limit_exceeded", Value::from("rate_limit_exceeded")),
        (500, "server_error", Value::Null),
        (503, "server_error", Value::Null),
        (401, "invalid_request_error", Value::from("invalid_api_key")),
        (400, "invalid_request_error", Value::from("context_length_exceeded")),
    ];
    for (i, (status, kind, code)) in expect.into_iter().enumerate() {
        let response = post(&server, hello(i % 2 == 1)).await;
        assert_eq!(response.status(), status);
        let retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["type"], kind);
        assert_eq!(body["error"]["code"], code);
        if i == 0 {
            assert_eq!(retry_after.as_deref(), Some("3"));
            assert_eq!(body["error"]["param"], Value::Null);
        }
    }

    // No key at all.
    let response = client()
        .post(format!("{}/chat/completions", server.openai_base_url()))
        .json(&hello(false))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(response.json::<Value>().await.unwrap()["error"]["code"], "invalid_api_key");

    let response = post(&server, hello(false)).await;
    assert_eq!(response.status(), 500);
    assert_eq!(response.json::<Value>().await.unwrap()["error"]["message"], "fake model script exhausted");
}

#[tokio::test]
async fn cut_and_mid_stream_error() {
    let server = FakeModelServer::start(
        Script::new()
            .turn(Response::new().text("a fairly long answer that streams in pieces").cut_after_events(2))
            .turn(Response::new().text("a fairly long answer").mid_stream_error(ErrorKind::ServerError, 2))
            .turn(Response::new().text("a fairly long answer").malformed_after_events(1)),
    )
    .await;
    let (body, broke) = read_body(post(&server, hello(true)).await).await;
    assert!(broke);
    let events = parse_sse(&String::from_utf8(body).unwrap());
    assert_eq!(events.len(), 2);

    let events = parse_sse(&post(&server, hello(true)).await.text().await.unwrap());
    assert_eq!(events.len(), 3);
    assert_eq!(events[2].json()["error"]["type"], "server_error");

    let events = parse_sse(&post(&server, hello(true)).await.text().await.unwrap());
    assert_eq!(events.len(), 2);
    assert!(serde_json::from_str::<Value>(&events[1].data).is_err());
}
