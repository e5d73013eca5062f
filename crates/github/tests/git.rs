#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Clone and push against a real git smart-HTTP server (`git http-backend`) that requires a token.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rswe_github::git::{
    GitError, PushRequest, clone_repository, current_branch, push_branch, remote_branch_exists, set_config,
};
use rswe_test_support::git_http::{
    GitAccess, GitHttpServer, GitRequest, branch_sha, create_bare, file_at, fork_bare, protect_branch, require_token,
    seed,
};
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;

const TOKEN: &str = "ghs_test0123456789abcdefghijklmnopqrstuvwxyz";
const TIMEOUT: Duration = Duration::from_secs(60);

struct Setup {
    dir: TempDir,
    server: GitHttpServer,
    upstream: PathBuf,
    /// The push mirror, in a directory no workspace is in.
    mirror: PathBuf,
}

impl Setup {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn url(&self) -> String {
        self.server.url("octo", "hello")
    }

    async fn clone_workspace(&self, name: &str) -> PathBuf {
        let workspace = self.path(name);
        clone_repository(&self.url(), &workspace, Some(TOKEN), TIMEOUT, &CancellationToken::new()).await.unwrap();
        workspace
    }

    fn push<'a>(
        &'a self,
        workspace: &'a Path,
        branch: &'a str,
        url: &'a str,
        cancel: &'a CancellationToken,
    ) -> PushRequest<'a> {
        PushRequest {
            workspace_repo: workspace,
            mirror: &self.mirror,
            branch,
            remote_url: url,
            remote_branch: branch,
            token: Some(TOKEN),
            force: false,
            timeout: TIMEOUT,
            cancel,
        }
    }
}

/// `octo/hello` with one commit on `main`, served to the token [`TOKEN`] only.
async fn setup() -> Setup {
    setup_with(require_token(TOKEN)).await
}

async fn setup_with(authorize: Arc<dyn Fn(&GitRequest) -> GitAccess + Send + Sync>) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("server");
    let upstream = create_bare(&root, "octo", "hello").await;
    seed(&upstream, &[("README.md", "hello\n"), ("src/lib.rs", "pub fn f() {}\n")], "main").await;
    let server = GitHttpServer::start(root, authorize).await;
    let mirror = dir.path().join("mirror");
    Setup { dir, server, upstream, mirror }
}

/// Runs git in `dir` as the tests' own user, away from the user's configuration.
async fn git(dir: &Path, args: &[&str]) -> String {
    let output = tokio::time::timeout(
        TIMEOUT,
        tokio::process::Command::new("git")
            .args(["-c", "user.name=Agent", "-c", "user.email=agent@example.com", "-c", "core.hooksPath=/dev/null"])
            .args(args)
            .current_dir(dir)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_TERMINAL_PROMPT", "0")
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("git timed out")
    .unwrap();
    assert!(output.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

/// Commits a change to `file` on `branch` (created when missing) and returns the commit's sha.
async fn commit(workspace: &Path, branch: &str, file: &str, content: &str) -> String {
    if current_branch(workspace).unwrap().as_deref() != Some(branch) {
        git(workspace, &["checkout", "-q", "-B", branch]).await;
    }
    std::fs::write(workspace.join(file), content).unwrap();
    git(workspace, &["add", "--all"]).await;
    git(workspace, &["commit", "-q", "-m", &format!("change {file}")]).await;
    git(workspace, &["rev-parse", "HEAD"]).await.trim().to_owned()
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            files.extend(files_under(&entry.path()));
        } else {
            files.push(entry.path());
        }
    }
    files
}

fn holds(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle.as_bytes())
}

