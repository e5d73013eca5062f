#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use rswe_protocol::{Event, EventKind, SessionId, Usage};
use rswe_store::{Store, StoreError, UsageTotals};
use support::{assistant, database, session, tokens, user};

const DAY_MS: i64 = 86_400_000;

fn request(event: &Event) -> (String, Usage, Option<f64>) {
    match &event.kind {
        EventKind::AssistantMessage { model, usage, cost_usd, .. } => (model.clone(), *usage, *cost_usd),
        other => panic!("not a model request: {other:?}"),
    }
}

/// The totals of `events` computed by hand, the way a person checks a bill.
fn by_hand<'a>(events: impl IntoIterator<Item = &'a Event>) -> UsageTotals {
    let mut totals = UsageTotals::default();
    for event in events {
        let (_, usage, cost) = request(event);
        totals.usage += usage;
        totals.requests += 1;
        match cost {
            Some(cost) => totals.cost_usd = Some(totals.cost_usd.unwrap_or(0.0) + cost),
            None => totals.unpriced_requests += 1,
        }
    }
    totals
}

#[tokio::test]
async fn usage_and_cost_add_up_per_session_model_and_day() {
    let (_dir, path) = database();
    let store = Store::open(&path).await.unwrap();
    let a = session(&store, "cli").await.id;
    let b = session(&store, "web").await.id;

    let mut requests = Vec::new();
    requests.push(store.append(&a, assistant("m1", tokens(100, 20, 1000, 50), Some(0.25))).await.unwrap());
    store.append(&a, user("more")).await.unwrap();
    requests.push(store.append(&a, assistant("m1", tokens(10, 5, 0, 0), Some(0.5))).await.unwrap());
    requests.push(store.append(&a, assistant("m2", tokens(7, 3, 0, 0), None)).await.unwrap());
    requests.push(store.append(&b, assistant("m1", tokens(1, 1, 2, 3), Some(0.125))).await.unwrap());

    // Session a, per model: m1 = 110 in, 25 out, 1000 cache read, 50 cache write, 2
    // requests, $0.75; m2 = 7 in, 3 out, 1 request, price unknown.
    let usage = store.usage_by_session(&a).await.unwrap();
    assert_eq!(usage.by_model.len(), 2);
    let (m1, m2) = (&usage.by_model[0], &usage.by_model[1]);
    assert_eq!((m1.model.as_str(), m2.model.as_str()), ("m1", "m2"));
    assert_eq!(m1.totals.usage, tokens(110, 25, 1000, 50));
    assert_eq!((m1.totals.requests, m1.totals.cost_usd, m1.totals.unpriced_requests), (2, Some(0.75), 0));
    assert!(m1.totals.cost_is_complete());
    assert_eq!(m2.totals.usage, tokens(7, 3, 0, 0));
    assert_eq!((m2.totals.requests, m2.totals.cost_usd, m2.totals.unpriced_requests), (1, None, 1));
    assert!(!m2.totals.cost_is_complete());
    assert_eq!(usage.total.usage, tokens(117, 28, 1000, 50));
    assert_eq!((usage.total.requests, usage.total.cost_usd, usage.total.unpriced_requests), (3, Some(0.75), 1));

    let row = store.session(&a).await.unwrap().unwrap();
    assert_eq!((row.cost_usd, row.cost_unknown), (0.75, true));
    let row = store.session(&b).await.unwrap().unwrap();
    assert_eq!((row.cost_usd, row.cost_unknown), (0.125, false));

    // Every session, per model.
    let models = store.usage_by_model(0, i64::MAX).await.unwrap();
    assert_eq!(models.len(), 2);
    assert_eq!(models[0].totals.usage, tokens(111, 26, 1002, 53));
    assert_eq!((models[0].totals.requests, models[0].totals.cost_usd), (3, Some(0.875)));
    assert_eq!(
        (models[1].totals.requests, models[1].totals.cost_usd, models[1].totals.unpriced_requests),
        (1, None, 1)
    );

    // A window: from the second request (inclusive) to the fourth (exclusive).
    let (from, to) = (requests[1].at_ms, requests[3].at_ms);
    let inside: Vec<&Event> = requests.iter().filter(|e| e.at_ms >= from && e.at_ms < to).collect();
    let window = store.usage_by_model(from, to).await.unwrap();
    let mut expected_models: Vec<String> = inside.iter().map(|e| request(e).0).collect();
    expected_models.sort();
    expected_models.dedup();
    assert_eq!(window.iter().map(|m| m.model.clone()).collect::<Vec<_>>(), expected_models);
    for model in &window {
        assert_eq!(model.totals, by_hand(inside.iter().copied().filter(|e| request(e).0 == model.model)));
    }
    assert_eq!(store.usage_by_model(to + DAY_MS, to + 2 * DAY_MS).await.unwrap(), vec![]);
    assert_eq!(store.usage_by_model(from, from).await.unwrap(), vec![]);

    // Per UTC day.
    let days = store.usage_by_day(0, i64::MAX).await.unwrap();
    let mut expected_days: Vec<i64> = requests.iter().map(|e| e.at_ms - e.at_ms.rem_euclid(DAY_MS)).collect();
    expected_days.dedup();
    assert_eq!(days.iter().map(|d| d.start_ms).collect::<Vec<_>>(), expected_days);
    for day in &days {
        assert_eq!(
            day.totals,
            by_hand(requests.iter().filter(|e| e.at_ms - e.at_ms.rem_euclid(DAY_MS) == day.start_ms))
        );
        assert_eq!(day.day.len(), 10);
        assert!(day.day.starts_with("20"), "{}", day.day);
    }
    assert_eq!(days.iter().map(|d| d.totals.requests).sum::<u64>(), 4);
    assert_eq!(
        store.usage_by_day(0, from).await.unwrap().iter().map(|d| d.totals.requests).sum::<u64>(),
        requests.iter().filter(|e| e.at_ms < from).count() as u64
    );

    // Per session, costliest first, with titles.
    let sessions = store.usage_by_sessions(0, i64::MAX, 10).await.unwrap();
    assert_eq!(sessions.iter().map(|s| s.session_id.clone()).collect::<Vec<_>>(), vec![a.clone(), b.clone()]);
    assert_eq!(sessions[0].totals, by_hand(requests.iter().filter(|e| e.session_id == a)));
    assert_eq!(sessions[1].totals, by_hand(requests.iter().filter(|e| e.session_id == b)));
    assert_eq!(store.usage_by_sessions(0, i64::MAX, 1).await.unwrap().len(), 1);
    assert_eq!(store.usage_by_sessions(to + DAY_MS, to + 2 * DAY_MS, 10).await.unwrap(), vec![]);

    // Survives reopening, with the same sums.
    drop(store);
    let store = Store::open(&path).await.unwrap();
    assert_eq!(store.usage_by_session(&a).await.unwrap(), usage);
}

