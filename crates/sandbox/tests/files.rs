//! File operations and their confinement to the workspace, in both isolation modes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod common;

use std::os::unix::fs::symlink;
use std::path::Path;

use common::{fixture, run};
use rswe_sandbox::{DirEntry, Sandbox, SandboxError, SandboxMode};

in_both_modes!(
    files_round_trip_and_parents_are_created,
    paths_outside_the_workspace_are_refused,
    symlinks_leading_outside_are_refused,
    directories_are_listed_without_following_links,
    missing_files_and_directories_give_clear_errors,
);

fn is_outside(result: Result<impl std::fmt::Debug, SandboxError>) -> bool {
    matches!(result, Err(SandboxError::OutsideWorkspace { .. }))
}

async fn files_round_trip_and_parents_are_created(mode: SandboxMode) {
    let f = fixture(mode);
    let sandbox = &f.sandbox;
    sandbox.write_file("a/b/c.txt".as_ref(), b"first").await.unwrap();
    sandbox.write_file("a/b/c.txt".as_ref(), b"second").await.unwrap();
    assert_eq!(sandbox.read_file("a/b/c.txt".as_ref()).await.unwrap(), b"second");
    let absolute = sandbox.workspace().join("a/b/c.txt");
    assert_eq!(sandbox.read_file(&absolute).await.unwrap(), b"second");
    assert_eq!(sandbox.resolve("a/./b/../b/c.txt".as_ref()).await.unwrap(), absolute);
    assert_eq!(sandbox.resolve(".".as_ref()).await.unwrap(), sandbox.workspace());
    assert_eq!(run(sandbox, "cat a/b/c.txt").await.stdout.head, "second");
    // A link inside the workspace is fine.
    run(sandbox, "ln -s a/b inner-link").await;
    assert_eq!(sandbox.read_file("inner-link/c.txt".as_ref()).await.unwrap(), b"second");
    assert_eq!(sandbox.resolve("inner-link/c.txt".as_ref()).await.unwrap(), absolute);
}

async fn paths_outside_the_workspace_are_refused(mode: SandboxMode) {
    let f = fixture(mode);
    let sandbox = &f.sandbox;
    let outside = f.dir.path().join("outside.txt");
    std::fs::write(&outside, "outside").unwrap();
    for path in ["../home/x", "../../s2/workspace/notes.txt", "a/../../x", "/etc/passwd"] {
        assert!(is_outside(sandbox.read_file(path.as_ref()).await), "read {path}");
        assert!(is_outside(sandbox.write_file(path.as_ref(), b"x").await), "write {path}");
        assert!(is_outside(sandbox.list_dir(path.as_ref(), 1).await), "list {path}");
        assert!(is_outside(sandbox.resolve(path.as_ref()).await), "resolve {path}");
    }
    assert!(is_outside(sandbox.read_file(&f.secret).await));
    assert!(is_outside(sandbox.write_file(&outside, b"overwritten").await));
    assert_eq!(common::read_to_string(&outside), "outside");
    let error = sandbox.read_file("../secret.txt".as_ref()).await.unwrap_err();
    assert!(error.to_string().contains("outside the workspace"), "{error}");
}

async fn symlinks_leading_outside_are_refused(mode: SandboxMode) {
    let f = fixture(mode);
    let sandbox = &f.sandbox;
    let target = f.dir.path().join("target");
    std::fs::create_dir(&target).unwrap();
    std::fs::write(target.join("file"), "outside").unwrap();
    // Links made by a command, as an agent would.
    let outcome = run(
        sandbox,
        &format!(
            "ln -s /etc etc-link && ln -s {0} dir-link && ln -s {0}/file file-link && ln -s {0}/new dangling && echo ok",
            target.display()
        ),
    )
    .await;
    assert_eq!(outcome.stdout.head, "ok\n");
    for path in ["etc-link/passwd", "dir-link/file", "file-link", "dangling"] {
        assert!(is_outside(sandbox.read_file(path.as_ref()).await), "read {path}");
        assert!(is_outside(sandbox.write_file(path.as_ref(), b"x").await), "write {path}");
    }
    assert!(is_outside(sandbox.list_dir("dir-link".as_ref(), 1).await));
    assert!(is_outside(sandbox.write_file("dir-link/created".as_ref(), b"x").await));
    assert_eq!(common::read_to_string(&target.join("file")), "outside");
    assert!(!target.join("new").exists());
    assert!(!target.join("created").exists());
    // A link planted from the host behaves the same.
    symlink(&f.data, sandbox.workspace().join("data-link")).unwrap();
    assert!(is_outside(sandbox.read_file("data-link/secret.txt".as_ref()).await));
}

async fn directories_are_listed_without_following_links(mode: SandboxMode) {
    let f = fixture(mode);
    let sandbox = &f.sandbox;
    sandbox.write_file("src/main.rs".as_ref(), b"fn main() {}\n").await.unwrap();
    sandbox.write_file("src/deep/mod.rs".as_ref(), b"").await.unwrap();
    sandbox.write_file("README.md".as_ref(), b"hi").await.unwrap();
    symlink("/etc", sandbox.workspace().join("etc-link")).unwrap();
    let ws = sandbox.workspace();
    let entry = |path: &str, is_dir: bool, is_symlink: bool, size: u64| DirEntry {
        path: ws.join(path),
        is_dir,
        is_symlink,
        size,
    };

    let top = sandbox.list_dir(".".as_ref(), 1).await.unwrap();
    let without_size = |entries: Vec<DirEntry>| -> Vec<(std::path::PathBuf, bool, bool)> {
        entries.into_iter().map(|entry| (entry.path, entry.is_dir, entry.is_symlink)).collect()
    };
    assert_eq!(
        without_size(top),
        vec![(ws.join("README.md"), false, false), (ws.join("etc-link"), false, true), (ws.join("src"), true, false)]
    );
    let deep = sandbox.list_dir("src".as_ref(), 5).await.unwrap();
    assert_eq!(deep.len(), 3);
    assert_eq!(deep[1], entry("src/deep/mod.rs", false, false, 0));
    assert_eq!(deep[2], entry("src/main.rs", false, false, 13));
    assert!(deep[0].is_dir && deep[0].path == ws.join("src/deep"));
    // Depth 0 is taken as 1.
    assert_eq!(sandbox.list_dir(Path::new("src"), 0).await.unwrap().len(), 2);
}

async fn missing_files_and_directories_give_clear_errors(mode: SandboxMode) {
    let f = fixture(mode);
    let sandbox = &f.sandbox;
    let error = sandbox.read_file("missing.txt".as_ref()).await.unwrap_err();
    assert!(matches!(error, SandboxError::NotFound { .. }), "{error}");
    sandbox.write_file("dir/file".as_ref(), b"").await.unwrap();
    let error = sandbox.read_file("dir".as_ref()).await.unwrap_err();
    assert!(matches!(error, SandboxError::IsADirectory { .. }), "{error}");
    let error = sandbox.write_file("dir".as_ref(), b"x").await.unwrap_err();
    assert!(matches!(error, SandboxError::IsADirectory { .. }), "{error}");
    let error = sandbox.write_file(".".as_ref(), b"x").await.unwrap_err();
    assert!(matches!(error, SandboxError::IsADirectory { .. }), "{error}");
    let error = sandbox.list_dir("dir/file".as_ref(), 1).await.unwrap_err();
    assert!(matches!(error, SandboxError::NotADirectory { .. }), "{error}");
    let error = sandbox.list_dir("nowhere".as_ref(), 1).await.unwrap_err();
    assert!(matches!(error, SandboxError::NotFound { .. }), "{error}");
}
