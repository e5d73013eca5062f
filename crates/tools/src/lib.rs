//! Tools the agent can call: the [`Tool`] trait, the [`ToolRegistry`], and the built-in
//! tools, which act on a session's [`Sandbox`](rswe_sandbox::Sandbox).
//!
//! A tool returns a [`ToolOutput`]: the content the model sees, whether it is an error,
//! and [`ToolEffect`]s the agent turns into session events (a message to the person, a
//! title, the todo list, a file to deliver). Tools never touch the event log themselves.

mod closest;
mod delivery;
mod editor;
mod excerpt;
mod filter;
mod images;
mod registry;
mod search;
mod shell;
mod source;
mod think;
mod title;
mod todo;

pub use delivery::{SendFileTool, SendMessageTool};
pub use editor::EditorTool;
pub use filter::{FilteredSource, OutputFilter};
pub use images::{MAX_IMAGE_BYTES, MAX_IMAGE_SIDE, ReadImageTool, image_for_model};
pub use registry::ToolRegistry;
pub use search::{FindFilesTool, SearchTool};
pub use shell::ShellTool;
pub use source::{SourcedTools, ToolSource};
pub use think::ThinkTool;
pub use title::{MAX_TITLE_CHARS, SetTitleTool};
pub use todo::TodoTool;

use rswe_protocol::{SessionId, TodoItem, ToolResultContent};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// A fresh registry of the built-in tools, in their stable order: shell, editor, search,
/// find_files, todo, think, send_message, read_image, send_file, set_title.
///
/// Make one per session: the editor keeps that session's undo history.
pub fn builtin_tools() -> ToolRegistry {
    let mut registry = ToolRegistry::new();
    registry.register(Arc::new(ShellTool::new()));
    registry.register(Arc::new(EditorTool::new()));
    registry.register(Arc::new(SearchTool::new()));
    registry.register(Arc::new(FindFilesTool::new()));
    registry.register(Arc::new(TodoTool::new()));
    registry.register(Arc::new(ThinkTool::new()));
    registry.register(Arc::new(SendMessageTool::new()));
    registry.register(Arc::new(ReadImageTool::new()));
    registry.register(Arc::new(SendFileTool::new()));
    registry.register(Arc::new(SetTitleTool::new()));
    registry
}

/// Live output of a running tool (a shell command's stdout and stderr), for people
/// watching; the model sees only the final [`ToolOutput`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolProgress {
    pub tool_use_id: String,
    pub text: String,
}

/// Where live output goes.
pub type ProgressSink = Arc<dyn Fn(ToolProgress) + Send + Sync>;

/// What a tool call may use.
#[derive(Clone)]
pub struct ToolContext {
    pub session_id: SessionId,
    pub tool_use_id: String,
    pub sandbox: Arc<dyn rswe_sandbox::Sandbox>,
    /// Cancelled when the person interrupts or stops the session.
    pub cancel: CancellationToken,
    pub progress: Option<ProgressSink>,
}

/// Something a tool asks the session to do beyond answering the model.
#[derive(Debug, Clone, PartialEq)]
pub enum ToolEffect {
    /// Tell the person (`send_message`).
    Message(String),
    /// Deliver a workspace file (`send_file`); `path` is absolute.
    SendFile { path: String, message: Option<String>, size: u64 },
    /// Name the session (`set_title`).
    Title(String),
    /// The whole todo list (`todo`).
    Todo(Vec<TodoItem>),
}

/// The result of one tool call.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ToolOutput {
    pub content: Vec<ToolResultContent>,
    pub is_error: bool,
    pub effects: Vec<ToolEffect>,
}

impl ToolOutput {
    pub fn text(text: impl Into<String>) -> Self {
        ToolOutput { content: vec![ToolResultContent::Text { text: text.into() }], ..Default::default() }
    }

    pub fn error(text: impl Into<String>) -> Self {
        ToolOutput { is_error: true, ..ToolOutput::text(text) }
    }

    pub fn with_effect(mut self, effect: ToolEffect) -> Self {
        self.effects.push(effect);
        self
    }

