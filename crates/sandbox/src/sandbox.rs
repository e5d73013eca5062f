//! The `Sandbox` trait: everything an agent does to a machine goes through it.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::background::{BackgroundInfo, BackgroundRequest, BackgroundStarted, BackgroundStatus};
use crate::error::SandboxError;
use crate::exec::{ExecOutcome, ExecRequest, OutputSink};
use crate::process::{ProcessRequest, SandboxProcess};

/// One entry of a directory listing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirEntry {
    /// Absolute path, usable as is in commands and file operations.
    pub path: PathBuf,
    pub is_dir: bool,
    /// A symbolic link (listed, never followed).
    pub is_symlink: bool,
    /// Size in bytes (of the link itself for a symbolic link).
    pub size: u64,
}

/// An isolated place where one session runs commands and edits files.
///
/// Paths are the same everywhere: `workspace()` and `home()` are absolute paths that are valid both
/// on the host and inside the sandbox, so a path printed by a command works in the file operations
/// and the other way round. File operations are confined to the workspace: a relative path is
/// relative to it, and a path that leads outside it (through `..`, an absolute path or a symbolic
/// link) is refused with [`SandboxError::OutsideWorkspace`], and a path hidden from the sandbox
/// by its configuration with [`SandboxError::Hidden`].
#[async_trait]
pub trait Sandbox: Send + Sync {
    /// The workspace directory (the repository checkout), writable.
    fn workspace(&self) -> &Path;

    /// The home directory of commands (`HOME`), writable; it also holds background logs.
    fn home(&self) -> &Path;

    /// Runs `bash -c <command>` and waits for it to end, streaming output to `on_output`.
    ///
    /// The command is killed (with everything it started) on the inactivity timeout, the hard
    /// timeout, or when `cancel` fires; [`ExecOutcome::ended_by`] says which. Processes it leaves
    /// behind (`cmd &`, `nohup`) are killed when it ends: use [`Sandbox::start_background`] for
    /// servers and watchers. Memory use is bounded whatever the command prints.
    async fn exec(
        &self,
        request: ExecRequest,
        on_output: Option<OutputSink>,
        cancel: CancellationToken,
    ) -> Result<ExecOutcome, SandboxError>;

    /// Starts `bash -c <command>` in the background, returns what it printed during the settle time
    /// (earlier if it exits), and keeps it running until stopped or the sandbox shuts down.
    async fn start_background(&self, request: BackgroundRequest) -> Result<BackgroundStarted, SandboxError>;

    /// The state of a background process and at most `max_bytes` of the end of its output.
    async fn background_output(&self, id: &str, max_bytes: usize) -> Result<BackgroundStatus, SandboxError>;

    /// Kills a background process with everything it started; returns its final state.
    async fn stop_background(&self, id: &str) -> Result<BackgroundStatus, SandboxError>;

    /// Every background process started in this sandbox, running or not, in start order.
    async fn list_background(&self) -> Vec<BackgroundInfo>;

    /// Starts a long-lived process with piped stdin, stdout and stderr (a tool server that
    /// speaks over its standard streams), isolated like a command. It has no timeout: it runs
    /// until its handle kills it or is dropped, or the sandbox shuts down.
    async fn spawn_process(&self, request: ProcessRequest) -> Result<SandboxProcess, SandboxError>;

    /// The contents of a file in the workspace.
    async fn read_file(&self, path: &Path) -> Result<Vec<u8>, SandboxError>;

    /// Writes (creates or replaces) a file in the workspace, creating missing parent directories.
    async fn write_file(&self, path: &Path, contents: &[u8]) -> Result<(), SandboxError>;

    /// Lists a directory of the workspace down to `max_depth` levels (1 = its entries only; 0 is
    /// taken as 1), sorted by path. Symbolic links are listed but not followed.
    async fn list_dir(&self, path: &Path, max_depth: usize) -> Result<Vec<DirEntry>, SandboxError>;

    /// The absolute path, with symbolic links resolved, that `path` designates in the workspace;
    /// refused when it lies outside. The target need not exist.
    async fn resolve(&self, path: &Path) -> Result<PathBuf, SandboxError>;

    /// Kills every process the sandbox started (foreground and background, with all their
    /// descendants) and refuses new commands. Returns once they are gone. The workspace is kept.
    async fn shutdown(&self);
}
