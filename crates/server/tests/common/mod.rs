//! An rswe server in the test process: a real store on disk, real local sandboxes, the
//! fake model server in place of the provider, listening on a free loopback port.

#![allow(dead_code)]

use rswe_llm::{Catalog, Providers, ProvidersConfig, Secret};
use rswe_sandbox::{LocalSandbox, LocalSandboxConfig, Sandbox, SandboxMode};
use rswe_server::{RunningServer, SandboxFactory, ServerParts, ServerSettings, ServiceConfig};
use rswe_store::Store;
use rswe_test_support::{FakeModelServer, Script};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub const MODEL: &str = "anthropic/claude-sonnet-4-5";

pub struct TestServer {
    pub server: Option<RunningServer>,
    pub fake: FakeModelServer,
    pub dir: tempfile::TempDir,
    pub url: String,
    pub http: reqwest::Client,
    /// The API key [`TestServer::get`] and friends send; `None` with
    /// `Options { create_api_key: false }`.
    pub key: Option<String>,
}

/// Settings a test may change before the server starts.
pub struct Options {
    pub max_working: usize,
    pub idle_release: Duration,
    pub settings: ServerSettings,
    /// Create an API key at start for [`TestServer::get`] and friends. Without one the
    /// server is as on its first start (`Auth::first_start_token` answers).
    pub create_api_key: bool,
    /// The MCP servers sessions get.
    pub mcp: rswe_server::McpServiceConfig,
    /// Slack, when a test talks to a fake Slack.
    pub slack: Option<rswe_server::slack::SlackSettings>,
    /// GitHub, when a test talks to a fake GitHub.
    pub github: Option<rswe_github::GitHubSettings>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_working: 4,
            idle_release: Duration::from_secs(600),
            settings: ServerSettings { default_model: MODEL.into(), models: vec![MODEL.into()], ..Default::default() },
            create_api_key: true,
            mcp: Default::default(),
            slack: None,
            github: None,
        }
    }
}

impl TestServer {
    pub async fn start(script: impl Into<Script>) -> TestServer {
        TestServer::start_with(script, Options::default()).await
    }

    pub async fn start_with(script: impl Into<Script>, options: Options) -> TestServer {
        let fake = FakeModelServer::start(script).await;
        let dir = tempfile::tempdir().unwrap();
        let create_api_key = options.create_api_key;
        let server = start_server(&fake, dir.path().to_path_buf(), options).await;
        let url = format!("http://{}", server.addr);
        let key = match create_api_key {
            true => Some(server.state.auth.create_key("test").await.unwrap().key),
            false => None,
        };
        // Redirects are for the tests to see, not to follow.
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        TestServer { server: Some(server), fake, dir, url, http, key }
    }

    /// The API key made at start.
    pub fn api_key(&self) -> &str {
        self.key.as_deref().expect("this server was started with `create_api_key: false`")
    }

    /// A request to `path` (e.g. "/api/v1/sessions") with the API key.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.anonymous(method, path).bearer_auth(self.api_key())
    }

    /// A request to `path` without credentials.
    pub fn anonymous(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, format!("{}{path}", self.url))
    }

    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.request(reqwest::Method::GET, path)
    }

    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.request(reqwest::Method::POST, path)
    }

    pub fn put(&self, path: &str) -> reqwest::RequestBuilder {
        self.request(reqwest::Method::PUT, path)
    }

    pub fn patch(&self, path: &str) -> reqwest::RequestBuilder {
        self.request(reqwest::Method::PATCH, path)
    }

    pub fn delete(&self, path: &str) -> reqwest::RequestBuilder {
        self.request(reqwest::Method::DELETE, path)
    }

    /// Signs a browser in: the session's cookie and CSRF token.
    pub async fn sign_in(&self) -> rswe_server::auth::BrowserLogin {
        let auth = &self.state().auth;
        let token = auth.new_sign_in_token().unwrap();
        auth.sign_in_with_token(&token).await.unwrap().unwrap()
    }

    /// A request to `path` as the signed-in browser: with its cookie, and with its CSRF
    /// header (as pages send on state-changing calls).
    pub fn browser(
        &self,
        login: &rswe_server::auth::BrowserLogin,
        method: reqwest::Method,
        path: &str,
    ) -> reqwest::RequestBuilder {
        self.anonymous(method, path)
            .header(reqwest::header::COOKIE, format!("{}={}", rswe_server::auth::COOKIE, login.cookie_value))
            .header(rswe_server::auth::CSRF_HEADER, &login.csrf)
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn state(&self) -> &rswe_server::AppState {
        &self.server.as_ref().unwrap().state
    }

    pub fn store(&self) -> &Store {
        &self.state().store
    }

    /// Shuts the server down gracefully.
    pub async fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown(Duration::from_secs(5)).await;
        }
    }
}

pub async fn start_server(fake: &FakeModelServer, root: PathBuf, options: Options) -> RunningServer {
    let data_dir = root.join("data");
    std::fs::create_dir_all(&data_dir).unwrap();
    let store = Store::open(data_dir.join("rswe.db")).await.unwrap();
    let mut providers = ProvidersConfig::default();
    providers.anthropic.api_key = Some(Secret::new("sk-ant-test"));
    providers.anthropic.base_url = Some(fake.anthropic_base_url());
    providers.max_attempts = 2;
    let providers = Providers::new(providers, Catalog::built_in()).unwrap();
    let hidden = data_dir.clone();
    let sandbox: SandboxFactory = Arc::new(move |_id, session_dir, workspace| {
        let mut config = LocalSandboxConfig::new(session_dir);
        config.workspace = Some(workspace.to_path_buf());
        config.mode = SandboxMode::Auto;
        config.hidden_paths.push(hidden.clone());
        let sandbox = LocalSandbox::new(config).map_err(|e| e.to_string())?;
        Ok(Arc::new(sandbox) as Arc<dyn Sandbox>)
    });
    let service = ServiceConfig {
        data_dir,
        max_working: options.max_working,
        idle_release: options.idle_release,
        default_model: MODEL.into(),
        agent: rswe_agent::AgentConfig { failure_backoff: Duration::from_millis(10), ..Default::default() },
        sandbox,
        clone_timeout: Duration::from_secs(60),
        stop_timeout: Duration::from_secs(20),
        mcp: options.mcp,
        github: options
            .github
            .clone()
            .map(|github| rswe_server::GitHubServiceConfig::new(github, &options.settings.public_url).unwrap()),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    RunningServer::start(
        listener,
        ServerParts {
            store,
            providers,
            service,
            settings: options.settings,
            slack: options.slack,
            github: options.github,
        },
    )
    .await
    .unwrap()
}
