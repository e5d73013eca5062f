//! Data shared by every rswe crate: the provider-neutral conversation (roles, content
//! blocks, messages, tool definitions) and token usage. Data only: no I/O, no policy.

mod content;
mod usage;

pub use content::{ContentBlock, ImageSource, Message, Role, ToolDefinition, ToolResultContent};
pub use usage::Usage;
