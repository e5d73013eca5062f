//! Each provider's client against the fake model server speaking that provider's wire
//! format: streaming, tool calls, thinking, images, caching, usage, and every failure.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use aws_credential_types::Credentials;
use rswe_llm::providers::bedrock::BedrockClient;
use rswe_llm::{
    Catalog, ErrorClass, HttpProviderConfig, LlmError, Model, ModelEvent, ModelRequest, ProvidersConfig, RetryPolicy,
    Secret, StopReason, StreamEvent, SystemBlock, ThinkingConfig, Timeouts,
};
use rswe_protocol::{ContentBlock, ImageSource, Message, Role, ToolDefinition, ToolResultContent};
use rswe_test_support::{Api, ErrorKind, Failure, FakeModelServer, Response, Script, Turn};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Wire {
    Anthropic,
    OpenAi,
    Bedrock,
}

impl Wire {
    fn model_name(self) -> &'static str {
        match self {
            Wire::Anthropic => "anthropic/claude-sonnet-4-5",
            Wire::OpenAi => "openai/gpt-5",
            Wire::Bedrock => "bedrock/us.anthropic.claude-sonnet-4-5-20250929-v1:0",
        }
    }

    fn api(self) -> Api {
        match self {
            Wire::Anthropic => Api::Anthropic,
            Wire::OpenAi => Api::OpenAi,
            Wire::Bedrock => Api::Bedrock,
        }
    }
}

fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 5,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(20),
        max_elapsed: Duration::from_secs(30),
    }
}

/// A model of `wire` pointed at `server`, built the way rswe builds it from configuration
/// (Bedrock: through the AWS SDK with static credentials).
async fn model(wire: Wire, server: &FakeModelServer) -> Model {
    let model = match wire {
        Wire::Anthropic | Wire::OpenAi => {
            let mut config = ProvidersConfig::default();
            let http = HttpProviderConfig { api_key: Some(Secret::new("test-key-123")), base_url: None };
            match wire {
                Wire::Anthropic => {
                    config.anthropic = HttpProviderConfig { base_url: Some(server.anthropic_base_url()), ..http }
                }
                _ => config.openai = HttpProviderConfig { base_url: Some(server.openai_base_url()), ..http },
            }
            let providers = rswe_llm::Providers::new(config, Catalog::built_in()).unwrap();
            providers.model(wire.model_name()).await.unwrap()
        }
        Wire::Bedrock => {
            let sdk_config = aws_sdk_bedrockruntime::Config::builder()
                .behavior_version(aws_sdk_bedrockruntime::config::BehaviorVersion::latest())
                .region(aws_sdk_bedrockruntime::config::Region::new("us-west-2"))
                .endpoint_url(server.bedrock_endpoint())
                .credentials_provider(Credentials::new("AKIDTESTKEY", "test-secret", None, None, "test"))
                .retry_config(aws_sdk_bedrockruntime::config::retry::RetryConfig::disabled())
                .build();
            let client = BedrockClient::from_sdk(aws_sdk_bedrockruntime::Client::from_conf(sdk_config));
            let info = Catalog::built_in().resolve(wire.model_name()).unwrap();
            Model::new(info, Arc::new(client))
        }
    };
    model
        .with_retry(fast_retries())
        .with_timeouts(Timeouts { response: Duration::from_secs(5), idle: Duration::from_secs(5) })
}

async fn setup(wire: Wire, turns: Vec<Turn>) -> (FakeModelServer, Model) {
    let server = FakeModelServer::start(Script::new().turns(turns)).await;
    let model = model(wire, &server).await;
    (server, model)
}

fn ask(text: &str) -> ModelRequest {
    ModelRequest { messages: vec![Message::user_text(text)], ..Default::default() }
}

