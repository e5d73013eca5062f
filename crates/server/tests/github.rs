//! The GitHub channel end to end: signed webhook deliveries in, a real session on the
//! fake model, and everything the issue or pull request is told recorded by a fake
//! GitHub REST API.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Options, TestServer};
use rswe_github::marker::session_marker;
use rswe_github::{Credentials, GitHubSettings};
use rswe_protocol::{SessionId, SessionStatus};
use rswe_test_support::github::{FakeComment, FakeGitHub};
use rswe_test_support::{FakeModelServer, Script, Turn};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const SECRET: &str = "a webhook secret for the tests";
const WAIT: Duration = Duration::from_secs(30);
/// The login the fake's token belongs to: rswe itself.
const BOT: &str = "rswe-bot";

fn settings(github: &FakeGitHub, secret: Option<&str>) -> GitHubSettings {
    let mut settings = GitHubSettings::new(Credentials::Token(github.token().to_string()));
    settings.api_url = github.api_url();
    settings.webhook_secret = secret.map(str::to_string);
    settings
}

/// A fake GitHub with `octo/hello`, where alice may write, bob may only read, and the
/// maintainer and the reviewer may write too.
async fn fake_github() -> FakeGitHub {
    let github = FakeGitHub::start().await;
    github.add_repository("octo", "hello", "main", true);
    github.set_permission("octo", "hello", "alice", "write");
    github.set_permission("octo", "hello", "bob", "read");
    github.set_permission("octo", "hello", "maintainer", "maintain");
    github.set_permission("octo", "hello", "reviewer", "admin");
    github
}

async fn start(script: Script, github: &FakeGitHub) -> TestServer {
    let options = Options { github: Some(settings(github, Some(SECRET))), ..Default::default() };
    TestServer::start_with(script, options).await
}

/// Posts a delivery to /github/webhook as GitHub does: signed with the secret.
async fn post(url: &str, event: &str, delivery_id: &str, payload: &Value) -> reqwest::Response {
    let body = payload.to_string();
    reqwest::Client::new()
        .post(format!("{url}/github/webhook"))
        .header("content-type", "application/json")
        .header("x-github-event", event)
        .header("x-github-delivery", delivery_id)
        .header("x-hub-signature-256", rswe_github::webhook::sign(SECRET, body.as_bytes()))
        .body(body)
        .send()
        .await
        .unwrap()
}

/// Posts a delivery and checks GitHub's answer: `status` and the JSON body.
async fn deliver(server: &TestServer, event: &str, delivery_id: &str, payload: &Value, status: u16) -> Value {
    let response = post(&server.url, event, delivery_id, payload).await;
    assert_eq!(response.status(), status, "{delivery_id}");
    response.json().await.unwrap()
}

fn repository() -> Value {
    json!({"id": 1, "name": "hello", "full_name": "octo/hello", "private": false,
           "owner": {"login": "octo", "type": "User"}})
}

/// An `issue_comment` delivery for a comment the fake knows (so it can be reacted to).
fn comment(github: &FakeGitHub, number: u64, user: &str, body: &str) -> (u64, Value) {
    let id = github.add_issue_comment("octo", "hello", number, user, body);
    let payload = json!({
        "action": "created",
        "issue": {"number": number, "title": "Crash on empty input", "body": "Steps: run it with nothing.",
                  "state": "open", "user": {"login": "reporter", "type": "User"}},
        "comment": {"id": id, "body": body, "user": {"login": user, "type": "User"}, "author_association": "MEMBER",
                    "html_url": format!("https://github.com/octo/hello/issues/{number}#issuecomment-{id}")},
        "repository": repository(),
        "sender": {"login": user, "type": "User"},
    });
    (id, payload)
}

fn assignment(number: u64, assignee: &str, sender: &str) -> Value {
    json!({
        "action": "assigned",
        "issue": {"number": number, "title": "Add a --dry-run flag", "body": "It should change nothing.",
                  "assignees": [{"login": assignee}]},
        "assignee": {"login": assignee, "type": "User"},
        "repository": repository(),
        "sender": {"login": sender, "type": "User"},
    })
}

