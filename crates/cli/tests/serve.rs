//! `rswe serve` end to end: the real binary on a loopback port, the real store, sandbox
//! and git, and the fake model server in place of the provider. Sessions are created,
//! steered, interrupted, stopped, deleted, and resumed after the server is killed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use rswe_test_support::{FakeModelServer, Response, Script, Turn};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A shell command that waits (at most 60 s) until the file `go` appears in the
/// workspace: the test decides when the tool call ends.
const WAIT_FOR_GO: &str = "for i in $(seq 1 1200); do [ -f go ] && break; sleep 0.05; done; echo released";

struct Env {
    dir: tempfile::TempDir,
}

struct Server {
    child: Child,
    url: String,
    key: String,
    http: reqwest::Client,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Env {
    fn new(config: &str) -> Env {
        let env = Env { dir: tempfile::tempdir().unwrap() };
        std::fs::create_dir_all(env.dir.path().join("home")).unwrap();
        std::fs::write(env.config(), config).unwrap();
        env
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("rswe.toml")
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn command(&self, fake: &FakeModelServer) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_rswe"));
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap())
            .env("HOME", self.dir.path().join("home"))
            .env("RSWE_DATA_DIR", self.data())
            .env("RSWE_CONFIG", self.config())
            .env("ANTHROPIC_API_KEY", "sk-ant-test")
            .env("ANTHROPIC_BASE_URL", fake.anthropic_base_url())
            .stdin(Stdio::null());
        command
    }

    /// Creates an API key with `rswe keys create`.
    fn create_key(&self, fake: &FakeModelServer) -> String {
        let output = self.command(fake).args(["keys", "create", "tests"]).output().unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let stdout = String::from_utf8_lossy(&output.stdout);
        stdout
            .split_whitespace()
            .find(|word| word.starts_with("rswe_"))
            .unwrap_or_else(|| panic!("no key in {stdout:?}"))
            .to_string()
    }

    /// Starts `rswe serve` on a free port and waits (bounded) until it says where.
    fn serve(&self, fake: &FakeModelServer, key: &str) -> Server {
        let mut child = self
            .command(fake)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (sender, receiver) = std::sync::mpsc::channel();
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push_str(&format!("{line}\n"));
                if let Some(rest) = line.strip_prefix("rswe is serving on ") {
                    let _ = sender.send(rest.split_whitespace().next().unwrap_or_default().to_string());
                }
            }
        });
        let url = receiver
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("the server did not start:\n{}", log.lock().unwrap()));
        Server { child, url, key: key.to_string(), http: reqwest::Client::new(), stderr: log }
    }

    fn workspace(&self, session: &str) -> PathBuf {
        self.data().join("sessions").join(session).join("workspace")
    }
}

impl Server {
    fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.get(format!("{}{path}", self.url)).bearer_auth(&self.key)
    }

    fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.post(format!("{}{path}", self.url)).header("x-api-key", &self.key)
    }

    async fn json(&self, path: &str) -> Value {
        let response = self.get(path).send().await.unwrap();
        assert!(response.status().is_success(), "GET {path}: {}", response.status());
        response.json().await.unwrap()
    }

    async fn create(&self, task: &str) -> String {
        let response = self.post("/api/v1/sessions").json(&json!({ "message": task })).send().await.unwrap();
        assert_eq!(response.status(), 201);
        let body: Value = response.json().await.unwrap();
        body["id"].as_str().unwrap().to_string()
    }

    async fn events(&self, session: &str) -> Vec<Value> {
        self.json(&format!("/api/v1/sessions/{session}/events")).await["events"].as_array().unwrap().clone()
    }

    /// Waits (at most 30 s) until the session rests with `status`.
    async fn wait_status(&self, session: &str, status: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let body = self.json(&format!("/api/v1/sessions/{session}")).await;
            if body["status"] == status && body["activity"] == "resting" {
                return body;
            }
            assert!(Instant::now() < deadline, "session never {status}: {body}\n{}", self.stderr.lock().unwrap());
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM (again), then waits (at most 30 s) for the exit status.
    fn terminate(mut self) -> std::process::ExitStatus {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).unwrap());
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "the server did not exit on SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn kinds(events: &[Value]) -> Vec<String> {
    events.iter().map(|e| e["type"].as_str().unwrap().to_string()).collect()
}

