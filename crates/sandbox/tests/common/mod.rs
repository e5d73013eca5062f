//! Helpers shared by the integration tests.
#![allow(dead_code, unused_macros, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rswe_sandbox::{ExecOutcome, ExecRequest, LocalSandbox, LocalSandboxConfig, OutputSink, Sandbox, SandboxMode};
use tempfile::TempDir;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// A sandbox laid out like a real deployment: `<tmp>/data/sessions/s1` is its root, `<tmp>/data`
/// is hidden and also holds a secret and another session's workspace.
pub struct Fixture {
    pub dir: TempDir,
    pub data: PathBuf,
    pub secret: PathBuf,
    pub other_session_file: PathBuf,
    pub sandbox: LocalSandbox,
}

/// Defines each named test (`async fn name(mode: SandboxMode)`) once with bubblewrap and
/// once without isolation.
macro_rules! in_both_modes {
    ($($name:ident),* $(,)?) => {
        mod bubblewrap {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(rswe_sandbox::SandboxMode::Bubblewrap).await;
                }
            )*
        }
        mod no_isolation {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(rswe_sandbox::SandboxMode::None).await;
                }
            )*
        }
    };
}

pub const SECRET: &str = "sk-test-secret-that-must-not-leak";

pub fn fixture(mode: SandboxMode) -> Fixture {
    fixture_with(mode, |_| {})
}

pub fn fixture_with(mode: SandboxMode, configure: impl FnOnce(&mut LocalSandboxConfig)) -> Fixture {
    if mode == SandboxMode::Bubblewrap {
        require_bubblewrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().canonicalize().unwrap().join("data");
    let secret = data.join("secret.txt");
    let other_session_file = data.join("sessions/s2/workspace/notes.txt");
    std::fs::create_dir_all(other_session_file.parent().unwrap()).unwrap();
    std::fs::write(&secret, SECRET).unwrap();
    std::fs::write(&other_session_file, SECRET).unwrap();
    let mut config = LocalSandboxConfig::new(data.join("sessions/s1"));
    config.mode = mode;
    config.hidden_paths = vec![data.clone()];
    configure(&mut config);
    let sandbox = LocalSandbox::new(config).unwrap();
    assert_eq!(sandbox.mode(), mode);
    Fixture { dir, data, secret, other_session_file, sandbox }
}

/// Bubblewrap tests fail (never skip) when bubblewrap does not work.
pub fn require_bubblewrap() {
    if let Err(reason) = LocalSandbox::detect_bubblewrap() {
        panic!("these tests need a working bubblewrap: {reason}");
    }
}

pub async fn run(sandbox: &impl Sandbox, command: &str) -> ExecOutcome {
    sandbox.exec(ExecRequest::new(command), None, CancellationToken::new()).await.unwrap()
}

/// A sink forwarding every chunk's text to a channel.
pub fn channel_sink() -> (OutputSink, mpsc::UnboundedReceiver<String>) {
    let (sender, receiver) = mpsc::unbounded_channel();
    let sink: OutputSink = Arc::new(move |chunk: rswe_sandbox::OutputChunk| {
        let _ = sender.send(chunk.text);
    });
    (sink, receiver)
}

/// Waits until the streamed output contains `needle`.
pub async fn wait_for_output(receiver: &mut mpsc::UnboundedReceiver<String>, needle: &str) {
    let mut seen = String::new();
    while !seen.contains(needle) {
        match receiver.recv().await {
            Some(text) => seen.push_str(&text),
            None => panic!("the command ended without printing {needle:?}; it printed {seen:?}"),
        }
    }
}

/// A number unique to this test run, used to recognise its processes from the host.
pub fn unique() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    format!("{}{}{nanos:09}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// Live processes on the host whose command line is exactly `argv`.
pub fn processes_running(argv: &[&str]) -> Vec<u32> {
    let mut wanted = Vec::new();
    for arg in argv {
        wanted.extend_from_slice(arg.as_bytes());
        wanted.push(0);
    }
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|name| name.parse::<u32>().ok()) else {
            continue;
        };
        // Zombies have an empty command line: they are not running.
        if std::fs::read(entry.path().join("cmdline")).is_ok_and(|cmdline| cmdline == wanted) {
            found.push(pid);
        }
    }
    found
}

/// Polls the host's process table until `condition` holds, failing after a generous deadline.
/// (Processes started in the background give no other signal that they have been exec'd.)
pub async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub fn read_to_string(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}
