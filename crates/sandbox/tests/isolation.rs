//! What bubblewrap must keep out of reach, proven by trying. These tests fail when bubblewrap does
//! not work here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::TcpListener;

use common::{SECRET, fixture, fixture_with, run};
use rswe_sandbox::{Sandbox, SandboxMode};

const BWRAP: SandboxMode = SandboxMode::Bubblewrap;

#[tokio::test]
async fn the_data_directory_and_other_sessions_are_invisible() {
    let f = fixture(BWRAP);
    // Seen from the host, the secrets are there.
    assert_eq!(common::read_to_string(&f.secret), SECRET);
    assert_eq!(common::read_to_string(&f.other_session_file), SECRET);

    let outcome = run(&f.sandbox, &format!("cat {}", f.secret.display())).await;
    assert_ne!(outcome.exit_code, Some(0));
    assert!(!outcome.stdout.head.contains(SECRET));
    let outcome = run(&f.sandbox, &format!("cat {}", f.other_session_file.display())).await;
    assert_ne!(outcome.exit_code, Some(0));
    assert!(!outcome.stdout.head.contains(SECRET));
    let outcome =
        run(&f.sandbox, &format!("ls -A {}; grep -rl {SECRET} {} 2>&1", f.data.display(), f.data.display())).await;
    // Only the way down to this session's own directories remains.
    assert_eq!(outcome.stdout.head.lines().next(), Some("sessions"), "{}", outcome.stdout.head);
    assert!(!outcome.stdout.head.contains("secret.txt"), "{}", outcome.stdout.head);
    let outcome = run(&f.sandbox, &format!("ls -A {}/sessions", f.data.display())).await;
    assert_eq!(outcome.stdout.head, "s1\n");
}

#[tokio::test]
async fn hidden_files_and_hidden_paths_inside_the_workspace_are_empty() {
    let config_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(config_file.path(), format!("api_key = \"{SECRET}\"\n")).unwrap();
    let config_path = config_file.path().to_path_buf();
    let mut env_file = None;
    let f = fixture_with(BWRAP, |config| {
        let inner = config.root.join("workspace/.env");
        std::fs::create_dir_all(inner.parent().unwrap()).unwrap();
        std::fs::write(&inner, SECRET).unwrap();
        config.hidden_paths.push(config_path.clone());
        config.hidden_paths.push(inner.clone());
        env_file = Some(inner);
    });
    let outcome = run(&f.sandbox, &format!("cat {}; cat .env; echo end", config_path.display())).await;
    assert_eq!(outcome.stdout.head, "end\n");
    // The file operations refuse it too.
    let error = f.sandbox.read_file(&env_file.unwrap()).await.unwrap_err();
    assert!(matches!(error, rswe_sandbox::SandboxError::Hidden { .. }), "{error}");
}

#[tokio::test]
async fn the_host_home_is_invisible() {
    let f = fixture(BWRAP);
    let Some(host_home) = std::env::var_os("HOME").map(std::path::PathBuf::from) else {
        panic!("HOME is not set for the tests");
    };
    let on_host = std::fs::read_dir(&host_home).unwrap().count();
    assert!(on_host > 0, "the host home is empty, so this test proves nothing");
    let outcome = run(&f.sandbox, &format!("ls -A {} | wc -l", host_home.display())).await;
    assert_eq!(outcome.stdout.head.trim(), "0");
    let outcome = run(&f.sandbox, "echo $HOME").await;
    assert_eq!(outcome.stdout.head.trim(), f.sandbox.home().display().to_string());
}

#[tokio::test]
async fn tmp_is_private() {
    let f = fixture(BWRAP);
    let host_file = tempfile::NamedTempFile::new_in("/tmp").unwrap();
    let name = common::unique();
    let outcome = run(
        &f.sandbox,
        &format!(
            "test -e {} && echo host-visible; echo x > /tmp/rswe-private-{name} && echo written",
            host_file.path().display()
        ),
    )
    .await;
    assert_eq!(outcome.stdout.head, "written\n");
    assert!(!std::path::Path::new(&format!("/tmp/rswe-private-{name}")).exists());
    // Nor does it survive to the next command.
    let outcome = run(&f.sandbox, &format!("test -e /tmp/rswe-private-{name} && echo kept")).await;
    assert_eq!(outcome.stdout.head, "");
}

