//! Authentication: a personal access token, or a GitHub App whose installation tokens are minted
//! per session and repository.
//!
//! [`GitHubAuth`] hands out an API client (and the matching token for git) for a repository. With a
//! token, that is the token. With an App, it is an installation token for the App's installation on
//! that repository, narrowed to it, cached, and minted again before it expires.
//! [`GitHubAuth::for_session`] gives a session its own token cache, so tokens are never shared between
//! sessions.
//!
//! An App authenticates as itself with a JSON web token (RS256, signed with the App's private key,
//! valid for nine minutes): to find its installation on a repository (`GET
//! /repos/{owner}/{repo}/installation`, unless an installation is configured) and to mint an
//! installation token narrowed to that one repository and to [`INSTALLATION_PERMISSIONS`] (or, when the
//! installation refuses those, to [`REQUIRED_INSTALLATION_PERMISSIONS`]). A cached
//! token is minted again once less than [`TOKEN_REFRESH_MARGIN`] of it remains.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Map, Value, json};

use crate::api::{GitHubApi, GitHubError, InstallationToken};
use crate::settings::Credentials;

/// What an installation token is narrowed to, besides its one repository.
pub const INSTALLATION_PERMISSIONS: &[(&str, &str)] = &[
    ("contents", "write"),
    ("pull_requests", "write"),
    ("issues", "write"),
    ("checks", "read"),
    ("actions", "read"),
    ("metadata", "read"),
];
/// What is asked for instead when GitHub refuses [`INSTALLATION_PERMISSIONS`] (`422`: the App or its
/// installation lacks an optional permission, checks or actions).
pub const REQUIRED_INSTALLATION_PERMISSIONS: &[(&str, &str)] =
    &[("contents", "write"), ("pull_requests", "write"), ("issues", "write"), ("metadata", "read")];
/// A cached installation token with less than this left is minted again.
pub const TOKEN_REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);
/// How far back a JSON web token's `iat` is set, for clocks a little ahead of GitHub's.
const JWT_BACKDATE: Duration = Duration::from_secs(60);
/// How long a JSON web token is valid (GitHub accepts at most ten minutes).
const JWT_LIFETIME: Duration = Duration::from_secs(9 * 60);

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
    /// The installation tokens of this session (or of the shared instance).
    session: Arc<Session>,
}

struct Inner {
    api_url: String,
    credentials: Credentials,
    identity: tokio::sync::OnceCell<Identity>,
    /// The App's key, read once; `None` with a token.
    app: Option<AppKey>,
    /// The App's installations found so far, by lowercase `owner/name`.
    installations: Mutex<HashMap<String, u64>>,
    /// The installations that refused [`INSTALLATION_PERMISSIONS`]: asked for
    /// [`REQUIRED_INSTALLATION_PERMISSIONS`] only.
    narrowed: Mutex<std::collections::HashSet<u64>>,
}

struct AppKey {
    app_id: u64,
    key: RsaKeyPair,
    installation_id: Option<u64>,
}

