use crate::{Tool, ToolContext, ToolOutput};
use rswe_protocol::ToolDefinition;
use serde_json::Value;
use std::sync::Arc;

/// The tools of one session, in a stable order (the order is part of the cached prompt).
#[derive(Clone, Default)]
pub struct ToolRegistry {
    tools: Vec<Arc<dyn Tool>>,
}

impl ToolRegistry {
    pub fn new() -> Self {
        ToolRegistry::default()
    }

    /// Adds a tool; a tool of the same name is replaced in place.
    pub fn register(&mut self, tool: Arc<dyn Tool>) {
        match self.tools.iter_mut().find(|t| t.name() == tool.name()) {
            Some(slot) => *slot = tool,
            None => self.tools.push(tool),
        }
    }

    /// Passes the output of every tool registered so far through `filter` (to remove known
    /// secrets); tools registered later are not filtered.
    pub fn filter_output(&mut self, filter: crate::OutputFilter) {
        for tool in &mut self.tools {
            *tool = Arc::new(crate::filter::Filtered { inner: tool.clone(), filter: filter.clone() });
        }
    }

    pub fn get(&self, name: &str) -> Option<&Arc<dyn Tool>> {
        self.tools.iter().find(|t| t.name() == name)
    }

    pub fn names(&self) -> Vec<String> {
        self.tools.iter().map(|t| t.name().to_string()).collect()
    }

    /// The definitions sent to the model.
    pub fn definitions(&self) -> Vec<ToolDefinition> {
        self.tools
            .iter()
            .map(|t| ToolDefinition {
                name: t.name().to_string(),
                description: t.description().to_string(),
                input_schema: t.input_schema(),
            })
            .collect()
    }

    pub fn is_read_only(&self, name: &str, input: &Value) -> bool {
        self.get(name).is_some_and(|t| t.is_read_only(input))
    }

    /// Runs a call by name. An unknown tool is an error the model can correct.
    pub async fn run(&self, name: &str, input: Value, context: &ToolContext) -> ToolOutput {
        match self.get(name) {
            Some(tool) => tool.run(input, context).await,
            None => ToolOutput::error(format!(
                "there is no tool named `{name}`; the available tools are: {}",
                self.names().join(", ")
            )),
        }
    }
}
