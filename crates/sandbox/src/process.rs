//! Long-lived processes that talk over their standard streams (tool servers).

use std::path::PathBuf;

use async_trait::async_trait;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;

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

/// A process's exit code, once the task that waits for it knows it; for implementing
/// [`ProcessHandle::exit_code`] and [`ProcessHandle::wait`].
#[derive(Clone, Debug)]
pub struct ExitWatch(watch::Receiver<Option<i32>>);

impl ExitWatch {
    /// The watch, and the sender the waiting task records the exit code with.
    pub fn channel() -> (watch::Sender<Option<i32>>, ExitWatch) {
        let (sender, receiver) = watch::channel(None);
        (sender, ExitWatch(receiver))
    }

    /// `None` while the process runs.
    pub fn code(&self) -> Option<i32> {
        *self.0.borrow()
    }

    /// Waits for the exit code; `None` if the waiting task is gone without one (its
    /// runtime shut down).
    pub async fn wait(&self) -> Option<i32> {
        let mut receiver = self.0.clone();
        receiver.wait_for(Option::is_some).await.ok().and_then(|code| *code)
    }
}

/// The exit code of a process, a signal `n` counted as `128 + n` like a shell does.
pub fn exit_code_of(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status.code().or_else(|| status.signal().map(|signal| 128 + signal)).unwrap_or(-1)
}
