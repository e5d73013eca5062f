//! Background processes: dev servers, watchers, anything that keeps running while the agent works.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Default time `start_background` waits to collect the first output.
pub const DEFAULT_SETTLE: Duration = Duration::from_secs(2);

/// A shell command to start in the background.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackgroundRequest {
    /// Run with `bash -c`.
    pub command: String,
    /// Working directory: relative to the workspace, or absolute inside it. `None` is the workspace.
    pub cwd: Option<PathBuf>,
    /// Variables added to the sandbox's environment.
    pub env: Vec<(String, String)>,
    /// How long to wait for first output before returning (less if the process exits sooner).
    pub settle: Duration,
}

impl BackgroundRequest {
    /// A request for `command` with the default working directory and settle time.
    pub fn new(command: impl Into<String>) -> Self {
        BackgroundRequest { command: command.into(), ..BackgroundRequest::default() }
    }

    /// Sets the working directory.
    pub fn cwd(mut self, cwd: impl Into<PathBuf>) -> Self {
        self.cwd = Some(cwd.into());
        self
    }

    /// Adds an environment variable.
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    /// Sets the settle time.
    pub fn settle(mut self, settle: Duration) -> Self {
        self.settle = settle;
        self
    }
}

impl Default for BackgroundRequest {
    fn default() -> Self {
        BackgroundRequest { command: String::new(), cwd: None, env: Vec::new(), settle: DEFAULT_SETTLE }
    }
}

/// A background process just started.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackgroundStarted {
    /// Use it with `background_output` and `stop_background`.
    pub id: String,
    /// What it printed (stdout and stderr interleaved) during the settle time, bounded.
    pub output: String,
    /// Its exit code if it already ended (a signal `n` is reported as `128 + n`).
    pub exited: Option<i32>,
}

/// The state of a background process and the end of its output.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackgroundStatus {
    /// The last bytes of its output (stdout and stderr interleaved).
    pub output_tail: String,
    pub running: bool,
    /// Its exit code once it ended (a signal `n` is reported as `128 + n`).
    pub exit_code: Option<i32>,
    /// The complete output, a file under the sandbox home (readable from inside the sandbox).
    pub log_path: PathBuf,
}

/// One entry of the list of background processes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackgroundInfo {
    pub id: String,
    pub command: String,
    pub running: bool,
    pub exit_code: Option<i32>,
    pub log_path: PathBuf,
}
