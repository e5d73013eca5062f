//! Amazon Bedrock ConverseStream through the official AWS SDK: the whole AWS credential
//! chain, regions and endpoints as every AWS tool resolves them.

use crate::catalog::ModelInfo;
use crate::client::ModelClient;
use crate::config::BedrockConfig;
use crate::error::{LlmError, TimeoutPhase};
use crate::http::mentions_context_overflow;
use crate::request::{ModelRequest, StopReason};
use crate::stream::{BlockKind, EventStream, StreamEvent, UsageUpdate};
use aws_sdk_bedrockruntime::error::{DisplayErrorContext, SdkError};
use aws_sdk_bedrockruntime::operation::converse_stream::ConverseStreamError;
use aws_sdk_bedrockruntime::types::{
    self as sdk, CachePointBlock, CachePointType, ContentBlockDelta, ContentBlockStart, ConversationRole,
    ConverseStreamOutput, ReasoningContentBlockDelta,
};
use aws_smithy_types::{Blob, Document, Number};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use futures::{StreamExt, stream};
use rswe_protocol::{ContentBlock, ImageSource, Message, Role, ToolResultContent};
use serde_json::Value;
use std::time::Duration;

const PROVIDER: &str = "bedrock";

pub struct BedrockClient {
    client: aws_sdk_bedrockruntime::Client,
}

impl BedrockClient {
    /// Wraps an SDK client as it is (tests point one at a fake endpoint).
    pub fn from_sdk(client: aws_sdk_bedrockruntime::Client) -> Self {
        BedrockClient { client }
    }

    /// Loads the AWS configuration the standard way (environment, profiles, SSO, web
    /// identity, IMDS), then applies `[providers.bedrock]`. The SDK's own retries are
    /// off: [`crate::Model`] retries every provider alike.
    pub async fn from_config(config: &BedrockConfig, connect_timeout: Duration) -> Result<Self, LlmError> {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .timeout_config(aws_config::timeout::TimeoutConfig::builder().connect_timeout(connect_timeout).build());
        if let Some(profile) = &config.profile {
            loader = loader.profile_name(profile);
        }
        if let Some(region) = &config.region {
            loader = loader.region(aws_config::Region::new(region.clone()));
        }
        let shared = loader.load().await;
        if shared.region().is_none() {
            return Err(LlmError::Configuration(
                "no AWS region for Bedrock: export AWS_REGION=us-east-1 (or your region), set region in \
                 your AWS profile, or set region under [providers.bedrock] in the config file"
                    .into(),
            ));
        }
        let mut builder = aws_sdk_bedrockruntime::config::Builder::from(&shared);
        if let Some(url) = &config.endpoint_url {
            builder = builder.endpoint_url(url);
        }
        Ok(BedrockClient::from_sdk(aws_sdk_bedrockruntime::Client::from_conf(builder.build())))
    }
}

#[async_trait::async_trait]
impl ModelClient for BedrockClient {
    fn provider(&self) -> &'static str {
        PROVIDER
    }

    async fn stream(&self, model: &ModelInfo, request: &ModelRequest) -> Result<EventStream, LlmError> {
        let parts = request_parts(model, request)?;
        let output = self
            .client
            .converse_stream()
            .model_id(&model.model_id)
            .set_system(Some(parts.system).filter(|s| !s.is_empty()))
            .set_messages(Some(parts.messages))
            .set_tool_config(parts.tool_config)
            .inference_config(parts.inference)
            .set_additional_model_request_fields(parts.additional)
            .send()
            .await
            .map_err(request_error)?;
        let receiver = output.stream;
        let state = StreamState { receiver, stopped: false, finished: false };
        Ok(stream::unfold(state, next_events).flat_map(stream::iter).boxed())
    }
}

struct StreamState {
    receiver: aws_sdk_bedrockruntime::primitives::event_stream::EventReceiver<
        ConverseStreamOutput,
        sdk::error::ConverseStreamOutputError,
    >,
    stopped: bool,
    finished: bool,
}

