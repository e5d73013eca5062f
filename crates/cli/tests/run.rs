//! `rswe run` end to end: the real binary, a real git repository with a failing test,
//! the real sandbox and tools, and the fake model server in place of the provider.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use rswe_protocol::{EventKind, SessionId};
use rswe_test_support::{FakeModelServer, Response, Script, Turn};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const SECRET: &str = "sk-ant-test-secret-4242";

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Self {
        let env = Env { dir: tempfile::tempdir().unwrap() };
        std::fs::create_dir_all(env.home()).unwrap();
        env
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    fn rswe(&self, server: &FakeModelServer) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_rswe"));
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap())
            .env("HOME", self.home())
            .env("RSWE_DATA_DIR", self.data())
            .env("ANTHROPIC_API_KEY", SECRET)
            .env("ANTHROPIC_BASE_URL", server.anthropic_base_url())
            .stdin(Stdio::null());
        command
    }
}

fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git").arg("-C").arg(dir).args(args).output().unwrap();
    assert!(output.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// A repository whose test fails: `add` subtracts.
fn failing_repo(root: &Path) -> PathBuf {
    let repo = root.join("project");
    std::fs::create_dir_all(&repo).unwrap();
    std::fs::write(repo.join("calc.sh"), "#!/bin/sh\n# add A B: prints A + B\necho $(( $1 - $2 ))\n").unwrap();
    std::fs::write(
        repo.join("test.sh"),
        "#!/bin/sh\nresult=$(sh calc.sh 2 2)\nif [ \"$result\" = 4 ]; then echo \"PASS: add 2 2 = 4\"; \
         else echo \"FAIL: add 2 2 = $result, expected 4\"; exit 1; fi\n",
    )
    .unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["-c", "user.name=Dev", "-c", "user.email=dev@example.com", "add", "."]);
    git(&repo, &["-c", "user.name=Dev", "-c", "user.email=dev@example.com", "commit", "-qm", "calc with a test"]);
    repo
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).to_string()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).to_string()
}

fn tool(name: &str, input: serde_json::Value) -> Turn {
    Response::new().tool_use(name, input).into()
}

