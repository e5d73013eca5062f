#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeSet;

use rswe_protocol::{ContentBlock, EventKind, SessionId, SessionStatus};
use rswe_store::{Store, StoreError};
use support::{assistant, database, session, tokens, user};

const TASKS: u64 = 8;
const APPENDS: u64 = 100;

/// Appends from `TASKS` tasks, spread over `stores`, and checks that the log holds
/// exactly 1..=TASKS*APPENDS, each seq handed out once.
async fn appends_get_distinct_gapless_seqs(stores: &[Store]) {
    let id = session(&stores[0], "cli").await.id;
    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let store = stores[task as usize % stores.len()].clone();
        let id = id.clone();
        tasks.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            for n in 0..APPENDS {
                let event = store.append(&id, EventKind::AgentMessage { text: format!("{task}/{n}") }).await.unwrap();
                seqs.push(event.seq);
            }
            seqs
        }));
    }
    let mut handed_out = BTreeSet::new();
    for task in tasks {
        for seq in task.await.unwrap() {
            assert!(handed_out.insert(seq), "seq {seq} was handed out twice");
        }
    }
    let total = TASKS * APPENDS;
    assert_eq!(handed_out, (1..=total).collect::<BTreeSet<_>>());

    for store in stores {
        let events = store.events(&id, 0, 10_000).await.unwrap();
        assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), (1..=total).collect::<Vec<_>>());
        // Each task's own appends are in its order within the log.
        for task in 0..TASKS {
            let mine: Vec<String> = events
                .iter()
                .filter_map(|e| match &e.kind {
                    EventKind::AgentMessage { text } if text.starts_with(&format!("{task}/")) => Some(text.clone()),
                    _ => None,
                })
                .collect();
            assert_eq!(mine, (0..APPENDS).map(|n| format!("{task}/{n}")).collect::<Vec<_>>());
        }
        assert!(events.windows(2).all(|pair| pair[0].at_ms <= pair[1].at_ms), "time went back in the log");
        assert_eq!(store.session(&id).await.unwrap().unwrap().last_seq, total);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_on_one_store_get_every_seq_once() {
    let (_dir, path) = database();
    let store = Store::open(&path).await.unwrap();
    appends_get_distinct_gapless_seqs(&[store]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_from_two_stores_on_one_file_get_every_seq_once() {
    let (_dir, path) = database();
    let first = Store::open(&path).await.unwrap();
    let second = Store::open(&path).await.unwrap();
    appends_get_distinct_gapless_seqs(&[first, second]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_in_memory_get_every_seq_once() {
    let store = Store::open_in_memory().await.unwrap();
    appends_get_distinct_gapless_seqs(&[store]).await;
}

#[tokio::test]
async fn events_survive_reopening_exactly_as_appended() {
    let (_dir, path) = database();
    let store = Store::open(&path).await.unwrap();
    let id = session(&store, "cli").await.id;
    let kinds = vec![
        user("fix the build"),
        assistant("claude-test", tokens(10, 2, 0, 0), Some(0.01)),
        EventKind::ToolResult {
            tool_use_id: "t1".into(),
            name: "shell".into(),
            content: vec![rswe_protocol::ToolResultContent::Text { text: "ok\n".into() }],
            is_error: false,
            duration_ms: 42,
        },
        // A kind from a later version: kept exactly as written.
        EventKind::Other(serde_json::json!({"type": "hologram", "beam": {"x": 1, "y": [true, null, "z"]}})),
        EventKind::StatusChanged { status: SessionStatus::Idle, reason: Some("done".into()) },
    ];
    let mut appended = Vec::new();
    for kind in kinds.clone() {
        appended.push(store.append(&id, kind).await.unwrap());
    }
    assert_eq!(appended.iter().map(|e| e.kind.clone()).collect::<Vec<_>>(), kinds);
    drop(store);

    let store = Store::open(&path).await.unwrap();
    assert_eq!(store.events(&id, 0, 100).await.unwrap(), appended);
    assert_eq!(store.last_event(&id).await.unwrap().as_ref(), appended.last());
    assert_eq!(store.events(&id, 3, 1).await.unwrap(), appended[3..4].to_vec());
    assert_eq!(store.events(&id, 5, 100).await.unwrap(), vec![]);
    assert!(matches!(&appended[3].kind, EventKind::Other(value) if value["beam"]["y"][2] == "z"));
    let session = store.session(&id).await.unwrap().unwrap();
    assert_eq!(session.last_seq, 5);
    assert_eq!(session.updated_ms, appended[4].at_ms);
}

#[tokio::test]
async fn appends_keep_the_session_row_in_step() {
    let store = Store::open_in_memory().await.unwrap();
    let id = session(&store, "web").await.id;
    assert_eq!(store.session(&id).await.unwrap().unwrap().status, SessionStatus::Idle);

    store.append(&id, EventKind::StatusChanged { status: SessionStatus::Working, reason: None }).await.unwrap();
    store.append(&id, EventKind::TitleChanged { title: "Fix the flaky test".into() }).await.unwrap();
    store.append(&id, user("please  fix\n the   flaky test")).await.unwrap();
    let session = store.session(&id).await.unwrap().unwrap();
    assert_eq!(session.status, SessionStatus::Working);
    assert_eq!(session.title.as_deref(), Some("Fix the flaky test"));
    assert_eq!(session.last_message.as_deref(), Some("please fix the flaky test"));

    // Tool calls without text, tool results and todo lists leave the preview alone.
    store
        .append(
            &id,
            EventKind::AssistantMessage {
                content: vec![ContentBlock::ToolUse {
                    id: "t".into(),
                    name: "shell".into(),
                    input: serde_json::json!({}),
                }],
                model: "claude-test".into(),
                stop_reason: "tool_use".into(),
                usage: tokens(1, 1, 0, 0),
                cost_usd: Some(0.5),
                request_seq: None,
            },
        )
        .await
        .unwrap();
    store.append(&id, EventKind::TodoUpdated { items: vec![] }).await.unwrap();
    assert_eq!(store.session(&id).await.unwrap().unwrap().last_message.as_deref(), Some("please fix the flaky test"));

    store.append(&id, EventKind::AgentMessage { text: "Found it: a race in setup.".into() }).await.unwrap();
    let long = "word ".repeat(200);
    store.append(&id, assistant("claude-test", tokens(1, 1, 0, 0), None)).await.unwrap();
    assert_eq!(store.session(&id).await.unwrap().unwrap().last_message.as_deref(), Some("answer from claude-test"));
    store.append(&id, user(&long)).await.unwrap();
    let session = store.session(&id).await.unwrap().unwrap();
    let preview = session.last_message.unwrap();
    assert!(preview.chars().count() <= 161 && preview.ends_with('…'), "{preview}");
    assert_eq!(session.last_seq, 8);
    assert_eq!(session.cost_usd, 0.5);
    assert!(session.cost_unknown);
}

#[tokio::test]
async fn appending_to_a_missing_session_or_an_unusable_kind_is_refused() {
    let store = Store::open_in_memory().await.unwrap();
    let missing = SessionId::parse("nobody").unwrap();
    let error = store.append(&missing, user("hi")).await.unwrap_err();
    assert!(matches!(&error, StoreError::NotFound(what) if what == "session nobody"), "{error}");
    assert_eq!(error.to_string(), "session nobody not found");
    assert_eq!(store.events(&missing, 0, 10).await.unwrap(), vec![]);
    assert_eq!(store.last_event(&missing).await.unwrap(), None);

    let id = session(&store, "cli").await.id;
    let error = store.append(&id, EventKind::Other(serde_json::json!({"type": "x", "seq": 99}))).await.unwrap_err();
    assert!(matches!(error, StoreError::Invalid(_)), "{error}");
    // A refused append takes no seq.
    assert_eq!(store.append(&id, user("hi")).await.unwrap().seq, 1);
}