/// Sends and collects what the observer saw.
async fn send_observed(
    model: &Model,
    request: &ModelRequest,
) -> (Result<rswe_llm::ModelResponse, LlmError>, Vec<ModelEvent>) {
    let mut seen = Vec::new();
    let result = model.send(request, &mut |event| seen.push(event)).await;
    (result, seen)
}

fn streamed_text(events: &[ModelEvent]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            ModelEvent::Delta(StreamEvent::TextDelta { text, .. }) => Some(text.as_str()),
            _ => None,
        })
        .collect()
}

fn retries(events: &[ModelEvent]) -> Vec<(Duration, ErrorClass)> {
    events
        .iter()
        .filter_map(|e| match e {
            ModelEvent::Retrying { delay, error, .. } => Some((*delay, error.class())),
            _ => None,
        })
        .collect()
}

async fn streams_text(wire: Wire) {
    let answer = "Hello! I looked at the repository and the failing test is in src/lib.rs.";
    let (server, model) = setup(wire, vec![Turn::text(answer)]).await;
    let (result, events) = send_observed(&model, &ask("hi")).await;
    let response = result.unwrap();
    assert_eq!(response.message.role, Role::Assistant);
    assert_eq!(response.message.text(), answer);
    assert_eq!(response.stop_reason, StopReason::EndTurn);
    let deltas = events.iter().filter(|e| matches!(e, ModelEvent::Delta(StreamEvent::TextDelta { .. }))).count();
    assert!(deltas > 1, "the answer arrives in pieces, got {deltas}");
    assert_eq!(streamed_text(&events), answer);
    assert!(response.usage.input_tokens > 0 && response.usage.output_tokens > 0, "{:?}", response.usage);

    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.api, wire.api());
    assert!(request.stream);
    assert_eq!(Some(request.usage.unwrap()), Some(response.usage), "usage as the server reported it");
    match wire {
        Wire::Anthropic => {
            assert_eq!(request.header("x-api-key"), Some("test-key-123"));
            assert_eq!(request.header("anthropic-version"), Some("2023-06-01"));
            assert_eq!(request.header("anthropic-beta"), Some("interleaved-thinking-2025-05-14"));
            assert_eq!(request.model, "claude-sonnet-4-5");
            assert_eq!(request.body["max_tokens"], 64000);
        }
        Wire::OpenAi => {
            assert_eq!(request.header("authorization"), Some("Bearer test-key-123"));
            assert_eq!(request.model, "gpt-5");
            assert_eq!(request.body["stream_options"]["include_usage"], true);
            assert_eq!(request.body["max_completion_tokens"], 128000);
        }
        Wire::Bedrock => {
            let auth = request.header("authorization").unwrap();
            assert!(auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDTESTKEY/"), "{auth}");
            assert!(auth.contains("/us-west-2/bedrock/aws4_request"), "{auth}");
            assert_eq!(request.model, "us.anthropic.claude-sonnet-4-5-20250929-v1:0");
            assert_eq!(request.body["inferenceConfig"]["maxTokens"], 64000);
        }
    }
    server.assert_no_violations();
}

