#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The agent's GitHub tools against a fake GitHub whose repositories are real bare git repositories
//! served over smart HTTP: clone, the fork workflow, pushes and pull requests, comments, checks, and
//! the token kept out of the workspace and of every result.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rswe_github::reference::{ItemKind, ItemRef, RepoRef};
use rswe_github::tools::{GitHubSession, SessionContext};
use rswe_github::{AppCredentials, Credentials, GitHubAuth, GitHubSettings};
use rswe_protocol::SessionId;
use rswe_sandbox::{LocalSandbox, LocalSandboxConfig, Sandbox, SandboxMode};
use rswe_test_support::git_http::{self, GitHttpServer};
use rswe_test_support::github::{FakeGitHub, TOKEN};
use rswe_tools::{Tool, ToolContext, ToolOutput};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

struct Fixture {
    github: FakeGitHub,
    git: GitHttpServer,
    sandbox: Arc<LocalSandbox>,
    tools: Vec<Arc<dyn Tool>>,
    state_dir: PathBuf,
    _dir: tempfile::TempDir,
}

/// A fake GitHub with `octo/hello` (seeded on `main`), `push` saying whether the token may push to it,
/// and a session started from issue `octo/hello#7`.
async fn fixture(push: bool) -> Fixture {
    fixture_as(push, None, false, 7).await
}

/// The GitHub App the App fixture authenticates as.
const APP_ID: u64 = 4242;

/// [`fixture`], authenticating as a GitHub App installed on `octo` when `app` holds its private key.
async fn fixture_as(push: bool, app: Option<String>, only_origin_repository: bool, origin: u64) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let github = FakeGitHub::start().await;
    github.add_repository("octo", "hello", "main", push);
    github.add_issue("octo", "hello", 7, "Greet the world", "It says hallo.", false);
    let git = github.serve_git(dir.path().join("git")).await;
    let bare = github.bare_repository("octo", "hello").unwrap();
    git_http::seed(&bare, &[("README.md", "# hello\n"), ("greet.txt", "hallo\n")], "main").await;

    let mut config = LocalSandboxConfig::new(dir.path().join("session"));
    config.mode = SandboxMode::None;
    let sandbox = Arc::new(LocalSandbox::new(config).unwrap());
    std::fs::create_dir_all(sandbox.workspace()).unwrap();
    let state_dir = dir.path().join("session-github");
    let credentials = match app {
        Some(private_key_pem) => {
            Credentials::App(AppCredentials { app_id: APP_ID, private_key_pem, installation_id: None })
        }
        None => Credentials::Token(TOKEN.to_owned()),
    };
    let mut settings = GitHubSettings::new(credentials);
    settings.api_url = github.api_url();
    let auth = GitHubAuth::new(&settings.api_url, settings.credentials.clone()).unwrap();
    let origin = ItemRef {
        repo: RepoRef { host: "127.0.0.1".into(), owner: "octo".into(), name: "hello".into() },
        number: origin,
        kind: ItemKind::Issue,
    };
    let session = GitHubSession::new(
        auth.for_session(),
        Arc::new(settings),
        SessionContext {
            session_id: "sess-123".into(),
            state_dir: state_dir.clone(),
            origin: Some(origin),
            session_url: Some("http://rswe.test/sessions/sess-123".into()),
            only_origin_repository,
        },
    )
    .with_poll_interval(Duration::from_millis(20));
    let tools = session.tools();
    Fixture { github, git, sandbox, tools, state_dir, _dir: dir }
}

impl Fixture {
    fn workspace(&self) -> PathBuf {
        self.sandbox.workspace().to_path_buf()
    }

    fn context(&self) -> ToolContext {
        ToolContext {
            session_id: SessionId::new(),
            tool_use_id: "toolu_1".into(),
            sandbox: self.sandbox.clone(),
            cancel: CancellationToken::new(),
            progress: None,
        }
    }

    async fn run(&self, name: &str, input: Value) -> ToolOutput {
        let tool = self.tools.iter().find(|t| t.name() == name).unwrap();
        let output = tool.run(input, &self.context()).await;
        assert!(!output.text_content().contains(TOKEN), "{name} showed the token: {}", output.text_content());
        output
    }

    async fn ok(&self, name: &str, input: Value) -> String {
        let output = self.run(name, input.clone()).await;
        assert!(!output.is_error, "{name} {input} failed: {}", output.text_content());
        output.text_content()
    }

