//! The shell tool against a real local sandbox: real processes, real output files.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Fixture;
use rswe_tools::{ProgressSink, ToolProgress};
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn reports_exit_code_stdout_and_stderr_without_calling_a_failure_an_error() {
    let fixture = Fixture::new();
    let text = fixture.ok("shell", json!({"command": "echo out; echo err >&2; exit 3"})).await;
    assert!(text.starts_with("exit code 3 · "), "{text}");
    assert!(text.contains("stdout:\nout"), "{text}");
    assert!(text.contains("stderr:\nerr"), "{text}");

    let text = fixture.ok("shell", json!({"command": "true"})).await;
    assert!(text.starts_with("exit code 0"), "{text}");
    assert!(text.contains("(no output)"), "{text}");
}

#[tokio::test]
async fn names_the_signal_that_killed_a_command() {
    let fixture = Fixture::new();
    let text = fixture.ok("shell", json!({"command": "kill -9 $$"})).await;
    // Plain processes report the signal; under bubblewrap its init reports 128 + 9.
    assert!(
        text.starts_with("killed by signal 9 (SIGKILL)")
            || text.starts_with("exit code 137, i.e. killed by signal 9 (SIGKILL)"),
        "{text}"
    );
}

#[tokio::test]
async fn runs_in_the_given_directory_inside_the_workspace_only() {
    let fixture = Fixture::new();
    std::fs::create_dir(fixture.workspace().join("sub")).unwrap();
    let text = fixture.ok("shell", json!({"command": "pwd", "cwd": "sub"})).await;
    assert!(text.contains(&format!("{}/sub", fixture.workspace().display())), "{text}");

    let text = fixture.err("shell", json!({"command": "pwd", "cwd": "/etc"})).await;
    assert!(text.contains("outside the workspace"), "{text}");
}

#[tokio::test]
async fn bounds_long_output_and_points_to_the_full_output_the_editor_can_read() {
    let fixture = Fixture::new();
    let text = fixture.ok("shell", json!({"command": "seq 1 200000"})).await;
    assert!(text.len() < 64 * 1024, "output not bounded: {} bytes", text.len());
    assert!(text.contains("stdout:\n1\n2\n3\n"), "{}", &text[..200]);
    assert!(text.trim_end().ends_with("199999\n200000"), "{}", &text[text.len() - 200..]);
    let marker = text.lines().find(|line| line.starts_with("[… ")).expect("a marker for the left-out part");
    assert!(marker.contains("left out"), "{marker}");
    let path = marker.split(" is in ").nth(1).and_then(|rest| rest.split(": view it").next()).unwrap();
    assert!(path.starts_with(&fixture.workspace().display().to_string()), "{path}");

    let tail = fixture.ok("editor", json!({"command": "view", "path": path, "view_range": [199999, -1]})).await;
    assert_eq!(tail, "199999\t199999\n200000\t200000");
    let middle = fixture.ok("editor", json!({"command": "view", "path": path, "view_range": [100000, 100001]})).await;
    assert!(middle.starts_with("100000\t100000\n100001\t100001"), "{middle}");
}

#[tokio::test]
async fn kills_a_silent_command_after_the_inactivity_timeout() {
    let fixture = Fixture::new();
    let text = fixture.err("shell", json!({"command": "echo begun; sleep 30", "timeout_secs": 1})).await;
    assert!(text.starts_with("killed after 1 s without output"), "{text}");
    assert!(text.contains("timeout_secs"), "{text}");
    assert!(text.contains("stdout:\nbegun"), "{text}");
}