fn shell_tool() -> ToolDefinition {
    ToolDefinition {
        name: "shell".into(),
        description: "Run a shell command".into(),
        input_schema: json!({"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}),
    }
}

async fn parallel_tool_calls_round_trip(wire: Wire) {
    let turn = Response::new()
        .text("Let me look at both.")
        .tool_use("shell", json!({"command": "cat src/lib.rs"}))
        .tool_use("shell", json!({"command": "cargo test 2>&1 | tail -n 20", "nested": {"list": [1, 2, 3]}}));
    let (server, model) = setup(wire, vec![turn.into(), Turn::text("Both ran.")]).await;
    let mut request = ask("fix the test");
    request.tools = vec![shell_tool()];
    let response = model.complete(&request).await.unwrap();
    assert_eq!(response.stop_reason, StopReason::ToolUse);
    let calls: Vec<(String, Value)> =
        response.message.tool_uses().map(|(id, _, input)| (id.to_string(), input.clone())).collect();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].1, json!({"command": "cat src/lib.rs"}));
    assert_eq!(calls[1].1["nested"]["list"], json!([1, 2, 3]));
    assert_ne!(calls[0].0, calls[1].0);

    request.messages.push(response.message.clone());
    request.messages.push(Message::new(
        Role::User,
        vec![
            ContentBlock::tool_result(&calls[0].0, "pub fn add(a: i32, b: i32) -> i32 { a - b }", false),
            ContentBlock::tool_result(&calls[1].0, "test result: FAILED. 1 failed", true),
        ],
    ));
    let second = model.complete(&request).await.unwrap();
    assert_eq!(second.message.text(), "Both ran.");
    let body = &server.requests()[1].body;
    let text = body.to_string();
    assert!(text.contains("a - b") && text.contains("1 failed"), "tool results reach the wire: {text}");
    match wire {
        Wire::Anthropic => assert_eq!(body["messages"][2]["content"][1]["is_error"], true),
        Wire::OpenAi => assert_eq!(body["messages"][3]["role"], "tool"),
        Wire::Bedrock => assert_eq!(body["messages"][2]["content"][1]["toolResult"]["status"], "error"),
    }
    server.assert_no_violations();
}

async fn images_reach_the_wire(wire: Wire) {
    // A 1x1 PNG.
    let png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";
    let source = ImageSource { media_type: "image/png".into(), data: png.into() };
    let (server, model) = setup(wire, vec![Turn::text("A single pixel.")]).await;
    let request = ModelRequest {
        messages: vec![Message::new(
            Role::User,
            vec![ContentBlock::text("What is in this image?"), ContentBlock::Image { source: source.clone() }],
        )],
        ..Default::default()
    };
    model.complete(&request).await.unwrap();
    let body = &server.requests()[0].body;
    let image = match wire {
        Wire::Anthropic => body["messages"][0]["content"][1]["source"]["data"].clone(),
        Wire::OpenAi => body["messages"][0]["content"][1]["image_url"]["url"].clone(),
        Wire::Bedrock => body["messages"][0]["content"][1]["image"]["source"]["bytes"].clone(),
    };
    let expected = if wire == Wire::OpenAi { format!("data:image/png;base64,{png}") } else { png.to_string() };
    assert_eq!(image, json!(expected));
    if wire == Wire::Bedrock {
        assert_eq!(body["messages"][0]["content"][1]["image"]["format"], "png");
    }
    server.assert_no_violations();
}

fn cached_request() -> ModelRequest {
    // About 2,500 tokens of system prompt: enough for every provider's minimum.
    let system = "You are rswe, a careful software engineer. ".repeat(230);
    let mut first = Message::user_text("Please summarise the repository layout.");
    first.cache_breakpoint = true;
    ModelRequest {
        system: vec![SystemBlock { text: system, cache_breakpoint: true }],
        tools: vec![shell_tool()],
        tools_cache_breakpoint: true,
        messages: vec![first],
        ..Default::default()
    }
}

fn count_key(value: &Value, key: &str) -> usize {
    match value {
        Value::Object(map) => map.iter().map(|(k, v)| usize::from(k == key) + count_key(v, key)).sum(),
        Value::Array(items) => items.iter().map(|v| count_key(v, key)).sum(),
        _ => 0,
    }
}

