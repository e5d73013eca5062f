//! rswe's MCP client. So far: the configuration, in the `mcpServers` format that Claude
//! Desktop, Claude Code (`.mcp.json`) and Cursor share, read and checked with errors
//! that name the server and the field. Transports and tools come next.

pub mod config;

pub use config::{ConfigError, McpConfig, ServerConfig, Transport};
