#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `GitHubAuth` against `FakeGitHub`: a personal access token, and a GitHub App minting installation
//! tokens per session and repository.

use std::time::Duration;

use rswe_github::api::{GitHubApi, GitHubError};
use rswe_github::auth::{INSTALLATION_PERMISSIONS, REQUIRED_INSTALLATION_PERMISSIONS};
use rswe_github::{AppCredentials, Credentials, GitHubAuth};
use rswe_test_support::github::{FakeGitHub, GitHubCall, generate_test_app_key, test_app_key, user_id};
use serde_json::{Value, json};

const APP_ID: u64 = 4242;
const INSTALLATION: u64 = 77;

/// A fake with the App installed on octo/hello and octo/other (not on octo/private).
async fn fake() -> FakeGitHub {
    let github = FakeGitHub::start().await;
    for name in ["hello", "other", "private"] {
        github.add_repository("octo", name, "main", true);
    }
    let (_, public_key) = test_app_key();
    github.enable_app(APP_ID, "rswe-app", public_key);
    github.add_installation(INSTALLATION, "octo");
    github.install(INSTALLATION, "octo", "hello");
    github.install(INSTALLATION, "octo", "other");
    github
}

fn app_credentials(private_key_pem: &str, installation_id: Option<u64>) -> Credentials {
    Credentials::App(AppCredentials { app_id: APP_ID, private_key_pem: private_key_pem.to_owned(), installation_id })
}

fn app_auth(github: &FakeGitHub) -> GitHubAuth {
    GitHubAuth::new(&github.api_url(), app_credentials(&test_app_key().0, None)).unwrap()
}

fn calls_to(github: &FakeGitHub, method: &str, path: &str) -> Vec<GitHubCall> {
    github.calls().into_iter().filter(|c| c.method == method && c.path == path).collect()
}

fn mints(github: &FakeGitHub) -> Vec<GitHubCall> {
    calls_to(github, "POST", &format!("/app/installations/{INSTALLATION}/access_tokens"))
}

fn expected_permissions() -> Value {
    permissions(INSTALLATION_PERMISSIONS)
}

fn permissions(asked: &[(&str, &str)]) -> Value {
    Value::Object(asked.iter().map(|(k, v)| ((*k).to_owned(), json!(v))).collect())
}

#[tokio::test]
async fn app_identity_is_its_bot() {
    let github = fake().await;
    let auth = app_auth(&github);
    assert!(auth.is_app());
    let identity = auth.identity().await.unwrap();
    assert_eq!(identity.login, "rswe-app[bot]");
    assert_eq!(identity.name, "rswe-app[bot]");
    let id = user_id("rswe-app[bot]");
    assert_eq!(identity.email, format!("{id}+rswe-app[bot]@users.noreply.127.0.0.1"));

    let app = calls_to(&github, "GET", "/app");
    assert_eq!(app.len(), 1);
    assert_eq!((app[0].status, app[0].app_id), (200, Some(APP_ID)));
    let bot = calls_to(&github, "GET", "/users/rswe-app%5Bbot%5D");
    assert_eq!(bot.len(), 1);
    assert_eq!(bot[0].status, 200);

    // Asked once.
    auth.identity().await.unwrap();
    assert_eq!(github.calls().len(), 2);
}

#[tokio::test]
async fn pat_identity_email_uses_the_account_id() {
    let github = fake().await;
    let auth = GitHubAuth::new(&github.api_url(), Credentials::Token(github.token().to_owned())).unwrap();
    assert!(!auth.is_app());
    let identity = auth.identity().await.unwrap();
    assert_eq!(identity.login, "rswe-bot");
    assert_eq!(identity.email, format!("{}+rswe-bot@users.noreply.127.0.0.1", user_id("rswe-bot")));
    assert_eq!(auth.git_token_for("octo", "hello").await.unwrap(), github.token());
    assert_eq!(auth.secrets(), [github.token().to_owned()]);
}

#[tokio::test]
async fn api_for_mints_a_token_narrowed_to_the_repository() {
    let github = fake().await;
    let auth = app_auth(&github);
    let api = auth.api_for("octo", "hello").await.unwrap();
    assert_eq!(api.repository("octo", "hello").await.unwrap().full_name(), "octo/hello");

    let lookup = calls_to(&github, "GET", "/repos/octo/hello/installation");
    assert_eq!(lookup.len(), 1);
    assert_eq!((lookup[0].status, lookup[0].app_id), (200, Some(APP_ID)));
    let mint = mints(&github);
    assert_eq!(mint.len(), 1);
    assert_eq!((mint[0].status, mint[0].app_id), (201, Some(APP_ID)));
    assert_eq!(mint[0].body, json!({"repositories": ["hello"], "permissions": expected_permissions()}));

    let minted = github.minted_tokens();
    assert_eq!(minted.len(), 1);
    let token = &minted[0];
    assert_eq!(token.installation_id, INSTALLATION);
    assert_eq!(token.repositories, ["octo/hello"]);
    assert_eq!(token.permissions, expected_permissions());
    assert!(token.token.starts_with("ghs_") && token.token.len() == 36, "{}", token.token);
    let used = calls_to(&github, "GET", "/repos/octo/hello");
    assert_eq!(used[0].token.as_deref(), Some(token.token.as_str()));
    assert_eq!(auth.secrets(), std::slice::from_ref(&token.token));
    assert_eq!(auth.git_token_for("octo", "hello").await.unwrap(), token.token);

    // Narrowed: another repository of the same installation is out of its reach.
    let error = api.repository("octo", "other").await.unwrap_err();
    assert!(matches!(error, GitHubError::NotFound { .. }), "{error:?}");
}

