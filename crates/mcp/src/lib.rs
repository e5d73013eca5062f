//! rswe's MCP client: tool servers configured the way people already do it.
//!
//! - [`config`]: the `mcpServers` format that Claude Desktop, Claude Code (`.mcp.json`)
//!   and Cursor share, read and checked with errors that name the server and the field.
//! - [`McpSession`]: a session's servers, started at its first step (stdio servers in the
//!   session's sandbox unless trusted; Streamable HTTP, or legacy HTTP+SSE, for URL
//!   servers), restarted once when one dies, their tools offered to the agent as
//!   `mcp__<server>__<tool>` through [`rswe_tools::ToolSource`].
//! - [`check_servers`]: what `rswe mcp list` shows.

pub mod config;
mod host;
pub mod legacy_sse;
mod naming;
mod results;
mod server;
mod session;

pub use config::{ConfigError, McpConfig, ServerConfig, Transport};
pub use naming::{MAX_TOOL_NAME, exposed_name};
pub use server::INHERITED_ENV;
pub use session::{McpSession, McpSettings, ServerCheck, ServerOffer, check_servers};
