//! Foreground commands, in both isolation modes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{channel_sink, eventually, fixture, processes_running, run, unique, wait_for_output};
use rswe_sandbox::{Ended, ExecRequest, OutputChunk, OutputSink, OutputStream, Sandbox, SandboxError, SandboxMode};
use tokio_util::sync::CancellationToken;

in_both_modes!(
    exit_code_and_both_streams_are_reported,
    a_command_killed_by_a_signal_says_so,
    inactivity_timeout_kills_a_silent_command,
    output_resets_the_inactivity_timeout,
    hard_timeout_kills_a_chatty_command,
    cancellation_kills_the_command,
    environment_is_cleared_except_the_allow_list,
    printed_paths_work_in_file_operations,
    working_directory_must_be_inside_the_workspace,
    output_is_streamed_live,
    processes_left_behind_are_killed_when_the_command_returns,
    long_output_is_bounded_and_saved_in_full,
);

async fn exit_code_and_both_streams_are_reported(mode: SandboxMode) {
    let f = fixture(mode);
    let outcome = run(&f.sandbox, "echo out; echo err >&2; exit 3").await;
    assert_eq!(outcome.exit_code, Some(3));
    assert_eq!(outcome.signal, None);
    assert_eq!(outcome.ended_by, Ended::Exited);
    assert!(!outcome.success());
    assert_eq!(outcome.stdout.head, "out\n");
    assert_eq!(outcome.stderr.head, "err\n");
    assert_eq!(outcome.stdout.total_bytes, 4);
    assert!(!outcome.stdout.is_truncated());

    let outcome = run(&f.sandbox, "true").await;
    assert!(outcome.success());
    assert_eq!(outcome.stdout.head, "");
}

async fn a_command_killed_by_a_signal_says_so(mode: SandboxMode) {
    let f = fixture(mode);
    let outcome = run(&f.sandbox, "kill -TERM $$").await;
    assert_eq!(outcome.ended_by, Ended::Exited);
    match mode {
        // bubblewrap's init reports a signal death as 128 + signal, like a shell.
        SandboxMode::Bubblewrap => assert_eq!((outcome.exit_code, outcome.signal), (Some(143), None)),
        _ => assert_eq!((outcome.exit_code, outcome.signal), (None, Some(15))),
    }
}

async fn inactivity_timeout_kills_a_silent_command(mode: SandboxMode) {
    let f = fixture(mode);
    let request = ExecRequest::new("echo starting; sleep 100").inactivity_timeout(Duration::from_secs(1));
    let outcome = f.sandbox.exec(request, None, CancellationToken::new()).await.unwrap();
    assert_eq!(outcome.ended_by, Ended::InactivityTimeout);
    assert_eq!(outcome.signal, Some(9));
    assert_eq!(outcome.stdout.head, "starting\n");
    assert!(outcome.duration < Duration::from_secs(100));
}

async fn output_resets_the_inactivity_timeout(mode: SandboxMode) {
    let f = fixture(mode);
    let command = "for i in 1 2 3 4 5 6 7; do echo $i; sleep 0.3; done; echo done";
    let request = ExecRequest::new(command).inactivity_timeout(Duration::from_secs(1));
    let outcome = f.sandbox.exec(request, None, CancellationToken::new()).await.unwrap();
    assert_eq!(outcome.ended_by, Ended::Exited);
    assert_eq!(outcome.exit_code, Some(0));
    assert!(outcome.stdout.head.ends_with("7\ndone\n"), "{:?}", outcome.stdout.head);
    assert!(outcome.duration >= Duration::from_secs(2), "{:?}", outcome.duration);
}

async fn hard_timeout_kills_a_chatty_command(mode: SandboxMode) {
    let f = fixture(mode);
    let request = ExecRequest::new("while true; do echo tick; sleep 0.05; done")
        .inactivity_timeout(Duration::from_secs(60))
        .hard_timeout(Duration::from_secs(1));
    let outcome = f.sandbox.exec(request, None, CancellationToken::new()).await.unwrap();
    assert_eq!(outcome.ended_by, Ended::HardTimeout);
    assert_eq!(outcome.signal, Some(9));
    assert!(outcome.stdout.head.starts_with("tick\n"));
}

async fn cancellation_kills_the_command(mode: SandboxMode) {
    let f = fixture(mode);
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    let sink: OutputSink = Arc::new(move |chunk: OutputChunk| {
        if chunk.text.contains("ready") {
            trigger.cancel();
        }
    });
    let seconds = format!("1000.{}", unique());
    let request = ExecRequest::new(format!("echo ready; exec sleep {seconds}"));
    let outcome = f.sandbox.exec(request, Some(sink), cancel).await.unwrap();
    assert_eq!(outcome.ended_by, Ended::Cancelled);
    assert_eq!(outcome.signal, Some(9));
    assert!(processes_running(&["sleep", &seconds]).is_empty());
}

