//! rswe's GitHub integration:
//!
//! - [`settings`]: how rswe is set up to work with GitHub (credentials, trigger phrase, identity).
//! - [`auth`]: a personal access token or a GitHub App's installation tokens, per repository.
//! - [`api`]: the REST API client (repositories and permissions, forks, pull requests, comments,
//!   reactions, check runs).
//! - [`git`]: clone and push on the control plane, with credentials that never reach the workspace.
//! - [`webhook`]: verifying deliveries (`X-Hub-Signature-256`) and reading the events that concern rswe.
//! - [`reference`]: repositories, issues and pull requests as people write them (`owner/name`, URLs,
//!   SSH remotes), on github.com or a GitHub Enterprise Server.
//! - [`marker`]: the hidden session marker in what rswe writes on GitHub.
//! - [`redact`]: GitHub tokens removed from any text before it is shown or stored.

pub mod api;
pub mod auth;
pub mod git;
pub mod marker;
pub mod redact;
pub mod reference;
pub mod settings;
pub mod tools;
pub mod webhook;

pub use auth::{GitHubAuth, Identity};
pub use settings::{AppCredentials, Credentials, GitHubSettings};