fn texts_of(events: &[Value], kind: &str) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["type"] == kind)
        .map(|e| {
            e["content"].as_array().unwrap().iter().filter_map(|b| b["text"].as_str()).collect::<Vec<_>>().join("")
        })
        .collect()
}

fn shell(command: &str) -> Turn {
    Response::new().tool_use("shell", json!({ "command": command })).into()
}

fn release(workspace: &Path) {
    std::fs::write(workspace.join("go"), "").unwrap();
}

const CONFIG: &str = "[server]\nmax_body_mb = 1\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_are_created_messaged_steered_and_answered() {
    let env = Env::new(CONFIG);
    let fake = FakeModelServer::start(Script::new().turns(vec![
        shell(WAIT_FOR_GO),
        Turn::text("First answer."),
        Turn::text("Second answer."),
    ]))
    .await;
    let key = env.create_key(&fake);
    let server = env.serve(&fake, &key);

    let session = server.create("count the files").await;
    wait_for_tool_start(&server, &session).await;
    // Steering: a message while the agent works reaches the model at its next step.
    let response =
        server.post(&format!("/api/v1/sessions/{session}/messages")).json(&json!({"text": "also say hi"})).send().await;
    assert_eq!(response.unwrap().status(), 202);
    release(&env.workspace(&session));
    server.wait_status(&session, "waiting").await;
    let second = fake.requests()[1].body["messages"].to_string();
    assert!(second.contains("released") && second.contains("also say hi"), "{second}");

    // A message to a waiting session wakes it.
    let response =
        server.post(&format!("/api/v1/sessions/{session}/messages")).json(&json!({"text": "thanks"})).send().await;
    assert_eq!(response.unwrap().status(), 202);
    server.wait_status(&session, "waiting").await;
    let events = server.events(&session).await;
    assert_eq!(texts_of(&events, "user_message"), ["count the files", "also say hi", "thanks"]);
    let answers: Vec<String> = texts_of(&events, "assistant_message").into_iter().filter(|t| !t.is_empty()).collect();
    assert_eq!(answers, ["First answer.", "Second answer."]);
    assert_eq!(fake.requests().len(), 3);
    fake.assert_no_violations();

    // The session is listed, with its cost and last message.
    let list = server.json("/api/v1/sessions?status=waiting").await;
    let listed = &list["sessions"][0];
    assert_eq!(listed["id"], session.as_str());
    assert_eq!(listed["last_message"], "Second answer.");
    assert!(listed["cost_usd"].as_f64().unwrap() > 0.0);
    let usage = server.json(&format!("/api/v1/sessions/{session}/usage")).await;
    assert_eq!(usage["total"]["requests"], 3);
    let report = server.json("/api/v1/usage").await;
    assert_eq!(report["total"]["requests"], 3);
    assert_eq!(report["by_session"][0]["session_id"], session.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupt_stop_and_delete() {
    let env = Env::new(CONFIG);
    let fake = FakeModelServer::start(Script::new().turns(vec![
        shell(WAIT_FOR_GO),
        Turn::text("Picked up again."),
        shell(WAIT_FOR_GO),
    ]))
    .await;
    let key = env.create_key(&fake);
    let server = env.serve(&fake, &key);
    let session = server.create("wait for it").await;
    wait_for_tool_start(&server, &session).await;

    // Interrupt: the running command ends, the session rests, nothing more is asked.
    let response = server.post(&format!("/api/v1/sessions/{session}/interrupt")).send().await.unwrap();
    assert_eq!(response.status(), 202);
    let body = server.wait_status(&session, "idle").await;
    assert_eq!(body["activity"], "resting");
    let events = server.events(&session).await;
    assert!(kinds(&events).contains(&"interrupted".to_string()), "{:?}", kinds(&events));
    assert_eq!(fake.requests().len(), 1);

    // A message after the interrupt is answered.
    server.post(&format!("/api/v1/sessions/{session}/messages")).json(&json!({"text": "go on"})).send().await.unwrap();
    server.wait_status(&session, "waiting").await;
    assert_eq!(fake.requests().len(), 2);

    // Stop: the agent is stopped mid-command, the session is marked stopped.
    server
        .post(&format!("/api/v1/sessions/{session}/messages"))
        .json(&json!({"text": "wait again"}))
        .send()
        .await
        .unwrap();
    wait_for_tool_start(&server, &session).await;
    let response = server.post(&format!("/api/v1/sessions/{session}/stop")).send().await.unwrap();
    assert_eq!(response.status(), 202);
    server.wait_status(&session, "stopped").await;

    // Delete: gone from the API and from the disk.
    let workspace = env.workspace(&session);
    assert!(workspace.exists());
    let response =
        server.http.delete(format!("{}/api/v1/sessions/{session}", server.url)).bearer_auth(&key).send().await.unwrap();
    assert_eq!(response.status(), 204);
    let response = server.get(&format!("/api/v1/sessions/{session}")).send().await.unwrap();
    assert_eq!(response.status(), 404);
    assert!(!workspace.exists(), "the workspace is removed");
    fake.assert_no_violations();
}

/// Waits until the agent's shell command runs (its call is logged, no result yet).
async fn wait_for_tool_start(server: &Server, session: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let events = server.events(session).await;
        let calls = events
            .iter()
            .filter(|e| e["type"] == "assistant_message" && e["content"].to_string().contains("tool_use"))
            .count();
        let results = events.iter().filter(|e| e["type"] == "tool_result").count();
        if calls > results {
            return;
        }
        assert!(Instant::now() < deadline, "the tool never started: {:?}", kinds(&events));
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// One server-sent event.
#[derive(Debug)]
struct Sse {
    id: Option<u64>,
    event: String,
    data: String,
}

/// Reads server-sent events until `until` says stop (at most 30 s).
async fn read_sse(response: reqwest::Response, until: impl Fn(&Sse) -> bool) -> Vec<Sse> {
    use futures::StreamExt;
    let mut stream = response.bytes_stream();
    let mut buffer = String::new();
    let mut events = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let chunk = tokio::time::timeout_at(deadline, stream.next()).await.expect("SSE timed out");
        let Some(chunk) = chunk else { return events };
        buffer.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let mut event = Sse { id: None, event: "message".into(), data: String::new() };
            for line in block.lines() {
                if let Some(id) = line.strip_prefix("id: ") {
                    event.id = id.parse().ok();
                } else if let Some(name) = line.strip_prefix("event: ") {
                    event.event = name.to_string();
                } else if let Some(data) = line.strip_prefix("data: ") {
                    event.data.push_str(data);
                }
            }
            if block.lines().all(|l| l.starts_with(':')) {
                continue;
            }
            let stop = until(&event);
            events.push(event);
            if stop {
                return events;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_resumes_its_sessions_and_streams_miss_nothing() {
    let env = Env::new(CONFIG);
    let fake =
        FakeModelServer::start(Script::new().turns(vec![shell(WAIT_FOR_GO), Turn::text("Resumed and done.")])).await;
    let key = env.create_key(&fake);
    let server = env.serve(&fake, &key);
    let session = server.create("survive a crash").await;
    wait_for_tool_start(&server, &session).await;
    let before = server.events(&session).await;
    let last_seen = before.last().unwrap()["seq"].as_u64().unwrap();
    server.kill();

    // A new server resumes the session: the cut command is answered as interrupted and
    // the model is asked once more.
    let server = env.serve(&fake, &key);
    let response = server
        .get(&format!("/api/v1/sessions/{session}/events/stream"))
        .header("Last-Event-ID", last_seen.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let streamed = read_sse(response, |e| e.event == "event" && e.data.contains("\"status\":\"waiting\"")).await;
    let logged: Vec<&Sse> = streamed.iter().filter(|e| e.event == "event").collect();
    let ids: Vec<u64> = logged.iter().map(|e| e.id.unwrap()).collect();
    let expected: Vec<u64> = (last_seen + 1..=last_seen + ids.len() as u64).collect();
    assert_eq!(ids, expected, "every event after Last-Event-ID once, in order");

    server.wait_status(&session, "waiting").await;
    let events = server.events(&session).await;
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=events.len() as u64).collect::<Vec<_>>());
    assert_eq!(&events[last_seen as usize..].iter().map(|e| e["seq"].as_u64().unwrap()).collect::<Vec<_>>(), &ids);
    let answers: Vec<String> = texts_of(&events, "assistant_message").into_iter().filter(|t| !t.is_empty()).collect();
    assert_eq!(answers, ["Resumed and done."], "answered once");
    let results: Vec<&Value> = events.iter().filter(|e| e["type"] == "tool_result").collect();
    assert_eq!(results.len(), 1);
    assert!(results[0]["content"].to_string().contains("interrupted"), "{}", results[0]);
    assert_eq!(fake.requests().len(), 2);
    fake.assert_no_violations();

    // A second restart finds nothing to do: no duplicate answer.
    let status = server.terminate();
    assert!(status.success(), "SIGTERM ends the server cleanly: {status:?}");
    let server = env.serve(&fake, &key);
    let listed = server.json(&format!("/api/v1/sessions/{session}")).await;
    assert_eq!(listed["status"], "waiting");
    assert_eq!(server.events(&session).await.len(), events.len());
    assert_eq!(fake.requests().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_clear_errors_and_change_nothing() {
    let env = Env::new(CONFIG);
    let fake = FakeModelServer::start(Script::new()).await;
    let key = env.create_key(&fake);
    let server = env.serve(&fake, &key);
    let count = || async { server.json("/api/v1/sessions").await["sessions"].as_array().unwrap().len() };

    let malformed = server
        .post("/api/v1/sessions")
        .header("content-type", "application/json")
        .body("{\"message\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);
    let body: Value = malformed.json().await.unwrap();
    assert_eq!(body["error"]["code"], "bad_request");
    assert!(body["error"]["message"].as_str().unwrap().contains("JSON"), "{body}");

    let unknown_field = server.post("/api/v1/sessions").json(&json!({"mesage": "typo"})).send().await.unwrap();
    assert_eq!(unknown_field.status(), 400);

    let unknown_model =
        server.post("/api/v1/sessions").json(&json!({"message": "x", "model": "nowhere/model"})).send().await.unwrap();
    assert_eq!(unknown_model.status(), 400);
    let body: Value = unknown_model.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("nowhere/model"), "{body}");

    let missing = server.get("/api/v1/sessions/0000000000000000").send().await.unwrap();
    assert_eq!(missing.status(), 404);
    let missing = server
        .post("/api/v1/sessions/0000000000000000/messages")
        .json(&json!({"text": "hello?"}))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);

    // 1 MB is the configured limit. The server closes a connection whose body it did not
    // read, so this request gets a client (and a connection) of its own.
    let big = "A".repeat(2 * 1024 * 1024);
    let oversized = reqwest::Client::new()
        .post(format!("{}/api/v1/sessions", server.url))
        .bearer_auth(&key)
        .json(&json!({"message": "look", "attachments": [{"name": "big.txt", "data": big}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(oversized.status(), 413);
    let body: Value = oversized.json().await.unwrap();
    assert_eq!(body["error"]["code"], "payload_too_large");

    assert_eq!(count().await, 0, "no request above made a session");
    assert!(fake.requests().is_empty());

    // The API describes itself.
    let openapi: Value =
        server.http.get(format!("{}/api/v1/openapi.json", server.url)).send().await.unwrap().json().await.unwrap();
    assert_eq!(openapi["openapi"], "3.1.0");
    assert!(openapi["paths"]["/api/v1/sessions/{id}/messages"]["post"]["requestBody"].is_object());
    let health = server.http.get(format!("{}/healthz", server.url)).send().await.unwrap();
    assert_eq!(health.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_the_working_step_finish_before_exiting() {
    let env = Env::new("[server]\nshutdown_grace_secs = 60\n");
    let fake =
        FakeModelServer::start(Script::new().turns(vec![shell(WAIT_FOR_GO), Turn::text("Finished in time.")])).await;
    let key = env.create_key(&fake);
    let server = env.serve(&fake, &key);
    let session = server.create("finish what you started").await;
    wait_for_tool_start(&server, &session).await;
    let pid = nix::unistd::Pid::from_raw(i32::try_from(server.child.id()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    // The server stops taking requests at once…
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.http.get(format!("{}/healthz", server.url)).send().await.is_ok() {
        assert!(Instant::now() < deadline, "the server still answers after SIGTERM");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // …but the agent finishes its turn before the process exits.
    release(&env.workspace(&session));
    let status = server.terminate();
    assert!(status.success(), "{status:?}");
    let store = rswe_store::Store::open(env.data().join("rswe.db")).await.unwrap();
    let id = rswe_protocol::SessionId::parse(&session).unwrap();
    assert_eq!(store.session(&id).await.unwrap().unwrap().status.as_str(), "waiting");
    let events = store.events(&id, 0, 100).await.unwrap();
    assert!(format!("{events:?}").contains("released"), "the command ran to its end");
    assert_eq!(fake.requests().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_is_set_up_from_the_config_and_says_how_it_is_reached() {
    let slack = rswe_test_support::slack::FakeSlack::start().await;
    let fake = FakeModelServer::start(Script::new()).await;
    let config = format!(
        "[slack]\nbot_token = \"{}\"\nsigning_secret = \"s3cret\"\napi_url = \"{}\"\n",
        slack.bot_token(),
        slack.api_url()
    );
    let env = Env::new(&config);
    let key = env.create_key(&fake);
    let server = env.serve(&fake, &key);
    let mut said = String::new();
    for _ in 0..400 {
        said = server.stderr.lock().unwrap().clone();
        if said.contains("everyone in the workspace") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let expected =
        format!("Slack: connected as <@U0BOT>, taking events over the Events API at {}/slack/events", server.url);
    assert!(said.contains(&expected), "{said}");
    assert!(said.contains("warning: Slack: ADMIN_USER_ID_LIST is empty"), "{said}");
    assert_eq!(slack.calls_to("auth.test").len(), 1, "the token was checked at start");

    // Without a way for events to arrive, it refuses to start, and says what to set.
    let half =
        Env::new(&format!("[slack]\nbot_token = \"{}\"\napi_url = \"{}\"\n", slack.bot_token(), slack.api_url()));
    let output = half.command(&fake).args(["serve", "--listen", "127.0.0.1:0"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("set SLACK_SIGNING_SECRET") && stderr.contains("SLACK_APP_TOKEN"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_is_set_up_from_the_config_and_a_wrong_token_stops_the_start() {
    let github = rswe_test_support::github::FakeGitHub::start().await;
    let fake = FakeModelServer::start(Script::new()).await;
    let config = |token: &str| {
        format!("[github]\ntoken = \"{token}\"\napi_url = \"{}\"\nwebhook_secret = \"s3cret\"\n", github.api_url())
    };
    let env = Env::new(&config(github.token()));
    let key = env.create_key(&fake);
    let server = env.serve(&fake, &key);
    let expected =
        format!("GitHub: working as @rswe-bot; webhook deliveries are taken at {}/github/webhook", server.url);
    let mut said = String::new();
    for _ in 0..400 {
        said = server.stderr.lock().unwrap().clone();
        if said.contains(&expected) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(said.contains(&expected), "{said}");

    let wrong = Env::new(&config("ghp_wrong0123456789abcdefghijklmnopqrstu"));
    let output = wrong.command(&fake).args(["serve", "--listen", "127.0.0.1:0"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("checking the GitHub credentials") && stderr.contains("check GITHUB_TOKEN"), "{stderr}");
    assert!(!stderr.contains("ghp_wrong"), "the token is not shown: {stderr}");
}