    async fn fails(&self, name: &str, input: Value) -> String {
        let output = self.run(name, input.clone()).await;
        assert!(output.is_error, "{name} {input} should have failed: {}", output.text_content());
        output.text_content()
    }
}

/// Runs git in `dir` as the agent would (in the sandbox's shell).
fn git(dir: &Path, args: &[&str]) -> String {
    let output = std::process::Command::new("git").args(args).current_dir(dir).output().unwrap();
    assert!(output.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// Every file under `dir` (`.git` included) that holds `needle`.
fn files_containing(dir: &Path, needle: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&path) else { continue };
        if meta.is_dir() {
            for entry in std::fs::read_dir(&path).unwrap() {
                stack.push(entry.unwrap().path());
            }
        } else if meta.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                found.push(path);
            }
        }
    }
    found
}

#[tokio::test]
async fn clone_commit_and_open_a_pull_request_that_closes_the_issue() {
    let fx = fixture(true).await;
    let text = fx.ok("clone_repository", json!({})).await;
    assert!(text.contains("Cloned octo/hello"), "{text}");
    let ws = fx.workspace();
    assert_eq!(std::fs::read_to_string(ws.join("greet.txt")).unwrap(), "hallo\n");
    assert_eq!(git(&ws, &["config", "user.name"]), "rswe-bot");
    assert!(git(&ws, &["config", "user.email"]).ends_with("+rswe-bot@users.noreply.127.0.0.1"));

    // On the default branch, no pull request.
    let refused = fx.fails("create_pull_request", json!({"title": "Fix greeting"})).await;
    assert!(refused.contains("create a branch"), "{refused}");

    git(&ws, &["switch", "-q", "-c", "fix-greeting"]);
    std::fs::write(ws.join("greet.txt"), "hello\n").unwrap();
    git(&ws, &["commit", "-q", "-am", "Greet in English"]);
    let head = git(&ws, &["rev-parse", "HEAD"]);
    let text =
        fx.ok("create_pull_request", json!({"title": "Fix greeting", "body": "Says hello instead of hallo."})).await;
    assert!(text.contains("Opened pull request #8"), "{text}");

    let pulls = fx.github.pull_requests();
    assert_eq!(pulls.len(), 1);
    let pull = &pulls[0];
    assert_eq!(
        (pull.repository.as_str(), pull.head.as_str(), pull.base.as_str()),
        ("octo/hello", "octo:fix-greeting", "main")
    );
    assert!(pull.body.starts_with("Says hello instead of hallo.\n\nCloses #7"), "{}", pull.body);
    assert!(pull.body.contains("<!-- rswe:session=sess-123 -->"), "{}", pull.body);
    assert!(pull.body.contains("http://rswe.test/sessions/sess-123"), "{}", pull.body);
    let bare = fx.github.bare_repository("octo", "hello").unwrap();
    assert_eq!(git_http::branch_sha(&bare, "fix-greeting").await.as_deref(), Some(head.as_str()));
    assert_eq!(git_http::file_at(&bare, "fix-greeting", "greet.txt").await.as_deref(), Some("hello\n"));

    // A second call pushes to the same pull request instead of opening another.
    std::fs::write(ws.join("README.md"), "# hello, world\n").unwrap();
    git(&ws, &["commit", "-q", "-am", "Say it in the README too"]);
    let text = fx.ok("create_pull_request", json!({"title": "Fix greeting"})).await;
    assert!(text.contains("pull request #8"), "{text}");
    assert_eq!(fx.github.pull_requests().len(), 1);
    let head = git(&ws, &["rev-parse", "HEAD"]);
    assert_eq!(git_http::branch_sha(&bare, "fix-greeting").await.as_deref(), Some(head.as_str()));

    // Git was given the token, and it is nowhere in the workspace or the session's state.
    assert!(fx.git.requests().iter().any(|r| r.is_push() && r.password.as_deref() == Some(TOKEN)));
    assert_eq!(files_containing(&ws, TOKEN), Vec::<PathBuf>::new());
    assert_eq!(files_containing(&fx.state_dir, TOKEN), Vec::<PathBuf>::new());
    assert!(!std::fs::read_to_string(ws.join(".git/config")).unwrap().contains("x-access-token"));
}

