//! How rswe is set up to work with GitHub.

use std::fmt;
use std::time::Duration;

use crate::api::DEFAULT_API_URL;

/// The phrase that calls rswe in a comment, unless configured otherwise.
pub const DEFAULT_TRIGGER: &str = "@rswe";
/// The longest `wait_for_checks` waits, unless configured otherwise.
pub const DEFAULT_CHECKS_TIMEOUT: Duration = Duration::from_secs(20 * 60);

/// How rswe authenticates to GitHub.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// A personal access token (GITHUB_TOKEN): classic (`ghp_…`) or fine-grained (`github_pat_…`).
    Token(String),
    /// A GitHub App: installation tokens are minted per session and repository.
    App(AppCredentials),
}

/// A GitHub App's identity.
#[derive(Clone, PartialEq, Eq)]
pub struct AppCredentials {
    /// GITHUB_APP_ID.
    pub app_id: u64,
    /// The App's private key, PEM (`-----BEGIN RSA PRIVATE KEY-----` as GitHub gives it, or PKCS#8).
    pub private_key_pem: String,
    /// The installation to use for every repository; `None`: found per repository.
    pub installation_id: Option<u64>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Token(_) => f.write_str("Token([hidden])"),
            Credentials::App(app) => f
                .debug_struct("App")
                .field("app_id", &app.app_id)
                .field("installation_id", &app.installation_id)
                .finish_non_exhaustive(),
        }
    }
}

/// Everything rswe needs to work with GitHub.
#[derive(Clone)]
pub struct GitHubSettings {
    /// The REST API (GITHUB_API_URL): [`DEFAULT_API_URL`] or `https://HOST/api/v3` for GitHub Enterprise Server.
    pub api_url: String,
    pub credentials: Credentials,
    /// Verifies webhook deliveries (GITHUB_WEBHOOK_SECRET); without it `POST /github/webhook` refuses all.
    pub webhook_secret: Option<String>,
    /// The phrase that calls rswe in a comment.
    pub trigger: String,
    /// An issue assigned to this login starts a session; `None`: the identity of the credentials.
    pub bot_user: Option<String>,
    /// Forks are made under this organisation instead of the token's account.
    pub fork_organization: Option<String>,
    /// The commit author's name; `None`: the identity of the credentials (the App's bot).
    pub commit_name: Option<String>,
    /// The commit author's email; `None`: the identity's noreply address.
    pub commit_email: Option<String>,
    /// The longest `wait_for_checks` waits.
    pub checks_timeout: Duration,
}

impl fmt::Debug for GitHubSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GitHubSettings")
            .field("api_url", &self.api_url)
            .field("credentials", &self.credentials)
            .field("webhook_secret", &self.webhook_secret.as_ref().map(|_| "[hidden]"))
            .field("trigger", &self.trigger)
            .field("bot_user", &self.bot_user)
            .field("fork_organization", &self.fork_organization)
            .field("commit_name", &self.commit_name)
            .field("commit_email", &self.commit_email)
            .field("checks_timeout", &self.checks_timeout)
            .finish()
    }
}

impl GitHubSettings {
    /// Settings with the defaults for everything but the credentials.
    pub fn new(credentials: Credentials) -> GitHubSettings {
        GitHubSettings {
            api_url: DEFAULT_API_URL.to_owned(),
            credentials,
            webhook_secret: None,
            trigger: DEFAULT_TRIGGER.to_owned(),
            bot_user: None,
            fork_organization: None,
            commit_name: None,
            commit_email: None,
            checks_timeout: DEFAULT_CHECKS_TIMEOUT,
        }
    }
}
