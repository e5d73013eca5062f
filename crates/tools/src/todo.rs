//! `todo`: the agent's plan, as a checklist the person can follow.

use crate::{Tool, ToolContext, ToolEffect, ToolOutput, parse_input, schema_for};
use rswe_protocol::{TodoItem, TodoStatus};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

const DESCRIPTION: &str = "Keep a todo list for multi-step work, so you and the person can see the plan and the progress. \
Send the WHOLE list every time (it replaces the previous one). Each item has a short stable `id`, its `content` \
(one concrete step), and a `status`: pending, in_progress, completed or cancelled. Keep exactly one item in_progress \
while you work on it; mark it completed as soon as it is done, then move the next one to in_progress. \
Skip the list for trivial one-step tasks.";

/// The status of one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
enum Status {
    Pending,
    InProgress,
    Completed,
    Cancelled,
}

impl From<Status> for TodoStatus {
    fn from(status: Status) -> Self {
        match status {
            Status::Pending => TodoStatus::Pending,
            Status::InProgress => TodoStatus::InProgress,
            Status::Completed => TodoStatus::Completed,
            Status::Cancelled => TodoStatus::Cancelled,
        }
    }
}

/// One step of the plan.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Item {
    /// A short identifier, stable across updates (e.g. "1", "tests").
    id: String,
    /// What the step is, in a few words.
    content: String,
    status: Status,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Input {
    /// The complete list, in order. It replaces the previous list.
    items: Vec<Item>,
}

/// The `todo` tool.
pub struct TodoTool {
    schema: Value,
}

impl TodoTool {
    pub fn new() -> Self {
        TodoTool { schema: schema_for::<Input>() }
    }
}

impl Default for TodoTool {
    fn default() -> Self {
        TodoTool::new()
    }
}

/// The list as a checklist: `[x]` done, `[>]` in progress, `[ ]` pending, `[-]` cancelled.
pub(crate) fn render_checklist(items: &[TodoItem]) -> String {
    if items.is_empty() {
        return "The todo list is now empty.".to_string();
    }
    let mut out = String::from("Todo list updated:");
    for item in items {
        let mark = match item.status {
            TodoStatus::Completed => "[x]",
            TodoStatus::InProgress => "[>]",
            TodoStatus::Pending => "[ ]",
            TodoStatus::Cancelled => "[-]",
        };
        out.push_str(&format!("\n{mark} {} ({})", item.content, item.id));
    }
    out
}

#[async_trait::async_trait]
impl Tool for TodoTool {
    fn name(&self) -> &str {
        "todo"
    }

    fn description(&self) -> &str {
        DESCRIPTION
    }

    fn input_schema(&self) -> Value {
        self.schema.clone()
    }

    async fn run(&self, input: Value, _context: &ToolContext) -> ToolOutput {
        let input: Input = match parse_input(self.name(), input, &self.schema) {
            Ok(input) => input,
            Err(error) => return error,
        };
        let in_progress: Vec<&str> =
            input.items.iter().filter(|item| item.status == Status::InProgress).map(|item| item.id.as_str()).collect();
        if in_progress.len() > 1 {
            return ToolOutput::error(format!(
                "{} items are in_progress ({}), but at most one may be: finish or pause the others (completed or \
                 pending) and send the whole list again. The list was not changed.",
                in_progress.len(),
                in_progress.join(", ")
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for item in &input.items {
            if item.id.trim().is_empty() || item.content.trim().is_empty() {
                return ToolOutput::error(
                    "every item needs a non-empty id and content; the list was not changed".to_string(),
                );
            }
            if !seen.insert(item.id.as_str()) {
                return ToolOutput::error(format!(
                    "the id `{}` is used by more than one item; give each item its own id. The list was not changed.",
                    item.id
                ));
            }
        }
        let items: Vec<TodoItem> = input
            .items
            .into_iter()
            .map(|item| TodoItem { id: item.id, content: item.content.trim().to_string(), status: item.status.into() })
            .collect();
        ToolOutput::text(render_checklist(&items)).with_effect(ToolEffect::Todo(items))
    }
}