#[tokio::test]
async fn without_push_access_the_work_goes_through_a_fork() {
    let fx = fixture(false).await;
    let text = fx.ok("clone_repository", json!({"repository": "https://127.0.0.1/octo/hello/issues/7"})).await;
    assert!(text.contains("forked to rswe-bot/hello"), "{text}");
    let ws = fx.workspace();
    assert_eq!(git(&ws, &["remote", "get-url", "origin"]), fx.git.url("rswe-bot", "hello"));
    assert_eq!(git(&ws, &["remote", "get-url", "upstream"]), fx.git.url("octo", "hello"));

    git(&ws, &["switch", "-q", "-c", "fix-greeting"]);
    std::fs::write(ws.join("greet.txt"), "hello\n").unwrap();
    git(&ws, &["commit", "-q", "-am", "Greet in English"]);
    let text = fx.ok("create_pull_request", json!({"title": "Fix greeting", "body": "Fixes #7"})).await;
    assert!(text.contains("from `rswe-bot:fix-greeting` into `main` of octo/hello"), "{text}");

    let pull = fx.github.pull_requests().pop().unwrap();
    assert_eq!((pull.repository.as_str(), pull.head.as_str()), ("octo/hello", "rswe-bot:fix-greeting"));
    // The body linked the issue already: no second link.
    assert_eq!(pull.body.matches("#7").count(), 1, "{}", pull.body);
    let upstream = fx.github.bare_repository("octo", "hello").unwrap();
    let fork = fx.github.bare_repository("rswe-bot", "hello").unwrap();
    assert_eq!(git_http::branch_sha(&upstream, "fix-greeting").await, None);
    assert_eq!(git_http::branch_sha(&fork, "fix-greeting").await, Some(git(&ws, &["rev-parse", "HEAD"])));
    assert_eq!(files_containing(&ws, TOKEN), Vec::<PathBuf>::new());
}

#[tokio::test]
async fn a_protected_branch_and_a_missing_repository_are_explained() {
    let fx = fixture(true).await;
    let missing = fx.fails("clone_repository", json!({"repository": "octo/nope"})).await;
    assert!(missing.contains("octo/nope does not exist or the token cannot see it"), "{missing}");

    fx.ok("clone_repository", json!({"repository": "octo/hello"})).await;
    let ws = fx.workspace();
    git_http::protect_branch(&fx.github.bare_repository("octo", "hello").unwrap(), "release");
    git(&ws, &["switch", "-q", "-c", "release"]);
    std::fs::write(ws.join("greet.txt"), "hello\n").unwrap();
    git(&ws, &["commit", "-q", "-am", "Greet in English"]);
    let refused = fx.fails("create_pull_request", json!({"title": "Fix greeting"})).await;
    assert!(refused.to_lowercase().contains("protected"), "{refused}");
    assert!(refused.contains("release"), "{refused}");
    assert!(fx.github.pull_requests().is_empty());
}

#[tokio::test]
async fn review_comments_are_listed_and_answered_and_comments_carry_the_marker() {
    let fx = fixture(true).await;
    fx.github.add_issue("octo", "hello", 9, "Fix greeting", "", true);
    let id =
        fx.github.add_review_comment("octo", "hello", 9, "alice", "Say `Hello`, capitalised.", "greet.txt", Some(1));
    fx.github.add_review("octo", "hello", 9, "alice", "CHANGES_REQUESTED", "Nearly.");
    fx.github.add_issue_comment("octo", "hello", 9, "bob", "Thanks!");

    let listed = fx.ok("get_pull_request_comments", json!({"pull_request": "octo/hello#9"})).await;
    assert!(listed.contains(&format!("[id {id}] @alice on greet.txt:1: Say `Hello`, capitalised.")), "{listed}");
    assert!(listed.contains("@alice changes_requested: Nearly."), "{listed}");
    assert!(listed.contains("@bob: Thanks!"), "{listed}");

    fx.ok("reply_to_review_comment", json!({"pull_request": 9, "comment_id": id, "body": "Done in the next commit."}))
        .await;
    let reply = fx.github.review_comments().into_iter().find(|c| c.in_reply_to_id == Some(id)).unwrap();
    assert!(reply.body.starts_with("Done in the next commit."), "{}", reply.body);

    fx.ok("comment", json!({"issue_or_pull_request": "#7", "body": "Working on it."})).await;
    let comment = fx.github.comments().pop().unwrap();
    assert_eq!((comment.repository.as_str(), comment.number), ("octo/hello", 7));
    assert!(comment.body.contains("<!-- rswe:session=sess-123 -->"), "{}", comment.body);
    let missing = fx.fails("reply_to_review_comment", json!({"pull_request": 9, "comment_id": 1, "body": "x"})).await;
    assert!(missing.contains("does not exist"), "{missing}");
}

