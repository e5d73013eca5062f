//! Foreground commands: what is asked, what is streamed while it runs, what comes back.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::output::CapturedOutput;

/// Default time a command may stay silent before it is killed.
pub const DEFAULT_INACTIVITY_TIMEOUT: Duration = Duration::from_secs(60);
/// Default total time a command may run before it is killed.
pub const DEFAULT_HARD_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// A shell command to run in the foreground, waiting for it to end.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecRequest {
    /// Run with `bash -c`.
    pub command: String,
    /// Working directory: relative to the workspace, or absolute inside it. `None` is the workspace.
    pub cwd: Option<PathBuf>,
    /// Variables added to the sandbox's environment (they override the allow-listed ones).
    pub env: Vec<(String, String)>,
    /// Killed after this long without any output on stdout or stderr.
    pub inactivity_timeout: Duration,
    /// Killed after this long in total.
    pub hard_timeout: Duration,
}

impl ExecRequest {
    /// A request for `command` with the default working directory and timeouts.
    pub fn new(command: impl Into<String>) -> Self {
        ExecRequest { command: command.into(), ..ExecRequest::default() }
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

    /// Sets the inactivity timeout.
    pub fn inactivity_timeout(mut self, timeout: Duration) -> Self {
        self.inactivity_timeout = timeout;
        self
    }

    /// Sets the hard timeout.
    pub fn hard_timeout(mut self, timeout: Duration) -> Self {
        self.hard_timeout = timeout;
        self
    }
}

impl Default for ExecRequest {
    fn default() -> Self {
        ExecRequest {
            command: String::new(),
            cwd: None,
            env: Vec::new(),
            inactivity_timeout: DEFAULT_INACTIVITY_TIMEOUT,
            hard_timeout: DEFAULT_HARD_TIMEOUT,
        }
    }
}

/// Which output stream a chunk came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputStream {
    Stdout,
    Stderr,
}

/// Output delivered live while a command runs. `text` is valid UTF-8: a character split across
/// two reads is delivered whole in the later chunk; invalid bytes become U+FFFD.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputChunk {
    pub stream: OutputStream,
    pub text: String,
}

/// Receives live output. Called from the task running the command, so it must return quickly.
pub type OutputSink = Arc<dyn Fn(OutputChunk) + Send + Sync>;

/// Why a command stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ended {
    /// It ended by itself (successfully or not, see the exit code and signal).
    Exited,
    /// Killed after printing nothing for the inactivity timeout.
    InactivityTimeout,
    /// Killed after running for the hard timeout.
    HardTimeout,
    /// Killed because the caller cancelled it or the sandbox was shut down.
    Cancelled,
}

impl fmt::Display for Ended {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Ended::Exited => "exited",
            Ended::InactivityTimeout => "killed after printing nothing for the inactivity timeout",
            Ended::HardTimeout => "killed after running for the hard timeout",
            Ended::Cancelled => "cancelled",
        })
    }
}

/// The result of a foreground command.
///
/// Under bubblewrap a command killed by a signal *it* received inside the sandbox is reported the
/// way a shell reports it: `exit_code = 128 + signal` and `signal = None` (bubblewrap's init
/// converts it). Signals sent by the runtime (timeouts, cancellation) show as `signal`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecOutcome {
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub stdout: CapturedOutput,
    pub stderr: CapturedOutput,
    pub duration: Duration,
    pub ended_by: Ended,
}

impl ExecOutcome {
    /// True when the command exited by itself with status 0.
    pub fn success(&self) -> bool {
        self.ended_by == Ended::Exited && self.exit_code == Some(0)
    }
}
