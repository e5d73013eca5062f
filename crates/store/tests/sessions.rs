#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashMap;

use rswe_protocol::{EventKind, SessionId, SessionStatus};
use rswe_store::{NewSession, Session, SessionCursor, SessionFilter, SessionUpdate, Store, StoreError};
use support::{assistant, database, session, tokens, user};

fn ids(sessions: &[Session]) -> Vec<SessionId> {
    sessions.iter().map(|s| s.id.clone()).collect()
}

#[tokio::test]
async fn a_new_session_has_the_given_fields_and_sensible_defaults() {
    let store = Store::open_in_memory().await.unwrap();
    let id = SessionId::parse("fix-ci").unwrap();
    let created = store
        .create_session(NewSession {
            id: Some(id.clone()),
            title: Some("Fix CI".into()),
            repository: Some("acme/api".into()),
            model: "claude-test".into(),
            channel: "slack".into(),
        })
        .await
        .unwrap();
    assert_eq!(created.id, id);
    assert_eq!(created.title.as_deref(), Some("Fix CI"));
    assert_eq!(created.repository.as_deref(), Some("acme/api"));
    assert_eq!((created.model.as_str(), created.channel.as_str()), ("claude-test", "slack"));
    assert_eq!(created.status, SessionStatus::Idle);
    assert_eq!((created.last_seq, created.cost_usd, created.cost_unknown), (0, 0.0, false));
    assert_eq!(created.metadata, serde_json::json!({}));
    assert_eq!(created.created_ms, created.updated_ms);
    assert_eq!(store.session(&id).await.unwrap(), Some(created));

    let error = store
        .create_session(NewSession { id: Some(id), model: "m".into(), channel: "cli".into(), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(error.to_string(), "session fix-ci already exists");
    assert_eq!(store.session(&SessionId::parse("other").unwrap()).await.unwrap(), None);
}

#[tokio::test]
async fn updates_change_only_the_given_fields() {
    let store = Store::open_in_memory().await.unwrap();
    let before = session(&store, "slack").await;
    let binding = serde_json::json!({"slack": {"channel": "C1", "thread_ts": "1.2"}});
    let after = store
        .update_session(
            &before.id,
            SessionUpdate {
                metadata: Some(binding.clone()),
                status: Some(SessionStatus::Stopped),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(after.metadata, binding);
    assert_eq!(after.status, SessionStatus::Stopped);
    assert_eq!((&after.title, &after.repository, &after.model), (&before.title, &before.repository, &before.model));
    assert!(after.updated_ms >= before.updated_ms);
    assert_eq!(store.session(&before.id).await.unwrap(), Some(after.clone()));

    let titled = store
        .update_session(&before.id, SessionUpdate { title: Some("Named".into()), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(
        (titled.title.as_deref(), &titled.metadata, titled.status),
        (Some("Named"), &binding, SessionStatus::Stopped)
    );

    let error = store
        .update_session(&before.id, SessionUpdate { metadata: Some(serde_json::json!([1])), ..Default::default() })
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Invalid(_)), "{error}");
    let missing = SessionId::parse("missing").unwrap();
    let error = store.update_session(&missing, SessionUpdate { title: Some("x".into()), ..Default::default() }).await;
    assert!(matches!(error, Err(StoreError::NotFound(_))));
    assert!(matches!(store.update_session(&missing, SessionUpdate::default()).await, Err(StoreError::NotFound(_))));
}

#[tokio::test]
async fn the_list_is_most_recently_updated_first_and_filters() {
    let store = Store::open_in_memory().await.unwrap();
    let a = session(&store, "cli").await.id;
    let b = session(&store, "slack").await.id;
    let c = session(&store, "cli").await.id;
    let page = store.list_sessions(SessionFilter::default()).await.unwrap();
    assert_eq!(ids(&page.sessions), vec![c.clone(), b.clone(), a.clone()]);
    assert_eq!(page.next_cursor, None);

    // Any change moves a session to the front, even within the same millisecond.
    store.append(&a, user("hello")).await.unwrap();
    store.update_session(&b, SessionUpdate { title: Some("b".into()), ..Default::default() }).await.unwrap();
    let page = store.list_sessions(SessionFilter::default()).await.unwrap();
    assert_eq!(ids(&page.sessions), vec![b.clone(), a.clone(), c.clone()]);

    let cli = SessionFilter { channel: Some("cli".into()), ..Default::default() };
    assert_eq!(ids(&store.list_sessions(cli).await.unwrap().sessions), vec![a.clone(), c.clone()]);
    store.append(&c, EventKind::StatusChanged { status: SessionStatus::Working, reason: None }).await.unwrap();
    let working = SessionFilter { status: Some(SessionStatus::Working), ..Default::default() };
    assert_eq!(ids(&store.list_sessions(working).await.unwrap().sessions), vec![c.clone()]);

    let error = store
        .list_sessions(SessionFilter {
            before: Some(SessionCursor::from("nonsense".to_string())),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::InvalidCursor(_)), "{error}");
    assert!(error.to_string().contains("list again from the first page"), "{error}");
}

/// What a walk through the pages guarantees while sessions change between pages: the
/// order of the moment the walk began; every session that existed then and still exists
/// served exactly once, with its current contents; sessions created during the walk left
/// for the next walk; deleted ones not served.
#[tokio::test]
async fn paging_serves_every_session_once_while_sessions_change() {
    let (_dir, path) = database();
    let store = Store::open(&path).await.unwrap();
    let mut created = Vec::new();
    for _ in 0..23 {
        created.push(session(&store, "cli").await.id);
    }
    // Give the sessions a mixed order: touch every third one.
    for id in created.iter().step_by(3) {
        store.append(id, user("bump")).await.unwrap();
    }
    let initial = ids(&store.list_sessions(SessionFilter { limit: 500, ..Default::default() }).await.unwrap().sessions);
    assert_eq!(initial.len(), 23);

    let mut served: Vec<Session> = Vec::new();
    let mut filter = SessionFilter { limit: 4, ..Default::default() };
    let mut deleted = None;
    let mut late = Vec::new();
    for page_number in 0.. {
        let page = store.list_sessions(filter.clone()).await.unwrap();
        assert!(page.sessions.len() <= 4);
        served.extend(page.sessions.iter().cloned());
        let Some(cursor) = page.next_cursor else { break };

        // Between pages: change sessions already served and sessions not yet served,
        // some of them several times, create a session and delete one.
        let served_ids = ids(&served);
        let pending: Vec<&SessionId> = initial.iter().filter(|id| !served_ids.contains(id)).collect();
        store.append(&served_ids[0], user("served, then changed")).await.unwrap();
        if let Some(id) = pending.last() {
            store.append(id, user(&format!("changed before its page {page_number}"))).await.unwrap();
            store.append(id, EventKind::TitleChanged { title: format!("twice {page_number}") }).await.unwrap();
        }
        if let Some(id) = pending.get(pending.len() / 2) {
            store
                .update_session(id, SessionUpdate { title: Some("updated".into()), ..Default::default() })
                .await
                .unwrap();
        }
        if page_number == 1 {
            let id = pending[0];
            store.delete_session(id).await.unwrap();
            deleted = Some(id.clone());
        }
        late.push(session(&store, "cli").await.id);
        filter.before = Some(cursor);
    }

    let deleted = deleted.unwrap();
    let expected: Vec<SessionId> = initial.iter().filter(|id| **id != deleted).cloned().collect();
    assert_eq!(ids(&served), expected, "every session once, in the order of the walk's start");
    assert!(late.iter().all(|id| !ids(&served).contains(id)));

    // Served sessions carry their contents as of their page: titles only change before a
    // session's page, so each served title is the session's title now.
    let now: HashMap<SessionId, Session> = store
        .list_sessions(SessionFilter { limit: 500, ..Default::default() })
        .await
        .unwrap()
        .sessions
        .into_iter()
        .map(|s| (s.id.clone(), s))
        .collect();
    assert!(served.iter().any(|s| s.title.as_deref().is_some_and(|t| t.starts_with("twice"))));
    assert!(served.iter().any(|s| s.title.as_deref() == Some("updated")));
    for session in &served {
        assert_eq!(session.title, now[&session.id].title, "{}", session.id);
    }
    assert_eq!(now.len(), 23 - 1 + late.len());

    // A new walk starts from the present.
    let first = store.list_sessions(SessionFilter { limit: 1, ..Default::default() }).await.unwrap();
    assert_eq!(ids(&first.sessions), vec![late.last().unwrap().clone()]);
}

#[tokio::test]
async fn paging_with_a_filter_walks_only_matching_sessions() {
    let store = Store::open_in_memory().await.unwrap();
    let mut slack = Vec::new();
    for n in 0..10 {
        let id = session(&store, if n % 2 == 0 { "slack" } else { "web" }).await.id;
        if n % 2 == 0 {
            slack.push(id);
        }
    }
    slack.reverse();
    let mut filter = SessionFilter { channel: Some("slack".into()), limit: 2, ..Default::default() };
    let mut served = Vec::new();
    loop {
        let page = store.list_sessions(filter.clone()).await.unwrap();
        served.extend(ids(&page.sessions));
        match page.next_cursor {
            Some(cursor) => filter.before = Some(cursor),
            None => break,
        }
    }
    assert_eq!(served, slack);
}

#[tokio::test]
async fn deleting_a_session_removes_everything_of_it_and_nothing_else() {
    let (_dir, path) = database();
    let store = Store::open(&path).await.unwrap();
    let gone = session(&store, "cli").await.id;
    let kept = session(&store, "cli").await.id;
    for id in [&gone, &kept] {
        store.append(id, user("hi")).await.unwrap();
        store.append(id, assistant("m1", tokens(10, 1, 0, 0), Some(0.25))).await.unwrap();
        store.append(id, assistant("m2", tokens(5, 1, 0, 0), None)).await.unwrap();
    }
    let kept_before = store.session(&kept).await.unwrap().unwrap();
    let kept_events = store.events(&kept, 0, 100).await.unwrap();
    let kept_usage = store.usage_by_session(&kept).await.unwrap();

    store.delete_session(&gone).await.unwrap();

    assert_eq!(store.session(&gone).await.unwrap(), None);
    assert_eq!(store.events(&gone, 0, 100).await.unwrap(), vec![]);
    assert_eq!(store.last_event(&gone).await.unwrap(), None);
    assert!(matches!(store.usage_by_session(&gone).await, Err(StoreError::NotFound(_))));
    assert!(matches!(store.append(&gone, user("anyone?")).await, Err(StoreError::NotFound(_))));
    assert!(matches!(store.delete_session(&gone).await, Err(StoreError::NotFound(_))));

    assert_eq!(store.session(&kept).await.unwrap(), Some(kept_before));
    assert_eq!(store.events(&kept, 0, 100).await.unwrap(), kept_events);
    assert_eq!(store.usage_by_session(&kept).await.unwrap(), kept_usage);
    let listed = store.list_sessions(SessionFilter::default()).await.unwrap();
    assert_eq!(ids(&listed.sessions), vec![kept.clone()]);
    let all_models = store.usage_by_model(0, i64::MAX).await.unwrap();
    assert_eq!(all_models.iter().map(|m| m.totals.requests).sum::<u64>(), 2, "only the kept session's usage remains");

    // Reopened, the file agrees.
    drop(store);
    let store = Store::open(&path).await.unwrap();
    assert_eq!(store.session(&gone).await.unwrap(), None);
    assert_eq!(store.events(&kept, 0, 100).await.unwrap(), kept_events);
}