#[derive(Default)]
struct Session {
    /// Installation tokens by installation and lowercase `owner/name`. Held while minting, so
    /// concurrent requests for one repository mint once.
    tokens: tokio::sync::Mutex<HashMap<(u64, String), InstallationToken>>,
    /// Every token minted, to redact.
    minted: Mutex<Vec<String>>,
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
        let app = match &credentials {
            Credentials::Token(token) => {
                // Validates the URL and the token's form.
                GitHubApi::new(api_url, token)?;
                None
            }
            Credentials::App(app) => {
                GitHubApi::anonymous(api_url)?;
                let key = read_private_key(&app.private_key_pem)?;
                Some(AppKey { app_id: app.app_id, key, installation_id: app.installation_id })
            }
        };
        Ok(GitHubAuth {
            inner: Arc::new(Inner {
                api_url: api_url.trim().trim_end_matches('/').to_owned(),
                credentials,
                identity: tokio::sync::OnceCell::new(),
                app,
                installations: Mutex::default(),
                narrowed: Mutex::default(),
            }),
            session: Arc::default(),
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
        GitHubAuth { inner: self.inner.clone(), session: Arc::default() }
    }

    /// A client acting on `owner/name`.
    pub async fn api_for(&self, owner: &str, name: &str) -> Result<GitHubApi, GitHubError> {
        let token = self.git_token_for(owner, name).await?;
        GitHubApi::new(&self.inner.api_url, &token)
    }

    /// The token git uses for `owner/name` (the same one [`GitHubAuth::api_for`] uses).
    pub async fn git_token_for(&self, owner: &str, name: &str) -> Result<String, GitHubError> {
        match (&self.inner.credentials, &self.inner.app) {
            (Credentials::Token(token), _) => Ok(token.trim().to_owned()),
            (Credentials::App(_), Some(app)) => self.installation_token(app, owner, name).await,
            (Credentials::App(_), None) => {
                Err(GitHubError::Config { message: "the GitHub App's private key was not read".into() })
            }
        }
    }

    /// A client authenticated as the App itself, with a fresh JSON web token.
    fn app_client(&self, app: &AppKey) -> Result<GitHubApi, GitHubError> {
        let jwt = app_jwt(app.app_id, &app.key, SystemTime::now())?;
        GitHubApi::new(&self.inner.api_url, &jwt)
    }

    /// The App's installation on `owner/name`: the configured one, else asked (and remembered).
    async fn installation_for(&self, app: &AppKey, owner: &str, name: &str) -> Result<u64, GitHubError> {
        if let Some(id) = app.installation_id {
            return Ok(id);
        }
        let repository = format!("{owner}/{name}");
        let key = repository.to_lowercase();
        if let Some(id) = self.installations().get(&key) {
            return Ok(*id);
        }
        let id = self.app_client(app)?.repository_installation(owner, name).await.map_err(|e| match e {
            GitHubError::NotFound { .. } => GitHubError::AppNotInstalled { repository },
            other => as_app_error(other),
        })?;
        self.installations().insert(key, id);
        Ok(id)
    }

    fn installations(&self) -> std::sync::MutexGuard<'_, HashMap<String, u64>> {
        self.inner.installations.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// An installation token for `owner/name`: cached, or minted when there is none with at least
    /// [`TOKEN_REFRESH_MARGIN`] left.
    async fn installation_token(&self, app: &AppKey, owner: &str, name: &str) -> Result<String, GitHubError> {
        let installation = self.installation_for(app, owner, name).await?;
        let key = (installation, format!("{owner}/{name}").to_lowercase());
        let mut tokens = self.session.tokens.lock().await;
        if let Some(token) = tokens.get(&key)
            && token.expires_at > SystemTime::now() + TOKEN_REFRESH_MARGIN
        {
            return Ok(token.token.clone());
        }
        let narrowed = || self.inner.narrowed.lock().unwrap_or_else(|e| e.into_inner());
        let full = !narrowed().contains(&installation);
        let asked = if full { INSTALLATION_PERMISSIONS } else { REQUIRED_INSTALLATION_PERMISSIONS };
        let token = match self.mint(app, installation, owner, name, asked).await {
            // The installation lacks an optional permission: without checks and actions.
            Err(GitHubError::Validation { message, errors, .. }) if full => {
                let token = self.mint(app, installation, owner, name, REQUIRED_INSTALLATION_PERMISSIONS).await?;
                tracing::warn!(
                    github.installation = installation,
                    refused = %if errors.is_empty() { message } else { errors.join("; ") },
                    "github: the App's installation refused the checks and actions permissions: check runs and \
                     workflow logs are unavailable (grant the App read access to Checks and Actions, then restart rswe)"
                );
                narrowed().insert(installation);
                token
            }
            other => other?,
        };
        tracing::debug!(
            github.installation = installation,
            github.repository = %key.1,
            "github: minted an installation token"
        );
        self.session.minted.lock().unwrap_or_else(|e| e.into_inner()).push(token.token.clone());
        let secret = token.token.clone();
        tokens.insert(key, token);
        Ok(secret)
    }

    /// Mints an installation token for `owner/name` with `permissions`.
    async fn mint(
        &self,
        app: &AppKey,
        installation: u64,
        owner: &str,
        name: &str,
        permissions: &[(&str, &str)],
    ) -> Result<InstallationToken, GitHubError> {
        let permissions: Map<String, Value> =
            permissions.iter().map(|(k, v)| ((*k).to_owned(), Value::from(*v))).collect();
        self.app_client(app)?
            .create_installation_token(installation, &[name], &Value::Object(permissions))
            .await
            .map_err(|e| match e {
                GitHubError::NotFound { .. } => GitHubError::AppNotInstalled { repository: format!("{owner}/{name}") },
                other => as_app_error(other),
            })
    }

    /// Who rswe is (asked once, then remembered).
    pub async fn identity(&self) -> Result<Identity, GitHubError> {
        self.inner
            .identity
            .get_or_try_init(|| async {
                let host = noreply_host(&self.inner.api_url);
                let user = match (&self.inner.credentials, &self.inner.app) {
                    (Credentials::Token(token), _) => {
                        GitHubApi::new(&self.inner.api_url, token)?.authenticated_user_id().await?
                    }
                    (Credentials::App(_), Some(app)) => {
                        let slug = self.app_client(app)?.app().await.map_err(as_app_error)?.slug;
                        // An App's bot account is public: anyone may look it up.
                        GitHubApi::anonymous(&self.inner.api_url)?.user(&format!("{slug}[bot]")).await?
                    }
                    (Credentials::App(_), None) => {
                        return Err(GitHubError::Config {
                            message: "the GitHub App's private key was not read".into(),
                        });
                    }
                };
                Ok(Identity {
                    email: format!("{}+{}@users.noreply.{host}", user.id, user.login),
                    name: user.login.clone(),
                    login: user.login,
                })
            })
            .await
            .cloned()
    }

    /// Every secret these credentials handed out or hold (the token; the installation tokens minted
    /// so far), to redact from output.
    pub fn secrets(&self) -> Vec<String> {
        let mut secrets = self.session.minted.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Credentials::Token(token) = &self.inner.credentials {
            secrets.push(token.trim().to_owned());
        }
        secrets
    }
}

/// A 401 on a call made with the App's JSON web token: the App id or the key is wrong.
fn as_app_error(error: GitHubError) -> GitHubError {
    match error {
        GitHubError::Unauthorized { what, message } => GitHubError::AppUnauthorized { what, message },
        other => other,
    }
}

/// The host of the noreply addresses: `github.com`, or the GitHub Enterprise Server's.
fn noreply_host(api_url: &str) -> String {
    let host = crate::reference::web_host(api_url).unwrap_or_else(|| "github.com".to_owned());
    match host.rsplit_once(':') {
        Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) => name.to_owned(),
        _ => host,
    }
}

