//! `set_title`: names the session so people can find it.

use crate::{Tool, ToolContext, ToolEffect, ToolOutput, parse_input, schema_for};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

/// Longest title kept, in characters.
pub const MAX_TITLE_CHARS: usize = 80;

const DESCRIPTION: &str = "Set a short title for this session (at most 80 characters), saying what the task is, e.g. \
\"Fix flaky retry test in http client\". Set it once you understand the task; change it only if the task changes.";

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Input {
    /// The title: a few words, at most 80 characters.
    title: String,
}

/// The `set_title` tool.
pub struct SetTitleTool {
    schema: Value,
}

impl SetTitleTool {
    pub fn new() -> Self {
        SetTitleTool { schema: schema_for::<Input>() }
    }
}

impl Default for SetTitleTool {
    fn default() -> Self {
        SetTitleTool::new()
    }
}

/// The title on one line, whitespace collapsed, cut to [`MAX_TITLE_CHARS`] (with `…` when cut).
pub(crate) fn clean_title(title: &str) -> String {
    let title = title.split_whitespace().collect::<Vec<_>>().join(" ");
    if title.chars().count() <= MAX_TITLE_CHARS {
        return title;
    }
    let cut: String = title.chars().take(MAX_TITLE_CHARS - 1).collect();
    format!("{}…", cut.trim_end())
}

#[async_trait::async_trait]
impl Tool for SetTitleTool {
    fn name(&self) -> &str {
        "set_title"
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
        let title = clean_title(&input.title);
        if title.is_empty() {
            return ToolOutput::error("the title is empty: give a few words saying what the task is");
        }
        ToolOutput::text(format!("Title set: {title}")).with_effect(ToolEffect::Title(title))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleans_and_bounds_titles() {
        assert_eq!(clean_title("  Fix\nthe   bug  "), "Fix the bug");
        let long = clean_title(&"word ".repeat(40));
        assert!(long.chars().count() <= MAX_TITLE_CHARS);
        assert!(long.ends_with('…'));
    }
}
