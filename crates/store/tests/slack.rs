#![allow(clippy::unwrap_used, clippy::expect_used)]
//! What the Slack channel keeps, in a real database: messages once, threads bound to
//! sessions, approvals, things said once; all of it across a reopen.

mod support;

use rswe_store::Store;
use support::{database, session};

#[tokio::test]
async fn a_message_is_received_once_and_pending_until_handled() {
    let (_dir, path) = database();
    let store = Store::open(&path).await.unwrap();
    assert!(store.slack_receive("C1/1700.1", r#"{"type":"app_mention"}"#).await.unwrap());
    assert!(!store.slack_receive("C1/1700.1", r#"{"type":"message"}"#).await.unwrap(), "the same message again");
    assert!(store.slack_receive("C1/1700.2", "{}").await.unwrap());
    store.slack_handled("C1/1700.2").await.unwrap();
    store.close().await;

    let store = Store::open(&path).await.unwrap();
    let pending = store.slack_pending(10).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].key, "C1/1700.1");
    assert_eq!(pending[0].event, r#"{"type":"app_mention"}"#, "the first delivery is kept");

    // Pruning forgets what was handled (here: everything older than "now"), never what waits.
    assert_eq!(store.slack_prune(0).await.unwrap(), 1);
    assert_eq!(store.slack_pending(10).await.unwrap().len(), 1);
    assert!(store.slack_receive("C1/1700.2", "{}").await.unwrap(), "a forgotten message is new again");
}

#[tokio::test]
async fn threads_follow_sessions_and_remember_how_far_they_were_told() {
    let (_dir, path) = database();
    let store = Store::open(&path).await.unwrap();
    let first = session(&store, "slack").await.id;
    let second = session(&store, "web").await.id;
    store.slack_bind_thread("C1", "1700.1", &first, 2).await.unwrap();
    store.slack_bind_thread("C2", "1800.1", &second, 0).await.unwrap();
    store.slack_bind_thread("C3", "1900.1", &second, 5).await.unwrap();
    assert!(store.slack_delivered("C1", "1700.1", &first, 7).await.unwrap());
    assert!(store.slack_delivered("C1", "1700.1", &first, 4).await.unwrap());
    assert!(!store.slack_delivered("C1", "1700.1", &second, 9).await.unwrap(), "the thread follows another session");

    let thread = store.slack_thread("C1", "1700.1").await.unwrap().unwrap();
    assert_eq!((thread.session_id.clone(), thread.delivered_seq), (first.clone(), 7), "never goes back");
    assert!(store.slack_thread("C1", "nope").await.unwrap().is_none());
    assert_eq!(store.slack_threads_of(&second).await.unwrap().len(), 2);
    assert_eq!(store.slack_all_threads().await.unwrap().len(), 3);

    // Deleting a session unbinds its threads.
    store.delete_session(&second).await.unwrap();
    assert!(store.slack_threads_of(&second).await.unwrap().is_empty());
    assert_eq!(store.slack_all_threads().await.unwrap().len(), 1);
}

#[tokio::test]
async fn approvals_and_notices_said_once() {
    let (_dir, path) = database();
    let store = Store::open(&path).await.unwrap();
    assert!(!store.slack_is_approved("U1").await.unwrap());
    assert!(store.slack_approve("U1", "UADMIN").await.unwrap());
    assert!(!store.slack_approve("U1", "UADMIN").await.unwrap());
    assert!(store.slack_is_approved("U1").await.unwrap());
    assert!(store.slack_revoke("U1").await.unwrap());
    assert!(!store.slack_revoke("U1").await.unwrap());
    assert!(!store.slack_is_approved("U1").await.unwrap());
    assert!(store.slack_say_once("denied/U2/C1/1700.1").await.unwrap());
    assert!(!store.slack_say_once("denied/U2/C1/1700.1").await.unwrap());
}