#[tokio::test]
async fn unknown_cost_stays_unknown_and_is_never_zero() {
    let store = Store::open_in_memory().await.unwrap();
    let id = session(&store, "cli").await.id;
    assert_eq!(store.usage_by_session(&id).await.unwrap().total, UsageTotals::default());

    store.append(&id, assistant("local-model", tokens(50, 5, 0, 0), None)).await.unwrap();
    store.append(&id, assistant("local-model", tokens(50, 5, 0, 0), None)).await.unwrap();
    // An impossible price is no price.
    store.append(&id, assistant("local-model", tokens(1, 1, 0, 0), Some(f64::NAN))).await.unwrap();

    let usage = store.usage_by_session(&id).await.unwrap();
    assert_eq!(usage.total.cost_usd, None);
    assert_eq!((usage.total.requests, usage.total.unpriced_requests), (3, 3));
    assert_eq!(usage.total.usage, tokens(101, 11, 0, 0));
    let row = store.session(&id).await.unwrap().unwrap();
    assert!(row.cost_unknown);
    let events = store.events(&id, 2, 1).await.unwrap();
    assert!(matches!(events[0].kind, EventKind::AssistantMessage { cost_usd: None, .. }));

    // A later priced request makes a known lower bound, still flagged incomplete.
    store.append(&id, assistant("priced", tokens(1, 1, 0, 0), Some(0.0))).await.unwrap();
    let usage = store.usage_by_session(&id).await.unwrap();
    assert_eq!((usage.total.cost_usd, usage.total.unpriced_requests), (Some(0.0), 3));
    assert!(!usage.total.cost_is_complete());
    assert!(store.session(&id).await.unwrap().unwrap().cost_unknown);

    let missing = SessionId::parse("missing").unwrap();
    assert!(matches!(store.usage_by_session(&missing).await, Err(StoreError::NotFound(_))));
}
