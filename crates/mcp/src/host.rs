//! Trusted servers' processes, which run beside rswe rather than in a sandbox.

use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use rswe_sandbox::ProcessHandle;
use tokio::sync::watch;

/// How long to wait for a killed process to be reaped.
const KILL_TIMEOUT: Duration = Duration::from_secs(5);

/// A child process in its own process group, watched by a task that reaps it. Dropping
/// the handle kills the group.
pub struct HostProcess {
    pid: Option<u32>,
    exit: watch::Receiver<Option<i32>>,
}

impl HostProcess {
    pub fn watch(mut child: tokio::process::Child) -> HostProcess {
        let pid = child.id();
        let (sender, exit) = watch::channel(None);
        tokio::spawn(async move {
            let code = match child.wait().await {
                Ok(status) => {
                    use std::os::unix::process::ExitStatusExt;
                    status.code().or_else(|| status.signal().map(|signal| 128 + signal)).unwrap_or(-1)
                }
                Err(_) => -1,
            };
            let _ = sender.send(Some(code));
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
        *self.exit.borrow()
    }

    async fn wait(&self) -> i32 {
        let mut exit = self.exit.clone();
        match exit.wait_for(Option::is_some).await {
            Ok(code) => code.unwrap_or(-1),
            // The watcher is gone: it only goes after sending.
            Err(_) => -1,
        }
    }

    async fn kill(&self) {
        self.kill_group();
        let _ = tokio::time::timeout(KILL_TIMEOUT, self.wait()).await;
    }
}

impl Drop for HostProcess {
    fn drop(&mut self) {
        if self.exit.borrow().is_none() {
            self.kill_group();
        }
    }
}
