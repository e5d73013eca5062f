//! `think`: a place to reason without doing anything.

use crate::{Tool, ToolContext, ToolOutput, parse_input, schema_for};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

const DESCRIPTION: &str = "Think something through without acting: plan an approach, weigh options, or work out what a \
tool result means before the next step. It changes nothing and fetches nothing; the thought is only recorded. \
Use it when a decision is not obvious, not for every step.";

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Input {
    /// Your reasoning.
    thought: String,
}

/// The `think` tool.
pub struct ThinkTool {
    schema: Value,
}

impl ThinkTool {
    pub fn new() -> Self {
        ThinkTool { schema: schema_for::<Input>() }
    }
}

impl Default for ThinkTool {
    fn default() -> Self {
        ThinkTool::new()
    }
}

#[async_trait::async_trait]
impl Tool for ThinkTool {
    fn name(&self) -> &str {
        "think"
    }

    fn description(&self) -> &str {
        DESCRIPTION
    }

    fn input_schema(&self) -> Value {
        self.schema.clone()
    }

    fn is_read_only(&self, _input: &Value) -> bool {
        true
    }

    async fn run(&self, input: Value, _context: &ToolContext) -> ToolOutput {
        match parse_input::<Input>(self.name(), input, &self.schema) {
            Ok(input) if input.thought.trim().is_empty() => ToolOutput::error("the thought is empty"),
            Ok(_) => ToolOutput::text("Thought recorded. Continue with the next step."),
            Err(error) => error,
        }
    }
}
