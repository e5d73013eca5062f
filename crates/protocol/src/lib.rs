//! Data shared by every rswe crate: the provider-neutral conversation (roles, content
//! blocks, messages, tool definitions), token usage, and session events. Data only: no
//! I/O, no policy.

mod content;
mod event;
mod usage;

pub use content::{ContentBlock, ImageSource, Message, Role, ToolDefinition, ToolResultContent};
pub use event::{Event, EventKind, SessionId, SessionStatus, TodoItem, TodoStatus};
pub use usage::Usage;
