//! Long-lived processes over stdio (`spawn_process`), in both isolation modes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod common;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use common::{eventually, fixture, processes_running, unique};
use rswe_sandbox::{DEFAULT_ENV_ALLOWLIST, ProcessRequest, Sandbox, SandboxError, SandboxMode, SandboxProcess};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};

/// Generous: only reached when something is broken.
const TIMEOUT: Duration = Duration::from_secs(20);

in_both_modes!(
    stdin_reaches_the_program_and_both_outputs_come_back,
    a_missing_program_exits_with_127,
    the_environment_is_the_sandboxs_plus_the_request,
    the_working_directory_stays_in_the_workspace,
    the_exit_code_is_reported_once_it_ends_by_itself,
    what_it_leaves_behind_dies_with_it,
    kill_ends_it_with_everything_it_started,
    dropping_the_handle_kills_it,
    shutdown_kills_it_and_refuses_new_processes,
);

type Stream = BufReader<Box<dyn AsyncRead + Send + Unpin>>;

async fn spawn(sandbox: &impl Sandbox, request: ProcessRequest) -> (SandboxProcess, Stream, Stream) {
    let mut process = sandbox.spawn_process(request).await.unwrap();
    let stdout = std::mem::replace(&mut process.stdout, Box::new(tokio::io::empty()));
    let stderr = std::mem::replace(&mut process.stderr, Box::new(tokio::io::empty()));
    (process, BufReader::new(stdout), BufReader::new(stderr))
}

fn sh(script: &str) -> ProcessRequest {
    ProcessRequest::new("sh").args(["-c", script])
}

async fn read_line(stream: &mut Stream) -> String {
    let mut line = String::new();
    tokio::time::timeout(TIMEOUT, stream.read_line(&mut line)).await.expect("timed out reading a line").unwrap();
    line
}

/// Everything up to the end of the stream, which must come.
async fn read_to_end(stream: &mut Stream) -> String {
    let mut text = String::new();
    tokio::time::timeout(TIMEOUT, stream.read_to_string(&mut text)).await.expect("the stream stayed open").unwrap();
    text
}

/// `sh` starting `sleep <unique>` in the background and staying in the same process group,
/// `setsid sleep <unique>` out of it, printing `started` once both run, then becoming `cat`.
fn with_children(plain: &str, detached: &str) -> ProcessRequest {
    sh(&format!(
        "sleep {plain} & p=$!\n\
         setsid sleep {detached} & d=$!\n\
         until [ \"$(cat /proc/$p/comm 2>/dev/null)\" = sleep ] && [ \"$(cat /proc/$d/comm 2>/dev/null)\" = sleep ]; do :; done\n\
         echo started\n\
         exec cat"
    ))
}

fn sleeping(seconds: &[&String]) -> bool {
    seconds.iter().any(|seconds| !processes_running(&["sleep", seconds]).is_empty())
}

async fn stdin_reaches_the_program_and_both_outputs_come_back(mode: SandboxMode) {
    let f = fixture(mode);
    // Found on the sandbox's PATH.
    let (mut process, mut stdout, _stderr) = spawn(&f.sandbox, ProcessRequest::new("cat")).await;
    assert!(process.handle.id().is_some());
    process.stdin.write_all(b"{\"jsonrpc\":\"2.0\"}\n").await.unwrap();
    process.stdin.flush().await.unwrap();
    assert_eq!(read_line(&mut stdout).await, "{\"jsonrpc\":\"2.0\"}\n");
    process.stdin.write_all(b"second\n").await.unwrap();
    assert_eq!(read_line(&mut stdout).await, "second\n");
    assert_eq!(process.handle.exit_code(), None);
    // Closing stdin ends `cat`.
    drop(process.stdin);
    assert_eq!(read_to_end(&mut stdout).await, "");
    assert_eq!(tokio::time::timeout(TIMEOUT, process.handle.wait()).await.unwrap(), 0);

    let (mut process, mut stdout, mut stderr) = spawn(&f.sandbox, sh("echo oops >&2; cat")).await;
    assert_eq!(read_line(&mut stderr).await, "oops\n");
    process.stdin.write_all(b"still there\n").await.unwrap();
    assert_eq!(read_line(&mut stdout).await, "still there\n");
    process.handle.kill().await;
}

