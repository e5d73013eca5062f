//! A real local sandbox in a temporary directory, the built-in tools, and helpers to call them.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use rswe_protocol::SessionId;
use rswe_sandbox::{LocalSandbox, LocalSandboxConfig, Sandbox, SandboxMode};
use rswe_tools::{ProgressSink, ToolContext, ToolOutput, ToolRegistry, builtin_tools};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

pub struct Fixture {
    pub sandbox: Arc<LocalSandbox>,
    pub tools: ToolRegistry,
    // Dropped last: the sandbox lives in it.
    _dir: tempfile::TempDir,
}

impl Fixture {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = LocalSandboxConfig::new(dir.path().join("session"));
        config.mode = SandboxMode::None;
        let sandbox = Arc::new(LocalSandbox::new(config).unwrap());
        Fixture { sandbox, tools: builtin_tools(), _dir: dir }
    }

    pub fn workspace(&self) -> PathBuf {
        self.sandbox.workspace().to_path_buf()
    }

    /// The directory that holds the session directory (outside the workspace).
    pub fn outside(&self) -> &Path {
        self._dir.path()
    }

    pub fn context(&self) -> ToolContext {
        self.context_with(CancellationToken::new(), None)
    }

    pub fn context_with(&self, cancel: CancellationToken, progress: Option<ProgressSink>) -> ToolContext {
        ToolContext {
            session_id: SessionId::new(),
            tool_use_id: "toolu_test".to_string(),
            sandbox: self.sandbox.clone(),
            cancel,
            progress,
        }
    }

    pub async fn run(&self, tool: &str, input: Value) -> ToolOutput {
        self.tools.run(tool, input, &self.context()).await
    }

    /// Runs a call that must succeed and returns its text.
    pub async fn ok(&self, tool: &str, input: Value) -> String {
        let output = self.run(tool, input.clone()).await;
        assert!(!output.is_error, "{tool} {input} failed: {}", output.text_content());
        output.text_content()
    }

    /// Runs a call that must fail and returns its text.
    pub async fn err(&self, tool: &str, input: Value) -> String {
        let output = self.run(tool, input.clone()).await;
        assert!(output.is_error, "{tool} {input} should have failed: {}", output.text_content());
        output.text_content()
    }

    pub fn write(&self, relative: &str, contents: impl AsRef<[u8]>) {
        let path = self.workspace().join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
    }

    pub fn read(&self, relative: &str) -> String {
        std::fs::read_to_string(self.workspace().join(relative)).unwrap()
    }
}