async fn environment_is_cleared_except_the_allow_list(mode: SandboxMode) {
    let f = fixture(mode);
    // Cargo sets CARGO_MANIFEST_DIR for tests; the sandbox must not pass it on.
    assert!(std::env::var("CARGO_MANIFEST_DIR").is_ok());
    let request = ExecRequest::new(
        r#"echo "manifest=[${CARGO_MANIFEST_DIR-unset}] home=[$HOME] greeting=[$GREETING] path=[${PATH:+set}] tmp=[${TMPDIR:+set}]""#,
    )
    .env("GREETING", "hello");
    let outcome = f.sandbox.exec(request, None, CancellationToken::new()).await.unwrap();
    let home = f.sandbox.home().display();
    assert_eq!(outcome.stdout.head, format!("manifest=[unset] home=[{home}] greeting=[hello] path=[set] tmp=[set]\n"));
    let outcome = run(&f.sandbox, "env | cut -d= -f1 | sort | tr '\\n' ' '").await;
    for name in outcome.stdout.head.split_whitespace() {
        assert!(
            [
                "PATH",
                "LANG",
                "LC_ALL",
                "TERM",
                "TZ",
                "HOME",
                "USER",
                "TMPDIR",
                "PWD",
                "SHLVL",
                "_",
                "RSWE_SANDBOX_PROCESS"
            ]
            .contains(&name),
            "unexpected variable {name} in {}",
            outcome.stdout.head
        );
    }

    let bad = ExecRequest::new("true").env("A=B", "x");
    let error = f.sandbox.exec(bad, None, CancellationToken::new()).await.unwrap_err();
    assert!(matches!(error, SandboxError::InvalidRequest(_)), "{error}");
}

async fn printed_paths_work_in_file_operations(mode: SandboxMode) {
    let f = fixture(mode);
    let outcome = run(&f.sandbox, "mkdir -p sub && cd sub && echo hello > made.txt && realpath made.txt && pwd").await;
    assert_eq!(outcome.exit_code, Some(0), "{outcome:?}");
    let mut lines = outcome.stdout.head.lines();
    let printed = lines.next().unwrap();
    let pwd = lines.next().unwrap();
    assert_eq!(printed, f.sandbox.workspace().join("sub/made.txt").display().to_string());
    assert_eq!(pwd, f.sandbox.workspace().join("sub").display().to_string());
    assert_eq!(f.sandbox.read_file(printed.as_ref()).await.unwrap(), b"hello\n");

    let written = f.sandbox.resolve("notes/from-tools.txt".as_ref()).await.unwrap();
    f.sandbox.write_file(&written, b"from the file tools\n").await.unwrap();
    let outcome = run(&f.sandbox, &format!("cat {}", written.display())).await;
    assert_eq!(outcome.stdout.head, "from the file tools\n");

    let request = ExecRequest::new("pwd; cat made.txt").cwd("sub");
    let outcome = f.sandbox.exec(request, None, CancellationToken::new()).await.unwrap();
    assert_eq!(outcome.stdout.head, format!("{pwd}\nhello\n"));
    let outcome = run(&f.sandbox, "echo $HOME > home.txt && touch $HOME/in-home && ls $HOME").await;
    assert!(outcome.stdout.head.contains("in-home"));
    assert!(f.sandbox.home().join("in-home").exists());
}

async fn working_directory_must_be_inside_the_workspace(mode: SandboxMode) {
    let f = fixture(mode);
    for cwd in ["..", "/etc", "../home"] {
        let request = ExecRequest::new("pwd").cwd(cwd);
        let error = f.sandbox.exec(request, None, CancellationToken::new()).await.unwrap_err();
        assert!(matches!(error, SandboxError::OutsideWorkspace { .. }), "{cwd}: {error}");
    }
    f.sandbox.write_file("file.txt".as_ref(), b"").await.unwrap();
    let request = ExecRequest::new("pwd").cwd("file.txt");
    let error = f.sandbox.exec(request, None, CancellationToken::new()).await.unwrap_err();
    assert!(matches!(error, SandboxError::NotADirectory { .. }), "{error}");
    let request = ExecRequest::new("pwd").cwd("missing");
    let error = f.sandbox.exec(request, None, CancellationToken::new()).await.unwrap_err();
    assert!(matches!(error, SandboxError::NotFound { .. }), "{error}");
}