fn pull_request(number: u64, body: &str) -> Value {
    json!({"number": number, "title": "Fix the crash", "body": body,
           "head": {"ref": "rswe/fix-crash", "sha": "deadbeef"}, "base": {"ref": "main"}})
}

/// Waits (bounded) until `check` holds.
async fn until(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// rswe's comments on item `number`.
fn said_on(github: &FakeGitHub, number: u64) -> Vec<FakeComment> {
    github.comments().into_iter().filter(|comment| comment.user == BOT && comment.number == number).collect()
}

/// Waits for rswe's comment on item `number` containing `needle`.
async fn posted(github: &FakeGitHub, number: u64, needle: &str) -> FakeComment {
    until(&format!("a comment on #{number} says {needle:?}"), async || {
        said_on(github, number).iter().any(|comment| comment.body.contains(needle))
    })
    .await;
    said_on(github, number).into_iter().find(|comment| comment.body.contains(needle)).unwrap()
}

/// Waits until every recorded delivery was handled.
async fn all_handled(store: &rswe_store::Store) {
    until("every delivery is handled", async || store.github_pending(10).await.unwrap().is_empty()).await;
}

async fn sessions(server: &TestServer) -> Vec<rswe_store::Session> {
    server.store().list_sessions(rswe_store::SessionFilter::default()).await.unwrap().sessions
}

/// The text of the last message of the model's `n`-th request (from 1).
fn last_message(fake: &FakeModelServer, n: usize) -> String {
    let requests = fake.requests();
    requests[n - 1].body["messages"].as_array().unwrap().last().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_need_a_secret_and_githubs_signature() {
    // Without GitHub configured, there is no webhook.
    let plain = TestServer::start(Script::new()).await;
    assert_eq!(post(&plain.url, "ping", "d-0", &json!({})).await.status(), 404);

    // Without a secret, every delivery is refused and nothing is kept.
    let github = fake_github().await;
    let options = Options { github: Some(settings(&github, None)), ..Default::default() };
    let open = TestServer::start_with(Script::new(), options).await;
    let (_, payload) = comment(&github, 12, "alice", "@rswe fix this");
    let refused = post(&open.url, "issue_comment", "d-1", &payload).await;
    assert_eq!(refused.status(), 403);
    let text = refused.text().await.unwrap();
    assert!(text.contains("GITHUB_WEBHOOK_SECRET is not set: rswe refuses GitHub webhook deliveries until it is"));
    assert!(open.store().github_pending(10).await.unwrap().is_empty());
    assert!(sessions(&open).await.is_empty());

    let server = start(Script::new(), &github).await;
    let body = payload.to_string();
    let forged = reqwest::Client::new()
        .post(format!("{}/github/webhook", server.url))
        .header("x-github-event", "issue_comment")
        .header("x-github-delivery", "d-2")
        .header("x-hub-signature-256", rswe_github::webhook::sign("another secret", body.as_bytes()))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);
    let unsigned = reqwest::Client::new()
        .post(format!("{}/github/webhook", server.url))
        .header("x-github-event", "issue_comment")
        .header("x-github-delivery", "d-3")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 401);
    let anonymous = reqwest::Client::new()
        .post(format!("{}/github/webhook", server.url))
        .header("x-github-event", "issue_comment")
        .header("x-hub-signature-256", rswe_github::webhook::sign(SECRET, body.as_bytes()))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 400, "no X-GitHub-Delivery");
    assert!(server.store().github_pending(10).await.unwrap().is_empty());
    assert!(sessions(&server).await.is_empty());

    let ping = json!({"zen": "Keep it logically awesome.", "hook_id": 1});
    assert_eq!(deliver(&server, "ping", "d-4", &ping, 200).await, json!({"ok": true}));
    let push = json!({"ref": "refs/heads/main", "repository": repository()});
    assert_eq!(deliver(&server, "push", "d-5", &push, 200).await["ok"], true);
    assert!(github.comments().iter().all(|comment| comment.user != BOT), "rswe said nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_comment_calling_rswe_starts_a_session_that_answers_on_the_issue() {
    let github = fake_github().await;
    let script = Script::new()
        .turn(Turn::text("Fixed it: the parser now handles empty input."))
        .turn(Turn::text("Also covered the docs."));
    let server = start(script, &github).await;

    let (asked, payload) = comment(&github, 12, "alice", "@rswe please fix the crash");
    assert_eq!(deliver(&server, "issue_comment", "d-1", &payload, 202).await, json!({"ok": true}));
    let answer = posted(&github, 12, "Fixed it: the parser now handles empty input.").await;
    let all = sessions(&server).await;
    assert_eq!(all.len(), 1);
    let session = &all[0];
    assert_eq!(session.channel, "github");
    assert_eq!(session.title.as_deref(), Some("Crash on empty input"));
    let marker = session_marker(session.id.as_str());
    assert!(answer.body.contains(&marker), "{}", answer.body);
    assert!(answer.body.contains(&format!("[View the session]({}/sessions/{})", "http://127.0.0.1:8080", session.id)));
    let first = said_on(&github, 12).remove(0);
    assert!(first.body.starts_with("👀 Working on it: "), "{}", first.body);
    assert!(first.body.contains(&format!("/sessions/{}", session.id)) && first.body.contains(&marker));
    let reactions = github.reactions();
    assert_eq!(reactions.len(), 1, "{reactions:#?}");
    assert_eq!((reactions[0].comment_id, reactions[0].content.as_str()), (asked, "eyes"));
    // The task says where the work is and how to hand it back.
    let task = last_message(&server.fake, 1);
    for needle in ["@rswe please fix the crash", "octo/hello#12", "Steps: run it with nothing.", "clone_repository"] {
        assert!(task.contains(needle), "{needle:?} not in {task}");
    }
    assert!(task.contains("create_pull_request") && task.contains("@alice"), "{task}");
    let author =
        server.store().events(&session.id, 0, 100).await.unwrap().into_iter().find_map(|event| match event.kind {
            rswe_protocol::EventKind::UserMessage { author, .. } => author,
            _ => None,
        });
    assert_eq!(author.as_deref(), Some("github:alice"));

    // The same delivery again does nothing twice.
    assert_eq!(deliver(&server, "issue_comment", "d-1", &payload, 200).await, json!({"ok": true, "duplicate": true}));
    // A comment that does not call rswe is not even kept.
    let (_, chat) = comment(&github, 12, "alice", "thanks, looks good");
    assert!(deliver(&server, "issue_comment", "d-2", &chat, 200).await["ignored"].is_string());
    // Someone who may only read is not answered at all.
    let (_, reader) = comment(&github, 12, "bob", "@rswe delete everything");
    deliver(&server, "issue_comment", "d-3", &reader, 202).await;
    assert!(github.wait_for_call("GET", "/repos/octo/hello/collaborators/bob/permission", WAIT).await.is_some());
    all_handled(server.store()).await;
    assert_eq!(github.reactions().len(), 1);
    assert_eq!(server.fake.requests().len(), 1, "the model heard nothing more");

    // Another comment calling rswe on the issue steers the same session.
    let (_, again) = comment(&github, 12, "alice", "@rswe please also update the docs");
    deliver(&server, "issue_comment", "d-4", &again, 202).await;
    posted(&github, 12, "Also covered the docs.").await;
    let steered = last_message(&server.fake, 2);
    assert!(steered.contains("@alice commented on octo/hello#12") && steered.contains("also update the docs"));
    assert_eq!(sessions(&server).await.len(), 1, "one session for one issue");
    let told: Vec<String> = said_on(&github, 12).into_iter().map(|comment| comment.body).collect();
    assert_eq!(told.iter().filter(|body| body.starts_with("👀 Working on it")).count(), 1, "{told:#?}");
    assert_eq!(told.iter().filter(|body| body.contains("Fixed it:")).count(), 1, "{told:#?}");
    assert_eq!(github.reactions().len(), 2, "each request is acknowledged once");
    server.fake.assert_no_violations();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_issue_assigned_to_rswe_starts_a_session() {
    let github = fake_github().await;
    let server = start(Script::new().turn(Turn::text("Added --dry-run; the pull request is open.")), &github).await;

    // Assigned to someone else, or by someone who may not write: nothing.
    deliver(&server, "issues", "d-1", &assignment(7, "alice", "maintainer"), 202).await;
    deliver(&server, "issues", "d-2", &assignment(7, BOT, "bob"), 202).await;
    all_handled(server.store()).await;
    assert!(sessions(&server).await.is_empty());

    deliver(&server, "issues", "d-3", &assignment(7, "RSWE-Bot", "maintainer"), 202).await;
    posted(&github, 7, "👀 Working on it").await;
    let answer = posted(&github, 7, "Added --dry-run; the pull request is open.").await;
    let session = sessions(&server).await.remove(0);
    assert!(answer.body.contains(&session_marker(session.id.as_str())));
    assert_eq!(session.title.as_deref(), Some("Add a --dry-run flag"));
    let task = last_message(&server.fake, 1);
    for needle in ["@maintainer assigned you", "octo/hello#7", "It should change nothing.", "create_pull_request"] {
        assert!(task.contains(needle), "{needle:?} not in {task}");
    }
    let origin = server.store().github_origin(&session.id).await.unwrap().unwrap();
    assert_eq!((origin.repo.as_str(), origin.number), ("octo/hello", 7));
    assert!(github.reactions().is_empty(), "no comment to react to");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_review_of_a_pull_request_rswe_opened_reaches_its_session() {
    let github = fake_github().await;
    let script = Script::new()
        .turn(Turn::text("Opened the pull request."))
        .turn(Turn::text("Added the test."))
        .turn(Turn::text("Fixed the off-by-one."));
    let server = start(script, &github).await;
    let created = server.post("/api/v1/sessions").json(&json!({"message": "fix the crash"})).send().await.unwrap();
    let id = SessionId::parse(created.json::<Value>().await.unwrap()["id"].as_str().unwrap()).unwrap();
    until("the web session answered", async || {
        server.store().session(&id).await.unwrap().unwrap().status == SessionStatus::Waiting
    })
    .await;
    let pr_body = format!("Fixes #12\n\n{}", session_marker(id.as_str()));
    // rswe opened pull request 5; someone else opened 7 and pasted the session's marker into it.
    github.add_issue_by("octo", "hello", 5, "Fix the crash", &pr_body, true, BOT);
    github.add_issue_by("octo", "hello", 7, "Not rswe's", &pr_body, true, "mallory");

    // Reviews of pull requests without a session, and by rswe itself, are not for it.
    let stranger = json!({"action": "submitted", "pull_request": pull_request(6, "no marker"),
        "review": {"id": 79, "body": "Nice.", "state": "approved", "user": {"login": "reviewer", "type": "User"}},
        "repository": repository()});
    deliver(&server, "pull_request_review", "d-0", &stranger, 202).await;
    let own = json!({"action": "submitted", "pull_request": pull_request(5, &pr_body),
        "review": {"id": 78, "body": "Self review.", "state": "commented", "user": {"login": BOT, "type": "User"}},
        "repository": repository()});
    // Ignored at once when rswe knows its login already, else when handled.
    let status = post(&server.url, "pull_request_review", "d-own", &own).await.status();
    assert!(status == 200 || status == 202, "{status}");
    all_handled(server.store()).await;
    assert_eq!(server.fake.requests().len(), 1);

    // A marker in a pull request rswe did not write leads nowhere.
    let foreign = json!({"action": "submitted", "pull_request": pull_request(7, &pr_body),
        "review": {"id": 81, "body": "Please add a test.", "state": "changes_requested",
                   "user": {"login": "reviewer", "type": "User"}},
        "repository": repository(), "sender": {"login": "reviewer", "type": "User"}});
    deliver(&server, "pull_request_review", "d-foreign", &foreign, 202).await;
    assert!(github.wait_for_call("GET", "/repos/octo/hello/issues/7", WAIT).await.is_some());
    all_handled(server.store()).await;
    assert_eq!(server.fake.requests().len(), 1, "the session heard nothing");
    assert_eq!(server.store().github_item_session("octo/hello", 7).await.unwrap(), None);
    assert!(said_on(&github, 7).is_empty());

    let review = json!({"action": "submitted", "pull_request": pull_request(5, &pr_body),
        "review": {"id": 80, "body": "Please add a test.", "state": "changes_requested",
                   "user": {"login": "reviewer", "type": "User"}},
        "repository": repository(), "sender": {"login": "reviewer", "type": "User"}});
    deliver(&server, "pull_request_review", "d-1", &review, 202).await;
    let answer = posted(&github, 5, "Added the test.").await;
    assert!(answer.body.contains(&session_marker(id.as_str())));
    let message = last_message(&server.fake, 2);
    assert!(message.contains("Please add a test.") && message.contains("changes requested"), "{message}");
    assert!(message.contains("rswe/fix-crash"), "{message}");
    assert_eq!(server.store().github_item_session("octo/hello", 5).await.unwrap(), Some(id.clone()));

    let diff = json!({"action": "created", "pull_request": pull_request(5, &pr_body),
        "comment": {"id": 90, "body": "Off by one here.", "path": "src/lib.rs", "line": 17,
                    "user": {"login": "reviewer", "type": "User"}},
        "repository": repository()});
    deliver(&server, "pull_request_review_comment", "d-2", &diff, 202).await;
    posted(&github, 5, "Fixed the off-by-one.").await;
    let message = last_message(&server.fake, 3);
    for needle in ["Off by one here.", "src/lib.rs", "line 17", "90", "reply_to_review_comment"] {
        assert!(message.contains(needle), "{needle:?} not in {message}");
    }
    let told = said_on(&github, 5);
    assert!(told.iter().all(|comment| !comment.body.contains("Opened the pull request.")), "only what came after");
    assert!(said_on(&github, 6).is_empty());
    assert_eq!(sessions(&server).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_github_did_not_let_finish_is_handled_when_github_answers_again() {
    let github = fake_github().await;
    let server = start(Script::new().turn(Turn::text("The crash is fixed.")), &github).await;
    let channel = server.state().github.as_ref().unwrap();
    channel.set_first_retry(Duration::from_millis(50));
    // Once rswe knows who it is, the permission check is the next call to GitHub.
    until("rswe knows who it is", async || channel.describe().contains(&format!("as @{BOT}"))).await;
    let permission = "/repos/octo/hello/collaborators/alice/permission";
    let checks = || github.calls().into_iter().filter(|call| call.path == permission).collect::<Vec<_>>();

    // Every attempt of the first check fails, and the first of the next.
    github.fail_next(api_attempts() + 1, 502);
    let (_, payload) = comment(&github, 12, "alice", "@rswe please fix the crash");
    deliver(&server, "issue_comment", "d-1", &payload, 202).await;
    until("the permission is checked again", async || checks().len() > api_attempts()).await;
    // The client waits before its next attempt: the delivery is still pending.
    let pending = server.store().github_pending(10).await.unwrap();
    assert_eq!(pending.iter().map(|item| item.delivery_id.as_str()).collect::<Vec<_>>(), ["d-1"]);
    assert!(sessions(&server).await.is_empty());

    posted(&github, 12, "The crash is fixed.").await;
    all_handled(server.store()).await;
    let statuses: Vec<u16> = checks().iter().map(|call| call.status).collect();
    let mut expected = vec![502; api_attempts() + 1];
    expected.push(200);
    assert_eq!(statuses, expected);
    assert_eq!(sessions(&server).await.len(), 1);
}

/// How many times the GitHub client tries a call GitHub answers with a server error.
fn api_attempts() -> usize {
    rswe_github::api::MAX_ATTEMPTS as usize
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_recorded_before_a_crash_is_handled_on_the_next_start() {
    let github = fake_github().await;
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let store = rswe_store::Store::open(data.join("rswe.db")).await.unwrap();
    let (asked, payload) = comment(&github, 21, "alice", "@rswe run the tests");
    assert!(store.github_receive("d-crash", "issue_comment", &payload.to_string()).await.unwrap());
    store.close().await;

    let fake = FakeModelServer::start(Script::new().turn(Turn::text("The tests pass."))).await;
    let options = Options { github: Some(settings(&github, Some(SECRET))), ..Default::default() };
    let server = common::start_server(&fake, root.path().to_path_buf(), options).await;
    posted(&github, 21, "The tests pass.").await;
    until("the delivery is handled", async || server.state.store.github_pending(10).await.unwrap().is_empty()).await;
    assert_eq!(github.reactions().iter().filter(|reaction| reaction.comment_id == asked).count(), 1);
    // Delivered again by GitHub after the restart: nothing twice.
    let url = format!("http://{}", server.addr);
    assert_eq!(post(&url, "issue_comment", "d-crash", &payload).await.status(), 200);
    assert_eq!(said_on(&github, 21).iter().filter(|comment| comment.body.contains("Working on it")).count(), 1);
    server.shutdown(Duration::from_secs(5)).await;
}

/// Every file under `dir` that holds `needle`.
fn files_containing(dir: &std::path::Path, needle: &str) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&path) else { continue };
        if meta.is_dir() {
            stack.extend(std::fs::read_dir(&path).unwrap().map(|entry| entry.unwrap().path()));
        } else if meta.is_file()
            && let Ok(bytes) = std::fs::read(&path)
            && bytes.windows(needle.len()).any(|window| window == needle.as_bytes())
        {
            found.push(path);
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn from_an_issue_comment_rswe_opens_a_pull_request_that_closes_the_issue() {
    let github = fake_github().await;
    github.add_issue("octo", "hello", 12, "Crash on empty input", "Steps: run it with nothing.", false);
    let git_root = tempfile::tempdir().unwrap();
    let git = github.serve_git(git_root.path().to_path_buf()).await;
    let bare = github.bare_repository("octo", "hello").unwrap();
    rswe_test_support::git_http::seed(&bare, &[("README.md", "# hello\n"), ("input.txt", "crash\n")], "main").await;

    let script = Script::new()
        .turn(rswe_test_support::Response::new().tool_use("clone_repository", json!({})))
        .turn(rswe_test_support::Response::new().tool_use(
            "shell",
            json!({"command": "git switch -q -c fix-empty-input && printf 'handled\\n' > input.txt && \
                               git commit -q -am 'Handle empty input' && git log --format=%an -1"}),
        ))
        .turn(rswe_test_support::Response::new().tool_use(
            "create_pull_request",
            json!({"title": "Handle empty input", "body": "Empty input no longer crashes."}),
        ))
        .turn(Turn::text("Opened a pull request that handles empty input."));
    let server = start(script, &github).await;
    let (_, payload) = comment(&github, 12, "alice", "@rswe please fix this");
    deliver(&server, "issue_comment", "d-pr-1", &payload, 202).await;

    let answer = posted(&github, 12, "Opened a pull request that handles empty input.").await;
    let [session] = sessions(&server).await.try_into().unwrap();
    assert!(answer.body.contains(&session_marker(session.id.as_str())), "{}", answer.body);

    // The pull request: on the issue's repository, from the new branch into the default one, linking the issue.
    let [pull] = github.pull_requests().try_into().unwrap();
    assert_eq!(
        (pull.repository.as_str(), pull.head.as_str(), pull.base.as_str()),
        ("octo/hello", "octo:fix-empty-input", "main")
    );
    assert_eq!(pull.title, "Handle empty input");
    assert!(pull.body.starts_with("Empty input no longer crashes.\n\nCloses #12"), "{}", pull.body);
    assert!(pull.body.contains(&session_marker(session.id.as_str())), "{}", pull.body);
    assert!(pull.body.contains(&format!("/sessions/{}", session.id)), "{}", pull.body);

    // The branch is on the bare repository, with the agent's commit, authored as the token's user.
    assert_eq!(
        rswe_test_support::git_http::file_at(&bare, "fix-empty-input", "input.txt").await.as_deref(),
        Some("handled\n")
    );
    assert_eq!(rswe_test_support::git_http::file_at(&bare, "main", "input.txt").await.as_deref(), Some("crash\n"));
    let events = server.store().events(&session.id, 0, 500).await.unwrap();
    let log = serde_json::to_string(&events).unwrap();
    assert!(log.contains("rswe-bot"), "the commit's author is shown: {log}");

    // Git used the token; it is nowhere in the data directory (workspace, log, database) nor in
    // anything the model was sent.
    let token = github.token().to_string();
    assert!(git.requests().iter().any(|request| request.is_push() && request.password.as_deref() == Some(&token)));
    assert_eq!(files_containing(&server.data_dir(), &token), Vec::<std::path::PathBuf>::new());
    for request in server.fake.requests() {
        assert!(!request.body.to_string().contains(&token), "the model was shown the token");
    }
}