async fn a_missing_program_exits_with_127(mode: SandboxMode) {
    let f = fixture(mode);
    let name = format!("no-such-program-{}", unique());
    let (process, mut stdout, mut stderr) = spawn(&f.sandbox, ProcessRequest::new(&name)).await;
    assert_eq!(tokio::time::timeout(TIMEOUT, process.handle.wait()).await.unwrap(), 127);
    assert_eq!(read_to_end(&mut stdout).await, "");
    let error = read_to_end(&mut stderr).await;
    assert!(error.contains(&name) && error.contains("not found"), "{error}");

    let error = f.sandbox.spawn_process(ProcessRequest::new("")).await.unwrap_err();
    assert!(matches!(error, SandboxError::InvalidRequest(_)), "{error}");
}

async fn the_environment_is_the_sandboxs_plus_the_request(mode: SandboxMode) {
    let f = fixture(mode);
    let mut request = ProcessRequest::new("env");
    request.env.push(("FOO".to_string(), "bar baz".to_string()));
    let (_process, mut stdout, _stderr) = spawn(&f.sandbox, request).await;
    let output = read_to_end(&mut stdout).await;
    let env: HashMap<&str, &str> = output.lines().filter_map(|line| line.split_once('=')).collect();
    assert_eq!(env.get("FOO"), Some(&"bar baz"));
    assert_eq!(env.get("HOME").copied(), Some(f.sandbox.home().to_str().unwrap()));
    assert!(env.contains_key("PATH"), "{output}");
    // Nothing else from the host (whose environment holds much more, e.g. `CARGO_*` under cargo).
    let expected: HashSet<&str> = DEFAULT_ENV_ALLOWLIST
        .iter()
        .copied()
        .chain(["HOME", "USER", "TMPDIR", "FOO", "RSWE_SANDBOX_PROCESS", "PWD", "SHLVL", "_"])
        .collect();
    let unexpected: Vec<&&str> = env.keys().filter(|name| !expected.contains(**name)).collect();
    assert!(unexpected.is_empty(), "host variables leaked: {unexpected:?}");

    let mut request = ProcessRequest::new("true");
    request.env.push(("A=B".to_string(), "c".to_string()));
    let error = f.sandbox.spawn_process(request).await.unwrap_err();
    assert!(matches!(error, SandboxError::InvalidRequest(_)), "{error}");
}

async fn the_working_directory_stays_in_the_workspace(mode: SandboxMode) {
    let f = fixture(mode);
    let (_process, mut stdout, _stderr) = spawn(&f.sandbox, ProcessRequest::new("pwd")).await;
    assert_eq!(read_to_end(&mut stdout).await, format!("{}\n", f.sandbox.workspace().display()));

    f.sandbox.write_file("sub/dir/.keep".as_ref(), b"").await.unwrap();
    let mut request = ProcessRequest::new("pwd");
    request.cwd = Some("sub/dir".into());
    let (_process, mut stdout, _stderr) = spawn(&f.sandbox, request).await;
    assert_eq!(read_to_end(&mut stdout).await, format!("{}\n", f.sandbox.workspace().join("sub/dir").display()));

    for outside in [f.data.clone(), "..".into(), "/".into()] {
        let mut request = ProcessRequest::new("pwd");
        request.cwd = Some(outside.clone());
        let error = f.sandbox.spawn_process(request).await.unwrap_err();
        assert!(matches!(error, SandboxError::OutsideWorkspace { .. }), "{}: {error}", outside.display());
    }
    let mut request = ProcessRequest::new("pwd");
    request.cwd = Some("missing".into());
    let error = f.sandbox.spawn_process(request).await.unwrap_err();
    assert!(matches!(error, SandboxError::NotFound { .. }), "{error}");
}