#[tokio::test]
async fn waiting_for_checks_reports_the_failing_jobs_log_tail() {
    let fx = fixture(true).await;
    let api = rswe_github::api::GitHubApi::new(&fx.github.api_url(), TOKEN).unwrap();
    let request = rswe_github::api::NewPullRequest {
        title: "Fix greeting".into(),
        body: String::new(),
        head: "fix-greeting".into(),
        base: "main".into(),
        draft: false,
    };
    let number = api.create_pull_request("octo", "hello", &request).await.unwrap().number;
    let sha = "0123456789abcdef0123456789abcdef01234567";
    fx.github.set_pull_head_sha("octo", "hello", number, sha);
    fx.github.add_check_run("octo", "hello", sha, "lint", "completed", Some("success"), "all good");
    let log = format!("{}\nerror: test greet::hello failed: expected Hello\n", "noise\n".repeat(2000));
    let tests = fx.github.add_check_run("octo", "hello", sha, "tests", "in_progress", None, &log);
    fx.github.set_commit_status("octo", "hello", sha, "ci/jenkins", "pending", "Build #12 is running");

    let tool = fx.tools.iter().find(|t| t.name() == "wait_for_checks").unwrap().clone();
    let context = fx.context();
    let waiting = tokio::spawn(async move { tool.run(json!({"pull_request": number}), &context).await });
    // It looked once and saw a check still running; then the check fails.
    fx.github
        .wait_for_call("GET", &format!("/repos/octo/hello/commits/{sha}/check-runs"), Duration::from_secs(30))
        .await
        .unwrap();
    fx.github.update_check_run(tests, "completed", Some("failure"));
    fx.github.set_commit_status("octo", "hello", sha, "ci/jenkins", "failure", "Build #12 failed");
    let output = tokio::time::timeout(Duration::from_secs(30), waiting).await.unwrap().unwrap();
    let text = output.text_content();
    assert!(!output.is_error, "{text}");
    assert!(text.contains(&format!("2 of 3 checks of octo/hello#{number}")), "{text}");
    assert!(text.contains("- ci/jenkins: failure (Build #12 failed; https://ci.example.com/ci/jenkins)"), "{text}");
    assert!(text.contains("- lint: success") && text.contains("- tests: failure"), "{text}");
    assert!(text.contains("error: test greet::hello failed: expected Hello"), "{text}");
    assert!(text.len() < 8000, "the log tail is bounded: {} bytes", text.len());
}

#[tokio::test]
async fn a_github_app_works_with_installation_tokens_narrowed_to_the_repository() {
    let (private_key, public_key) = rswe_test_support::github::test_app_key();
    let fx = fixture_as(true, Some(private_key), false, 7).await;
    fx.github.enable_app(APP_ID, "acme-rswe", public_key);
    fx.github.add_installation(77, "octo");
    fx.github.install(77, "octo", "hello");

    fx.ok("clone_repository", json!({"repository": "octo/hello"})).await;
    let ws = fx.workspace();
    assert_eq!(git(&ws, &["config", "user.name"]), "acme-rswe[bot]");
    git(&ws, &["switch", "-q", "-c", "fix-greeting"]);
    std::fs::write(ws.join("greet.txt"), "hello\n").unwrap();
    git(&ws, &["commit", "-q", "-am", "Greet in English"]);
    fx.ok("create_pull_request", json!({"title": "Fix greeting"})).await;
    assert_eq!(fx.github.pull_requests().len(), 1);

    // One token, minted for the session and narrowed to the repository, did the git work.
    let minted = fx.github.minted_tokens();
    assert_eq!(minted.len(), 1, "{minted:?}");
    assert_eq!(minted[0].repositories, vec!["octo/hello".to_string()]);
    let pushes: Vec<_> = fx.git.requests().into_iter().filter(|r| r.is_push() && r.authorized).collect();
    assert!(!pushes.is_empty());
    assert!(pushes.iter().all(|r| r.password.as_deref() == Some(minted[0].token.as_str())));
    assert_eq!(files_containing(&ws, &minted[0].token), Vec::<PathBuf>::new());
    assert_eq!(files_containing(&fx.state_dir, &minted[0].token), Vec::<PathBuf>::new());
}

