#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use rswe_store::{NewWebSession, Store, StoreError};
use support::database;

const HOUR_MS: i64 = 3_600_000;

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

#[tokio::test]
async fn keys_are_created_found_listed_newest_first_and_revoked() {
    let (_dir, path) = database();
    let store = Store::open(&path).await.unwrap();
    assert_eq!(store.count_api_keys().await.unwrap(), 0);
    assert!(store.list_api_keys().await.unwrap().is_empty());

    let first = store.create_api_key("aaaa1111", "ci", &[1, 2, 3]).await.unwrap();
    assert_eq!(first.name, "ci");
    assert_eq!(first.key_hash, vec![1, 2, 3]);
    assert_eq!((first.last_used_ms, first.revoked_ms), (None, None));
    let second = store.create_api_key("bbbb2222", "laptop", &[4, 5, 6]).await.unwrap();

    assert_eq!(store.api_key("aaaa1111").await.unwrap(), Some(first.clone()));
    assert_eq!(store.api_key("nope").await.unwrap(), None);
    let listed: Vec<String> = store.list_api_keys().await.unwrap().into_iter().map(|k| k.id).collect();
    assert_eq!(listed, vec![second.id.clone(), first.id.clone()], "newest first");
    assert_eq!(store.count_api_keys().await.unwrap(), 2);

    assert!(store.revoke_api_key("aaaa1111").await.unwrap());
    assert!(!store.revoke_api_key("aaaa1111").await.unwrap(), "already revoked");
    assert!(!store.revoke_api_key("unknown").await.unwrap());
    let revoked = store.api_key("aaaa1111").await.unwrap().unwrap();
    assert!(revoked.revoked_ms.is_some(), "a revoked key stays on record, marked");
    let listed: Vec<String> = store.list_api_keys().await.unwrap().into_iter().map(|k| k.id).collect();
    assert_eq!(listed, vec![second.id]);
    assert_eq!(store.count_api_keys().await.unwrap(), 1);

    // Everything survives reopening the file.
    store.close().await;
    let store = Store::open(&path).await.unwrap();
    assert_eq!(store.count_api_keys().await.unwrap(), 1);
    assert!(store.api_key("aaaa1111").await.unwrap().unwrap().revoked_ms.is_some());
}

#[tokio::test]
async fn a_key_id_is_never_reused() {
    let store = Store::open_in_memory().await.unwrap();
    store.create_api_key("aaaa1111", "ci", b"one").await.unwrap();
    let error = store.create_api_key("aaaa1111", "other", b"two").await.unwrap_err();
    assert!(matches!(error, StoreError::AlreadyExists(_)), "{error}");
    assert_eq!(store.api_key("aaaa1111").await.unwrap().unwrap().key_hash, b"one".to_vec());
    assert!(matches!(store.create_api_key("", "x", b"h").await.unwrap_err(), StoreError::Invalid(_)));
}

#[tokio::test]
async fn use_is_recorded_at_most_once_a_minute() {
    let store = Store::open_in_memory().await.unwrap();
    store.create_api_key("aaaa1111", "ci", b"h").await.unwrap();
    let t = 1_000_000;
    assert!(store.touch_api_key("aaaa1111", t).await.unwrap());
    assert!(!store.touch_api_key("aaaa1111", t + 59_000).await.unwrap());
    assert_eq!(store.api_key("aaaa1111").await.unwrap().unwrap().last_used_ms, Some(t));
    assert!(store.touch_api_key("aaaa1111", t + 60_000).await.unwrap());
    assert_eq!(store.api_key("aaaa1111").await.unwrap().unwrap().last_used_ms, Some(t + 60_000));
    assert!(!store.touch_api_key("unknown", t).await.unwrap());
}

#[tokio::test]
async fn web_sessions_are_found_until_they_expire_or_end() {
    let (_dir, path) = database();
    let store = Store::open(&path).await.unwrap();
    let now = now_ms();
    let session = store
        .create_web_session(NewWebSession { id_hash: b"live", csrf: "csrf-1", expires_ms: now + HOUR_MS, key_id: None })
        .await
        .unwrap();
    assert_eq!(session.csrf, "csrf-1");
    store
        .create_web_session(NewWebSession { id_hash: b"stale", csrf: "csrf-2", expires_ms: now - 1, key_id: None })
        .await
        .unwrap();
    assert_eq!(store.web_session(b"live").await.unwrap(), Some(session));
    assert_eq!(store.web_session(b"stale").await.unwrap(), None, "expired");
    assert_eq!(store.web_session(b"other").await.unwrap(), None);

    let duplicate = NewWebSession { id_hash: b"live", csrf: "x", expires_ms: now + HOUR_MS, key_id: None };
    assert!(matches!(store.create_web_session(duplicate).await.unwrap_err(), StoreError::AlreadyExists(_)));

    assert_eq!(store.prune_web_sessions(now).await.unwrap(), 1, "only the expired one");
    assert!(store.web_session(b"live").await.unwrap().is_some());
    assert!(store.delete_web_session(b"live").await.unwrap());
    assert!(!store.delete_web_session(b"live").await.unwrap());
    assert_eq!(store.web_session(b"live").await.unwrap(), None);
}

#[tokio::test]
async fn revoking_a_key_ends_the_browser_sessions_signed_in_with_it() {
    let store = Store::open_in_memory().await.unwrap();
    store.create_api_key("aaaa1111", "alice", b"h1").await.unwrap();
    store.create_api_key("bbbb2222", "bob", b"h2").await.unwrap();
    let expires_ms = now_ms() + HOUR_MS;
    for (hash, key_id) in [(&b"alice"[..], Some("aaaa1111")), (b"bob", Some("bbbb2222")), (b"link", None)] {
        store.create_web_session(NewWebSession { id_hash: hash, csrf: "c", expires_ms, key_id }).await.unwrap();
    }
    assert!(store.revoke_api_key("aaaa1111").await.unwrap());
    assert_eq!(store.web_session(b"alice").await.unwrap(), None);
    assert!(store.web_session(b"bob").await.unwrap().is_some());
    assert!(store.web_session(b"link").await.unwrap().is_some());
}

#[tokio::test]
async fn a_session_cannot_name_a_key_that_does_not_exist() {
    let store = Store::open_in_memory().await.unwrap();
    let new = NewWebSession { id_hash: b"h", csrf: "c", expires_ms: now_ms() + HOUR_MS, key_id: Some("ghost") };
    assert!(store.create_web_session(new).await.is_err());
}