async fn caching_is_mapped_and_usage_reports_it(wire: Wire) {
    let (server, model) = setup(wire, vec![Turn::text("first"), Turn::text("second")]).await;
    let mut request = cached_request();
    let first = model.complete(&request).await.unwrap();
    request.messages.push(first.message.clone());
    let mut follow_up = Message::user_text("And the tests?");
    follow_up.cache_breakpoint = true;
    request.messages.push(follow_up);
    let second = model.complete(&request).await.unwrap();

    let body = &server.requests()[0].body;
    match wire {
        Wire::Anthropic => {
            assert_eq!(count_key(body, "cache_control"), 3);
            assert_eq!(body["system"][0]["cache_control"]["type"], "ephemeral");
            assert!(first.usage.cache_write_tokens > 2000, "{:?}", first.usage);
            assert_eq!(first.usage.cache_read_tokens, 0);
            assert!(second.usage.cache_read_tokens >= first.usage.cache_write_tokens, "{:?}", second.usage);
        }
        Wire::Bedrock => {
            assert_eq!(count_key(body, "cachePoint"), 3);
            assert!(first.usage.cache_write_tokens > 2000, "{:?}", first.usage);
            assert!(second.usage.cache_read_tokens >= first.usage.cache_write_tokens, "{:?}", second.usage);
        }
        Wire::OpenAi => {
            assert_eq!(count_key(body, "cache_control") + count_key(body, "cachePoint"), 0);
            assert_eq!(first.usage.cache_read_tokens, 0);
            assert!(second.usage.cache_read_tokens > 2000, "{:?}", second.usage);
        }
    }
    // The split adds up: what the server counted is what we report.
    assert_eq!(server.requests()[1].usage.unwrap(), second.usage);
    server.assert_no_violations();
}

async fn transient_errors_are_retried(wire: Wire) {
    let turns = vec![
        Failure::new(ErrorKind::RateLimited).retry_after_secs(1).into(),
        Turn::error(ErrorKind::Overloaded),
        Turn::error(ErrorKind::ServerError),
        Turn::text("finally"),
    ];
    let (server, model) = setup(wire, turns).await;
    let (result, events) = send_observed(&model, &ask("hi")).await;
    assert_eq!(result.unwrap().message.text(), "finally");
    let retries = retries(&events);
    assert_eq!(
        retries.iter().map(|(_, class)| *class).collect::<Vec<_>>(),
        [ErrorClass::RateLimited, ErrorClass::Overloaded, ErrorClass::Overloaded]
    );
    if wire != Wire::Bedrock {
        // Bedrock does not send retry-after; the others' wait is honoured exactly.
        assert_eq!(retries[0].0, Duration::from_secs(1));
    }
    assert!(retries[1].0 <= Duration::from_millis(20) && retries[2].0 <= Duration::from_millis(20));
    assert_eq!(server.requests().len(), 4);
}

async fn permanent_errors_are_not_retried(wire: Wire) {
    for (kind, class) in [
        (ErrorKind::Unauthorized, ErrorClass::Authentication),
        (ErrorKind::InvalidRequest, ErrorClass::InvalidRequest),
        (ErrorKind::ContextWindowExceeded, ErrorClass::ContextWindowExceeded),
    ] {
        let (server, model) = setup(wire, vec![Turn::error(kind), Turn::text("never sent")]).await;
        let error = model.complete(&ask("hi")).await.unwrap_err();
        assert_eq!(error.class(), class, "{kind:?} on {wire:?}: {error}");
        assert!(!error.to_string().is_empty());
        assert_eq!(server.requests().len(), 1, "{kind:?} on {wire:?} must not be retried");
    }
}

async fn broken_streams_are_retried_whole(wire: Wire) {
    let broken = Response::new().text("This first answer breaks in the middle of its text").cut_after_events(4);
    let malformed = Response::new().text("This one has a garbage event").malformed_after_events(3);
    let failing = Response::new().text("This one reports an error").mid_stream_error(ErrorKind::Overloaded, 3);
    let turns = vec![broken.into(), malformed.into(), failing.into(), Turn::text("The whole answer.")];
    let (server, model) = setup(wire, turns).await;
    let (result, events) = send_observed(&model, &ask("hi")).await;
    let response = result.unwrap();
    assert_eq!(response.message.text(), "The whole answer.", "nothing of the broken attempts is kept");
    let classes: Vec<ErrorClass> = retries(&events).into_iter().map(|(_, class)| class).collect();
    assert_eq!(classes.len(), 3, "{classes:?}");
    assert!(classes[..2].iter().all(|c| *c == ErrorClass::StreamBroken), "{classes:?}");
    assert_eq!(classes[2], ErrorClass::Overloaded);
    // Everything after the last Retrying is the answer that counted.
    let last_retry = events.iter().rposition(|e| matches!(e, ModelEvent::Retrying { .. })).unwrap();
    assert_eq!(streamed_text(&events[last_retry..]), "The whole answer.");
    assert_eq!(server.requests().len(), 4);
}