/// No file under `dir` holds the token or the user name it goes with.
fn assert_no_credentials(dir: &Path) {
    let files = files_under(dir);
    assert!(!files.is_empty());
    for file in files {
        let Ok(bytes) = std::fs::read(&file) else { continue };
        for secret in [TOKEN, "x-access-token"] {
            assert!(!holds(&bytes, secret), "{secret} in {}", file.display());
        }
    }
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

#[tokio::test]
async fn clone_with_the_token_leaves_no_credentials_in_the_clone() {
    let setup = setup().await;
    let workspace = setup.clone_workspace("workspace").await;

    assert_eq!(std::fs::read_to_string(workspace.join("README.md")).unwrap(), "hello\n");
    assert_eq!(std::fs::read_to_string(workspace.join("src/lib.rs")).unwrap(), "pub fn f() {}\n");
    assert_no_credentials(&workspace);
    let remote = git(&workspace, &["config", "--file", ".git/config", "remote.origin.url"]).await;
    assert_eq!(remote.trim(), setup.url());
    assert_eq!(current_branch(&workspace).unwrap().as_deref(), Some("main"));
    // Nothing but the clone was left beside it.
    assert_eq!(entries(setup.dir.path()), ["server", "workspace"]);

    let requests = setup.server.requests();
    assert!(requests.iter().any(|r| r.authorized && r.password.as_deref() == Some(TOKEN)));
    assert!(requests.iter().filter(|r| r.authorized).all(|r| r.username.as_deref() == Some("x-access-token")));
    assert!(requests.iter().all(|r| !r.is_push()));
}

#[tokio::test]
async fn clone_into_an_empty_directory_but_never_a_full_one() {
    let setup = setup().await;
    let cancel = CancellationToken::new();
    let empty = setup.path("empty");
    std::fs::create_dir(&empty).unwrap();
    clone_repository(&setup.url(), &empty, Some(TOKEN), TIMEOUT, &cancel).await.unwrap();
    assert_eq!(entries(&empty), [".git", "README.md", "src"]);
    assert_no_credentials(&empty);

    let full = setup.path("full");
    std::fs::create_dir(&full).unwrap();
    std::fs::write(full.join("keep.txt"), "mine").unwrap();
    let before = setup.server.requests().len();
    let error = clone_repository(&setup.url(), &full, Some(TOKEN), TIMEOUT, &cancel).await.unwrap_err();
    assert!(matches!(error, GitError::Destination { .. }), "{error:?}");
    assert!(error.to_string().contains("not empty"), "{error}");
    assert_eq!(entries(&full), ["keep.txt"]);
    assert_eq!(std::fs::read_to_string(full.join("keep.txt")).unwrap(), "mine");

    let file = setup.path("file");
    std::fs::write(&file, "x").unwrap();
    let error = clone_repository(&setup.url(), &file, Some(TOKEN), TIMEOUT, &cancel).await.unwrap_err();
    assert!(matches!(error, GitError::Destination { .. }), "{error:?}");
    assert_eq!(setup.server.requests().len(), before, "git never ran");
}

#[tokio::test]
async fn clone_failures_are_classified_and_leave_nothing() {
    let setup = setup().await;
    let cancel = CancellationToken::new();
    let wrong = "wrong-token-0123456789";
    let dest = setup.path("workspace");

    let error = clone_repository(&setup.url(), &dest, Some(wrong), TIMEOUT, &cancel).await.unwrap_err();
    assert!(matches!(error, GitError::Unauthorized { .. }), "{error:?}");
    let message = format!("{error} {error:?}");
    assert!(!message.contains(wrong) && !message.contains(TOKEN), "{message}");
    assert!(setup.server.requests().iter().any(|r| r.password.as_deref() == Some(wrong) && !r.authorized));

    let error = clone_repository(&setup.url(), &dest, None, TIMEOUT, &cancel).await.unwrap_err();
    assert!(matches!(error, GitError::Unauthorized { .. }), "{error:?}");

    let missing = setup.server.url("octo", "missing");
    let error = clone_repository(&missing, &dest, Some(TOKEN), TIMEOUT, &cancel).await.unwrap_err();
    assert!(matches!(error, GitError::NotFound { .. }), "{error:?}");
    assert!(error.to_string().contains(&missing), "{error}");

    // A failed clone into an empty directory empties it again.
    std::fs::create_dir(&dest).unwrap();
    let error = clone_repository(&missing, &dest, Some(TOKEN), TIMEOUT, &cancel).await.unwrap_err();
    assert!(matches!(error, GitError::NotFound { .. }), "{error:?}");
    assert!(entries(&dest).is_empty());
    std::fs::remove_dir(&dest).unwrap();

    for url in ["git@github.com:octo/hello.git", "ssh://git@github.com/octo/hello", "ext::sh -c id"] {
        let error = clone_repository(url, &dest, Some(TOKEN), TIMEOUT, &cancel).await.unwrap_err();
        assert!(matches!(error, GitError::InvalidUrl { .. }), "{url}: {error:?}");
    }
    let with_credentials = setup.url().replace("http://", &format!("http://x-access-token:{TOKEN}@"));
    let error = clone_repository(&with_credentials, &dest, None, TIMEOUT, &cancel).await.unwrap_err();
    assert!(matches!(error, GitError::InvalidUrl { .. }), "{error:?}");
    assert!(!error.to_string().contains(TOKEN), "{error}");

    assert_eq!(entries(setup.dir.path()), ["server"], "nothing left beside the destination");
}

#[tokio::test]
async fn a_server_answering_not_found_is_not_found() {
    let setup = setup_with(Arc::new(|_: &GitRequest| GitAccess::NotFound)).await;
    let error = clone_repository(&setup.url(), &setup.path("w"), Some(TOKEN), TIMEOUT, &CancellationToken::new())
        .await
        .unwrap_err();
    assert!(matches!(error, GitError::NotFound { .. }), "{error:?}");
}

#[tokio::test]
async fn push_a_new_branch_without_touching_the_workspace_config() {
    let setup = setup().await;
    let cancel = CancellationToken::new();
    let workspace = setup.clone_workspace("workspace").await;
    let sha = commit(&workspace, "rswe/feature", "NEW.md", "new\n").await;
    let config_before = std::fs::read(workspace.join(".git/config")).unwrap();

    let url = setup.url();
    let pushed = push_branch(setup.push(&workspace, "rswe/feature", &url, &cancel)).await.unwrap();
    assert_eq!(pushed, sha);
    assert_eq!(branch_sha(&setup.upstream, "rswe/feature").await.as_deref(), Some(sha.as_str()));
    assert_eq!(file_at(&setup.upstream, "rswe/feature", "NEW.md").await.as_deref(), Some("new\n"));
    assert_eq!(std::fs::read(workspace.join(".git/config")).unwrap(), config_before);
    assert_no_credentials(&workspace);
    assert!(
        setup.server.requests().iter().any(|r| r.is_push() && r.authorized && r.password.as_deref() == Some(TOKEN))
    );

    // Again, to another remote branch, through the existing mirror.
    let again =
        PushRequest { remote_branch: "rswe/feature-2", ..setup.push(&workspace, "rswe/feature", &url, &cancel) };
    assert_eq!(push_branch(again).await.unwrap(), sha);
    assert_eq!(branch_sha(&setup.upstream, "rswe/feature-2").await.as_deref(), Some(sha.as_str()));

    assert!(remote_branch_exists(&url, "rswe/feature", Some(TOKEN), TIMEOUT, &cancel).await.unwrap());
    assert!(!remote_branch_exists(&url, "rswe/feat", Some(TOKEN), TIMEOUT, &cancel).await.unwrap());
    let error = remote_branch_exists(&url, "main", Some("wrong-token-0123456789"), TIMEOUT, &cancel).await.unwrap_err();
    assert!(matches!(error, GitError::Unauthorized { .. }), "{error:?}");
}

#[tokio::test]
async fn push_failures_are_classified() {
    let setup = setup().await;
    let cancel = CancellationToken::new();
    let workspace = setup.clone_workspace("workspace").await;
    let url = setup.url();

    let error = push_branch(setup.push(&workspace, "never-made", &url, &cancel)).await.unwrap_err();
    assert!(matches!(&error, GitError::Failed { message } if message.contains("no branch never-made")), "{error:?}");
    let error = push_branch(setup.push(&workspace, "a..b", &url, &cancel)).await.unwrap_err();
    assert!(matches!(error, GitError::InvalidBranch { .. }), "{error:?}");
    let error =
        push_branch(setup.push(&workspace, "main", "git@github.com:octo/hello.git", &cancel)).await.unwrap_err();
    assert!(matches!(error, GitError::InvalidUrl { .. }), "{error:?}");

    // Not a fast-forward: someone else pushed to main meanwhile.
    let theirs = seed(&setup.upstream, &[("THEIRS.md", "theirs\n")], "main").await;
    let ours = commit(&workspace, "main", "OURS.md", "ours\n").await;
    let error = push_branch(setup.push(&workspace, "main", &url, &cancel)).await.unwrap_err();
    assert!(matches!(error, GitError::Rejected { .. }), "{error:?}");
    assert_eq!(branch_sha(&setup.upstream, "main").await.as_deref(), Some(theirs.as_str()));
    let forced = PushRequest { force: true, ..setup.push(&workspace, "main", &url, &cancel) };
    assert_eq!(push_branch(forced).await.unwrap(), ours);
    assert_eq!(branch_sha(&setup.upstream, "main").await.as_deref(), Some(ours.as_str()));

    // A protected branch, even with force.
    protect_branch(&setup.upstream, "main");
    commit(&workspace, "main", "MORE.md", "more\n").await;
    let forced = PushRequest { force: true, ..setup.push(&workspace, "main", &url, &cancel) };
    match push_branch(forced).await.unwrap_err() {
        GitError::ProtectedBranch { branch, message } => {
            assert_eq!(branch, "main");
            assert!(message.contains("GH006"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(branch_sha(&setup.upstream, "main").await.as_deref(), Some(ours.as_str()));

    // The wrong token.
    let wrong = "wrong-token-0123456789";
    let request = PushRequest { token: Some(wrong), ..setup.push(&workspace, "main", &url, &cancel) };
    let error = push_branch(request).await.unwrap_err();
    assert!(matches!(error, GitError::Unauthorized { .. }), "{error:?}");
    assert!(!format!("{error} {error:?}").contains(wrong));
}

#[tokio::test]
async fn a_token_that_may_not_push_is_forbidden() {
    let authorize = Arc::new(|request: &GitRequest| match request.password.as_deref() {
        Some(TOKEN) if request.is_push() => GitAccess::Forbidden,
        Some(TOKEN) => GitAccess::Allow,
        _ => GitAccess::Unauthorized,
    });
    let setup = setup_with(authorize).await;
    let cancel = CancellationToken::new();
    let workspace = setup.clone_workspace("workspace").await;
    commit(&workspace, "rswe/x", "X.md", "x\n").await;
    let url = setup.url();
    let error = push_branch(setup.push(&workspace, "rswe/x", &url, &cancel)).await.unwrap_err();
    match &error {
        GitError::Forbidden { message, .. } => {
            assert!(message.contains("Permission to octo/hello.git denied"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    assert!(!format!("{error} {error:?}").contains(TOKEN));
    assert_eq!(branch_sha(&setup.upstream, "rswe/x").await, None);
}

#[tokio::test]
async fn the_workspace_config_cannot_capture_the_token() {
    let setup = setup().await;
    let cancel = CancellationToken::new();
    let workspace = setup.clone_workspace("workspace").await;
    let sha = commit(&workspace, "rswe/safe", "SAFE.md", "safe\n").await;

    // The agent rewrites its repository's configuration to capture credentials.
    let traps = setup.path("traps");
    let hooks = traps.join("hooks");
    std::fs::create_dir_all(&hooks).unwrap();
    let hook = format!("#!/bin/sh\nenv > {}/hook-ran-$(basename \"$0\")\nexit 0\n", traps.display());
    for name in ["pre-push", "reference-transaction", "post-checkout", "pre-auto-gc", "post-update", "update"] {
        let path = hooks.join(name);
        std::fs::write(&path, &hook).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    }
    let script = traps.join("script.sh");
    std::fs::write(&script, format!("#!/bin/sh\nenv > {}/script-ran\n", traps.display())).unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let poison = format!(
        "[url \"http://127.0.0.1:1/\"]\n\tinsteadOf = {base}\n\tpushInsteadOf = {base}\n\
         [core]\n\thooksPath = {hooks}\n\tfsmonitor = {script}\n\tsshCommand = {script}\n\
         [credential]\n\thelper = \"!echo leaked > {traps}/helper-ran\"\n\
         [uploadpack]\n\tpackObjectsHook = {script}\n",
        base = setup.server.base_url(),
        hooks = hooks.display(),
        script = script.display(),
        traps = traps.display(),
    );
    let config = workspace.join(".git/config");
    let mut contents = std::fs::read_to_string(&config).unwrap();
    contents.push_str(&poison);
    std::fs::write(&config, &contents).unwrap();

    let url = setup.url();
    assert_eq!(push_branch(setup.push(&workspace, "rswe/safe", &url, &cancel)).await.unwrap(), sha);
    assert_eq!(branch_sha(&setup.upstream, "rswe/safe").await.as_deref(), Some(sha.as_str()));
    assert_eq!(entries(&traps), ["hooks", "script.sh"], "no hook, helper or command ran");
    assert_eq!(std::fs::read_to_string(&config).unwrap(), contents);
    assert_no_credentials(&workspace);
}

#[tokio::test]
async fn push_to_a_fork_leaves_upstream_alone() {
    let setup = setup().await;
    let cancel = CancellationToken::new();
    let fork = fork_bare(setup.server.root(), ("octo", "hello"), ("rswe-bot", "hello")).await;
    let workspace = setup.clone_workspace("workspace").await;
    let sha = commit(&workspace, "rswe/fix", "FIX.md", "fix\n").await;
    let fork_url = setup.server.url("rswe-bot", "hello");
    assert_eq!(push_branch(setup.push(&workspace, "rswe/fix", &fork_url, &cancel)).await.unwrap(), sha);
    assert_eq!(branch_sha(&fork, "rswe/fix").await.as_deref(), Some(sha.as_str()));
    assert_eq!(branch_sha(&setup.upstream, "rswe/fix").await, None);
    assert_eq!(branch_sha(&fork, "main").await, branch_sha(&setup.upstream, "main").await);
    let pushes: Vec<GitRequest> = setup.server.requests().into_iter().filter(GitRequest::is_push).collect();
    assert!(!pushes.is_empty());
    assert!(pushes.iter().all(|r| r.owner == "rswe-bot" && r.name == "hello"));
}

/// A server that accepts connections and never answers.
async fn silent_server() -> (tokio::net::TcpListener, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/octo/hello.git", listener.local_addr().unwrap());
    (listener, url)
}

#[tokio::test]
async fn cancel_and_timeout_stop_git() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("workspace");

    let cancelled = CancellationToken::new();
    cancelled.cancel();
    let error = clone_repository("http://127.0.0.1:1/o/r.git", &dest, None, TIMEOUT, &cancelled).await.unwrap_err();
    assert!(matches!(error, GitError::Cancelled), "{error:?}");

    let (listener, url) = silent_server().await;
    let cancel = CancellationToken::new();
    let clone = tokio::spawn({
        let (url, dest, cancel) = (url.clone(), dest.clone(), cancel.clone());
        async move { clone_repository(&url, &dest, Some(TOKEN), TIMEOUT, &cancel).await }
    });
    // git is cloning once it has connected.
    let (_connection, _) = tokio::time::timeout(TIMEOUT, listener.accept()).await.unwrap().unwrap();
    let started = Instant::now();
    cancel.cancel();
    let error = tokio::time::timeout(Duration::from_secs(10), clone).await.unwrap().unwrap().unwrap_err();
    assert!(matches!(error, GitError::Cancelled), "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(10));

    let started = Instant::now();
    let error = clone_repository(&url, &dest, Some(TOKEN), Duration::from_millis(500), &CancellationToken::new())
        .await
        .unwrap_err();
    assert!(matches!(error, GitError::Timeout { .. }), "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(entries(dir.path()).is_empty(), "nothing left: {:?}", entries(dir.path()));
}

#[tokio::test]
async fn set_config_replaces_links_instead_of_writing_through_them() {
    let setup = setup().await;
    let workspace = setup.clone_workspace("workspace").await;
    set_config(&workspace, "user.name", "rswe bot").await.unwrap();
    set_config(&workspace, "user.email", "-bot@example.com").await.unwrap();
    assert_eq!(git(&workspace, &["config", "--file", ".git/config", "user.name"]).await.trim(), "rswe bot");
    assert_eq!(git(&workspace, &["config", "--file", ".git/config", "user.email"]).await.trim(), "-bot@example.com");
    let remote = git(&workspace, &["config", "--file", ".git/config", "remote.origin.url"]).await;
    assert_eq!(remote.trim(), setup.url());

    // The agent links its config to a file outside the workspace.
    let outside = setup.path("outside.txt");
    std::fs::write(&outside, "[user]\n\tname = outside\n").unwrap();
    let config = workspace.join(".git/config");
    std::fs::remove_file(&config).unwrap();
    std::os::unix::fs::symlink(&outside, &config).unwrap();
    set_config(&workspace, "user.name", "rswe bot").await.unwrap();
    assert_eq!(std::fs::read_to_string(&outside).unwrap(), "[user]\n\tname = outside\n");
    assert!(!std::fs::symlink_metadata(&config).unwrap().file_type().is_symlink());
    assert_eq!(std::fs::read_to_string(&config).unwrap(), "[user]\n\tname = rswe bot\n");

    let error = set_config(&setup.path("nowhere"), "user.name", "x").await.unwrap_err();
    assert!(matches!(error, GitError::Failed { .. }), "{error:?}");
    let error = set_config(&workspace, "--global", "x").await.unwrap_err();
    assert!(matches!(error, GitError::Failed { .. }), "{error:?}");
}
