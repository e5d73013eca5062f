//! The Bedrock Converse / ConverseStream wire format, verified with the official AWS SDK.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use aws_config::BehaviorVersion;
use aws_credential_types::Credentials;
use aws_sdk_bedrockruntime::Client;
use aws_sdk_bedrockruntime::config::Region;
use aws_sdk_bedrockruntime::config::retry::RetryConfig;
use aws_sdk_bedrockruntime::types::{
    CachePointBlock, CachePointType, ContentBlock, ContentBlockDelta, ContentBlockStart, ConversationRole,
    ConverseOutput, ConverseStreamOutput, Message, ReasoningContentBlock, ReasoningContentBlockDelta,
    ReasoningTextBlock, StopReason, SystemContentBlock, Tool, ToolConfiguration, ToolInputSchema, ToolResultBlock,
    ToolResultContentBlock, ToolResultStatus, ToolSpecification, ToolUseBlock,
};
use aws_smithy_types::{Document, Number};
use common::letters;
use rswe_test_support::{Api, ErrorKind, FakeModelServer, Response, Script};
use serde_json::{Value, json};

const MODEL: &str = "us.anthropic.claude-sonnet-4-5-20250929-v1:0";

fn client(server: &FakeModelServer) -> Client {
    let config = aws_sdk_bedrockruntime::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-west-2"))
        .credentials_provider(Credentials::new("AKIDFAKEFAKEFAKE", "fake-secret", None, None, "test"))
        .endpoint_url(server.bedrock_endpoint())
        .retry_config(RetryConfig::disabled())
        .build();
    Client::from_conf(config)
}

fn doc(v: &Value) -> Document {
    match v {
        Value::Null => Document::Null,
        Value::Bool(b) => Document::Bool(*b),
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => Document::Number(Number::PosInt(u)),
            (None, Some(i)) => Document::Number(Number::NegInt(i)),
            _ => Document::Number(Number::Float(n.as_f64().unwrap())),
        },
        Value::String(s) => Document::String(s.clone()),
        Value::Array(a) => Document::Array(a.iter().map(doc).collect()),
        Value::Object(m) => Document::Object(m.iter().map(|(k, v)| (k.clone(), doc(v))).collect()),
    }
}

fn value(d: &Document) -> Value {
    match d {
        Document::Null => Value::Null,
        Document::Bool(b) => json!(b),
        Document::Number(Number::PosInt(u)) => json!(u),
        Document::Number(Number::NegInt(i)) => json!(i),
        Document::Number(Number::Float(f)) => json!(f),
        Document::String(s) => json!(s),
        Document::Array(a) => Value::Array(a.iter().map(value).collect()),
        Document::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), value(v))).collect()),
    }
}

fn user(text: &str) -> Message {
    Message::builder().role(ConversationRole::User).content(ContentBlock::Text(text.into())).build().unwrap()
}

fn cache_point() -> CachePointBlock {
    CachePointBlock::builder().r#type(CachePointType::Default).build().unwrap()
}

fn tools() -> ToolConfiguration {
    let schema = json!({"type": "object", "properties": {"path": {"type": "string"}}});
    ToolConfiguration::builder()
        .tools(Tool::ToolSpec(
            ToolSpecification::builder()
                .name("read_file")
                .description("Read a file")
                .input_schema(ToolInputSchema::Json(doc(&schema)))
                .build()
                .unwrap(),
        ))
        .build()
        .unwrap()
}

fn turn() -> Response {
    Response::new()
        .thinking("The user wants two files; read both at once.", "sig-bedrock")
        .text("Reading both files.")
        .tool_use_with_id("tooluse_a", "read_file", json!({"path": "src/main.rs"}))
        .tool_use("read_file", json!({"path": "src/lib.rs"}))
}

/// What a streamed answer assembles to.
#[derive(Debug, Default)]
struct Assembled {
    reasoning: String,
    signature: String,
    text: String,
    /// (index, id, name, input JSON)
    tools: Vec<(i32, String, String, String)>,
    stops: Vec<i32>,
    stop_reason: Option<StopReason>,
    usage: Option<aws_sdk_bedrockruntime::types::TokenUsage>,
    started: bool,
}

