//! Test support for rswe: a wire-faithful fake model server.
//!
//! [`FakeModelServer`] listens on 127.0.0.1 and speaks three real wire formats on one
//! port: the Anthropic Messages API (`POST /v1/messages`), OpenAI Chat Completions
//! (`POST /v1/chat/completions`) and Amazon Bedrock Converse / ConverseStream
//! (`POST /model/{modelId}/converse[-stream]`). It replays a [`Script`] of turns: every
//! model request consumes the next turn, rendered in that request's format, streamed or
//! not. It records every request, checks it the way the real provider would (tool-use
//! pairing, role alternation, cache breakpoints, ...), and simulates token counts and the
//! prompt cache deterministically. The README documents the script format and the
//! simulation precisely.
//!
//! ```no_run
//! # async fn demo() {
//! use rswe_test_support::{FakeModelServer, Script};
//! let server = FakeModelServer::start(Script::new().turn("Hello!")).await;
//! let base = server.anthropic_base_url();
//! // ... point a client at `base` ...
//! server.assert_no_violations();
//! # }
//! ```

mod anthropic;
mod bedrock;
mod encoding;
pub mod git_http;
pub mod github;
mod openai;
pub mod peers;
mod prompt;
mod script;
mod served;
mod server;
pub mod slack;

pub use prompt::{CACHE_LOOKBACK_BLOCKS, OPENAI_CACHE_MIN_TOKENS, block_tokens};
pub use script::{
    Block, DEFAULT_SIGNATURE, ErrorKind, Failure, Response, Script, ScriptError, Settings, StopReason, StreamFault,
    Turn,
};
pub use server::{Api, FakeModelServer, FakeServerError, RecordedRequest};