#[tokio::test]
async fn tokens_are_cached_per_repository() {
    let github = fake().await;
    let auth = app_auth(&github);
    let first = auth.git_token_for("octo", "hello").await.unwrap();
    let again = auth.git_token_for("OCTO", "Hello").await.unwrap();
    let from_clone = auth.clone().git_token_for("octo", "hello").await.unwrap();
    assert_eq!((again.as_str(), from_clone.as_str()), (first.as_str(), first.as_str()));
    assert_eq!(mints(&github).len(), 1);
    assert_eq!(calls_to(&github, "GET", "/repos/octo/hello/installation").len(), 1);

    let other = auth.git_token_for("octo", "other").await.unwrap();
    assert_ne!(other, first);
    assert_eq!(mints(&github).len(), 2);
    assert_eq!(mints(&github)[1].body["repositories"], json!(["other"]));
    let mut secrets = auth.secrets();
    secrets.sort();
    let mut expected = vec![first, other];
    expected.sort();
    assert_eq!(secrets, expected);
}

#[tokio::test]
async fn a_token_close_to_expiry_is_minted_again() {
    let github = fake().await;
    github.set_installation_token_lifetime(Duration::from_secs(4 * 60));
    let auth = app_auth(&github);
    let first = auth.git_token_for("octo", "hello").await.unwrap();
    let second = auth.git_token_for("octo", "hello").await.unwrap();
    assert_ne!(first, second);
    assert_eq!(mints(&github).len(), 2);
    // The installation is remembered.
    assert_eq!(calls_to(&github, "GET", "/repos/octo/hello/installation").len(), 1);
    let secrets = auth.secrets();
    assert!(secrets.contains(&first) && secrets.contains(&second), "{}", secrets.len());
}

#[tokio::test]
async fn an_installation_without_checks_and_actions_gets_tokens_without_them() {
    let github = fake().await;
    github.restrict_installation(INSTALLATION, &["contents", "pull_requests", "issues", "metadata"]);
    let auth = app_auth(&github);
    let token = auth.git_token_for("octo", "hello").await.unwrap();
    let required = permissions(REQUIRED_INSTALLATION_PERMISSIONS);
    let asked: Vec<(u16, Value)> =
        mints(&github).into_iter().map(|c| (c.status, c.body["permissions"].clone())).collect();
    assert_eq!(asked, [(422, expected_permissions()), (201, required.clone())]);
    let [minted] = github.minted_tokens().try_into().unwrap();
    assert_eq!((minted.token, minted.permissions), (token, required.clone()));
    // The api works with it.
    auth.api_for("octo", "hello").await.unwrap().repository("octo", "hello").await.unwrap();

    // Remembered: another session (or repository) asks for what the installation grants at once.
    auth.for_session().git_token_for("octo", "other").await.unwrap();
    let mints = mints(&github);
    assert_eq!(mints.len(), 3);
    assert_eq!((mints[2].status, &mints[2].body["permissions"]), (201, &required));

    // An installation that refuses even those: GitHub's refusal, after one narrower try.
    let github = fake().await;
    github.restrict_installation(INSTALLATION, &["contents", "metadata"]);
    let auth = app_auth(&github);
    let error = auth.git_token_for("octo", "hello").await.unwrap_err();
    assert!(matches!(error, GitHubError::Validation { .. }), "{error:?}");
    assert!(error.to_string().contains("not granted to this installation"), "{error}");
    assert_eq!(calls_to(&github, "POST", &format!("/app/installations/{INSTALLATION}/access_tokens")).len(), 2);
    assert!(github.minted_tokens().is_empty());
}

#[tokio::test]
async fn sessions_do_not_share_tokens() {
    let github = fake().await;
    let auth = app_auth(&github);
    let session = auth.for_session();
    let shared = auth.git_token_for("octo", "hello").await.unwrap();
    let own = session.git_token_for("octo", "hello").await.unwrap();
    assert_ne!(shared, own);
    assert_eq!(mints(&github).len(), 2);
    assert_eq!(auth.secrets(), [shared]);
    assert_eq!(session.secrets(), std::slice::from_ref(&own));
    // The session's clones share its cache.
    assert_eq!(session.clone().git_token_for("octo", "hello").await.unwrap(), own);
    assert_eq!(mints(&github).len(), 2);
}

