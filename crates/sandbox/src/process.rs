//! Long-lived processes that talk over their standard streams (tool servers).

use std::path::PathBuf;

use async_trait::async_trait;
use tokio::io::{AsyncRead, AsyncWrite};

/// A process to start with [`Sandbox::spawn_process`](crate::Sandbox::spawn_process).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcessRequest {
    /// The program, found on the sandbox's `PATH` unless it is a path.
    pub program: String,
    pub args: Vec<String>,
    /// Set on top of the sandbox's own environment.
    pub env: Vec<(String, String)>,
    /// Where it runs; relative to the workspace, which is the default.
    pub cwd: Option<PathBuf>,
}

impl ProcessRequest {
    pub fn new(program: impl Into<String>) -> Self {
        ProcessRequest { program: program.into(), ..ProcessRequest::default() }
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }
}

/// A started process: its three standard streams and its handle.
pub struct SandboxProcess {
    pub stdin: Box<dyn AsyncWrite + Send + Unpin>,
    pub stdout: Box<dyn AsyncRead + Send + Unpin>,
    pub stderr: Box<dyn AsyncRead + Send + Unpin>,
    pub handle: Box<dyn ProcessHandle>,
}

impl std::fmt::Debug for SandboxProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxProcess").finish_non_exhaustive()
    }
}

/// Controls a started process. Dropping the handle kills the process with everything it
/// started.
#[async_trait]
pub trait ProcessHandle: Send + Sync {
    /// The operating system's id of the process (or of what wraps it), for logs.
    fn id(&self) -> Option<u32>;

    /// `None` while it runs; once it has ended, its exit code (a signal `n` counted as
    /// `128 + n`, as a shell does).
    fn exit_code(&self) -> Option<i32>;

    /// Waits until it ends by itself; its exit code.
    async fn wait(&self) -> i32;

    /// Kills it with everything it started and returns once they are gone.
    async fn kill(&self);
}
