//! Background processes and shutdown, in both isolation modes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod common;

use std::time::{Duration, Instant};

use common::{channel_sink, eventually, fixture, processes_running, unique, wait_for_output};
use rswe_sandbox::{BackgroundRequest, Ended, ExecRequest, Sandbox, SandboxError, SandboxMode};
use tokio_util::sync::CancellationToken;

in_both_modes!(
    a_background_process_runs_until_stopped,
    a_background_process_that_exits_returns_early,
    unknown_background_ids_are_refused,
    shutdown_kills_everything_the_sandbox_started,
    dropping_the_sandbox_kills_its_processes,
);

async fn a_background_process_runs_until_stopped(mode: SandboxMode) {
    let f = fixture(mode);
    let seconds = format!("1000.{}", unique());
    let request = BackgroundRequest::new(format!("echo listening on $PWD; echo warn >&2; exec sleep {seconds}"))
        .cwd("sub")
        .settle(Duration::from_millis(100));
    f.sandbox.write_file("sub/.keep".as_ref(), b"").await.unwrap();
    let started = f.sandbox.start_background(request).await.unwrap();
    assert_eq!(started.exited, None);
    eventually("the background sleep runs", || !processes_running(&["sleep", &seconds]).is_empty()).await;

    let status = f.sandbox.background_output(&started.id, 4096).await.unwrap();
    assert!(status.running);
    assert_eq!(status.exit_code, None);
    let expected = format!("listening on {}\n", f.sandbox.workspace().join("sub").display());
    assert!(status.output_tail.contains(&expected), "{:?}", status.output_tail);
    assert!(status.output_tail.contains("warn\n"), "{:?}", status.output_tail);
    assert!(status.log_path.starts_with(f.sandbox.home()));
    // The log is readable from inside the sandbox too.
    let outcome = common::run(&f.sandbox, &format!("cat {}", status.log_path.display())).await;
    assert!(outcome.stdout.head.contains(&expected));
    // A bounded read returns the end.
    let tail = f.sandbox.background_output(&started.id, 5).await.unwrap();
    assert_eq!(tail.output_tail, "warn\n");

    let list = f.sandbox.list_background().await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].id, started.id);
    assert!(list[0].running);

    let stopped = f.sandbox.stop_background(&started.id).await.unwrap();
    assert!(!stopped.running);
    assert_eq!(stopped.exit_code, Some(128 + 9));
    assert!(processes_running(&["sleep", &seconds]).is_empty(), "the background process survived stop");
    assert!(!f.sandbox.list_background().await[0].running);
    // Stopping again is harmless.
    assert!(!f.sandbox.stop_background(&started.id).await.unwrap().running);
}

async fn a_background_process_that_exits_returns_early(mode: SandboxMode) {
    let f = fixture(mode);
    let settle = Duration::from_secs(60);
    let began = Instant::now();
    let request = BackgroundRequest::new("echo bye; exit 4").settle(settle);
    let started = f.sandbox.start_background(request).await.unwrap();
    assert!(began.elapsed() < settle);
    assert_eq!(started.exited, Some(4));
    assert_eq!(started.output, "bye\n");
    let status = f.sandbox.background_output(&started.id, 100).await.unwrap();
    assert!(!status.running);
    assert_eq!(status.exit_code, Some(4));

    // What it printed during the settle time is bounded.
    let request = BackgroundRequest::new("seq 1 100000").settle(settle);
    let started = f.sandbox.start_background(request).await.unwrap();
    assert_eq!(started.exited, Some(0));
    assert!(started.output.len() < 33 * 1024, "{}", started.output.len());
    assert!(started.output.starts_with("1\n2\n3\n"));
    assert!(started.output.ends_with("99999\n100000\n"));
    assert!(started.output.contains("bytes omitted"));
}

async fn unknown_background_ids_are_refused(mode: SandboxMode) {
    let f = fixture(mode);
    let error = f.sandbox.background_output("bg-42", 10).await.unwrap_err();
    assert!(matches!(error, SandboxError::UnknownBackground(_)), "{error}");
    let error = f.sandbox.stop_background("bg-42").await.unwrap_err();
    assert!(matches!(error, SandboxError::UnknownBackground(_)), "{error}");
}

async fn shutdown_kills_everything_the_sandbox_started(mode: SandboxMode) {
    let f = fixture(mode);
    let server = format!("1000.{}", unique());
    let daemon = format!("1000.{}", unique());
    let foreground = format!("1000.{}", unique());

    let started =
        f.sandbox.start_background(BackgroundRequest::new(format!("exec sleep {server}")).settle(Duration::ZERO));
    let started = started.await.unwrap();
    assert_eq!(started.exited, None);

    let (sink, mut output) = channel_sink();
    let command = format!(
        "nohup sleep {daemon} >/dev/null 2>&1 &\n\
         until [ \"$(cat /proc/$!/comm 2>/dev/null)\" = sleep ]; do :; done\n\
         echo started\n\
         sleep {foreground}"
    );
    let sandbox = &f.sandbox;
    let exec = sandbox.exec(ExecRequest::new(command), Some(sink), CancellationToken::new());
    let drive = async {
        wait_for_output(&mut output, "started").await;
        eventually("all three sleeps run", || {
            [&server, &daemon, &foreground].iter().all(|seconds| !processes_running(&["sleep", seconds]).is_empty())
        })
        .await;
        sandbox.shutdown().await;
        for seconds in [&server, &daemon, &foreground] {
            assert!(processes_running(&["sleep", seconds]).is_empty(), "sleep {seconds} survived shutdown");
        }
    };
    let (outcome, ()) = tokio::join!(exec, drive);
    assert_eq!(outcome.unwrap().ended_by, Ended::Cancelled);

    let error = f.sandbox.exec(ExecRequest::new("true"), None, CancellationToken::new()).await.unwrap_err();
    assert!(matches!(error, SandboxError::ShutDown), "{error}");
    let error = f.sandbox.start_background(BackgroundRequest::new("true")).await.unwrap_err();
    assert!(matches!(error, SandboxError::ShutDown), "{error}");
    assert!(!f.sandbox.list_background().await[0].running);
    // The workspace stays usable for the file operations.
    f.sandbox.write_file("after.txt".as_ref(), b"ok").await.unwrap();
}

async fn dropping_the_sandbox_kills_its_processes(mode: SandboxMode) {
    let f = fixture(mode);
    let seconds = format!("1000.{}", unique());
    let request = BackgroundRequest::new(format!("exec sleep {seconds}")).settle(Duration::ZERO);
    f.sandbox.start_background(request).await.unwrap();
    eventually("the background sleep runs", || !processes_running(&["sleep", &seconds]).is_empty()).await;
    drop(f);
    // Drop only sends the signals; the kernel finishes the job shortly after.
    eventually("the background sleep is gone", || processes_running(&["sleep", &seconds]).is_empty()).await;
}