#[tokio::test]
async fn a_configured_installation_is_not_looked_up() {
    let github = fake().await;
    let auth = GitHubAuth::new(&github.api_url(), app_credentials(&test_app_key().0, Some(INSTALLATION))).unwrap();
    auth.api_for("octo", "hello").await.unwrap().repository("octo", "hello").await.unwrap();
    assert!(calls_to(&github, "GET", "/repos/octo/hello/installation").is_empty());
    assert_eq!(mints(&github).len(), 1);

    // A repository the installation does not cover: GitHub refuses to mint.
    let error = auth.git_token_for("octo", "private").await.unwrap_err();
    assert!(matches!(error, GitHubError::Validation { .. }), "{error:?}");
    assert!(error.to_string().contains("not accessible to the parent installation"), "{error}");
}

#[tokio::test]
async fn an_app_not_installed_on_the_repository_is_a_clear_error() {
    let github = fake().await;
    let auth = app_auth(&github);
    let error = auth.api_for("octo", "private").await.unwrap_err();
    assert!(matches!(error, GitHubError::AppNotInstalled { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("the GitHub App is not installed on octo/private"), "{message}");
    assert!(message.contains("install it"), "{message}");
    assert!(mints(&github).is_empty());
    assert!(auth.secrets().is_empty());
}

#[tokio::test]
async fn a_wrong_key_or_app_id_is_refused_naming_both() {
    let github = fake().await;
    let (other_key, _) = generate_test_app_key(false);
    let wrong_key = GitHubAuth::new(&github.api_url(), app_credentials(&other_key, None)).unwrap();
    let wrong_id = GitHubAuth::new(
        &github.api_url(),
        Credentials::App(AppCredentials {
            app_id: APP_ID + 1,
            private_key_pem: test_app_key().0,
            installation_id: Some(INSTALLATION),
        }),
    )
    .unwrap();
    let errors = [
        wrong_key.identity().await.unwrap_err(),
        wrong_key.api_for("octo", "hello").await.unwrap_err(),
        wrong_id.git_token_for("octo", "hello").await.unwrap_err(),
    ];
    for error in errors {
        assert!(matches!(error, GitHubError::AppUnauthorized { .. }), "{error:?}");
        let message = error.to_string();
        assert!(message.contains("GITHUB_APP_ID"), "{message}");
        assert!(message.contains("private key"), "{message}");
        assert!(message.contains("A JSON web token could not be decoded"), "{message}");
    }
    assert!(github.calls().iter().all(|c| c.status == 401 && c.app_id.is_none()));
    assert!(github.minted_tokens().is_empty());
}

#[tokio::test]
async fn an_unreadable_key_is_a_config_error_at_new() {
    let github = fake().await;
    for key in ["", "not a key", "-----BEGIN RSA PRIVATE KEY-----\naGVsbG8=\n-----END RSA PRIVATE KEY-----\n"] {
        let error = GitHubAuth::new(&github.api_url(), app_credentials(key, None)).unwrap_err();
        assert!(matches!(error, GitHubError::Config { .. }), "{error:?}");
        assert!(error.to_string().contains("GITHUB_APP_PRIVATE_KEY"), "{error}");
    }
    // PKCS#8 is read as well.
    let (pkcs8, _) = generate_test_app_key(true);
    GitHubAuth::new(&github.api_url(), app_credentials(&pkcs8, None)).unwrap();
    assert!(github.calls().is_empty());
}

#[tokio::test]
async fn expired_installation_tokens_are_refused() {
    let github = fake().await;
    github.set_installation_token_lifetime(Duration::ZERO);
    let auth = app_auth(&github);
    let api = auth.api_for("octo", "hello").await.unwrap();
    let error = api.repository("octo", "hello").await.unwrap_err();
    assert!(matches!(error, GitHubError::Unauthorized { .. }), "{error:?}");
    assert!(error.to_string().contains("Bad credentials"), "{error}");
}

#[tokio::test]
async fn app_endpoints_need_the_apps_jwt() {
    let github = fake().await;
    let with_token = GitHubApi::new(&github.api_url(), github.token()).unwrap();
    let error = with_token.app().await.unwrap_err();
    assert!(matches!(error, GitHubError::Unauthorized { ref message, .. } if message.contains("JSON web token")));
    let error = with_token.repository_installation("octo", "hello").await.unwrap_err();
    assert!(matches!(error, GitHubError::Unauthorized { .. }), "{error:?}");

    // An installation token cannot mint more, nor speak for a user.
    let auth = app_auth(&github);
    let api = auth.api_for("octo", "hello").await.unwrap();
    let error = api.create_installation_token(INSTALLATION, &["other"], &Value::Null).await.unwrap_err();
    assert!(matches!(error, GitHubError::Unauthorized { .. }), "{error:?}");
    let error = api.authenticated_user_id().await.unwrap_err();
    assert!(matches!(error, GitHubError::Forbidden { .. }), "{error:?}");
    assert_eq!(github.minted_tokens().len(), 1);
}
