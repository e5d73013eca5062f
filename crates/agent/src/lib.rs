//! The rswe agent: a language-model tool-use loop that never loses its place.
//!
//! Front ends append people's messages and interrupts to the session log and call
//! [`Agent::run`]; the agent derives the conversation from the log, asks the model,
//! runs the tools it calls, and appends everything it does. It knows nothing of
//! terminals, HTTP or chat services.

mod agent;
pub mod context;
pub mod conversation;
pub mod knowledge;
mod log;
pub mod prompt;

pub use agent::{Agent, AgentConfig, AgentError, LiveEvent, LiveSink, TurnEnd};
pub use log::{LogError, MemoryLog, SessionLog};
