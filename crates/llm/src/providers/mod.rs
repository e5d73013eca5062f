//! One module per wire format.

pub mod anthropic;
pub mod bedrock;
pub mod openai;