#[tokio::test]
async fn converse_stream_and_converse_with_the_sdk() {
    let server = FakeModelServer::start(Script::new().turn(turn()).turn(turn()).turn("Both files read.")).await;
    let client = client(&server);

    let mut output = client
        .converse_stream()
        .model_id(MODEL)
        .system(SystemContentBlock::Text("You are terse.".into()))
        .messages(user("read main.rs and lib.rs"))
        .tool_config(tools())
        .send()
        .await
        .unwrap();
    let mut a = Assembled::default();
    while let Some(event) = output.stream.recv().await.unwrap() {
        match event {
            ConverseStreamOutput::MessageStart(start) => {
                assert_eq!(start.role, ConversationRole::Assistant);
                a.started = true;
            }
            ConverseStreamOutput::ContentBlockStart(start) => match start.start.unwrap() {
                ContentBlockStart::ToolUse(t) => {
                    a.tools.push((start.content_block_index, t.tool_use_id, t.name, String::new()))
                }
                other => panic!("unexpected start {other:?}"),
            },
            ConverseStreamOutput::ContentBlockDelta(delta) => match delta.delta.unwrap() {
                ContentBlockDelta::Text(t) => {
                    assert_eq!(delta.content_block_index, 1);
                    a.text.push_str(&t)
                }
                ContentBlockDelta::ToolUse(t) => {
                    let tool = a.tools.iter_mut().find(|x| x.0 == delta.content_block_index).unwrap();
                    tool.3.push_str(&t.input);
                }
                ContentBlockDelta::ReasoningContent(ReasoningContentBlockDelta::Text(t)) => a.reasoning.push_str(&t),
                ContentBlockDelta::ReasoningContent(ReasoningContentBlockDelta::Signature(s)) => a.signature = s,
                other => panic!("unexpected delta {other:?}"),
            },
            ConverseStreamOutput::ContentBlockStop(stop) => a.stops.push(stop.content_block_index),
            ConverseStreamOutput::MessageStop(stop) => a.stop_reason = Some(stop.stop_reason),
            ConverseStreamOutput::Metadata(meta) => a.usage = meta.usage,
            other => panic!("unexpected event {other:?}"),
        }
    }
    assert!(a.started);
    assert_eq!(a.reasoning, "The user wants two files; read both at once.");
    assert_eq!(a.signature, "sig-bedrock");
    assert_eq!(a.text, "Reading both files.");
    assert_eq!(a.tools.len(), 2);
    assert_eq!((a.tools[0].0, a.tools[0].1.as_str(), a.tools[0].2.as_str()), (2, "tooluse_a", "read_file"));
    assert_eq!(serde_json::from_str::<Value>(&a.tools[0].3).unwrap(), json!({"path": "src/main.rs"}));
    assert_eq!(serde_json::from_str::<Value>(&a.tools[1].3).unwrap(), json!({"path": "src/lib.rs"}));
    let second_id = a.tools[1].1.clone();
    assert!(second_id.starts_with("tooluse_"));
    assert_eq!(a.stops, [0, 1, 2, 3]);
    assert_eq!(a.stop_reason, Some(StopReason::ToolUse));
    let usage = a.usage.unwrap();
    assert_eq!(usage.cache_read_input_tokens, Some(0));
    assert_eq!(usage.cache_write_input_tokens, Some(0));
    assert_eq!(usage.total_tokens, usage.input_tokens + usage.output_tokens);

    // The same turn, not streamed.
    let output = client.converse().model_id(MODEL).messages(user("again")).send().await.unwrap();
    assert_eq!(output.stop_reason, StopReason::ToolUse);
    let ConverseOutput::Message(message) = output.output.unwrap() else { panic!("no message") };
    assert_eq!(message.role, ConversationRole::Assistant);
    assert_eq!(message.content.len(), 4);
    let ContentBlock::ReasoningContent(ReasoningContentBlock::ReasoningText(reasoning)) = &message.content[0] else {
        panic!("{:?}", message.content[0])
    };
    assert_eq!(reasoning.text, "The user wants two files; read both at once.");
    assert_eq!(reasoning.signature.as_deref(), Some("sig-bedrock"));
    assert_eq!(message.content[1], ContentBlock::Text("Reading both files.".into()));
    let ContentBlock::ToolUse(tool) = &message.content[2] else { panic!("{:?}", message.content[2]) };
    assert_eq!((tool.tool_use_id.as_str(), tool.name.as_str()), ("tooluse_a", "read_file"));
    assert_eq!(value(&tool.input), json!({"path": "src/main.rs"}));
    // {"text":"again"} is 16 bytes: 4 tokens.
    assert_eq!(output.usage.unwrap().input_tokens, 4);

    // The conversation continues with the SDK's own serialization of reasoning, tool use
    // and tool results; the checks accept it.
    let assistant = Message::builder()
        .role(ConversationRole::Assistant)
        .content(ContentBlock::ReasoningContent(ReasoningContentBlock::ReasoningText(
            ReasoningTextBlock::builder().text(&a.reasoning).signature(&a.signature).build().unwrap(),
        )))
        .content(ContentBlock::Text(a.text.clone()))
        .content(ContentBlock::ToolUse(
            ToolUseBlock::builder()
                .tool_use_id("tooluse_a")
                .name("read_file")
                .input(doc(&json!({"path": "src/main.rs"})))
                .build()
                .unwrap(),
        ))
        .content(ContentBlock::ToolUse(
            ToolUseBlock::builder()
                .tool_use_id(&second_id)
                .name("read_file")
                .input(doc(&json!({"path": "src/lib.rs"})))
                .build()
                .unwrap(),
        ))
        .build()
        .unwrap();
    let result = |id: &str, text: &str| {
        ContentBlock::ToolResult(
            ToolResultBlock::builder()
                .tool_use_id(id)
                .content(ToolResultContentBlock::Text(text.into()))
                .status(ToolResultStatus::Success)
                .build()
                .unwrap(),
        )
    };
    let results = Message::builder()
        .role(ConversationRole::User)
        .content(result("tooluse_a", "fn main() {}"))
        .content(result(&second_id, "pub mod x;"))
        .content(ContentBlock::CachePoint(cache_point()))
        .build()
        .unwrap();
    let output = client
        .converse()
        .model_id(MODEL)
        .messages(user("read main.rs and lib.rs"))
        .messages(assistant)
        .messages(results)
        .tool_config(tools())
        .send()
        .await
        .unwrap();
    assert_eq!(output.stop_reason, StopReason::EndTurn);

    let requests = server.requests();
    assert_eq!(requests.len(), 3);
    assert!(requests.iter().all(|r| r.api == Api::Bedrock && r.model == MODEL));
    assert_eq!(requests[0].path, "/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse-stream");
    assert!(requests[0].stream && !requests[1].stream);
    assert!(requests[0].header("authorization").unwrap().starts_with("AWS4-HMAC-SHA256"));
    assert_eq!(requests[2].body["messages"][2]["content"][0]["toolResult"]["toolUseId"], "tooluse_a");
    server.assert_no_violations();
}