async fn timeouts_fire_and_are_retried(wire: Wire) {
    let stalled = Response::new().text("This answer goes silent").stall_after_events(2, 3_000);
    let slow = Response::new().text("late").delay_ms(3_000);
    let (server, model) = setup(wire, vec![stalled.into(), slow.into(), Turn::text("on time")]).await;
    let model =
        model.with_timeouts(Timeouts { response: Duration::from_millis(400), idle: Duration::from_millis(400) });
    let (result, events) = send_observed(&model, &ask("hi")).await;
    assert_eq!(result.unwrap().message.text(), "on time");
    let errors: Vec<String> = events
        .iter()
        .filter_map(|e| match e {
            ModelEvent::Retrying { error: LlmError::Timeout { phase, .. }, .. } => Some(format!("{phase:?}")),
            _ => None,
        })
        .collect();
    assert_eq!(errors, ["Idle", "Response"]);
    assert_eq!(server.requests().len(), 3);
}

async fn retries_are_bounded(wire: Wire) {
    let turns = (0..5).map(|_| Turn::error(ErrorKind::Overloaded)).collect();
    let (server, model) = setup(wire, turns).await;
    let model = model.with_retry(RetryPolicy { max_attempts: 3, ..fast_retries() });
    let error = model.complete(&ask("hi")).await.unwrap_err();
    assert_eq!(error.class(), ErrorClass::Overloaded);
    assert_eq!(server.requests().len(), 3);
    assert_eq!(server.turns_remaining(), 2);
}

async fn max_tokens_stop_is_reported(wire: Wire) {
    let turn = Response::new()
        .text("This answer was cut by the output lim")
        .stop_reason(rswe_test_support::StopReason::MaxTokens);
    let (_server, model) = setup(wire, vec![turn.into()]).await;
    let mut request = ask("hi");
    request.max_tokens = Some(100);
    let response = model.complete(&request).await.unwrap();
    assert_eq!(response.stop_reason, StopReason::MaxTokens);
}

async fn thinking_signatures_round_trip(wire: Wire) {
    let turn = Response::new()
        .thinking("The test expects 4 from add(2, 2); the code subtracts.", "c2lnbmF0dXJlLW9uZQ==")
        .tool_use("shell", json!({"command": "sed -n 1,5p src/lib.rs"}));
    let (server, model) = setup(wire, vec![turn.into(), Turn::text("Fixed.")]).await;
    let mut request = ask("fix it");
    request.tools = vec![shell_tool()];
    request.thinking = Some(ThinkingConfig { budget_tokens: 8000 });
    let first = model.complete(&request).await.unwrap();
    if wire == Wire::OpenAi {
        assert!(!first.message.content.iter().any(ContentBlock::is_thinking), "Chat Completions streams no reasoning");
    } else {
        assert_eq!(
            first.message.content[0],
            ContentBlock::Thinking {
                thinking: "The test expects 4 from add(2, 2); the code subtracts.".into(),
                signature: Some("c2lnbmF0dXJlLW9uZQ==".into())
            }
        );
    }
    let (id, _, _) = first.message.tool_uses().next().unwrap();
    let id = id.to_string();
    request.messages.push(first.message.clone());
    request.messages.push(Message::new(
        Role::User,
        vec![ContentBlock::ToolResult {
            tool_use_id: id,
            content: vec![ToolResultContent::Text { text: "a - b".into() }],
            is_error: false,
        }],
    ));
    model.complete(&request).await.unwrap();
    let requests = server.requests();
    match wire {
        Wire::Anthropic => {
            assert_eq!(requests[0].body["thinking"], json!({"type": "enabled", "budget_tokens": 8000}));
            let block = &requests[1].body["messages"][1]["content"][0];
            assert_eq!(block["type"], "thinking");
            assert_eq!(block["signature"], "c2lnbmF0dXJlLW9uZQ==");
        }
        Wire::Bedrock => {
            assert_eq!(requests[0].body["additionalModelRequestFields"]["thinking"]["budget_tokens"], 8000);
            let block = &requests[1].body["messages"][1]["content"][0]["reasoningContent"]["reasoningText"];
            assert_eq!(block["signature"], "c2lnbmF0dXJlLW9uZQ==");
            assert_eq!(block["text"], "The test expects 4 from add(2, 2); the code subtracts.");
        }
        Wire::OpenAi => {
            // Chat Completions does not carry reasoning: the effort is asked for instead.
            assert_eq!(requests[0].body["reasoning_effort"], "medium");
        }
    }
    server.assert_no_violations();
}

