//! Model providers behind one streaming [`ModelClient`] trait (Anthropic Messages,
//! OpenAI-compatible Chat Completions, Amazon Bedrock ConverseStream), the model
//! [`Catalog`] with limits and prices, and cost accounting.
//!
//! A caller asks [`Providers`] for a [`Model`] by name (`anthropic/claude-sonnet-4-5`),
//! then sends provider-neutral [`ModelRequest`]s; [`Model::send`] streams the answer,
//! retries what can be retried, and returns the whole [`ModelResponse`].

mod catalog;
mod client;
mod config;
mod cost;
mod error;
mod http;
pub mod providers;
mod request;
mod sse;
mod stream;

pub use catalog::{Caching, Catalog, CatalogEntry, ModelInfo, Price, Provider};
pub use client::{Model, ModelClient, ModelEvent, RetryPolicy, Timeouts};
pub use config::{BedrockConfig, HttpProviderConfig, ProviderStatus, Providers, ProvidersConfig, Secret};
pub use cost::{CostLedger, CostTotal, ModelSpend};
pub use error::{ErrorClass, LlmError, TimeoutPhase};
pub use request::{ModelRequest, ModelResponse, StopReason, SystemBlock, ThinkingConfig};
pub use stream::{Accumulator, BlockKind, EventStream, StreamEvent, UsageUpdate};