    /// The text parts joined, for logs and tests.
    pub fn text_content(&self) -> String {
        self.content
            .iter()
            .filter_map(|part| match part {
                ToolResultContent::Text { text } => Some(text.as_str()),
                ToolResultContent::Image { .. } => None,
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// A tool the model may call.
#[async_trait::async_trait]
pub trait Tool: Send + Sync {
    fn name(&self) -> &str;
    fn description(&self) -> &str;
    /// JSON Schema of the input object.
    fn input_schema(&self) -> Value;
    /// Whether this call only reads, so it may run beside other such calls.
    fn is_read_only(&self, _input: &Value) -> bool {
        false
    }
    /// Runs the call. Failures the model should see are `ToolOutput::error`, never a panic.
    async fn run(&self, input: Value, context: &ToolContext) -> ToolOutput;
}

/// Parses a tool's input, or explains to the model what was wrong with it.
pub fn parse_input<T: DeserializeOwned>(tool: &str, input: Value, schema: &Value) -> Result<T, ToolOutput> {
    let input = match input {
        // Some models send the arguments as a JSON string.
        Value::String(text) => match serde_json::from_str::<Value>(&text) {
            Ok(value @ Value::Object(_)) => value,
            _ => {
                return Err(ToolOutput::error(format!(
                    "invalid input for {tool}: expected a JSON object matching the schema, got text that is not one: {}\nschema: {schema}",
                    text.chars().take(300).collect::<String>()
                )));
            }
        },
        other => other,
    };
    serde_json::from_value(input).map_err(|error| {
        ToolOutput::error(format!(
            "invalid input for {tool}: {error}. Call it again with input matching this schema: {schema}"
        ))
    })
}

/// The JSON Schema of `T`, as providers accept it: an object schema, no `$schema`, nested
/// types inlined (no `$defs`/`$ref`), and optional fields (`Option<T>`) described as plain
/// optional properties rather than nullable ones, the way models' trained tools look.
pub fn schema_for<T: schemars::JsonSchema>() -> Value {
    let generator = schemars::generate::SchemaSettings::draft2020_12()
        .with(|settings| settings.inline_subschemas = true)
        .into_generator();
    let mut schema = serde_json::to_value(generator.into_root_schema_for::<T>()).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut schema {
        map.remove("$schema");
        map.remove("title");
    }
    drop_null_options(&mut schema);
    schema
}

/// Rewrites the nullable schemas schemars gives `Option<T>` fields (`"type": ["string", "null"]`,
/// `"anyOf": [T, {"type": "null"}]`, `"default": null`) as the plain schema of `T`.
fn drop_null_options(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            if map.get("default").is_some_and(Value::is_null) {
                map.remove("default");
            }
            if let Some(Value::Array(types)) = map.get_mut("type")
                && types.len() == 2
                && types.iter().any(|t| t == "null")
            {
                types.retain(|t| t != "null");
                let single = types.remove(0);
                map.insert("type".to_string(), single);
            }
            if let Some(Value::Array(values)) = map.get_mut("enum")
                && values.len() > 1
            {
                values.retain(|v| !v.is_null());
            }
            let nullable_one_of = match map.get("anyOf") {
                Some(Value::Array(options)) if options.len() == 2 => {
                    let is_null = |v: &Value| {
                        v.get("type").is_some_and(|t| t == "null") && v.as_object().is_some_and(|o| o.len() == 1)
                    };
                    options.iter().position(is_null).map(|null_at| options[1 - null_at].clone())
                }
                _ => None,
            };
            if let Some(Value::Object(inner)) = nullable_one_of {
                map.remove("anyOf");
                for (key, value) in inner {
                    map.entry(key).or_insert(value);
                }
            }
            map.values_mut().for_each(drop_null_options);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_null_options),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(schemars::JsonSchema)]
    #[allow(dead_code)]
    struct Example {
        /// Always there.
        name: String,
        /// Sometimes there.
        count: Option<u32>,
        kind: Option<Kind>,
        nested: Option<Nested>,
    }

    #[derive(schemars::JsonSchema)]
    #[serde(rename_all = "snake_case")]
    #[allow(dead_code)]
    enum Kind {
        One,
        Two,
    }

    /// A nested object.
    #[derive(schemars::JsonSchema)]
    #[allow(dead_code)]
    struct Nested {
        flag: bool,
    }

    #[test]
    fn schemas_are_plain_objects_with_plain_optional_fields() {
        let schema = schema_for::<Example>();
        assert_eq!(schema["type"], "object");
        assert!(schema.get("$schema").is_none() && schema.get("$defs").is_none() && schema.get("title").is_none());
        assert_eq!(schema["required"], serde_json::json!(["name"]));
        let properties = &schema["properties"];
        assert_eq!(properties["count"]["type"], "integer");
        assert_eq!(properties["count"]["description"], "Sometimes there.");
        assert!(properties["count"].get("default").is_none());
        assert_eq!(properties["kind"]["enum"], serde_json::json!(["one", "two"]));
        assert_eq!(properties["nested"]["type"], "object");
        assert_eq!(properties["nested"]["properties"]["flag"]["type"], "boolean");
        assert!(!schema.to_string().contains("null"), "{schema}");
        assert!(!schema.to_string().contains("$ref"), "{schema}");
    }
}