macro_rules! for_each_wire {
    ($($case:ident),* $(,)?) => {
        mod anthropic { $( #[tokio::test] async fn $case() { super::$case(super::Wire::Anthropic).await } )* }
        mod openai { $( #[tokio::test] async fn $case() { super::$case(super::Wire::OpenAi).await } )* }
        mod bedrock { $( #[tokio::test] async fn $case() { super::$case(super::Wire::Bedrock).await } )* }
    };
}

for_each_wire!(
    streams_text,
    parallel_tool_calls_round_trip,
    images_reach_the_wire,
    caching_is_mapped_and_usage_reports_it,
    transient_errors_are_retried,
    permanent_errors_are_not_retried,
    broken_streams_are_retried_whole,
    timeouts_fire_and_are_retried,
    retries_are_bounded,
    max_tokens_stop_is_reported,
    thinking_signatures_round_trip,
);

#[tokio::test]
async fn breakpoints_over_the_limit_are_dropped_oldest_first() {
    let (server, model) = setup(Wire::Anthropic, vec![Turn::text("ok")]).await;
    let mut request = cached_request();
    for i in 0..4 {
        request.messages.push(Message::assistant_text(format!("answer {i}")));
        let mut message = Message::user_text(format!("question {i}"));
        message.cache_breakpoint = true;
        request.messages.push(message);
    }
    assert_eq!(request.breakpoint_count(), 7);
    model.complete(&request).await.unwrap();
    let body = &server.requests()[0].body;
    assert_eq!(count_key(body, "cache_control"), 4);
    assert!(body["system"][0].get("cache_control").is_some(), "the stable prefix keeps its breakpoint");
    assert!(body["messages"][8]["content"][0].get("cache_control").is_some(), "the newest message keeps its");
    server.assert_no_violations();
}

#[tokio::test]
async fn an_unreachable_provider_is_a_connection_error_after_bounded_retries() {
    // Bind then drop a listener: nothing answers on that port.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = ProvidersConfig {
        anthropic: HttpProviderConfig {
            api_key: Some(Secret::new("k")),
            base_url: Some(format!("http://127.0.0.1:{port}")),
        },
        ..Default::default()
    };
    let providers = rswe_llm::Providers::new(config, Catalog::built_in()).unwrap();
    let model = providers
        .model("anthropic/claude-haiku-4-5")
        .await
        .unwrap()
        .with_retry(RetryPolicy { max_attempts: 2, ..fast_retries() });
    let error = model.complete(&ask("hi")).await.unwrap_err();
    assert_eq!(error.class(), ErrorClass::Connection, "{error}");
    assert!(error.to_string().contains("could not reach anthropic"), "{error}");
}
