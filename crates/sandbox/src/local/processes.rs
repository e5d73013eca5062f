//! Finding and killing what a sandbox started.
//!
//! Every command runs in its own process group, and every process carries an environment marker
//! (`RSWE_SANDBOX_PROCESS=<sandbox id>/<number>`) inherited by its descendants. Killing the group
//! catches what stays in it; scanning `/proc/*/environ` for the marker catches what left it
//! (`setsid`, or processes in a bubblewrap PID namespace whose init is still dying).

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use tokio::process::Child;

/// The environment variable that marks processes started by a sandbox.
pub(crate) const MARKER_VAR: &str = "RSWE_SANDBOX_PROCESS";

/// Kills a process group; a group that no longer exists is not an error.
pub(crate) fn kill_group(pgid: i32) {
    match killpg(Pid::from_raw(pgid), Signal::SIGKILL) {
        Ok(()) | Err(Errno::ESRCH) => {}
        Err(error) => tracing::warn!(pgid, %error, "could not kill a process group"),
    }
}

/// Which marked processes to look for.
#[derive(Clone, Debug)]
pub(crate) struct MarkerPattern {
    entry: Vec<u8>,
    prefix: bool,
}

impl MarkerPattern {
    /// Exactly the processes of one command (`value` is its whole marker value).
    pub(crate) fn command(value: &str) -> Self {
        MarkerPattern { entry: format!("{MARKER_VAR}={value}").into_bytes(), prefix: false }
    }

    /// Every process of a sandbox.
    pub(crate) fn sandbox(sandbox_id: &str) -> Self {
        MarkerPattern { entry: format!("{MARKER_VAR}={sandbox_id}/").into_bytes(), prefix: true }
    }

    fn matches(&self, variable: &[u8]) -> bool {
        if self.prefix { variable.starts_with(&self.entry) } else { variable == self.entry }
    }
}

/// Sends SIGKILL to every live process carrying the marker; returns how many there were.
/// Zombies have an empty environment, so dead processes are not counted.
pub(crate) fn kill_marked(pattern: &MarkerPattern) -> usize {
    let own = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    let mut found = 0;
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|name| name.parse::<u32>().ok()) else {
            continue;
        };
        if pid == own {
            continue;
        }
        let Ok(environ) = std::fs::read(PathBuf::from("/proc").join(pid.to_string()).join("environ")) else {
            continue;
        };
        if !environ.split(|byte| *byte == 0).any(|variable| pattern.matches(variable)) {
            continue;
        }
        let Ok(pid) = i32::try_from(pid) else {
            continue;
        };
        match kill(Pid::from_raw(pid), Signal::SIGKILL) {
            Ok(()) => found += 1,
            Err(Errno::ESRCH) => {}
            Err(error) => tracing::warn!(pid, %error, "could not kill a sandboxed process"),
        }
    }
    found
}

/// Kills marked processes until none is left alive, or `timeout` has passed (returns false then).
pub(crate) async fn kill_marked_until_gone(pattern: MarkerPattern, timeout: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let scan = pattern.clone();
        let found = tokio::task::spawn_blocking(move || kill_marked(&scan)).await.unwrap_or(0);
        if found == 0 {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            tracing::warn!(?pattern, found, "sandboxed processes are still alive after being killed");
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

pub(crate) use crate::process::exit_code_of;

/// A background process and what is known of it.
pub(crate) struct BackgroundProcess {
    pub id: String,
    pub command: String,
    pub log_rel: PathBuf,
    pub log_path: PathBuf,
    pub pgid: i32,
    pub marker: String,
    /// `None` once it has been reaped (or while `stop_background` waits for it).
    pub child: Option<Child>,
    pub exit_code: Option<i32>,
}

/// Everything running in a sandbox.
#[derive(Default)]
pub(crate) struct Registry {
    pub shut_down: bool,
    /// Process groups of live commands, foreground and background.
    pub groups: HashSet<i32>,
    /// In start order.
    pub background: Vec<BackgroundProcess>,
}

impl Registry {
    /// Notices whether a background process has ended; if so, reaps it and kills what it left in
    /// its group.
    pub(crate) fn refresh(&mut self, index: usize) {
        let Some(process) = self.background.get_mut(index) else {
            return;
        };
        let Some(child) = process.child.as_mut() else {
            return;
        };
        match child.try_wait() {
            Ok(None) => {}
            Ok(Some(status)) => {
                process.exit_code = Some(exit_code_of(status));
                process.child = None;
                kill_group(process.pgid);
                self.groups.remove(&process.pgid);
            }
            Err(error) => tracing::warn!(id = %process.id, %error, "could not check a background process"),
        }
    }

    pub(crate) fn find(&self, id: &str) -> Option<usize> {
        self.background.iter().position(|process| process.id == id)
    }
}
