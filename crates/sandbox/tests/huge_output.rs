//! A command printing a gigabyte completes with bounded memory. Alone in its test binary so that the
//! process's peak memory reflects only this test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rswe_sandbox::{ExecRequest, OutputSink, Sandbox, SandboxMode};
use tokio_util::sync::CancellationToken;

const GIGABYTE: u64 = 1_000_000_000;

/// Peak resident memory of this process, in kB.
fn peak_rss_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|line| line.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gigabyte_of_output_uses_bounded_memory() {
    common::require_bubblewrap();
    let before = peak_rss_kb();
    for mode in [SandboxMode::Bubblewrap, SandboxMode::None] {
        let f = common::fixture(mode);
        let streamed = Arc::new(AtomicU64::new(0));
        let counter = streamed.clone();
        let sink: OutputSink = Arc::new(move |chunk| {
            counter.fetch_add(chunk.text.len() as u64, Ordering::Relaxed);
        });
        let request = ExecRequest::new(format!("head -c {GIGABYTE} /dev/zero | tr '\\0' a"));
        let outcome = f.sandbox.exec(request, Some(sink), CancellationToken::new()).await.unwrap();

        assert!(outcome.success(), "{mode:?}: {:?}", outcome.ended_by);
        let stdout = &outcome.stdout;
        assert_eq!(stdout.total_bytes, GIGABYTE);
        assert_eq!(stdout.head.len(), 16 * 1024);
        assert_eq!(stdout.tail.len(), 16 * 1024);
        assert!(stdout.head.bytes().chain(stdout.tail.bytes()).all(|byte| byte == b'a'));
        assert_eq!(stdout.omitted_bytes, GIGABYTE - 32 * 1024);
        assert_eq!(streamed.load(Ordering::Relaxed), GIGABYTE);
        // Everything went to the file, streamed.
        let full = stdout.full_output.as_ref().unwrap();
        assert_eq!(std::fs::metadata(full).unwrap().len(), GIGABYTE);
    }
    let grown_mb = (peak_rss_kb() - before) / 1024;
    assert!(grown_mb < 200, "peak memory grew by {grown_mb} MB while capturing 2 GB of output");
}
