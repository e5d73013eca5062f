#![allow(clippy::unwrap_used, clippy::expect_used)]
//! What the GitHub channel keeps, in a real database: deliveries once, items bound to
//! sessions, where each session answers and how far it was told; all of it across a
//! reopen.

mod support;

use rswe_store::{GitHubItem, Store};
use support::{database, session};

#[tokio::test]
async fn a_delivery_is_received_once_and_pending_until_handled() {
    let (_dir, path) = database();
    let store = Store::open(&path).await.unwrap();
    assert!(store.github_receive("d-1", "issue_comment", r#"{"action":"created"}"#).await.unwrap());
    assert!(!store.github_receive("d-1", "issue_comment", r#"{"action":"edited"}"#).await.unwrap(), "a redelivery");
    assert!(store.github_receive("d-2", "issues", "{}").await.unwrap());
    store.github_handled("d-2").await.unwrap();
    store.close().await;

    let store = Store::open(&path).await.unwrap();
    let pending = store.github_pending(10).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].delivery_id, "d-1");
    assert_eq!(pending[0].event, "issue_comment");
    assert_eq!(pending[0].payload, r#"{"action":"created"}"#, "the first delivery is kept");

    // Pruning forgets what was handled (here: everything older than "now"), never what waits.
    assert_eq!(store.github_prune(0).await.unwrap(), 1);
    assert_eq!(store.github_pending(10).await.unwrap().len(), 1);
    assert!(store.github_receive("d-2", "issues", "{}").await.unwrap(), "a forgotten delivery is new again");
    assert_eq!(store.github_pending(1).await.unwrap().len(), 1, "the limit holds");
}

#[tokio::test]
async fn items_are_bound_to_sessions_whatever_the_case() {
    let (_dir, path) = database();
    let store = Store::open(&path).await.unwrap();
    let first = session(&store, "github").await.id;
    let second = session(&store, "github").await.id;
    store.github_bind_item("Octo/Hello", 12, &first, true).await.unwrap();
    store.github_bind_item("octo/hello", 13, &first, false).await.unwrap();
    store.github_bind_item("octo/other", 12, &second, true).await.unwrap();

    assert_eq!(store.github_item_session("OCTO/hello", 12).await.unwrap(), Some(first.clone()));
    assert_eq!(store.github_item_session("octo/other", 12).await.unwrap(), Some(second.clone()));
    assert_eq!(store.github_item_session("octo/hello", 14).await.unwrap(), None);
    assert_eq!(
        store.github_items_of(&first).await.unwrap(),
        vec![
            GitHubItem { repo: "octo/hello".into(), number: 12, origin: true },
            GitHubItem { repo: "octo/hello".into(), number: 13, origin: false },
        ]
    );
    assert_eq!(store.github_origin(&first).await.unwrap().map(|item| item.number), Some(12));

    // An item bound again follows the new session.
    store.github_bind_item("octo/hello", 13, &second, false).await.unwrap();
    assert_eq!(store.github_item_session("octo/hello", 13).await.unwrap(), Some(second.clone()));
    assert_eq!(store.github_items_of(&first).await.unwrap().len(), 1);
    store.close().await;

    // Kept across a reopen; deleting a session unbinds its items.
    let store = Store::open(&path).await.unwrap();
    assert_eq!(store.github_items_of(&second).await.unwrap().len(), 2);
    store.delete_session(&second).await.unwrap();
    assert!(store.github_items_of(&second).await.unwrap().is_empty());
    assert_eq!(store.github_item_session("octo/other", 12).await.unwrap(), None);
    assert_eq!(store.github_origin(&second).await.unwrap(), None);
    assert_eq!(store.github_item_session("octo/hello", 12).await.unwrap(), Some(first));
}

#[tokio::test]
async fn a_session_answers_where_it_was_last_asked_and_remembers_how_far() {
    let (_dir, path) = database();
    let store = Store::open(&path).await.unwrap();
    let first = session(&store, "github").await.id;
    let second = session(&store, "github").await.id;
    assert_eq!(store.github_reply_target(&first).await.unwrap(), None);
    assert!(!store.github_delivered(&first, 3).await.unwrap(), "no target: nothing to record");

    store.github_reply_to(&first, "Octo/Hello", 12, 0).await.unwrap();
    assert!(store.github_delivered(&first, 7).await.unwrap());
    assert!(store.github_delivered(&first, 4).await.unwrap());
    let target = store.github_reply_target(&first).await.unwrap().unwrap();
    assert_eq!((target.repo.as_str(), target.number, target.delivered_seq), ("octo/hello", 12, 7), "never goes back");
    assert_eq!(target.session_id, first);

    // The same item again keeps how far it was told.
    store.github_reply_to(&first, "octo/hello", 12, 2).await.unwrap();
    assert_eq!(store.github_reply_target(&first).await.unwrap().unwrap().delivered_seq, 7);
    // Another item is told from the given event on.
    store.github_reply_to(&first, "octo/hello", 20, 9).await.unwrap();
    let target = store.github_reply_target(&first).await.unwrap().unwrap();
    assert_eq!((target.number, target.delivered_seq), (20, 9));
    store.github_reply_to(&first, "octo/hello", 12, 3).await.unwrap();
    assert_eq!(store.github_reply_target(&first).await.unwrap().unwrap().delivered_seq, 3);

    store.github_reply_to(&second, "octo/other", 1, 0).await.unwrap();
    store.close().await;

    let store = Store::open(&path).await.unwrap();
    let mut all = store.github_all_reply_targets().await.unwrap();
    all.sort_by_key(|target| target.number);
    assert_eq!(all.len(), 2);
    assert_eq!((all[0].session_id.clone(), all[0].number), (second.clone(), 1));
    assert_eq!((all[1].session_id.clone(), all[1].number, all[1].delivered_seq), (first.clone(), 12, 3));

    store.delete_session(&second).await.unwrap();
    assert_eq!(store.github_all_reply_targets().await.unwrap().len(), 1);
    assert_eq!(store.github_reply_target(&second).await.unwrap(), None);
}