async fn next_events(mut state: StreamState) -> Option<(Vec<Result<StreamEvent, LlmError>>, StreamState)> {
    if state.finished {
        return None;
    }
    match state.receiver.recv().await {
        Ok(Some(event)) => {
            if matches!(event, ConverseStreamOutput::MessageStop(_)) {
                state.stopped = true;
            }
            Some((translate(event).into_iter().map(Ok).collect(), state))
        }
        // Bedrock ends with messageStop then metadata; only then is the message whole.
        Ok(None) if state.stopped => {
            state.finished = true;
            Some((vec![Ok(StreamEvent::MessageEnd)], state))
        }
        Ok(None) => None,
        Err(error) => {
            state.finished = true;
            Some((vec![Err(stream_error(error))], state))
        }
    }
}

fn translate(event: ConverseStreamOutput) -> Vec<StreamEvent> {
    let index = |i: i32| usize::try_from(i).unwrap_or(0);
    match event {
        ConverseStreamOutput::MessageStart(_) => vec![StreamEvent::MessageStart { id: None }],
        ConverseStreamOutput::ContentBlockStart(start) => match start.start {
            Some(ContentBlockStart::ToolUse(tool)) => vec![StreamEvent::BlockStart {
                index: index(start.content_block_index),
                kind: BlockKind::ToolUse { id: tool.tool_use_id, name: tool.name },
            }],
            _ => Vec::new(),
        },
        ConverseStreamOutput::ContentBlockDelta(delta) => {
            let index = index(delta.content_block_index);
            match delta.delta {
                Some(ContentBlockDelta::Text(text)) => vec![StreamEvent::TextDelta { index, text }],
                Some(ContentBlockDelta::ToolUse(tool)) => {
                    vec![StreamEvent::ToolInputDelta { index, partial_json: tool.input }]
                }
                Some(ContentBlockDelta::ReasoningContent(ReasoningContentBlockDelta::Text(thinking))) => {
                    vec![StreamEvent::ThinkingDelta { index, thinking }]
                }
                Some(ContentBlockDelta::ReasoningContent(ReasoningContentBlockDelta::Signature(signature))) => {
                    vec![StreamEvent::SignatureDelta { index, signature }]
                }
                Some(ContentBlockDelta::ReasoningContent(ReasoningContentBlockDelta::RedactedContent(blob))) => {
                    let data = BASE64.encode(blob.as_ref());
                    vec![StreamEvent::BlockStart { index, kind: BlockKind::RedactedThinking { data } }]
                }
                _ => Vec::new(),
            }
        }
        ConverseStreamOutput::ContentBlockStop(stop) => {
            vec![StreamEvent::BlockStop { index: index(stop.content_block_index) }]
        }
        ConverseStreamOutput::MessageStop(stop) => vec![StreamEvent::Stop { reason: stop_reason(&stop.stop_reason) }],
        ConverseStreamOutput::Metadata(metadata) => match metadata.usage {
            Some(usage) => {
                let count = |n: i32| u64::try_from(n).unwrap_or(0);
                vec![StreamEvent::Usage(UsageUpdate {
                    input_tokens: Some(count(usage.input_tokens)),
                    output_tokens: Some(count(usage.output_tokens)),
                    cache_read_tokens: Some(usage.cache_read_input_tokens.map(count).unwrap_or(0)),
                    cache_write_tokens: Some(usage.cache_write_input_tokens.map(count).unwrap_or(0)),
                })]
            }
            None => Vec::new(),
        },
        _ => Vec::new(),
    }
}

fn stop_reason(reason: &sdk::StopReason) -> StopReason {
    match reason {
        sdk::StopReason::EndTurn => StopReason::EndTurn,
        sdk::StopReason::ToolUse => StopReason::ToolUse,
        sdk::StopReason::MaxTokens => StopReason::MaxTokens,
        sdk::StopReason::ContentFiltered | sdk::StopReason::GuardrailIntervened => StopReason::Refusal,
        other => StopReason::Other(other.as_str().to_string()),
    }
}

/// The text of an SDK error with its causes.
fn describe<E: std::error::Error>(error: &E) -> String {
    DisplayErrorContext(error).to_string()
}