async fn output_is_streamed_live(mode: SandboxMode) {
    let f = fixture(mode);
    let chunks: Arc<Mutex<Vec<OutputChunk>>> = Arc::default();
    let seen = chunks.clone();
    let sink: OutputSink = Arc::new(move |chunk| seen.lock().unwrap().push(chunk));
    let command = "printf 'h\\xc3'; sleep 0.1; printf '\\xa9llo\\n'; echo oops >&2";
    let outcome = f.sandbox.exec(ExecRequest::new(command), Some(sink), CancellationToken::new()).await.unwrap();
    assert_eq!(outcome.stdout.head, "héllo\n");
    let chunks = chunks.lock().unwrap();
    let stdout: String =
        chunks.iter().filter(|chunk| chunk.stream == OutputStream::Stdout).map(|chunk| chunk.text.as_str()).collect();
    let stderr: String =
        chunks.iter().filter(|chunk| chunk.stream == OutputStream::Stderr).map(|chunk| chunk.text.as_str()).collect();
    assert_eq!(stdout, "héllo\n");
    assert_eq!(stderr, "oops\n");
    assert!(chunks.iter().all(|chunk| !chunk.text.contains('\u{fffd}')), "{chunks:?}");
}

async fn processes_left_behind_are_killed_when_the_command_returns(mode: SandboxMode) {
    let f = fixture(mode);
    let daemon = format!("1000.{}", unique());
    let (sink, mut output) = channel_sink();
    let command = format!(
        "nohup sleep {daemon} >/dev/null 2>&1 &\n\
         until [ \"$(cat /proc/$!/comm 2>/dev/null)\" = sleep ]; do :; done\n\
         echo started"
    );
    let sandbox = &f.sandbox;
    let daemon_seen = async {
        wait_for_output(&mut output, "started").await;
        // The command is still running or has just ended: the daemon may be alive, but must be
        // gone once exec returns.
    };
    let (outcome, ()) =
        tokio::join!(sandbox.exec(ExecRequest::new(command), Some(sink), CancellationToken::new()), daemon_seen);
    let outcome = outcome.unwrap();
    assert_eq!(outcome.exit_code, Some(0), "{outcome:?}");
    // Killed as the command returns; under bubblewrap the kernel may still be tearing down the
    // command's PID namespace for a moment on a loaded machine, so its end is waited for (bounded).
    eventually("the daemon is gone", || processes_running(&["sleep", &daemon]).is_empty()).await;
}

async fn long_output_is_bounded_and_saved_in_full(mode: SandboxMode) {
    let f = fixture(mode);
    assert_eq!(run(&f.sandbox, "git init -q . && echo ok").await.stdout.head, "ok\n");
    let outcome = run(&f.sandbox, "seq 1 100000; seq 1 10 >&2").await;
    let expected: String = (1..=100_000).map(|n| format!("{n}\n")).collect();
    assert_eq!(outcome.stdout.total_bytes, expected.len() as u64);
    assert!(outcome.stdout.is_truncated());
    assert_eq!(outcome.stdout.head.len(), 16 * 1024);
    assert_eq!(outcome.stdout.tail.len(), 16 * 1024);
    assert!(expected.starts_with(&outcome.stdout.head));
    assert!(expected.ends_with(&outcome.stdout.tail));
    assert_eq!(outcome.stdout.omitted_bytes, (expected.len() - 32 * 1024) as u64);
    let full = outcome.stdout.full_output.clone().unwrap();
    assert!(full.starts_with(f.sandbox.workspace().join(".rswe/outputs")), "{}", full.display());
    assert_eq!(f.sandbox.read_file(&full).await.unwrap(), expected.as_bytes());
    assert!(!outcome.stderr.is_truncated());
    assert_eq!(outcome.stderr.full_output, None);

    let exclude = common::read_to_string(&f.sandbox.workspace().join(".git/info/exclude"));
    assert_eq!(exclude.lines().filter(|line| *line == ".rswe/").count(), 1, "{exclude}");
    let status = run(&f.sandbox, "git status --porcelain --untracked-files=all").await;
    assert_eq!(status.stdout.head, "");
    // A second spill does not add the line again.
    run(&f.sandbox, "seq 1 100000").await;
    let exclude = common::read_to_string(&f.sandbox.workspace().join(".git/info/exclude"));
    assert_eq!(exclude.lines().filter(|line| *line == ".rswe/").count(), 1, "{exclude}");
}