/// The App's private key, from PEM: PKCS#1 (`RSA PRIVATE KEY`, as GitHub gives it) or PKCS#8
/// (`PRIVATE KEY`).
fn read_private_key(pem: &str) -> Result<RsaKeyPair, GitHubError> {
    let unusable = |detail: &str| GitHubError::Config {
        message: format!(
            "the GitHub App's private key cannot be used ({detail}): set GITHUB_APP_PRIVATE_KEY (or the key \
             file) to the .pem file GitHub generated for the App, unmodified"
        ),
    };
    let (label, der) = decode_pem(pem).map_err(|detail| unusable(&detail))?;
    let key = match label.as_str() {
        "RSA PRIVATE KEY" => RsaKeyPair::from_der(&der),
        "PRIVATE KEY" => RsaKeyPair::from_pkcs8(&der),
        "ENCRYPTED PRIVATE KEY" => return Err(unusable("it is encrypted; decrypt it first")),
        other => return Err(unusable(&format!("a PEM {other:?} is not a private key"))),
    };
    key.map_err(|e| unusable(&format!("not an RSA private key: {e}")))
}

/// The label and the bytes of the first PEM block in `text`. Escaped newlines (`\n`, as keys
/// pasted into one line of an environment file have them) count as newlines.
fn decode_pem(text: &str) -> Result<(String, Vec<u8>), String> {
    const BEGIN: &str = "-----BEGIN ";
    let text = text.replace("\\n", "\n");
    let start = text.find(BEGIN).ok_or("there is no -----BEGIN line")? + BEGIN.len();
    let rest = &text[start..];
    let label_end = rest.find("-----").ok_or("the -----BEGIN line is not closed")?;
    let label = rest[..label_end].trim().to_owned();
    let body = &rest[label_end + 5..];
    let end_line = format!("-----END {label}-----");
    let body = &body[..body.find(&end_line).ok_or_else(|| format!("there is no {end_line} line"))?];
    if body.contains(':') {
        return Err("it has PEM headers, as an encrypted key does".to_owned());
    }
    let body: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    let der = STANDARD.decode(body.as_bytes()).map_err(|e| format!("its base64 is damaged: {e}"))?;
    if der.is_empty() {
        return Err("it is empty".to_owned());
    }
    Ok((label, der))
}

