//! rswe's GitHub integration. So far the pieces every part of it needs:
//!
//! - [`webhook`]: verifying deliveries (`X-Hub-Signature-256`) and reading the events that
//!   concern rswe.
//! - [`reference`]: repositories, issues and pull requests as people write them (`owner/name`,
//!   URLs, SSH remotes), on github.com or a GitHub Enterprise Server.
//! - [`redact`]: GitHub tokens removed from any text before it is shown or stored.
//! - [`api`]: the REST API client (repositories and permissions, forks, pull requests,
//!   comments, reactions).

pub mod api;
pub mod redact;
pub mod reference;
pub mod webhook;