#[tokio::test]
async fn redacted_reasoning_and_cache_tokens() {
    let server = FakeModelServer::start(
        Script::new().turn(Response::new().redacted_thinking("opaque-bytes").text("ok")).turn("cached"),
    )
    .await;
    let client = client(&server);
    // {"text":"<4089 letters>"} is 4100 bytes: 1025 tokens; {"text":"hi"} is 13 bytes: 4.
    let request = || {
        client
            .converse_stream()
            .model_id(MODEL)
            .system(SystemContentBlock::Text(letters(4089)))
            .system(SystemContentBlock::CachePoint(cache_point()))
            .messages(user("hi"))
    };
    let mut output = request().send().await.unwrap();
    let mut redacted = Vec::new();
    let mut usage = None;
    while let Some(event) = output.stream.recv().await.unwrap() {
        match event {
            ConverseStreamOutput::ContentBlockDelta(d) => {
                if let Some(ContentBlockDelta::ReasoningContent(ReasoningContentBlockDelta::RedactedContent(b))) =
                    d.delta
                {
                    redacted.extend_from_slice(b.as_ref());
                }
            }
            ConverseStreamOutput::Metadata(m) => usage = m.usage,
            _ => {}
        }
    }
    assert_eq!(redacted, b"opaque-bytes");
    let usage = usage.unwrap();
    assert_eq!(
        (usage.input_tokens, usage.cache_read_input_tokens, usage.cache_write_input_tokens),
        (4, Some(0), Some(1025))
    );

    let mut output = request().send().await.unwrap();
    let mut usage = None;
    while let Some(event) = output.stream.recv().await.unwrap() {
        if let ConverseStreamOutput::Metadata(m) = event {
            usage = m.usage;
        }
    }
    let usage = usage.unwrap();
    assert_eq!(
        (usage.input_tokens, usage.cache_read_input_tokens, usage.cache_write_input_tokens),
        (4, Some(1025), Some(0))
    );
    // "cached" -> [{"type":"text","text":"cached"}] is 33 bytes: 9 output tokens.
    assert_eq!(usage.output_tokens, 9);
    assert_eq!(usage.total_tokens, 4 + 1025 + 9);
    server.assert_no_violations();
}

