//! rswe's Slack channel: a mention starts a session bound to its thread, replies steer it,
//! and the session's messages, answers, errors and files come back to the thread.
//!
//! - [`signature`]: Events API request verification (v0 signatures).
//! - [`mrkdwn`]: Markdown as Slack's mrkdwn, split under Slack's limits.
//! - [`api`]: the Web API client (posting, reactions, uploads, downloads), rate limits honoured.
//! - [`socket`]: Socket Mode intake over a WebSocket, for machines without a public URL.

pub mod api;
pub mod events;
pub mod mrkdwn;
pub mod signature;
pub mod socket;
