//! `send_message` and `send_file`: telling the person something while the work goes on.

use crate::excerpt::human_bytes;
use crate::{Tool, ToolContext, ToolEffect, ToolOutput, parse_input, schema_for};
use rswe_sandbox::SandboxError;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;
use std::path::Path;

const MESSAGE_DESCRIPTION: &str = "Send a short message to the person who gave you the task, right away, while you \
keep working: progress on a long task, a finding they should know about, or a question you can continue without \
an answer to. Your final answer is delivered anyway: do not repeat it here.";

const FILE_DESCRIPTION: &str = "Send a file from the workspace to the person (a report, a screenshot, a generated \
artifact, a log), with an optional message explaining it. The file must already exist: write it first.";

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct MessageInput {
    /// The message, in Markdown.
    message: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct FileInput {
    /// The file: relative to the workspace, or absolute inside it.
    path: String,
    /// A short message sent with the file.
    message: Option<String>,
}

/// The `send_message` tool.
pub struct SendMessageTool {
    schema: Value,
}

impl SendMessageTool {
    pub fn new() -> Self {
        SendMessageTool { schema: schema_for::<MessageInput>() }
    }
}

impl Default for SendMessageTool {
    fn default() -> Self {
        SendMessageTool::new()
    }
}

#[async_trait::async_trait]
impl Tool for SendMessageTool {
    fn name(&self) -> &str {
        "send_message"
    }

    fn description(&self) -> &str {
        MESSAGE_DESCRIPTION
    }

    fn input_schema(&self) -> Value {
        self.schema.clone()
    }

    async fn run(&self, input: Value, _context: &ToolContext) -> ToolOutput {
        let input: MessageInput = match parse_input(self.name(), input, &self.schema) {
            Ok(input) => input,
            Err(error) => return error,
        };
        let message = input.message.trim();
        if message.is_empty() {
            return ToolOutput::error("the message is empty: write what the person should know");
        }
        ToolOutput::text("Message delivered.").with_effect(ToolEffect::Message(message.to_string()))
    }
}

/// The `send_file` tool.
pub struct SendFileTool {
    schema: Value,
}

impl SendFileTool {
    pub fn new() -> Self {
        SendFileTool { schema: schema_for::<FileInput>() }
    }
}

impl Default for SendFileTool {
    fn default() -> Self {
        SendFileTool::new()
    }
}

#[async_trait::async_trait]
impl Tool for SendFileTool {
    fn name(&self) -> &str {
        "send_file"
    }

    fn description(&self) -> &str {
        FILE_DESCRIPTION
    }

    fn input_schema(&self) -> Value {
        self.schema.clone()
    }

    async fn run(&self, input: Value, context: &ToolContext) -> ToolOutput {
        let input: FileInput = match parse_input(self.name(), input, &self.schema) {
            Ok(input) => input,
            Err(error) => return error,
        };
        let sandbox = context.sandbox.as_ref();
        let resolved = match sandbox.resolve(Path::new(&input.path)).await {
            Ok(resolved) => resolved,
            Err(error) => return ToolOutput::error(error.to_string()),
        };
        // The parent's listing says whether the file exists, is a file, and its size, without
        // reading it.
        let missing = || SandboxError::NotFound { path: resolved.clone() };
        let entry = match resolved.parent() {
            None => Err(missing()),
            Some(parent) => match sandbox.list_dir(parent, 1).await {
                Ok(entries) => entries.into_iter().find(|entry| entry.path == resolved).ok_or_else(missing),
                Err(error) => Err(error),
            },
        };
        let entry = match entry {
            Ok(entry) => entry,
            Err(error) => return ToolOutput::error(error.to_string()),
        };
        if entry.is_dir {
            return ToolOutput::error(format!(
                "{} is a directory: send a file (archive the directory first, e.g. with tar, if you need to)",
                input.path
            ));
        }
        let message = input.message.map(|m| m.trim().to_string()).filter(|m| !m.is_empty());
        let path = resolved.to_string_lossy().into_owned();
        ToolOutput::text(format!("File {path} ({}) delivered.", human_bytes(entry.size)))
            .with_effect(ToolEffect::SendFile { path, message, size: entry.size })
    }
}