#[tokio::test]
async fn throttling_before_and_inside_the_stream() {
    let server = FakeModelServer::start(
        Script::new()
            .turn(ErrorKind::RateLimited)
            .turn(Response::new().text("this will be interrupted midway").mid_stream_error(ErrorKind::RateLimited, 3))
            .turn(ErrorKind::RateLimited)
            .turn(Response::new().text("x").mid_stream_error(ErrorKind::Overloaded, 1))
            .turn(ErrorKind::ContextWindowExceeded)
            .turn(ErrorKind::Unauthorized),
    )
    .await;
    let client = client(&server);

    let err = client.converse_stream().model_id(MODEL).messages(user("hi")).send().await.unwrap_err();
    let raw_status = err.raw_response().map(|r| r.status().as_u16());
    assert_eq!(raw_status, Some(429));
    assert!(err.into_service_error().is_throttling_exception());

    let mut output = client.converse_stream().model_id(MODEL).messages(user("hi")).send().await.unwrap();
    let mut events = 0;
    let err = loop {
        match output.stream.recv().await {
            Ok(Some(_)) => events += 1,
            Ok(None) => panic!("the stream ended without the exception"),
            Err(e) => break e,
        }
    };
    assert_eq!(events, 3);
    let err = err.into_service_error();
    assert!(err.is_throttling_exception(), "{err:?}");

    let err = client.converse().model_id(MODEL).messages(user("hi")).send().await.unwrap_err();
    assert!(err.into_service_error().is_throttling_exception());

    let mut output = client.converse_stream().model_id(MODEL).messages(user("hi")).send().await.unwrap();
    output.stream.recv().await.unwrap();
    let err = output.stream.recv().await.unwrap_err().into_service_error();
    assert!(err.is_model_stream_error_exception(), "{err:?}");

    let err = client.converse().model_id(MODEL).messages(user("hi")).send().await.unwrap_err().into_service_error();
    assert!(err.is_validation_exception());
    assert_eq!(err.meta().message(), Some("Input is too long for requested model."));

    let err = client.converse().model_id(MODEL).messages(user("hi")).send().await.unwrap_err().into_service_error();
    assert!(err.is_access_denied_exception(), "{err:?}");
    assert!(server.violations().is_empty());
}

#[tokio::test]
async fn checks_catch_an_unanswered_tool_use_and_a_fifth_cache_point() {
    let server = FakeModelServer::start(Script::new().turn("unused")).await;
    let client = client(&server);
    let assistant = Message::builder()
        .role(ConversationRole::Assistant)
        .content(ContentBlock::ToolUse(
            ToolUseBlock::builder().tool_use_id("tooluse_1").name("read_file").input(doc(&json!({}))).build().unwrap(),
        ))
        .build()
        .unwrap();
    let err = client
        .converse()
        .model_id(MODEL)
        .messages(user("read it"))
        .messages(assistant)
        .messages(user("never mind"))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_validation_exception());
    assert_eq!(
        err.meta().message(),
        Some("Expected toolResult blocks at messages.2.content for the following Ids: tooluse_1")
    );

    let mut request = client.converse().model_id(MODEL);
    for i in 0..5 {
        request = request
            .system(SystemContentBlock::Text(format!("part {i}")))
            .system(SystemContentBlock::CachePoint(cache_point()));
    }
    let err = request.messages(user("hi")).send().await.unwrap_err().into_service_error();
    assert!(err.is_validation_exception());
    assert!(err.meta().message().unwrap().contains("Found 5"), "{err:?}");
    assert_eq!(server.violations().len(), 2);
    assert_eq!(server.turns_remaining(), 1);
}

#[tokio::test]
async fn cut_and_bad_crc_break_the_stream() {
    let server = FakeModelServer::start(
        Script::new()
            .turn(Response::new().text("a long enough answer to split").cut_after_events(2))
            .turn(Response::new().text("a long enough answer to split").malformed_after_events(2)),
    )
    .await;
    let client = client(&server);
    for _ in 0..2 {
        let mut output = client.converse_stream().model_id(MODEL).messages(user("hi")).send().await.unwrap();
        let mut events = 0;
        let broke = loop {
            match output.stream.recv().await {
                Ok(Some(_)) => events += 1,
                Ok(None) => break false,
                Err(_) => break true,
            }
        };
        assert!(broke);
        assert_eq!(events, 2);
    }
}

#[tokio::test]
async fn requests_without_sigv4_are_refused() {
    let server = FakeModelServer::start(Script::new().turn("unused")).await;
    let response = reqwest::Client::new()
        .post(format!("{}/model/{}/converse", server.bedrock_endpoint(), "m"))
        .json(&json!({"messages": [{"role": "user", "content": [{"text": "hi"}]}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(response.headers()["x-amzn-errortype"], "UnrecognizedClientException");
}
