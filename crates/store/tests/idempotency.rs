#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use rswe_store::Store;
use support::database;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_key_is_claimed_exactly_once_among_concurrent_claimers() {
    let (_dir, path) = database();
    let stores = [Store::open(&path).await.unwrap(), Store::open(&path).await.unwrap()];
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(16));
    let mut claimers = Vec::new();
    for n in 0..16 {
        let store = stores[n % 2].clone();
        let barrier = barrier.clone();
        claimers.push(tokio::spawn(async move {
            barrier.wait().await;
            store.claim_idempotency_key("slack-event", "Ev0123").await.unwrap()
        }));
    }
    let mut winners = 0;
    for claimer in claimers {
        winners += usize::from(claimer.await.unwrap());
    }
    assert_eq!(winners, 1);
    assert!(!stores[0].claim_idempotency_key("slack-event", "Ev0123").await.unwrap());
    // Scopes are separate.
    assert!(stores[1].claim_idempotency_key("github-delivery", "Ev0123").await.unwrap());
}

#[tokio::test]
async fn old_keys_can_be_pruned_and_claimed_again() {
    let store = Store::open_in_memory().await.unwrap();
    assert!(store.claim_idempotency_key("api", "k1").await.unwrap());
    assert_eq!(store.prune_idempotency_keys(0).await.unwrap(), 0, "nothing is that old");
    assert!(!store.claim_idempotency_key("api", "k1").await.unwrap());
    assert_eq!(store.prune_idempotency_keys(i64::MAX).await.unwrap(), 1);
    assert!(store.claim_idempotency_key("api", "k1").await.unwrap());
}