#[tokio::test]
async fn streams_output_and_stops_when_cancelled() {
    let fixture = Fixture::new();
    let cancel = CancellationToken::new();
    let seen: Arc<Mutex<Vec<ToolProgress>>> = Arc::default();
    let progress: ProgressSink = {
        let (seen, cancel) = (seen.clone(), cancel.clone());
        Arc::new(move |progress: ToolProgress| {
            let started = progress.text.contains("started");
            seen.lock().unwrap().push(progress);
            if started {
                cancel.cancel();
            }
        })
    };
    let context = fixture.context_with(cancel, Some(progress));
    let began = Instant::now();
    let output = fixture.tools.run("shell", json!({"command": "echo started; sleep 30"}), &context).await;
    assert!(began.elapsed() < Duration::from_secs(20), "the command was not stopped");
    assert!(output.is_error);
    let text = output.text_content();
    assert!(text.starts_with("cancelled after"), "{text}");
    let seen = seen.lock().unwrap();
    assert!(seen.iter().all(|p| p.tool_use_id == "toolu_test"));
    assert!(seen.iter().any(|p| p.text.contains("started")));
}

#[tokio::test]
async fn streams_both_streams_as_progress() {
    let fixture = Fixture::new();
    let seen: Arc<Mutex<String>> = Arc::default();
    let progress: ProgressSink = {
        let seen = seen.clone();
        Arc::new(move |progress: ToolProgress| seen.lock().unwrap().push_str(&progress.text))
    };
    let context = fixture.context_with(CancellationToken::new(), Some(progress));
    let output = fixture.tools.run("shell", json!({"command": "echo one; echo two >&2"}), &context).await;
    assert!(!output.is_error);
    let seen = seen.lock().unwrap();
    assert!(seen.contains("one") && seen.contains("two"), "{seen}");
}

fn background_id(text: &str) -> String {
    text.split("background process ").nth(1).unwrap().split(':').next().unwrap().to_string()
}

#[tokio::test]
async fn starts_reads_and_stops_a_background_process() {
    let fixture = Fixture::new();
    let command = "echo ready; while [ ! -f go ]; do sleep 0.05; done; echo second; exec sleep 600";
    let started = fixture.ok("shell", json!({"command": command, "background": true})).await;
    assert!(started.starts_with("Started background process "), "{started}");
    assert!(started.contains("ready"), "{started}");
    let id = background_id(&started);
    assert!(started.contains(&format!("\"background_id\": \"{id}\"")), "{started}");

    let log = fixture.ok("shell", json!({"background_id": id})).await;
    assert!(log.contains("still running"), "{log}");
    assert!(log.contains("ready") && !log.contains("second"), "{log}");
    assert!(log.contains("complete log: "), "{log}");

    // Let it go on, then wait until its log shows the next line.
    fixture.write("go", "");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let log = fixture.ok("shell", json!({"background_id": id, "action": "log"})).await;
        if log.contains("second") {
            break;
        }
        assert!(Instant::now() < deadline, "the background output never showed `second`: {log}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let stopped = fixture.ok("shell", json!({"background_id": id, "action": "stop"})).await;
    assert!(stopped.starts_with(&format!("Stopped background process {id}: ended with exit code")), "{stopped}");
    let log = fixture.ok("shell", json!({"background_id": id})).await;
    assert!(!log.contains("still running"), "{log}");

    let unknown = fixture.err("shell", json!({"background_id": "bg-999"})).await;
    assert!(unknown.contains("no background process `bg-999`"), "{unknown}");
    assert!(unknown.contains(&format!("- {id} (")), "{unknown}");
}

#[tokio::test]
async fn says_when_a_background_command_already_exited() {
    let fixture = Fixture::new();
    let text = fixture.ok("shell", json!({"command": "echo done; exit 4", "background": true})).await;
    assert!(text.contains("already ended with exit code 4."), "{text}");
    assert!(text.contains("done"), "{text}");
}

#[tokio::test]
async fn explains_missing_or_conflicting_parameters() {
    let fixture = Fixture::new();
    assert!(fixture.err("shell", json!({})).await.contains("`command` is required"));
    assert!(fixture.err("shell", json!({"command": "ls", "background_id": "bg-1"})).await.contains("either"));
    assert!(fixture.err("shell", json!({"command": "ls", "action": "stop"})).await.contains("background_id"));
    let text = fixture.err("shell", json!({"command": "ls", "timeout_secs": "soon"})).await;
    assert!(text.starts_with("invalid input for shell"), "{text}");
}
