//! Processes started with `spawn_process`: a task waits for each one and cleans up after it,
//! and its handle kills it.

use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use tokio::process::Child;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::KILL_TIMEOUT;
use super::processes::{self, MarkerPattern, Registry, exit_code_of, kill_group};
use crate::process::{ExitWatch, ProcessHandle};

/// The handle of a process started by a [`LocalSandbox`](super::LocalSandbox).
pub(super) struct LocalProcessHandle {
    pid: Option<u32>,
    pgid: i32,
    /// The value of the process's marker variable, carried by everything it starts.
    marker: String,
    /// Asks the waiting task to kill the process (also cancelled when the sandbox shuts down).
    kill: CancellationToken,
    /// The exit code, once the process has ended and what it left behind is gone.
    exit: ExitWatch,
}

impl LocalProcessHandle {
    /// Hands `child`, the leader of process group `pgid` (registered in `registry`), to a task that
    /// waits for it. Must be called inside a Tokio runtime.
    pub(super) fn new(
        child: Child,
        pgid: i32,
        marker: String,
        registry: Arc<Mutex<Registry>>,
        kill: CancellationToken,
    ) -> Self {
        let pid = child.id();
        let (record_exit, exit) = ExitWatch::channel();
        tokio::spawn(wait_and_clean_up(child, pgid, marker.clone(), registry, kill.clone(), record_exit));
        LocalProcessHandle { pid, pgid, marker, kill, exit }
    }
}

/// Waits until the process ends (killing it first if asked to), kills what it left behind,
/// forgets its group and records its exit code.
async fn wait_and_clean_up(
    mut child: Child,
    pgid: i32,
    marker: String,
    registry: Arc<Mutex<Registry>>,
    kill: CancellationToken,
    record_exit: watch::Sender<Option<i32>>,
) {
    let status = tokio::select! {
        status = child.wait() => status,
        () = kill.cancelled() => {
            // Not reaped yet, so the group id cannot belong to anyone else.
            kill_group(pgid);
            child.wait().await
        }
    };
    let code = match status {
        Ok(status) => exit_code_of(status),
        Err(error) => {
            tracing::warn!(%marker, %error, "could not wait for a sandboxed process");
            -1
        }
    };
    // What it left behind goes with it. Under bubblewrap, the PID namespace of a killed process
    // empties a moment after bwrap ended: the marker finds what is still there.
    kill_group(pgid);
    processes::kill_marked_until_gone(MarkerPattern::command(&marker), KILL_TIMEOUT).await;
    registry.lock().unwrap_or_else(PoisonError::into_inner).groups.remove(&pgid);
    tracing::debug!(%marker, code, killed = kill.is_cancelled(), "sandboxed process ended");
    record_exit.send_replace(Some(code));
}

#[async_trait]
impl ProcessHandle for LocalProcessHandle {
    fn id(&self) -> Option<u32> {
        self.pid
    }

    fn exit_code(&self) -> Option<i32> {
        self.exit.code()
    }

    async fn wait(&self) -> i32 {
        match self.exit.wait().await {
            Some(code) => code,
            None => {
                // The task was dropped with its runtime; the child went with it (`kill_on_drop`).
                tracing::warn!(marker = %self.marker, "a sandboxed process is no longer watched");
                -1
            }
        }
    }

    async fn kill(&self) {
        tracing::debug!(marker = %self.marker, "killing a sandboxed process");
        self.kill.cancel();
        // The task kills the group and the marked leftovers before recording the exit.
        if tokio::time::timeout(2 * KILL_TIMEOUT, self.wait()).await.is_err() {
            tracing::warn!(marker = %self.marker, "a killed sandboxed process did not end in time");
        }
        // Normally finds nothing; covers a task that could not do its job.
        processes::kill_marked_until_gone(MarkerPattern::command(&self.marker), KILL_TIMEOUT).await;
    }
}

impl Drop for LocalProcessHandle {
    fn drop(&mut self) {
        self.kill.cancel();
        if self.exit_code().is_none() {
            // The task may not run again (its runtime shutting down): send the signals now.
            kill_group(self.pgid);
            processes::kill_marked(&MarkerPattern::command(&self.marker));
        }
    }
}
