//! Trusted servers' processes, which run beside rswe rather than in a sandbox.

use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use rswe_sandbox::{ExitWatch, ProcessHandle, exit_code_of};

/// How long to wait for a killed process to be reaped.
const KILL_TIMEOUT: Duration = Duration::from_secs(5);

/// A child process in its own process group, watched by a task that reaps it. Dropping
/// the handle kills the group.
pub struct HostProcess {
    pid: Option<u32>,
    exit: ExitWatch,
}

impl HostProcess {
    pub fn watch(mut child: tokio::process::Child) -> HostProcess {
        let pid = child.id();
        let (sender, exit) = ExitWatch::channel();
        tokio::spawn(async move {
            let code = child.wait().await.map(exit_code_of).unwrap_or(-1);
            sender.send_replace(Some(code));
        });
        HostProcess { pid, exit }
    }

    fn kill_group(&self) {
        if let Some(pid) = self.pid.and_then(|pid| i32::try_from(pid).ok()) {
            // The group may be gone already.
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

#[async_trait::async_trait]
impl ProcessHandle for HostProcess {
    fn id(&self) -> Option<u32> {
        self.pid
    }

    fn exit_code(&self) -> Option<i32> {
        self.exit.code()
    }

    async fn wait(&self) -> i32 {
        self.exit.wait().await.unwrap_or(-1)
    }

    async fn kill(&self) {
        self.kill_group();
        let _ = tokio::time::timeout(KILL_TIMEOUT, self.wait()).await;
    }
}

impl Drop for HostProcess {
    fn drop(&mut self) {
        // Even after the leader ended: what it started may still be in its group.
        self.kill_group();
    }
}