/// The tool results in the last message of a recorded request, as text.
fn last_message_text(server: &FakeModelServer, request: usize) -> String {
    let requests = server.requests();
    requests[request].body["messages"].as_array().unwrap().last().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_test_is_fixed_committed_and_brought_back() {
    let env = Env::new();
    let repo = failing_repo(env.dir.path());
    let final_answer =
        "Fixed: calc.sh subtracted instead of adding. `sh test.sh` passes; the fix is on branch fix-add.";
    let server = FakeModelServer::start(Script::new().turns(vec![
        tool("editor", json!({"command": "view", "path": "calc.sh"})),
        tool("editor", json!({"command": "str_replace", "path": "calc.sh", "old_str": "$1 - $2", "new_str": "$1 + $2"})),
        tool("shell", json!({"command": "sh test.sh"})),
        tool(
            "shell",
            json!({"command": "git checkout -q -b fix-add && git commit -qam 'Fix add: it subtracted' && git log --oneline -1"}),
        ),
        Response::new()
            .tool_use("send_message", json!({"message": "Fixed add in calc.sh; the test passes."}))
            .tool_use("shell", json!({"command": "env; cat /proc/self/environ | tr '\\0' '\\n'"}))
            .into(),
        Turn::text(final_answer),
    ]))
    .await;

    let output = env.rswe(&server).args(["run", "--repo"]).arg(&repo).arg("fix the failing test").output().unwrap();
    let err = stderr(&output);
    assert!(output.status.success(), "exit {:?}\n{err}", output.status);
    assert_eq!(stdout(&output), format!("{final_answer}\n"), "the final answer alone on stdout");
    assert!(err.contains("rswe: Fixed add in calc.sh; the test passes."), "{err}");

    // The model saw the file, the passing test, and the commit.
    assert_eq!(server.requests().len(), 6);
    assert!(last_message_text(&server, 1).contains("echo $(( $1 - $2 ))"));
    assert!(last_message_text(&server, 3).contains("PASS: add 2 2 = 4"));
    assert!(last_message_text(&server, 4).contains("Fix add: it subtracted"));
    let env_dump = last_message_text(&server, 5);
    assert!(env_dump.contains("HOME="), "the env command ran: {env_dump}");
    assert!(!env_dump.contains(SECRET) && !env_dump.contains("ANTHROPIC"), "the key never reaches the sandbox");
    server.assert_no_violations();

    // The branch came back; the person's checkout is untouched.
    let session = err.lines().find_map(|l| l.strip_prefix("session ")).unwrap().split(' ').next().unwrap().to_string();
    let branch = format!("rswe/{session}/fix-add");
    assert!(err.contains(&format!("branch {branch} (1 new commit)")), "{err}");
    assert!(git(&repo, &["show", &format!("{branch}:calc.sh")]).contains("$1 + $2"));
    assert!(std::fs::read_to_string(repo.join("calc.sh")).unwrap().contains("$1 - $2"));
    assert_eq!(git(&repo, &["rev-parse", "--abbrev-ref", "HEAD"]), "main");
    assert_eq!(git(&repo, &["log", "-1", "--format=%an", &branch]), "rswe");

    // The log holds the whole story.
    let store = rswe_store::Store::open(env.data().join("rswe.db")).await.unwrap();
    let events = store.events(&SessionId::parse(&session).unwrap(), 0, 1000).await.unwrap();
    let messages: Vec<&str> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::AgentMessage { text } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(messages, ["Fixed add in calc.sh; the test passes."]);
    let results = events.iter().filter(|e| matches!(e.kind, EventKind::ToolResult { .. })).count();
    assert_eq!(results, 6);
    assert!(err.contains("6 steps"), "{err}");
}

/// Polls for a file matching `pattern` under `root/sessions/*/workspace`, bounded.
fn wait_for_workspace_file(data: &Path, name: &str) -> PathBuf {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(sessions) = std::fs::read_dir(data.join("sessions")) {
            for session in sessions.flatten() {
                let path = session.path().join("workspace").join(name);
                if path.exists() {
                    return session.path();
                }
            }
        }
        assert!(Instant::now() < deadline, "{name} never appeared");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn process_running(marker: &str) -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().any(|entry| {
        std::fs::read(entry.path().join("cmdline"))
            .map(|cmdline| String::from_utf8_lossy(&cmdline).replace('\0', " ").contains(marker))
            .unwrap_or(false)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_killed_during_a_tool_call_resumes_from_the_log() {
    let env = Env::new();
    let repo = failing_repo(env.dir.path());
    let server = FakeModelServer::start(Script::new().turns(vec![
        tool("shell", json!({"command": "touch started && sleep 31.7"})),
        Turn::text("Resumed and done."),
    ]))
    .await;
    let mut child = env
        .rswe(&server)
        .args(["run", "--repo"])
        .arg(&repo)
        .arg("wait a while")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let session_dir = wait_for_workspace_file(&env.data(), "started");
    child.kill().unwrap(); // SIGKILL: no cleanup of any kind
    child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while process_running("sleep 31.7") {
        assert!(Instant::now() < deadline, "the sandboxed command outlived its killed parent");
        std::thread::sleep(Duration::from_millis(20));
    }

    let session = session_dir.file_name().unwrap().to_str().unwrap().to_string();
    let output = env.rswe(&server).args(["run", "--resume", &session]).output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output), "Resumed and done.\n");
    let resumed = last_message_text(&server, 1);
    assert!(resumed.contains("interrupted: the session stopped before this tool call finished"), "{resumed}");
    server.assert_no_violations();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_usage_is_explained_with_its_own_exit_status() {
    let env = Env::new();
    let server = FakeModelServer::start(Script::new()).await;
    let output = env.rswe(&server).arg("run").output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("say what to do"), "{}", stderr(&output));

    let output = env.rswe(&server).args(["run", "--model", "gpt-4.1", "hello"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("provider/model-id"), "{}", stderr(&output));

    let output = env.rswe(&server).args(["run", "--resume", "nosuchsession", "hi"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("no session nosuchsession"), "{}", stderr(&output));

    // A repository that cannot be cloned leaves no half-made session behind.
    let output = env.rswe(&server).args(["run", "--repo", "file:///no/such/repo.git", "hi"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("cannot clone file:///no/such/repo.git"), "{}", stderr(&output));
    let leftovers = std::fs::read_dir(env.data().join("sessions")).map(|d| d.count()).unwrap_or(0);
    assert_eq!(leftovers, 0);
    assert!(server.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_place_works_in_the_checkout_and_json_prints_the_events() {
    let env = Env::new();
    let repo = failing_repo(env.dir.path());
    let server = FakeModelServer::start(Script::new().turns(vec![
        tool(
            "editor",
            json!({"command": "str_replace", "path": "calc.sh", "old_str": "$1 - $2", "new_str": "$1 + $2"}),
        ),
        Turn::text("Fixed in place."),
    ]))
    .await;
    let output = env
        .rswe(&server)
        .args(["run", "--json", "--in-place", "--repo"])
        .arg(&repo)
        .arg("fix it here")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(std::fs::read_to_string(repo.join("calc.sh")).unwrap().contains("$1 + $2"), "edited in place");
    let events: Vec<rswe_protocol::Event> =
        stdout(&output).lines().map(|line| serde_json::from_str(line).expect("each line is one event")).collect();
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (seqs[0]..seqs[0] + seqs.len() as u64).collect::<Vec<_>>(), "in order, without gaps");
    assert!(matches!(events.last().unwrap().kind, EventKind::StatusChanged { .. }));
    assert!(events.iter().any(|e| matches!(&e.kind, EventKind::AssistantMessage { content, .. }
        if content.iter().any(|b| matches!(b, rswe_protocol::ContentBlock::Text { text } if text == "Fixed in place.")))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_interrupts_at_a_safe_point_and_the_session_can_go_on() {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    let env = Env::new();
    let repo = failing_repo(env.dir.path());
    let server = FakeModelServer::start(Script::new().turns(vec![
        tool("shell", json!({"command": "touch started && sleep 31.9"})),
        Turn::text("Continuing after the interrupt."),
    ]))
    .await;
    let child = env
        .rswe(&server)
        .args(["run", "--repo"])
        .arg(&repo)
        .arg("wait a while")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let session_dir = wait_for_workspace_file(&env.data(), "started");
    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
    let output = child.wait_with_output().unwrap();
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(130), "{err}");
    assert!(err.contains("Interrupting at the next safe point") && err.contains("Interrupted. Continue with"), "{err}");
    assert!(!process_running("sleep 31.9"), "the interrupted command was stopped");
    assert_eq!(server.requests().len(), 1, "nothing was asked after the interrupt");

    let session = session_dir.file_name().unwrap().to_str().unwrap().to_string();
    let output = env.rswe(&server).args(["run", "--resume", &session, "go on"]).output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output), "Continuing after the interrupt.\n");
    let resumed = last_message_text(&server, 1);
    assert!(resumed.contains("The user interrupted you") && resumed.contains("go on"), "{resumed}");
    server.assert_no_violations();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_says_what_is_configured_and_never_prints_a_key() {
    let env = Env::new();
    let server = FakeModelServer::start(Script::new()).await;
    let output = env.rswe(&server).arg("doctor").output().unwrap();
    let text = stdout(&output);
    assert!(output.status.success(), "{text}{}", stderr(&output));
    assert!(text.contains("ok    anthropic: configured"), "{text}");
    assert!(text.contains("openai: OPENAI_API_KEY is not set"), "{text}");
    assert!(text.contains("ok    bubblewrap: works"), "{text}");
    assert!(text.contains("ok    git:"), "{text}");
    assert!(text.contains("is writable"), "{text}");
    assert!(text.contains("ok    listen: 127.0.0.1:8080 (this machine only)"), "{text}");
    assert!(text.contains("warn  API keys: none yet"), "{text}");
    assert!(!text.contains(SECRET), "doctor never prints a key");
    let created = env.rswe(&server).args(["keys", "create", "laptop"]).output().unwrap();
    assert!(created.status.success(), "{}", stderr(&created));
    let text = stdout(&env.rswe(&server).arg("doctor").output().unwrap());
    assert!(text.contains("ok    API keys: 1 (rswe keys list)"), "{text}");

    // The default model's provider is missing: that is a problem, with its fix.
    let output = env.rswe(&server).env("RSWE_MODEL", "openai/gpt-4.1").arg("doctor").output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(stdout(&output).contains("FAIL  default model: openai/gpt-4.1 cannot be used: OPENAI_API_KEY is not set"));
    assert!(stdout(&output).contains("ok    Slack: not configured"));

    // Slack: both tokens checked against the (fake) Web API, neither printed.
    let slack = rswe_test_support::slack::FakeSlack::start().await;
    slack.set_socket_url("ws://127.0.0.1:9/socket".into());
    let mut doctor = env.rswe(&server);
    doctor
        .env("SLACK_BOT_TOKEN", slack.bot_token())
        .env("SLACK_APP_TOKEN", slack.app_token())
        .env("SLACK_API_URL", slack.api_url())
        .env("ADMIN_USER_ID_LIST", "U0ADMIN, U0OTHER");
    let text = stdout(&doctor.arg("doctor").output().unwrap());
    assert!(text.contains("ok    bot token: accepted: the bot is U0BOT in team T0TEAM"), "{text}");
    assert!(text.contains("ok    app token: accepted"), "{text}");
    assert!(text.contains("ok    intake: Socket Mode"), "{text}");
    assert!(text.contains("ok    admins: U0ADMIN, U0OTHER"), "{text}");
    assert!(!text.contains(slack.bot_token()) && !text.contains(slack.app_token()), "{text}");
    let mut doctor = env.rswe(&server);
    doctor
        .env("SLACK_BOT_TOKEN", "xoxb-wrong")
        .env("SLACK_APP_TOKEN", "xapp-wrong")
        .env("SLACK_API_URL", slack.api_url());
    let text = stdout(&doctor.arg("doctor").output().unwrap());
    assert!(text.contains("FAIL  bot token:") && text.contains("SLACK_BOT_TOKEN"), "{text}");
    assert!(text.contains("FAIL  app token:") && text.contains("SLACK_APP_TOKEN"), "{text}");
    assert!(text.contains("warn  admins: ADMIN_USER_ID_LIST is empty"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repository_url_is_cloned_into_the_session() {
    let env = Env::new();
    let repo = failing_repo(env.dir.path());
    let bare = env.dir.path().join("remote.git");
    git(env.dir.path(), &["clone", "-q", "--bare", repo.to_str().unwrap(), bare.to_str().unwrap()]);
    let url = format!("file://{}", bare.display());
    let server = FakeModelServer::start(Script::new().turns(vec![
        tool("shell", json!({"command": "git remote get-url origin && cat calc.sh"})),
        Turn::text("Looked."),
    ]))
    .await;
    let output = env.rswe(&server).args(["run", "--repo", &url, "look at the code"]).output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let seen = last_message_text(&server, 1);
    assert!(seen.contains(&url) && seen.contains("echo $(( $1 - $2 ))"), "{seen}");
}
