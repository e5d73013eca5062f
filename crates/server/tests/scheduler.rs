//! The scheduler: a limit on working sessions with a first-come queue, idle sandboxes
//! released and made again, attachments delivered into the workspace.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Options, TestServer};
use rswe_protocol::{ContentBlock, EventKind, SessionId, SessionStatus};
use rswe_server::service::Activity;
use rswe_server::{Attachment, CreateSession, NewMessage};
use rswe_test_support::{Response, Script, Turn};
use serde_json::json;
use std::time::{Duration, Instant};

const WAIT_FOR_GO: &str = "for i in $(seq 1 1200); do [ -f go ] && break; sleep 0.05; done; echo released";

fn shell(command: &str) -> Turn {
    Response::new().tool_use("shell", json!({ "command": command })).into()
}

fn task(text: &str) -> CreateSession {
    CreateSession {
        message: NewMessage { text: text.into(), ..Default::default() },
        channel: "api".into(),
        ..Default::default()
    }
}

/// Polls `check` every 20 ms for at most 30 s.
async fn until(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn status(server: &TestServer, id: &SessionId) -> SessionStatus {
    server.store().session(id).await.unwrap().unwrap().status
}

async fn rests_with(server: &TestServer, id: &SessionId, wanted: SessionStatus) {
    until(&format!("{id} rests {wanted:?}"), async || {
        status(server, id).await == wanted && server.state().service.activity(id) == Activity::Resting
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_beyond_the_limit_wait_their_turn_in_order() {
    let script = Script::new().turns(vec![
        shell(WAIT_FOR_GO),
        Turn::text("first done"),
        Turn::text("second done"),
        Turn::text("third done"),
    ]);
    let server = TestServer::start_with(script, Options { max_working: 1, ..Default::default() }).await;
    let service = &server.state().service;
    let first = service.create(task("first")).await.unwrap().id;
    assert!(server.fake.wait_for_requests(1, Duration::from_secs(30)).await);
    assert_eq!(service.activity(&first), Activity::Running);
    let second = service.create(task("second")).await.unwrap().id;
    let third = service.create(task("third")).await.unwrap().id;
    assert_eq!(service.activity(&second), Activity::Queued);
    assert_eq!(service.activity(&third), Activity::Queued);
    assert_eq!(server.fake.requests().len(), 1, "queued sessions ask nothing");

    std::fs::write(service.workspace(&first).join("go"), "").unwrap();
    rests_with(&server, &third, SessionStatus::Waiting).await;
    rests_with(&server, &second, SessionStatus::Waiting).await;
    // First come, first served: the second session asked before the third.
    let asked: Vec<String> = server
        .fake
        .requests()
        .iter()
        .map(|r| r.body["messages"][0]["content"][0]["text"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(asked, ["first", "first", "second", "third"]);
    server.fake.assert_no_violations();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_session_that_is_interrupted_rests_and_answers_a_later_message() {
    let script = Script::new().turns(vec![shell(WAIT_FOR_GO), Turn::text("first done"), Turn::text("second done")]);
    let server = TestServer::start_with(script, Options { max_working: 1, ..Default::default() }).await;
    let service = &server.state().service;
    let first = service.create(task("first")).await.unwrap().id;
    assert!(server.fake.wait_for_requests(1, Duration::from_secs(30)).await);
    let second = service.create(task("second")).await.unwrap().id;
    assert_eq!(service.activity(&second), Activity::Queued);

    service.interrupt(&second, Some("test".into())).await.unwrap();
    rests_with(&server, &second, SessionStatus::Idle).await;
    assert_eq!(server.fake.requests().len(), 1, "the interrupted session asked nothing");

    service.post_message(&second, NewMessage { text: "now go".into(), ..Default::default() }).await.unwrap();
    assert_eq!(service.activity(&second), Activity::Queued);
    std::fs::write(service.workspace(&first).join("go"), "").unwrap();
    rests_with(&server, &first, SessionStatus::Waiting).await;
    rests_with(&server, &second, SessionStatus::Waiting).await;
    let last = server.fake.requests()[2].body["messages"].to_string();
    assert!(last.contains("now go"), "{last}");
    server.fake.assert_no_violations();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_sandbox_is_released_and_made_again_with_the_workspace_intact() {
    let script = Script::new().turns(vec![
        shell("echo kept > notes.txt"),
        Turn::text("wrote it"),
        shell("cat notes.txt"),
        Turn::text("read it"),
    ]);
    let options = Options { idle_release: Duration::from_millis(200), ..Default::default() };
    let server = TestServer::start_with(script, options).await;
    let service = &server.state().service;
    let id = service.create(task("write a note")).await.unwrap().id;
    rests_with(&server, &id, SessionStatus::Waiting).await;
    until("the sandbox is released", async || service.counts().2 == 0).await;

    service.post_message(&id, NewMessage { text: "read it back".into(), ..Default::default() }).await.unwrap();
    rests_with(&server, &id, SessionStatus::Waiting).await;
    let last_result = server.fake.requests()[3].body["messages"].as_array().unwrap().last().unwrap().to_string();
    assert!(last_result.contains("kept"), "{last_result}");
    server.fake.assert_no_violations();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attachments_reach_the_model_and_the_workspace() {
    let script = Script::new().turns(vec![
        shell("cat .rswe/inbox/notes.txt"),
        Turn::text("seen"),
        shell("cat .rswe/inbox/notes-2.txt"),
        Turn::text("seen again"),
    ]);
    let server = TestServer::start(script).await;
    let service = &server.state().service;
    // A 1×1 PNG.
    let png = [
        0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52, 0x00, 0x00,
        0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4, 0x89, 0x00, 0x00, 0x00,
        0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8, 0xcf, 0xc0, 0xf0, 0x1f, 0x00, 0x05, 0x00, 0x01, 0xff,
        0x89, 0x99, 0x3d, 0x1d, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
    ];
    let mut request = task("look at these");
    request.message.attachments = vec![
        Attachment { name: "shot.png".into(), media_type: "image/png".into(), data: png.to_vec() },
        Attachment { name: "notes.txt".into(), media_type: "text/plain".into(), data: b"attached words".to_vec() },
    ];
    let id = service.create(request).await.unwrap().id;
    rests_with(&server, &id, SessionStatus::Waiting).await;
    let events = server.store().events(&id, 0, 100).await.unwrap();
    let EventKind::UserMessage { content, .. } = &events[0].kind else { panic!("{:?}", events[0]) };
    assert!(content.iter().any(|b| matches!(b, ContentBlock::Image { .. })));
    assert!(format!("{content:?}").contains(".rswe/inbox/notes.txt"));
    let result = server.fake.requests()[1].body["messages"].as_array().unwrap().last().unwrap().to_string();
    assert!(result.contains("attached words"), "{result}");

    // A second file of the same name does not replace the first.
    let mut again = NewMessage { text: "a newer version".into(), ..Default::default() };
    again.attachments =
        vec![Attachment { name: "notes.txt".into(), media_type: "text/plain".into(), data: b"newer words".to_vec() }];
    service.post_message(&id, again).await.unwrap();
    rests_with(&server, &id, SessionStatus::Waiting).await;
    let result = server.fake.requests()[3].body["messages"].as_array().unwrap().last().unwrap().to_string();
    assert!(result.contains("newer words"), "{result}");
    let first = std::fs::read_to_string(service.workspace(&id).join(".rswe/inbox/notes.txt")).unwrap();
    assert_eq!(first, "attached words");
    let events = server.store().events(&id, 0, 100).await.unwrap();

    // Names that would leave the inbox are refused, and nothing is logged for them.
    let mut bad = NewMessage { text: "x".into(), ..Default::default() };
    bad.attachments = vec![Attachment { name: "../escape".into(), media_type: "text/plain".into(), data: vec![1] }];
    let error = service.post_message(&id, bad).await.unwrap_err();
    assert!(error.to_string().contains("plain file name"), "{error}");
    assert_eq!(server.store().events(&id, 0, 100).await.unwrap().len(), events.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repository_is_cloned_into_the_workspace() {
    let origin = tempfile::tempdir().unwrap();
    let git = |args: &[&str]| {
        let status = std::process::Command::new("git").arg("-C").arg(origin.path()).args(args).status().unwrap();
        assert!(status.success());
    };
    git(&["init", "-q", "-b", "main"]);
    std::fs::write(origin.path().join("README.md"), "# the project\n").unwrap();
    git(&["add", "."]);
    git(&["-c", "user.name=Dev", "-c", "user.email=dev@example.com", "commit", "-qm", "start"]);

    let server = TestServer::start(Script::new().turns(vec![shell("cat README.md"), Turn::text("read")])).await;
    let service = &server.state().service;
    let mut request = task("read the readme");
    request.repository = Some(origin.path().display().to_string());
    let id = service.create(request).await.unwrap().id;
    rests_with(&server, &id, SessionStatus::Waiting).await;
    let result = server.fake.requests()[1].body["messages"].as_array().unwrap().last().unwrap().to_string();
    assert!(result.contains("# the project"), "{result}");

    // A repository that cannot be cloned fails the session with a reason.
    let mut request = task("clone nothing");
    request.repository = Some(origin.path().join("missing").display().to_string());
    let id = service.create(request).await.unwrap().id;
    rests_with(&server, &id, SessionStatus::Failed).await;
    let events = server.store().events(&id, 0, 100).await.unwrap();
    assert!(events.iter().any(|e| matches!(&e.kind, EventKind::Error { class, message } if class == "workspace" && message.contains("cannot clone"))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_whose_wake_was_lost_is_answered_on_the_next_start() {
    // The log a crash can leave: the person's message is the newest event, but the
    // session's status says the agent had answered.
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let store = rswe_store::Store::open(data.join("rswe.db")).await.unwrap();
    let session = store
        .create_session(rswe_store::NewSession {
            model: common::MODEL.into(),
            channel: "api".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let id = session.id;
    let text = |t: &str| vec![ContentBlock::text(t)];
    store.append(&id, EventKind::UserMessage { content: text("first"), author: None }).await.unwrap();
    store
        .append(
            &id,
            EventKind::AssistantMessage {
                content: text("first answer"),
                model: common::MODEL.into(),
                stop_reason: "end_turn".into(),
                usage: Default::default(),
                cost_usd: None,
                request_seq: None,
            },
        )
        .await
        .unwrap();
    store.append(&id, EventKind::StatusChanged { status: SessionStatus::Waiting, reason: None }).await.unwrap();
    store.append(&id, EventKind::UserMessage { content: text("are you there?"), author: None }).await.unwrap();
    assert_eq!(store.sessions_with_unanswered_message().await.unwrap(), vec![id.clone()]);
    store.close().await;

    let fake = rswe_test_support::FakeModelServer::start(Script::new().turn(Turn::text("Yes."))).await;
    let server = common::start_server(&fake, root.path().to_path_buf(), Options::default()).await;
    assert_eq!(server.resumed, 1);
    assert!(fake.wait_for_requests(1, Duration::from_secs(30)).await);
    let store = &server.state.store;
    until("the session rests", async || {
        store.session(&id).await.unwrap().unwrap().status == SessionStatus::Waiting
            && server.state.service.activity(&id) == Activity::Resting
    })
    .await;
    assert!(store.sessions_with_unanswered_message().await.unwrap().is_empty());
    let last = fake.requests()[0].body["messages"].as_array().unwrap().last().unwrap().to_string();
    assert!(last.contains("are you there?"), "{last}");
}