/// Errors before the stream starts.
fn request_error(error: SdkError<ConverseStreamError, aws_sdk_bedrockruntime::config::http::HttpResponse>) -> LlmError {
    use ConverseStreamError as E;
    let message = match &error {
        SdkError::ServiceError(context) => context.err().meta().message().unwrap_or_default().to_string(),
        other => describe(other),
    };
    match &error {
        SdkError::ServiceError(context) => match context.err() {
            E::ThrottlingException(_) => LlmError::RateLimited { provider: PROVIDER, message, retry_after: None },
            E::ModelNotReadyException(_) | E::ServiceUnavailableException(_) => {
                LlmError::Overloaded { provider: PROVIDER, status: 503, message, retry_after: None }
            }
            E::InternalServerException(_) | E::ModelStreamErrorException(_) | E::ModelErrorException(_) => {
                LlmError::Overloaded { provider: PROVIDER, status: 500, message, retry_after: None }
            }
            E::ModelTimeoutException(_) => {
                LlmError::Timeout { provider: PROVIDER, phase: TimeoutPhase::Response, after: Duration::ZERO }
            }
            E::AccessDeniedException(_) => LlmError::Authentication { provider: PROVIDER, message },
            E::ValidationException(_) if mentions_context_overflow(&message) => {
                LlmError::ContextWindowExceeded { provider: PROVIDER, message }
            }
            E::ValidationException(_) | E::ResourceNotFoundException(_) => {
                LlmError::InvalidRequest { provider: PROVIDER, message }
            }
            _ => {
                let status = context.raw().status().as_u16();
                let code = context.err().meta().code().unwrap_or_default();
                if status == 403 || code.contains("Unrecognized") || code.contains("Signature") {
                    LlmError::Authentication { provider: PROVIDER, message }
                } else {
                    let message = format!("{code}: {message}");
                    crate::error::from_http_status(PROVIDER, status, message, None, false)
                }
            }
        },
        SdkError::TimeoutError(_) => {
            LlmError::Timeout { provider: PROVIDER, phase: TimeoutPhase::Response, after: Duration::ZERO }
        }
        SdkError::DispatchFailure(failure) if failure.is_io() || failure.is_timeout() => {
            LlmError::Connection { provider: PROVIDER, message }
        }
        SdkError::ResponseError(_) => LlmError::StreamBroken { provider: PROVIDER, message },
        _ if message.contains("credentials") => LlmError::Authentication {
            provider: PROVIDER,
            message: format!(
                "{message}; configure AWS credentials (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, \
                 AWS_PROFILE, `aws sso login`, or an instance role)"
            ),
        },
        _ => LlmError::Connection { provider: PROVIDER, message },
    }
}

/// Errors inside the event stream (exception frames, broken framing).
fn stream_error(
    error: SdkError<sdk::error::ConverseStreamOutputError, aws_smithy_types::event_stream::RawMessage>,
) -> LlmError {
    use sdk::error::ConverseStreamOutputError as E;
    match &error {
        SdkError::ServiceError(context) => {
            let message = context.err().meta().message().unwrap_or_default().to_string();
            match context.err() {
                E::ThrottlingException(_) => LlmError::RateLimited { provider: PROVIDER, message, retry_after: None },
                E::ServiceUnavailableException(_) => {
                    LlmError::Overloaded { provider: PROVIDER, status: 503, message, retry_after: None }
                }
                E::ValidationException(_) if mentions_context_overflow(&message) => {
                    LlmError::ContextWindowExceeded { provider: PROVIDER, message }
                }
                E::ValidationException(_) => LlmError::InvalidRequest { provider: PROVIDER, message },
                _ => LlmError::Overloaded { provider: PROVIDER, status: 500, message, retry_after: None },
            }
        }
        other => LlmError::StreamBroken { provider: PROVIDER, message: describe(other) },
    }
}

struct RequestParts {
    system: Vec<sdk::SystemContentBlock>,
    messages: Vec<sdk::Message>,
    tool_config: Option<sdk::ToolConfiguration>,
    inference: sdk::InferenceConfiguration,
    additional: Option<Document>,
}

fn invalid(what: impl std::fmt::Display) -> LlmError {
    LlmError::InvalidRequest { provider: PROVIDER, message: what.to_string() }
}

fn cache_point() -> Result<CachePointBlock, LlmError> {
    CachePointBlock::builder().r#type(CachePointType::Default).build().map_err(invalid)
}