#[tokio::test]
async fn branches_the_session_did_not_create_are_not_overwritten() {
    let fx = fixture(true).await;
    let bare = fx.github.bare_repository("octo", "hello").unwrap();
    let dev = git_http::seed(&bare, &[("dev.txt", "someone's work\n")], "dev").await;
    fx.ok("clone_repository", json!({})).await;
    let ws = fx.workspace();

    git(&ws, &["switch", "-q", "dev"]);
    std::fs::write(ws.join("dev.txt"), "my work instead\n").unwrap();
    git(&ws, &["commit", "-q", "-am", "Greet in English"]);
    let refused = fx.fails("create_pull_request", json!({"title": "Fix greeting"})).await;
    assert!(refused.contains("already has a branch `dev` that this session did not create"), "{refused}");
    assert_eq!(git_http::branch_sha(&bare, "dev").await, Some(dev));

    // A new branch: force is refused before the session created it, allowed after.
    git(&ws, &["switch", "-q", "-c", "fix-greeting"]);
    let refused = fx.fails("create_pull_request", json!({"title": "Fix greeting", "force": true})).await;
    assert!(refused.contains("only for branches this session created"), "{refused}");
    fx.ok("create_pull_request", json!({"title": "Fix greeting"})).await;
    git(&ws, &["commit", "-q", "--amend", "-m", "Greet in English, amended"]);
    let amended = git(&ws, &["rev-parse", "HEAD"]);
    let rejected = fx.fails("create_pull_request", json!({"title": "Fix greeting"})).await;
    assert!(rejected.contains("pushing `fix-greeting`"), "{rejected}");
    fx.ok("create_pull_request", json!({"title": "Fix greeting", "force": true})).await;
    assert_eq!(git_http::branch_sha(&bare, "fix-greeting").await, Some(amended));
    assert_eq!(fx.github.pull_requests().len(), 1);
}

#[tokio::test]
async fn a_link_out_of_the_workspace_is_no_place_for_a_clone() {
    let fx = fixture(true).await;
    let outside = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(outside.path(), fx.workspace().join("out")).unwrap();
    let refused = fx.fails("clone_repository", json!({"directory": "out/hello"})).await;
    assert!(refused.contains("link") || refused.contains("outside"), "{refused}");
    assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0, "nothing was written through the link");
}

#[tokio::test]
async fn a_session_from_github_stays_on_its_repository() {
    let fx = fixture_as(true, None, true, 7).await;
    fx.github.add_repository("octo", "secret", "main", true);
    let refused = fx.fails("clone_repository", json!({"repository": "octo/secret"})).await;
    assert!(refused.contains("works on that repository only"), "{refused}");
    let refused = fx.fails("comment", json!({"issue_or_pull_request": "octo/secret#1", "body": "hi"})).await;
    assert!(refused.contains("octo/secret is out of its reach"), "{refused}");
    assert!(fx.github.comments().is_empty());
}

#[tokio::test]
async fn a_pull_request_from_someone_elses_fork_is_not_pushed_to_under_its_name() {
    // The session is about pull request #8, from carol's fork.
    let fx = fixture_as(true, None, false, 8).await;
    let api = rswe_github::api::GitHubApi::new(&fx.github.api_url(), TOKEN).unwrap();
    let request = rswe_github::api::NewPullRequest {
        title: "Fix typo".into(),
        body: String::new(),
        head: "carol:fix-typo".into(),
        base: "main".into(),
        draft: false,
    };
    assert_eq!(api.create_pull_request("octo", "hello", &request).await.unwrap().number, 8);

    fx.ok("clone_repository", json!({})).await;
    let ws = fx.workspace();
    git(&ws, &["switch", "-q", "-c", "fix-typo"]);
    std::fs::write(ws.join("greet.txt"), "hello\n").unwrap();
    git(&ws, &["commit", "-q", "-am", "Greet in English"]);
    let refused = fx.fails("create_pull_request", json!({"title": "Fix typo"})).await;
    assert!(refused.contains("lives in carol/hello"), "{refused}");
    let bare = fx.github.bare_repository("octo", "hello").unwrap();
    assert_eq!(git_http::branch_sha(&bare, "fix-typo").await, None);
    assert_eq!(fx.github.pull_requests().len(), 1);
}