async fn the_exit_code_is_reported_once_it_ends_by_itself(mode: SandboxMode) {
    let f = fixture(mode);
    let (process, _stdout, _stderr) = spawn(&f.sandbox, sh("exit 3")).await;
    assert_eq!(tokio::time::timeout(TIMEOUT, process.handle.wait()).await.unwrap(), 3);
    assert_eq!(process.handle.exit_code(), Some(3));
    // Waiting again, or killing what has ended, changes nothing.
    assert_eq!(process.handle.wait().await, 3);
    process.handle.kill().await;
    assert_eq!(process.handle.exit_code(), Some(3));
}

async fn what_it_leaves_behind_dies_with_it(mode: SandboxMode) {
    let f = fixture(mode);
    let (plain, detached) = (format!("1000.{}", unique()), format!("1000.{}", unique()));
    let request = sh(&format!("sleep {plain} & setsid sleep {detached} & echo started; read _; exit 5"));
    let (mut process, mut stdout, _stderr) = spawn(&f.sandbox, request).await;
    assert_eq!(read_line(&mut stdout).await, "started\n");
    eventually("both sleeps run", || {
        !processes_running(&["sleep", &plain]).is_empty() && !processes_running(&["sleep", &detached]).is_empty()
    })
    .await;
    process.stdin.write_all(b"\n").await.unwrap();
    assert_eq!(tokio::time::timeout(TIMEOUT, process.handle.wait()).await.unwrap(), 5);
    assert!(!sleeping(&[&plain, &detached]), "a process it started outlived it");
    assert_eq!(read_to_end(&mut stdout).await, "");
}

async fn kill_ends_it_with_everything_it_started(mode: SandboxMode) {
    let f = fixture(mode);
    let (plain, detached) = (format!("1000.{}", unique()), format!("1000.{}", unique()));
    let (process, mut stdout, mut stderr) = spawn(&f.sandbox, with_children(&plain, &detached)).await;
    assert_eq!(read_line(&mut stdout).await, "started\n");
    assert!(processes_running(&["sleep", &plain]).len() == 1 && processes_running(&["sleep", &detached]).len() == 1);

    tokio::time::timeout(TIMEOUT, process.handle.kill()).await.expect("kill did not return");
    assert!(!sleeping(&[&plain, &detached]), "a process it started survived kill");
    assert_eq!(process.handle.exit_code(), Some(128 + 9));
    assert_eq!(process.handle.wait().await, 128 + 9);
    // Its outputs reach their end: a reader is not left hanging.
    assert_eq!(read_to_end(&mut stdout).await, "");
    assert_eq!(read_to_end(&mut stderr).await, "");
    // Killing again is harmless.
    process.handle.kill().await;
}

async fn dropping_the_handle_kills_it(mode: SandboxMode) {
    let f = fixture(mode);
    let (plain, detached) = (format!("1000.{}", unique()), format!("1000.{}", unique()));
    let (process, mut stdout, _stderr) = spawn(&f.sandbox, with_children(&plain, &detached)).await;
    assert_eq!(read_line(&mut stdout).await, "started\n");
    // Keep stdin open, so that `cat` would run on.
    let SandboxProcess { stdin, handle, .. } = process;
    drop(handle);
    // Drop only sends the signals; the kernel finishes the job shortly after.
    eventually("what it started is gone", || !sleeping(&[&plain, &detached])).await;
    assert_eq!(read_to_end(&mut stdout).await, "");
    drop(stdin);
}

async fn shutdown_kills_it_and_refuses_new_processes(mode: SandboxMode) {
    let f = fixture(mode);
    let (plain, detached) = (format!("1000.{}", unique()), format!("1000.{}", unique()));
    let (process, mut stdout, _stderr) = spawn(&f.sandbox, with_children(&plain, &detached)).await;
    assert_eq!(read_line(&mut stdout).await, "started\n");

    f.sandbox.shutdown().await;
    assert!(!sleeping(&[&plain, &detached]), "a process it started survived shutdown");
    assert_eq!(tokio::time::timeout(TIMEOUT, process.handle.wait()).await.unwrap(), 128 + 9);
    assert_eq!(read_to_end(&mut stdout).await, "");

    let error = f.sandbox.spawn_process(ProcessRequest::new("cat")).await.unwrap_err();
    assert!(matches!(error, SandboxError::ShutDown), "{error}");
}