/// The request in the SDK's types, cache breakpoints as `cachePoint` blocks.
fn request_parts(model: &ModelInfo, request: &ModelRequest) -> Result<RequestParts, LlmError> {
    let mut system = Vec::new();
    for block in &request.system {
        system.push(sdk::SystemContentBlock::Text(block.text.clone()));
        if block.cache_breakpoint {
            system.push(sdk::SystemContentBlock::CachePoint(cache_point()?));
        }
    }
    let mut messages = Vec::new();
    for message in &request.messages {
        messages.push(message_sdk(message)?);
    }
    let tool_config = if request.tools.is_empty() {
        None
    } else {
        let mut tools = Vec::new();
        for tool in &request.tools {
            let spec = sdk::ToolSpecification::builder()
                .name(&tool.name)
                .description(&tool.description)
                .input_schema(sdk::ToolInputSchema::Json(to_document(&tool.input_schema)))
                .build()
                .map_err(invalid)?;
            tools.push(sdk::Tool::ToolSpec(spec));
        }
        if request.tools_cache_breakpoint {
            tools.push(sdk::Tool::CachePoint(cache_point()?));
        }
        Some(sdk::ToolConfiguration::builder().set_tools(Some(tools)).build().map_err(invalid)?)
    };
    let max_tokens = request.max_tokens.unwrap_or(model.max_output_tokens);
    let mut inference =
        sdk::InferenceConfiguration::builder().max_tokens(i32::try_from(max_tokens).unwrap_or(i32::MAX));
    let mut additional = serde_json::Map::new();
    let claude = model.model_id.contains("anthropic.");
    match request.thinking {
        Some(thinking) if claude => {
            additional.insert(
                "thinking".into(),
                serde_json::json!({"type": "enabled", "budget_tokens": thinking.budget_tokens}),
            );
        }
        _ => {
            if let Some(temperature) = request.temperature {
                inference = inference.temperature(temperature);
            }
        }
    }
    if claude && !model.anthropic_beta.is_empty() {
        additional.insert("anthropic_beta".into(), serde_json::json!(model.anthropic_beta));
    }
    Ok(RequestParts {
        system,
        messages,
        tool_config,
        inference: inference.build(),
        additional: (!additional.is_empty()).then(|| to_document(&Value::Object(additional))),
    })
}

fn message_sdk(message: &Message) -> Result<sdk::Message, LlmError> {
    let mut content = Vec::new();
    for block in &message.content {
        if let Some(block) = block_sdk(block)? {
            content.push(block);
        }
    }
    if message.cache_breakpoint {
        content.push(sdk::ContentBlock::CachePoint(cache_point()?));
    }
    let role = match message.role {
        Role::User => ConversationRole::User,
        Role::Assistant => ConversationRole::Assistant,
    };
    sdk::Message::builder().role(role).set_content(Some(content)).build().map_err(invalid)
}

fn image_sdk(source: &ImageSource) -> Result<sdk::ImageBlock, LlmError> {
    let format = match source.media_type.as_str() {
        "image/png" => sdk::ImageFormat::Png,
        "image/jpeg" | "image/jpg" => sdk::ImageFormat::Jpeg,
        "image/gif" => sdk::ImageFormat::Gif,
        "image/webp" => sdk::ImageFormat::Webp,
        other => return Err(invalid(format!("Bedrock does not take images of type {other}"))),
    };
    let bytes = BASE64.decode(&source.data).map_err(|e| invalid(format!("image data is not base64: {e}")))?;
    sdk::ImageBlock::builder().format(format).source(sdk::ImageSource::Bytes(Blob::new(bytes))).build().map_err(invalid)
}

