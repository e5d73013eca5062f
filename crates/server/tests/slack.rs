//! The Slack channel end to end: signed Events API requests in, a real session on the
//! fake model, and everything the thread is told recorded by a fake Slack Web API.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Options, TestServer};
use rswe_protocol::SessionStatus;
use rswe_server::slack::SlackSettings;
use rswe_test_support::slack::{FakeSlack, SlackCall};
use rswe_test_support::{Response, Script, Turn};
use serde_json::{Value, json};
use std::time::Duration;

const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
const WAIT: Duration = Duration::from_secs(30);

fn settings(slack: &FakeSlack, admins: &[&str]) -> SlackSettings {
    SlackSettings {
        api_url: slack.api_url(),
        bot_token: slack.bot_token().to_string(),
        signing_secret: Some(SECRET.into()),
        app_token: None,
        admins: admins.iter().map(|admin| admin.to_string()).collect(),
        repository: None,
        max_file_bytes: 1024 * 1024,
    }
}

async fn start(script: Script, slack: &FakeSlack, admins: &[&str]) -> TestServer {
    let options = Options { slack: Some(settings(slack, admins)), ..Default::default() };
    TestServer::start_with(script, options).await
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// Posts a callback to /slack/events as Slack does: signed, with `extra` headers.
async fn post_signed(server: &TestServer, body: &Value, timestamp: i64, extra: &[(&str, &str)]) -> reqwest::Response {
    let body = body.to_string();
    let timestamp = timestamp.to_string();
    let signature = rswe_slack::signature::sign(SECRET, &timestamp, body.as_bytes());
    let mut request = server
        .anonymous(reqwest::Method::POST, "/slack/events")
        .header("content-type", "application/json")
        .header("x-slack-request-timestamp", &timestamp)
        .header("x-slack-signature", signature);
    for (name, value) in extra {
        request = request.header(*name, *value);
    }
    request.body(body).send().await.unwrap()
}

fn callback(event_id: &str, event: Value) -> Value {
    json!({ "type": "event_callback", "team_id": "T0TEAM", "event_id": event_id, "event": event })
}

fn mention(user: &str, ts: &str, text: &str) -> Value {
    json!({ "type": "app_mention", "user": user, "channel": "C1", "ts": ts, "text": format!("<@U0BOT> {text}") })
}

fn reply(user: &str, ts: &str, thread: &str, text: &str) -> Value {
    json!({ "type": "message", "user": user, "channel": "C1", "ts": ts, "thread_ts": thread, "text": text })
}

async fn send(server: &TestServer, event_id: &str, event: Value) {
    let response = post_signed(server, &callback(event_id, event), now(), &[]).await;
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
}

/// Waits for a post in thread `thread` whose text contains `needle`.
async fn posted(slack: &FakeSlack, thread: &str, needle: &str) -> SlackCall {
    let found = slack
        .wait_for_call(
            "chat.postMessage",
            |call| call.arg("thread_ts") == Some(thread) && call.arg("text").is_some_and(|text| text.contains(needle)),
            WAIT,
        )
        .await;
    found.unwrap_or_else(|| panic!("no post containing {needle:?} in thread {thread}; calls: {:#?}", slack.calls()))
}

fn posts_in(slack: &FakeSlack, thread: &str) -> Vec<String> {
    slack
        .calls_to("chat.postMessage")
        .iter()
        .filter(|call| call.arg("thread_ts") == Some(thread))
        .map(|call| call.arg("text").unwrap_or_default().to_string())
        .collect()
}

async fn sessions(server: &TestServer) -> Vec<rswe_store::Session> {
    server.store().list_sessions(rswe_store::SessionFilter::default()).await.unwrap().sessions
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mention_starts_a_session_that_answers_in_its_thread() {
    let slack = FakeSlack::start().await;
    let script = Script::new()
        .turn(Response::new().tool_use("send_message", json!({"message": "Looking at **the build** now."})))
        .turn(Turn::text("Done: the build is green. See [the log](https://ci.example.com/1)."))
        .turn(Turn::text("Also fixed the docs."));
    let server = start(script, &slack, &[]).await;

    send(&server, "Ev1", mention("U1", "1700.0001", "fix the build")).await;
    let first = posted(&slack, "1700.0001", "On it").await;
    let sessions_now = sessions(&server).await;
    assert_eq!(sessions_now.len(), 1);
    let session = &sessions_now[0];
    assert_eq!(session.channel, "slack");
    assert!(first.arg("text").unwrap().contains(&format!("/sessions/{}", session.id)), "links the web view");
    posted(&slack, "1700.0001", "Looking at *the build* now.").await;
    posted(&slack, "1700.0001", "Done: the build is green. See <https://ci.example.com/1|the log>.").await;
    let eyes = slack.calls_to("reactions.add");
    assert_eq!(eyes[0].arg("timestamp"), Some("1700.0001"));
    assert_eq!(eyes[0].arg("name"), Some("eyes"));

    // The same message again (a retry, and the `message` event of the same mention)
    // starts nothing and is not told again.
    let retry = post_signed(
        &server,
        &callback("Ev1", mention("U1", "1700.0001", "fix the build")),
        now(),
        &[("x-slack-retry-num", "1"), ("x-slack-retry-reason", "http_timeout")],
    )
    .await;
    assert_eq!(retry.status(), 200);
    send(
        &server,
        "Ev2",
        json!({"type": "message", "user": "U1", "channel": "C1", "ts": "1700.0001",
        "text": "<@U0BOT> fix the build"}),
    )
    .await;

    // A reply in the thread, without a mention, steers the session.
    send(&server, "Ev3", reply("U2", "1700.0005", "1700.0001", "please also fix the docs")).await;
    posted(&slack, "1700.0001", "Also fixed the docs.").await;
    let requests = server.fake.requests();
    assert!(requests[2].body.to_string().contains("please also fix the docs"));
    assert_eq!(sessions(&server).await.len(), 1, "one session for one thread");
    let posts = posts_in(&slack, "1700.0001");
    assert_eq!(posts.iter().filter(|text| text.starts_with("On it")).count(), 1, "{posts:#?}");
    assert_eq!(posts.iter().filter(|text| text.starts_with("Done:")).count(), 1, "{posts:#?}");
    server.fake.assert_no_violations();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_not_signed_by_slack_are_refused() {
    let slack = FakeSlack::start().await;
    let server = start(Script::new(), &slack, &[]).await;
    let body = callback("Ev1", mention("U1", "1.1", "hello"));

    let stale = post_signed(&server, &body, now() - 600, &[]).await;
    assert_eq!(stale.status(), 401);
    assert!(stale.text().await.unwrap().contains("five minutes"));
    let forged = server
        .anonymous(reqwest::Method::POST, "/slack/events")
        .header("x-slack-request-timestamp", now().to_string())
        .header("x-slack-signature", "v0=0000")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);
    assert!(sessions(&server).await.is_empty());

    let challenge = post_signed(&server, &json!({"type": "url_verification", "challenge": "c-123"}), now(), &[]).await;
    assert_eq!(challenge.json::<Value>().await.unwrap()["challenge"], "c-123");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_admins_and_approved_people_can_use_it() {
    let slack = FakeSlack::start().await;
    let script = Script::new().turn(Turn::text("Hello, approved person."));
    let server = start(script, &slack, &["UADMIN"]).await;

    // A stranger is told once, and nothing runs.
    send(&server, "Ev1", mention("USTRANGER", "2.1", "do something")).await;
    posted(&slack, "2.1", "not authorised").await;
    send(&server, "Ev2", reply("USTRANGER", "2.2", "2.1", "<@U0BOT> please?")).await;
    // Only admins approve.
    send(&server, "Ev3", mention("USTRANGER", "2.3", "approve_user <@USTRANGER>")).await;
    send(&server, "Ev4", mention("UADMIN", "3.1", "approve_user <@UNEW> <@UOTHER>")).await;
    posted(&slack, "3.1", "Approved <@UNEW>, <@UOTHER>").await;
    assert!(sessions(&server).await.is_empty());
    let told = posts_in(&slack, "2.1");
    assert_eq!(told.iter().filter(|text| text.contains("not authorised")).count(), 1, "{told:#?}");

    send(&server, "Ev5", mention("UNEW", "4.1", "say hello")).await;
    posted(&slack, "4.1", "Hello, approved person.").await;
    send(&server, "Ev6", mention("UADMIN", "5.1", "revoke_user <@UNEW>")).await;
    posted(&slack, "5.1", "Revoked <@UNEW>").await;
    send(&server, "Ev7", mention("UNEW", "6.1", "again")).await;
    posted(&slack, "6.1", "not authorised").await;
    assert_eq!(sessions(&server).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thread_commands_files_and_take_over() {
    let slack = FakeSlack::start().await;
    let script = Script::new()
        .turn(Response::new().tool_use("shell", json!({"command": "printf 'report body' > report.txt"})))
        .turn(Response::new().tool_use("send_file", json!({"path": "report.txt", "message": "Here is the report."})))
        .turn(Turn::text("Report sent."))
        .turn(Turn::text("Web session answer."))
        .turn(Response::new().tool_use("shell", json!({"command": WAIT_FOR_GO})));
    let server = start(script, &slack, &[]).await;

    // A person's attachment lands in the workspace.
    let url = slack.add_file("notes.txt", b"remember the milk".to_vec());
    let mut event = mention("U1", "7.1", "write a report");
    event["files"] = json!([{ "name": "notes.txt", "mimetype": "text/plain", "url_private": url, "size": 17 }]);
    send(&server, "Ev1", event).await;
    posted(&slack, "7.1", "Report sent.").await;
    let session = sessions(&server).await.remove(0);
    let inbox = server.state().service.workspace(&session.id).join(".rswe/inbox/notes.txt");
    assert_eq!(std::fs::read_to_string(inbox).unwrap(), "remember the milk");
    let uploaded = slack.uploaded_files();
    assert_eq!(uploaded.len(), 1, "{uploaded:#?}");
    assert_eq!((uploaded[0].filename.as_str(), uploaded[0].bytes.as_slice()), ("report.txt", &b"report body"[..]));
    assert_eq!(uploaded[0].thread_ts.as_deref(), Some("7.1"));

    // status and dump_history.
    send(&server, "Ev2", reply("U1", "7.2", "7.1", "<@U0BOT> status")).await;
    let status = posted(&slack, "7.1", "*Session*").await;
    let text = status.arg("text").unwrap();
    assert!(text.contains("waiting") && text.contains("*Cost*") && text.contains("*Repository* none"), "{text}");
    send(&server, "Ev3", reply("U1", "7.3", "7.1", "dump_history")).await;
    let completed =
        slack.wait_for_call("files.completeUploadExternal", |call| call.body.to_string().contains(".md"), WAIT);
    assert!(completed.await.is_some(), "no transcript uploaded: {:#?}", slack.calls());
    let transcript = slack.uploaded_files().into_iter().find(|file| file.filename.ends_with(".md")).unwrap();
    let transcript = String::from_utf8(transcript.bytes).unwrap();
    assert!(transcript.contains("write a report") && transcript.contains("Report sent."), "{transcript}");

    // A session started on the web, which has answered there, is taken over by another
    // thread: what it says from then on comes to the thread.
    let created = server.post("/api/v1/sessions").json(&json!({ "message": "from the web" })).send().await.unwrap();
    let web: Value = created.json().await.unwrap();
    let id = rswe_protocol::SessionId::parse(web["id"].as_str().unwrap()).unwrap();
    wait_status(&server, &id, SessionStatus::Waiting).await;
    send(&server, "Ev4", mention("U2", "8.1", &format!("take_over <http://127.0.0.1/sessions/{id}>"))).await;
    posted(&slack, "8.1", "This thread now follows").await;
    send(&server, "Ev5", reply("U2", "8.2", "8.1", "status")).await;
    posted(&slack, "8.1", "*Session*").await;
    send(&server, "Ev6", reply("U2", "8.3", "8.1", "stop")).await;
    posted(&slack, "8.1", "Nothing is running").await;

    // stop interrupts a working session.
    send(&server, "Ev7", reply("U2", "8.4", "8.1", "run the slow thing")).await;
    wait_status_working(&server, &id).await;
    send(&server, "Ev8", reply("U2", "8.5", "8.1", "stop")).await;
    posted(&slack, "8.1", "Stopping.").await;
    wait_status(&server, &id, SessionStatus::Idle).await;
    let told = posts_in(&slack, "8.1");
    assert!(!told.iter().any(|text| text.contains("Web session answer.")), "only what came after: {told:#?}");
}

/// A shell command that waits (at most 60 s) for a file `go` that never comes: the
/// agent is working until interrupted.
const WAIT_FOR_GO: &str = "for i in $(seq 1 1200); do [ -f go ] && break; sleep 0.05; done; echo released";

/// Waits (bounded) until the session rests with `status`.
async fn wait_status(server: &TestServer, id: &rswe_protocol::SessionId, status: SessionStatus) {
    for _ in 0..1200 {
        let session = server.store().session(id).await.unwrap().unwrap();
        if session.status == status && server.state().service.activity(id) == rswe_server::service::Activity::Resting {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("session {id} never became {status:?}");
}

/// Waits (bounded) until the session's agent is running a tool.
async fn wait_status_working(server: &TestServer, id: &rswe_protocol::SessionId) {
    for _ in 0..1200 {
        let events = server.store().events(id, 0, 1000).await.unwrap();
        let last_call = events.iter().rev().find_map(|event| match &event.kind {
            rswe_protocol::EventKind::AssistantMessage { stop_reason, .. } => Some(stop_reason == "tool_use"),
            _ => None,
        });
        if last_call == Some(true) && server.state().service.activity(id) != rswe_server::service::Activity::Resting {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("session {id} never started its tool");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_slack_never_stops_the_session_and_is_caught_up_later() {
    let slack = FakeSlack::start().await;
    let script = Script::new().turn(Turn::text("The answer, once Slack is back."));
    let server = start(script, &slack, &[]).await;
    slack.http_error("chat.postMessage", 1000, 503);
    send(&server, "Ev1", mention("U1", "9.1", "work while Slack is down")).await;
    let mut waiting = None;
    for _ in 0..1200 {
        waiting = sessions(&server).await.pop().filter(|session| session.status == SessionStatus::Waiting);
        if waiting.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let session = waiting.expect("the agent finished without Slack");
    slack.recover("chat.postMessage");
    // Anything the session logs wakes its thread's delivery, which catches up.
    server
        .post(&format!("/api/v1/sessions/{}/messages", session.id))
        .json(&json!({"text": "ping"}))
        .send()
        .await
        .unwrap();
    posted(&slack, "9.1", "The answer, once Slack is back.").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_mode_takes_a_mention_and_acknowledges_it() {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    let slack = FakeSlack::start().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    slack.set_socket_url(format!("ws://{}/socket", listener.local_addr().unwrap()));
    let (acks_sender, mut acks) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let mut socket = tokio_tungstenite::accept_async(stream).await.unwrap();
        let hello = json!({"type": "hello", "num_connections": 1});
        socket.send(Message::text(hello.to_string())).await.unwrap();
        let envelope = json!({"envelope_id": "env-1", "type": "events_api", "accepts_response_payload": false,
            "payload": callback("Ev1", mention("U1", "10.1", "answer over the socket"))});
        socket.send(Message::text(envelope.to_string())).await.unwrap();
        while let Some(Ok(message)) = socket.next().await {
            if let Message::Text(text) = message {
                let _ = acks_sender.send(text.to_string());
            }
        }
    });
    let mut settings = settings(&slack, &[]);
    settings.signing_secret = None;
    settings.app_token = Some(slack.app_token().to_string());
    let script = Script::new().turn(Turn::text("Answered over the socket."));
    let server = TestServer::start_with(script, Options { slack: Some(settings), ..Default::default() }).await;

    let ack = tokio::time::timeout(WAIT, acks.recv()).await.unwrap().unwrap();
    assert_eq!(serde_json::from_str::<Value>(&ack).unwrap()["envelope_id"], "env-1");
    posted(&slack, "10.1", "Answered over the socket.").await;
    assert_eq!(sessions(&server).await.len(), 1);
    // Without a signing secret, the Events API endpoint is closed.
    let refused = post_signed(&server, &callback("Ev9", mention("U1", "11.1", "x")), now(), &[]).await;
    assert_eq!(refused.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_admins_only_the_bots_own_workspace_may_use_it() {
    let slack = FakeSlack::start().await;
    let script = Script::new().turn(Turn::text("Hello, colleague."));
    let server = start(script, &slack, &[]).await;
    let mut guest = mention("UGUEST", "12.1", "run something");
    guest["user_team"] = json!("TOTHERORG");
    send(&server, "Ev1", guest).await;
    posted(&slack, "12.1", "not authorised").await;
    let mut colleague = mention("U1", "13.1", "say hello");
    colleague["user_team"] = json!("T0TEAM");
    send(&server, "Ev2", colleague).await;
    posted(&slack, "13.1", "Hello, colleague.").await;
    assert_eq!(sessions(&server).await.len(), 1, "only the colleague's");
}
