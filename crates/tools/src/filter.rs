//! Output filters: a rewrite of everything a tool returns and streams (known secrets removed) before
//! the model or a person sees it.

use crate::{ProgressSink, Tool, ToolContext, ToolEffect, ToolOutput, ToolProgress};
use rswe_protocol::ToolResultContent;
use serde_json::Value;
use std::sync::Arc;

/// Rewrites a text a tool produced.
pub type OutputFilter = Arc<dyn Fn(&str) -> String + Send + Sync>;

/// A tool whose output passes through a filter.
pub(crate) struct Filtered {
    pub(crate) inner: Arc<dyn Tool>,
    pub(crate) filter: OutputFilter,
}

#[async_trait::async_trait]
impl Tool for Filtered {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn description(&self) -> &str {
        self.inner.description()
    }

    fn input_schema(&self) -> Value {
        self.inner.input_schema()
    }

    fn is_read_only(&self, input: &Value) -> bool {
        self.inner.is_read_only(input)
    }

    async fn run(&self, input: Value, context: &ToolContext) -> ToolOutput {
        let mut context = context.clone();
        if let Some(progress) = context.progress.take() {
            let filter = self.filter.clone();
            let filtered: ProgressSink = Arc::new(move |update: ToolProgress| {
                progress(ToolProgress { text: filter(&update.text), ..update });
            });
            context.progress = Some(filtered);
        }
        let mut output = self.inner.run(input, &context).await;
        for part in &mut output.content {
            if let ToolResultContent::Text { text } = part {
                *text = (self.filter)(text);
            }
        }
        for effect in &mut output.effects {
            match effect {
                ToolEffect::Message(text) | ToolEffect::Title(text) => *text = (self.filter)(text),
                ToolEffect::SendFile { message: Some(text), .. } => *text = (self.filter)(text),
                _ => {}
            }
        }
        output
    }
}

/// A tool source whose tools' output passes through a filter.
pub struct FilteredSource {
    inner: Arc<dyn crate::ToolSource>,
    filter: OutputFilter,
}

impl FilteredSource {
    pub fn new(inner: Arc<dyn crate::ToolSource>, filter: OutputFilter) -> Self {
        FilteredSource { inner, filter }
    }
}

#[async_trait::async_trait]
impl crate::ToolSource for FilteredSource {
    async fn prepare(&self, cancel: &tokio_util::sync::CancellationToken) -> crate::SourcedTools {
        let mut sourced = self.inner.prepare(cancel).await;
        for tool in &mut sourced.tools {
            *tool = Arc::new(Filtered { inner: tool.clone(), filter: self.filter.clone() });
        }
        sourced.notices = sourced.notices.iter().map(|notice| (self.filter)(notice)).collect();
        sourced
    }
}
