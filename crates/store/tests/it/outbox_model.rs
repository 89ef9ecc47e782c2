//! The outbox against a model: per-key FIFO queues with leases. Whatever the interleaving of
//! enqueues, claims, completions, failures and abandons, a claim returns exactly the due,
//! unleased oldest row of each key, in due-time-then-enqueue order, from the buckets asked for.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use ids::Timestamp;
use proptest::prelude::*;
use serde_json::json;
use store::{Buckets, EffectId, Json, NewEffect, OrderKey, RateKey, Store};

/// The test's start, in Unix milliseconds.
const T0: i64 = 1_764_000_000_000;

#[derive(Debug, Clone)]
enum Op {
    Enqueue { key: u8, due: u8 },
    Claim { limit: u8, buckets: u8 },
    Complete { pick: u8 },
    Fail { pick: u8, due: u8 },
    Abandon { pick: u8 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..4u8, 0..3u8).prop_map(|(key, due)| Op::Enqueue { key, due }),
        2 => (1..4u8, 0..3u8).prop_map(|(limit, buckets)| Op::Claim { limit, buckets }),
        2 => any::<u8>().prop_map(|pick| Op::Complete { pick }),
        1 => (any::<u8>(), 0..3u8).prop_map(|(pick, due)| Op::Fail { pick, due }),
        1 => any::<u8>().prop_map(|pick| Op::Abandon { pick }),
    ]
}

/// Key 0's effects share one bucket (like PagerDuty calls); the others one bucket each.
fn rate_of(key: u8) -> RateKey {
    if key == 0 {
        RateKey::new("pagerduty")
    } else {
        RateKey::new(format!("slack:C{key}"))
    }
}

/// One pending row of the model.
#[derive(Debug, Clone)]
struct Row {
    seq: u64,
    id: String,
    due: Timestamp,
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn claims_follow_the_per_key_fifo_model(ops in proptest::collection::vec(op(), 1..60)) {
        let store = Store::open_in_memory().unwrap();
        // Claims happen at a fixed `now`, so a lease never runs out within a case.
        let now = Timestamp::from_millis(T0 + 10);
        let mut queues: BTreeMap<u8, VecDeque<Row>> = BTreeMap::new();
        let mut leased: BTreeSet<String> = BTreeSet::new();
        let mut next = 0u64;
        for op in ops {
            match op {
                Op::Enqueue { key, due } => {
                    next += 1;
                    let id = format!("e{next}");
                    let due = Timestamp::from_millis(T0 + i64::from(due) * 5);
                    store.write(|tx| tx.enqueue(&NewEffect {
                        id: &EffectId::new(&id),
                        order_key: &OrderKey::new(format!("k{key}")),
                        rate_key: &rate_of(key),
                        payload: &Json::encode(&json!({})).unwrap(),
                        due_at: due,
                        created_at: Timestamp::from_millis(T0),
                    })).unwrap();
                    queues.entry(key).or_default().push_back(Row { seq: next, id, due });
                }
                Op::Claim { limit, buckets } => {
                    let pd = rate_of(0);
                    let (buckets, wanted): (Buckets<'_>, fn(u8) -> bool) = match buckets {
                        0 => (Buckets::All, |_| true),
                        1 => (Buckets::Only(&pd), |key| key == 0),
                        _ => (Buckets::Except(&pd), |key| key != 0),
                    };
                    let mut expected: Vec<&Row> = queues
                        .iter()
                        .filter(|(key, _)| wanted(**key))
                        .filter_map(|(_, q)| q.front())
                        .filter(|r| r.due <= now && !leased.contains(&r.id))
                        .collect();
                    expected.sort_by_key(|r| (r.due, r.seq));
                    expected.truncate(usize::from(limit));
                    let expected: Vec<String> = expected.iter().map(|r| r.id.clone()).collect();
                    let claimed: Vec<String> = store
                        .write(|tx| tx.claim_due_in(now, usize::from(limit), buckets))
                        .unwrap()
                        .into_iter()
                        .map(|r| r.id.as_str().to_owned())
                        .collect();
                    prop_assert_eq!(&claimed, &expected);
                    leased.extend(claimed);
                }
                Op::Complete { pick } | Op::Abandon { pick } => {
                    let Some(id) = leased.iter().nth(usize::from(pick) % leased.len().max(1)).cloned()
                    else { continue };
                    let eid = EffectId::new(&id);
                    if matches!(op, Op::Complete { .. }) {
                        store.write(|tx| tx.complete(&eid, now)).unwrap();
                    } else {
                        store.write(|tx| tx.abandon(&eid, now, "gave up")).unwrap();
                    }
                    leased.remove(&id);
                    for q in queues.values_mut() {
                        q.retain(|r| r.id != id);
                    }
                }
                Op::Fail { pick, due } => {
                    let Some(id) = leased.iter().nth(usize::from(pick) % leased.len().max(1)).cloned()
                    else { continue };
                    let due = Timestamp::from_millis(T0 + i64::from(due) * 5);
                    store.write(|tx| tx.fail(&EffectId::new(&id), now, due, "boom")).unwrap();
                    leased.remove(&id);
                    for row in queues.values_mut().flat_map(|q| q.iter_mut()) {
                        if row.id == id {
                            row.due = due;
                        }
                    }
                }
            }
            let depth: usize = queues.values().map(VecDeque::len).sum();
            let backlog = store.read(|tx| tx.outbox_backlog(now)).unwrap();
            prop_assert_eq!(backlog.depth, depth as u64);
        }
    }
}
