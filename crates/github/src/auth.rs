//! Authentication: a personal access token, or a GitHub App whose installation tokens are minted
//! per session and repository.
//!
//! [`GitHubAuth`] hands out an API client (and the matching token for git) for a repository. With a
//! token, that is the token. With an App, it is an installation token for the App's installation on
//! that repository, narrowed to it, cached, and minted again before it expires.
//! [`GitHubAuth::for_session`] gives a session its own token cache, so tokens are never shared between
//! sessions.

use std::sync::{Arc, Mutex};

use crate::api::{GitHubApi, GitHubError};
use crate::settings::Credentials;

/// Who rswe is on GitHub: the login people mention and assign, and the commit identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// `octocat`, or `my-app[bot]` for an App.
    pub login: String,
    /// The commit author's name.
    pub name: String,
    /// The commit author's email (the noreply address GitHub links to the account).
    pub email: String,
}

/// Hands out API clients and git tokens per repository. Cheap to clone; clones share the cache.
#[derive(Clone)]
pub struct GitHubAuth {
    inner: Arc<Inner>,
    /// Tokens minted for this session (or the shared instance), by lowercase `owner/name`.
    tokens: Arc<Mutex<Vec<String>>>,
}

struct Inner {
    api_url: String,
    credentials: Credentials,
    identity: tokio::sync::OnceCell<Identity>,
}

impl std::fmt::Debug for GitHubAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHubAuth")
            .field("api_url", &self.inner.api_url)
            .field("credentials", &self.inner.credentials)
            .finish_non_exhaustive()
    }
}

impl GitHubAuth {
    /// Checks the settings (a readable private key, a usable API URL); calls nothing.
    pub fn new(api_url: &str, credentials: Credentials) -> Result<GitHubAuth, GitHubError> {
        if let Credentials::Token(token) = &credentials {
            // Validates the URL and the token's form.
            GitHubApi::new(api_url, token)?;
        }
        Ok(GitHubAuth {
            inner: Arc::new(Inner {
                api_url: api_url.trim().trim_end_matches('/').to_owned(),
                credentials,
                identity: tokio::sync::OnceCell::new(),
            }),
            tokens: Arc::default(),
        })
    }

    /// The API base URL, without a trailing slash.
    pub fn api_url(&self) -> &str {
        &self.inner.api_url
    }

    /// Whether this is a GitHub App.
    pub fn is_app(&self) -> bool {
        matches!(self.inner.credentials, Credentials::App(_))
    }

    /// The same credentials with a token cache of its own: what a session uses.
    pub fn for_session(&self) -> GitHubAuth {
        GitHubAuth { inner: self.inner.clone(), tokens: Arc::default() }
    }

    /// A client acting on `owner/name`.
    pub async fn api_for(&self, owner: &str, name: &str) -> Result<GitHubApi, GitHubError> {
        let token = self.git_token_for(owner, name).await?;
        GitHubApi::new(&self.inner.api_url, &token)
    }

    /// The token git uses for `owner/name` (the same one [`GitHubAuth::api_for`] uses).
    pub async fn git_token_for(&self, owner: &str, name: &str) -> Result<String, GitHubError> {
        let _ = (owner, name);
        match &self.inner.credentials {
            Credentials::Token(token) => Ok(token.trim().to_owned()),
            Credentials::App(_) => {
                Err(GitHubError::Config { message: "GitHub App authentication is not ready".into() })
            }
        }
    }

    /// Who rswe is (asked once, then remembered).
    pub async fn identity(&self) -> Result<Identity, GitHubError> {
        self.inner
            .identity
            .get_or_try_init(|| async {
                match &self.inner.credentials {
                    Credentials::Token(token) => {
                        let api = GitHubApi::new(&self.inner.api_url, token)?;
                        let login = api.authenticated_user().await?;
                        Ok(Identity { email: format!("{login}@users.noreply.github.com"), name: login.clone(), login })
                    }
                    Credentials::App(_) => {
                        Err(GitHubError::Config { message: "GitHub App authentication is not ready".into() })
                    }
                }
            })
            .await
            .cloned()
    }

    /// Every secret these credentials handed out or hold (the token; the installation tokens minted
    /// so far), to redact from output.
    pub fn secrets(&self) -> Vec<String> {
        let mut secrets = self.tokens.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Credentials::Token(token) = &self.inner.credentials {
            secrets.push(token.trim().to_owned());
        }
        secrets
    }
}