#[tokio::test]
async fn the_system_is_read_only_and_processes_are_separate() {
    let f = fixture(BWRAP);
    // Even root cannot make it writable again: no capabilities are left.
    let outcome = run(
        &f.sandbox,
        "grep CapEff /proc/self/status; mount -o remount,rw / 2>/dev/null && echo remounted; \
         touch /usr/rswe-should-not-exist 2>&1; echo $?",
    )
    .await;
    assert!(outcome.stdout.head.starts_with("CapEff:\t0000000000000000\n"), "{}", outcome.stdout.head);
    assert!(!outcome.stdout.head.contains("remounted"), "{}", outcome.stdout.head);
    assert!(outcome.stdout.head.contains("Read-only file system"), "{}", outcome.stdout.head);
    assert!(!std::path::Path::new("/usr/rswe-should-not-exist").exists());
    // Its own PID namespace: the test process is not visible, and few processes are.
    let outcome = run(
        &f.sandbox,
        &format!("test -e /proc/{}/cmdline || echo absent; ls /proc | grep -c '^[0-9]'", std::process::id()),
    )
    .await;
    let mut lines = outcome.stdout.head.lines();
    assert_eq!(lines.next(), Some("absent"));
    let count: u32 = lines.next().unwrap().parse().unwrap();
    assert!(count <= 8, "{count} processes visible");
}

#[tokio::test]
async fn network_off_blocks_even_localhost() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let connect = format!("exec 3<>/dev/tcp/127.0.0.1/{port} && echo connected");

    let open = fixture(BWRAP);
    assert!(open.sandbox.network());
    let outcome = run(&open.sandbox, &connect).await;
    assert_eq!(outcome.stdout.head, "connected\n", "{outcome:?}");

    let closed = fixture_with(BWRAP, |config| config.network = false);
    assert!(!closed.sandbox.network());
    let outcome = run(&closed.sandbox, &connect).await;
    assert_ne!(outcome.exit_code, Some(0));
    assert_eq!(outcome.stdout.head, "");
    drop(listener);
}

#[tokio::test]
async fn readonly_paths_reappear_under_a_covered_directory() {
    let dir = tempfile::tempdir().unwrap();
    let hidden = dir.path().canonicalize().unwrap().join("hidden");
    let tool = hidden.join("toolchain");
    std::fs::create_dir_all(&tool).unwrap();
    std::fs::write(tool.join("version"), "1.0\n").unwrap();
    std::fs::write(hidden.join("private"), SECRET).unwrap();
    let f = fixture_with(BWRAP, |config| {
        config.hidden_paths.push(hidden.clone());
        config.readonly_paths.push(tool.clone());
    });
    let outcome = run(
        &f.sandbox,
        &format!("cat {0}/toolchain/version; ls {0}; touch {0}/toolchain/x 2>/dev/null || echo ro", hidden.display()),
    )
    .await;
    assert_eq!(outcome.stdout.head, "1.0\ntoolchain\nro\n");
}

#[tokio::test]
async fn auto_mode_uses_bubblewrap_when_it_works() {
    common::require_bubblewrap();
    let dir = tempfile::tempdir().unwrap();
    let sandbox = rswe_sandbox::LocalSandbox::new(rswe_sandbox::LocalSandboxConfig::new(dir.path())).unwrap();
    assert_eq!(sandbox.mode(), BWRAP);
    // Its own PID namespace: the shell is one of the first processes.
    let outcome = run(&sandbox, "echo $$").await;
    let pid: u32 = outcome.stdout.head.trim().parse().unwrap();
    assert!(pid < 10, "pid {pid}");
}
