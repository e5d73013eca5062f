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
}

/// Settings a test may change before the server starts.
pub struct Options {
    pub max_working: usize,
    pub idle_release: Duration,
    pub settings: ServerSettings,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_working: 4,
            idle_release: Duration::from_secs(600),
            settings: ServerSettings { default_model: MODEL.into(), models: vec![MODEL.into()], ..Default::default() },
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
        let server = start_server(&fake, dir.path().to_path_buf(), options).await;
        let url = format!("http://{}", server.addr);
        TestServer { server: Some(server), fake, dir, url, http: reqwest::Client::new() }
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
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    RunningServer::start(listener, ServerParts { store, providers, service, settings: options.settings }).await.unwrap()
}