fn block_sdk(block: &ContentBlock) -> Result<Option<sdk::ContentBlock>, LlmError> {
    Ok(Some(match block {
        ContentBlock::Text { text } => sdk::ContentBlock::Text(text.clone()),
        ContentBlock::Image { source } => sdk::ContentBlock::Image(image_sdk(source)?),
        ContentBlock::ToolUse { id, name, input } => sdk::ContentBlock::ToolUse(
            sdk::ToolUseBlock::builder()
                .tool_use_id(id)
                .name(name)
                .input(to_document(input))
                .build()
                .map_err(invalid)?,
        ),
        ContentBlock::ToolResult { tool_use_id, content, is_error } => {
            let mut parts = Vec::new();
            for part in content {
                parts.push(match part {
                    ToolResultContent::Text { text } => sdk::ToolResultContentBlock::Text(text.clone()),
                    ToolResultContent::Image { source } => sdk::ToolResultContentBlock::Image(image_sdk(source)?),
                });
            }
            let status = if *is_error { sdk::ToolResultStatus::Error } else { sdk::ToolResultStatus::Success };
            sdk::ContentBlock::ToolResult(
                sdk::ToolResultBlock::builder()
                    .tool_use_id(tool_use_id)
                    .set_content(Some(parts))
                    .status(status)
                    .build()
                    .map_err(invalid)?,
            )
        }
        // Unsigned thinking (from another provider) cannot be verified: drop it.
        ContentBlock::Thinking { signature: None, .. } => return Ok(None),
        ContentBlock::Thinking { thinking, signature: Some(signature) } => {
            sdk::ContentBlock::ReasoningContent(sdk::ReasoningContentBlock::ReasoningText(
                sdk::ReasoningTextBlock::builder().text(thinking).signature(signature).build().map_err(invalid)?,
            ))
        }
        ContentBlock::RedactedThinking { data } => {
            let bytes = BASE64.decode(data).unwrap_or_else(|_| data.as_bytes().to_vec());
            sdk::ContentBlock::ReasoningContent(sdk::ReasoningContentBlock::RedactedContent(Blob::new(bytes)))
        }
    }))
}

/// JSON to the SDK's document type.
pub(crate) fn to_document(value: &Value) -> Document {
    match value {
        Value::Null => Document::Null,
        Value::Bool(b) => Document::Bool(*b),
        Value::Number(n) => Document::Number(if let Some(u) = n.as_u64() {
            Number::PosInt(u)
        } else if let Some(i) = n.as_i64() {
            Number::NegInt(i)
        } else {
            Number::Float(n.as_f64().unwrap_or(0.0))
        }),
        Value::String(s) => Document::String(s.clone()),
        Value::Array(items) => Document::Array(items.iter().map(to_document).collect()),
        Value::Object(map) => Document::Object(map.iter().map(|(k, v)| (k.clone(), to_document(v))).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;
    use crate::request::{SystemBlock, ThinkingConfig};
    use serde_json::json;

    #[test]
    fn breakpoints_become_cache_points_after_their_blocks() {
        let model = Catalog::built_in().resolve("bedrock/us.anthropic.claude-sonnet-4-5-20250929-v1:0").unwrap();
        let mut first = Message::user_text("hello");
        first.cache_breakpoint = true;
        let request = ModelRequest {
            system: vec![SystemBlock { text: "sys".into(), cache_breakpoint: true }],
            messages: vec![first],
            tools: vec![rswe_protocol::ToolDefinition {
                name: "shell".into(),
                description: "run".into(),
                input_schema: json!({"type": "object", "properties": {"n": {"type": "integer", "minimum": -1}}}),
            }],
            tools_cache_breakpoint: true,
            thinking: Some(ThinkingConfig { budget_tokens: 2048 }),
            max_tokens: Some(4096),
            ..Default::default()
        };
        let parts = request_parts(&model, &request).unwrap();
        assert!(matches!(
            parts.system.as_slice(),
            [sdk::SystemContentBlock::Text(_), sdk::SystemContentBlock::CachePoint(_)]
        ));
        assert!(matches!(parts.messages[0].content(), [sdk::ContentBlock::Text(_), sdk::ContentBlock::CachePoint(_)]));
        let tools = parts.tool_config.unwrap();
        assert!(matches!(tools.tools(), [sdk::Tool::ToolSpec(_), sdk::Tool::CachePoint(_)]));
        let additional = parts.additional.unwrap();
        let Document::Object(map) = additional else { panic!("not an object") };
        assert!(map.contains_key("thinking") && map.contains_key("anthropic_beta"));
        assert_eq!(parts.inference.max_tokens(), Some(4096));
    }
}