/// A JSON web token authenticating as App `app_id` from `now` on: `iat` a minute back, `exp`
/// nine minutes ahead, signed RS256.
fn app_jwt(app_id: u64, key: &RsaKeyPair, now: SystemTime) -> Result<String, GitHubError> {
    let now = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
    let claims = json!({
        "iat": now.saturating_sub(JWT_BACKDATE).as_secs(),
        "exp": (now + JWT_LIFETIME).as_secs(),
        "iss": app_id.to_string(),
    });
    let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signed = format!("{header}.{claims}");
    let mut signature = vec![0; key.public_modulus_len()];
    key.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), signed.as_bytes(), &mut signature)
        .map_err(|_| GitHubError::Config { message: "cannot sign with the GitHub App's private key".to_owned() })?;
    Ok(format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use rswe_test_support::github::{generate_test_app_key, test_app_key};

    fn part(token: &str, index: usize) -> Value {
        let part = token.split('.').nth(index).unwrap();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
    }

    #[test]
    fn pem_blocks_are_decoded() {
        let pem = "junk before\n-----BEGIN RSA PRIVATE KEY-----\naGVs\nbG8=\n-----END RSA PRIVATE KEY-----\nafter";
        assert_eq!(decode_pem(pem).unwrap(), ("RSA PRIVATE KEY".to_owned(), b"hello".to_vec()));
        // One line with escaped newlines, as in an environment file.
        let escaped = "-----BEGIN PRIVATE KEY-----\\naGVs\\nbG8=\\n-----END PRIVATE KEY-----\\n";
        assert_eq!(decode_pem(escaped).unwrap(), ("PRIVATE KEY".to_owned(), b"hello".to_vec()));
        // Windows line ends.
        let crlf = "-----BEGIN PRIVATE KEY-----\r\naGVsbG8=\r\n-----END PRIVATE KEY-----\r\n";
        assert_eq!(decode_pem(crlf).unwrap().1, b"hello");

        for (bad, expected) in [
            ("", "no -----BEGIN"),
            ("-----BEGIN RSA PRIVATE KEY-----\naGVsbG8=\n", "-----END RSA PRIVATE KEY-----"),
            ("-----BEGIN RSA PRIVATE KEY-----\n!!!!\n-----END RSA PRIVATE KEY-----", "base64"),
            (
                "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\naGVsbG8=\n-----END RSA PRIVATE KEY-----",
                "headers",
            ),
            ("-----BEGIN RSA PRIVATE KEY-----\n-----END RSA PRIVATE KEY-----", "empty"),
        ] {
            let error = decode_pem(bad).unwrap_err();
            assert!(error.contains(expected), "{bad:?}: {error}");
        }
    }

    #[test]
    fn both_key_forms_are_read() {
        let (pkcs1, public1) = test_app_key();
        assert!(pkcs1.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
        let key = read_private_key(&pkcs1).unwrap();
        assert_eq!(aws_lc_rs::signature::KeyPair::public_key(&key).as_ref(), public1.as_slice());

        let (pkcs8, public8) = generate_test_app_key(true);
        assert!(pkcs8.starts_with("-----BEGIN PRIVATE KEY-----"));
        let key = read_private_key(&pkcs8).unwrap();
        assert_eq!(aws_lc_rs::signature::KeyPair::public_key(&key).as_ref(), public8.as_slice());
    }

    #[test]
    fn unusable_keys_say_what_to_fix() {
        let certificate = "-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----";
        let not_rsa = "-----BEGIN RSA PRIVATE KEY-----\naGVsbG8=\n-----END RSA PRIVATE KEY-----";
        for bad in ["", "not a key", certificate, not_rsa] {
            let error = read_private_key(bad).err().unwrap();
            assert!(matches!(error, GitHubError::Config { .. }), "{error:?}");
            let message = error.to_string();
            assert!(message.contains("GITHUB_APP_PRIVATE_KEY"), "{message}");
            assert!(message.contains("key file"), "{message}");
        }
    }

    #[test]
    fn jwt_shape_and_signature() {
        let (pem, public) = test_app_key();
        let key = read_private_key(&pem).unwrap();
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let token = app_jwt(42, &key, now).unwrap();
        assert_eq!(token.split('.').count(), 3);
        assert_eq!(part(&token, 0), json!({"alg": "RS256", "typ": "JWT"}));
        assert_eq!(part(&token, 1), json!({"iat": 1_800_000_000 - 60, "exp": 1_800_000_000 + 540, "iss": "42"}));
        assert!(!token.contains('='), "base64url without padding");

        let (signed, signature) = token.rsplit_once('.').unwrap();
        let signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
        let verifier =
            aws_lc_rs::signature::UnparsedPublicKey::new(&aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256, &public);
        verifier.verify(signed.as_bytes(), &signature).unwrap();
        assert!(verifier.verify(b"something else", &signature).is_err());
    }

    #[test]
    fn noreply_hosts() {
        assert_eq!(noreply_host("https://api.github.com"), "github.com");
        assert_eq!(noreply_host("https://ghe.example.com/api/v3"), "ghe.example.com");
        assert_eq!(noreply_host("http://127.0.0.1:8080/api/v3"), "127.0.0.1");
    }

    #[test]
    fn installation_tokens_stay_out_of_debug_output() {
        let token = InstallationToken { token: "ghs_secret".to_owned(), expires_at: UNIX_EPOCH };
        assert!(!format!("{token:?}").contains("ghs_secret"));
    }
}
