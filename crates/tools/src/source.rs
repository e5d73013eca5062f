//! Tools that come from elsewhere (MCP servers), prepared once per turn.

use crate::Tool;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// What a [`ToolSource`] offers for one turn.
#[derive(Default, Clone)]
pub struct SourcedTools {
    /// Added after the built-in tools, in a stable order.
    pub tools: Vec<Arc<dyn Tool>>,
    /// Things the person should know (a server that did not start, and why); each is
    /// reported once.
    pub notices: Vec<String>,
}

/// Tools beyond the built-in ones, which may change during a session (servers start,
/// die, change their tool lists). The agent asks at the start of each turn and after a
/// compaction, the moments when a new tool list costs the least prompt cache.
#[async_trait::async_trait]
pub trait ToolSource: Send + Sync {
    /// Starts what is not running yet, refreshes what changed, and returns the tools.
    /// Bounded in time; `cancel` ends it early (the person interrupted).
    async fn prepare(&self, cancel: &CancellationToken) -> SourcedTools;
}
