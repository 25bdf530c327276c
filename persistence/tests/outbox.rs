//! The webhook outbox against real databases: events commit with their batch, claims are exclusive
//! and leased, only the claim holder settles an event, and concurrent claimers (the nodes of a
//! cluster) never take the same event at once. Every body runs on SQLite and on PostgreSQL
//! (`TEST_DATABASE_URL`, see `repository.rs`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: a failure is a panic with a message

use std::collections::HashSet;
use std::path::PathBuf;

use persistence::outbox::unix_ms;
use persistence::test_support::{FreshPostgres, unique_suffix};
use persistence::{
    Batch, OutboxEvent, OutboxStatus, Outcome, PoolOptions, ResultRecord, RoomRecord, RoomStatus,
    Storage,
};
use time::{Duration, OffsetDateTime};

struct TestDb {
    storage: Storage,
    _cleanup: Cleanup,
}

enum Cleanup {
    File(PathBuf),
    Postgres(#[allow(dead_code)] FreshPostgres),
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Cleanup::File(path) = self
            && let Some(dir) = path.parent()
        {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

impl TestDb {
    async fn sqlite() -> Self {
        let path = std::env::temp_dir()
            .join(format!("skirmish-outbox-{}", unique_suffix()))
            .join("db.sqlite");
        let storage = Storage::connect(&format!("sqlite://{}", path.display()), &pool())
            .await
            .unwrap();
        storage.migrate().await.unwrap();
        Self {
            storage,
            _cleanup: Cleanup::File(path),
        }
    }

    async fn postgres() -> Option<Self> {
        let fresh = FreshPostgres::create("outbox").await?;
        let storage = Storage::connect(&fresh.url, &pool()).await.unwrap();
        storage.migrate().await.unwrap();
        Some(Self {
            storage,
            _cleanup: Cleanup::Postgres(fresh),
        })
    }
}

fn pool() -> PoolOptions {
    PoolOptions {
        max_connections: 8,
        // Parallel tests create and drop databases; on a loaded machine a connect can take seconds.
        acquire_timeout: std::time::Duration::from_secs(30),
        ..PoolOptions::default()
    }
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = super::TestDb::sqlite().await;
                    super::$name(&db.storage).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(db) = super::TestDb::postgres().await else { return };
                    super::$name(&db.storage).await;
                }
            )*
        }
    };
}

on_both_backends!(
    events_commit_with_their_batch_once,
    a_claim_is_exclusive_until_its_lease_runs_out,
    retries_wait_for_their_time_and_failed_events_stay_failed,
    concurrent_claimers_never_share_an_event,
    stats_and_pruning,
);

fn t0() -> OffsetDateTime {
    time::macros::datetime!(2026-11-29 12:00:00.123456 UTC)
}

fn closed_room(id: &str) -> RoomRecord {
    RoomRecord {
        owner: Default::default(),
        room_id: id.into(),
        mode: "arena".into(),
        config: "{}".into(),
        status: RoomStatus::Closed,
        created_at: t0(),
        closed_at: Some(t0()),
    }
}

fn event(room: &str, id: &str, at: OffsetDateTime) -> OutboxEvent {
    OutboxEvent {
        id: id.into(),
        event_type: "room.closed".into(),
        payload: format!(r#"{{"id":"{id}","type":"room.closed"}}"#),
        created_at: at,
        room_id: room.into(),
    }
}

async fn write_events(s: &Storage, events: Vec<OutboxEvent>) {
    let rooms: HashSet<String> = events.iter().map(|e| e.room_id.clone()).collect();
    s.write_batch(&Batch {
        rooms: rooms.iter().map(|r| closed_room(r)).collect(),
        events,
        ..Batch::default()
    })
    .await
    .unwrap();
}

async fn events_commit_with_their_batch_once(s: &Storage) {
    let batch = Batch {
        rooms: vec![closed_room("r")],
        results: vec![ResultRecord {
            room_id: "r".into(),
            player_id: "p".into(),
            score: 3,
            rank: 1,
            finished_at: t0(),
        }],
        events: vec![event("r", "e1", t0()), event("r", "e2", t0())],
        ..Batch::default()
    };
    s.write_batch(&batch).await.unwrap();
    // A retried batch (its commit was not acknowledged) does not duplicate its events.
    s.write_batch(&batch).await.unwrap();
    let stored = s.outbox_events().await.unwrap();
    assert_eq!(stored.len(), 2);
    for e in &stored {
        assert_eq!(e.status, OutboxStatus::Pending);
        assert_eq!(e.attempts, 0);
        assert_eq!(e.created_at, t0());
        assert_eq!(e.next_attempt_at_ms, unix_ms(t0()), "due at once");
        assert_eq!(
            e.payload,
            format!(r#"{{"id":"{}","type":"room.closed"}}"#, e.id)
        );
    }
    assert_eq!(s.results("r").await.unwrap().len(), 1);

    // A batch that fails writes neither its change nor its events.
    let mut bad = Batch {
        rooms: vec![closed_room("bad")],
        events: vec![event("bad", "e3", t0())],
        ..Batch::default()
    };
    bad.results.push(ResultRecord {
        room_id: "bad".into(),
        player_id: "p".into(),
        score: 1,
        rank: u32::MAX,
        finished_at: t0(),
    });
    assert!(s.write_batch(&bad).await.is_err());
    assert_eq!(s.outbox_events().await.unwrap().len(), 2);
    assert!(s.room("bad").await.unwrap().is_none());
}

async fn a_claim_is_exclusive_until_its_lease_runs_out(s: &Storage) {
    write_events(s, vec![event("r", "e1", t0()), event("r", "e2", t0())]).await;
    let now = unix_ms(t0());
    let a = s.claim_events(now, 1000, 10, "a").await.unwrap();
    assert_eq!(a.len(), 2);
    assert!(a.iter().all(|e| e.attempts == 1));
    assert!(s.claim_events(now, 1000, 10, "b").await.unwrap().is_empty());
    assert!(
        s.claim_events(now + 999, 1000, 10, "b")
            .await
            .unwrap()
            .is_empty()
    );
    // "a" died mid-attempt: after its lease another claimer takes the events, with their ids.
    let b = s.claim_events(now + 1000, 1000, 10, "b").await.unwrap();
    let ids: HashSet<_> = b.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, HashSet::from(["e1", "e2"]));
    assert!(b.iter().all(|e| e.attempts == 2));
    // Only the holder settles: a round recorded under the stale claim changes nothing.
    let stale = [
        ("e1".to_owned(), Outcome::Delivered { at_ms: now + 1001 }),
        ("e2".to_owned(), Outcome::Failed { error: "x".into() }),
    ];
    assert_eq!(s.record_outcomes("a", &stale).await.unwrap(), 0);
    assert!(!s.record_delivered("e1", "a", now + 1001).await.unwrap());
    assert!(s.record_delivered("e1", "b", now + 1001).await.unwrap());
    assert!(!s.record_delivered("e1", "b", now + 1002).await.unwrap());
    let stored = s.outbox_events().await.unwrap();
    let e1 = stored.iter().find(|e| e.id == "e1").unwrap();
    assert_eq!(e1.status, OutboxStatus::Delivered);
    assert_eq!(e1.delivered_at_ms, Some(now + 1001));
    assert_eq!(e1.claimed_until_ms, 0);
    // A delivered event is never claimed again, even long after.
    let later = s.claim_events(now + 10_000, 1000, 10, "c").await.unwrap();
    assert_eq!(
        later.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
        ["e2"]
    );
}

async fn retries_wait_for_their_time_and_failed_events_stay_failed(s: &Storage) {
    write_events(s, vec![event("r", "e", t0())]).await;
    let now = unix_ms(t0());
    let claimed = s.claim_events(now, 60_000, 10, "a").await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert!(
        s.record_retry("e", "a", now + 500, "HTTP 500")
            .await
            .unwrap()
    );
    // The claim is released at once, but the event is not due before its retry time.
    assert!(
        s.claim_events(now + 499, 60_000, 10, "b")
            .await
            .unwrap()
            .is_empty()
    );
    let again = s.claim_events(now + 500, 60_000, 10, "b").await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempts, 2);
    let stored = &s.outbox_events().await.unwrap()[0];
    assert_eq!(stored.last_error.as_deref(), Some("HTTP 500"));
    assert!(s.record_failed("e", "b", "gave up").await.unwrap());
    assert!(
        s.claim_events(now + 86_400_000, 60_000, 10, "c")
            .await
            .unwrap()
            .is_empty()
    );
    let stored = &s.outbox_events().await.unwrap()[0];
    assert_eq!(stored.status, OutboxStatus::Failed);
    assert_eq!(stored.attempts, 2);
    assert_eq!(s.outbox_stats().await.unwrap().pending, 0);
}

/// Four claimers (as four nodes would) drain 60 events in rounds of 5 at once: every event is
/// claimed exactly once.
async fn concurrent_claimers_never_share_an_event(s: &Storage) {
    let events: Vec<_> = (0..60)
        .map(|i| event(&format!("r{i}"), &format!("e{i:02}"), t0()))
        .collect();
    write_events(s, events).await;
    let now = unix_ms(t0());
    let mut tasks = Vec::new();
    for node in 0..4 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            for round in 0..100 {
                let token = format!("node{node}-{round}");
                let claimed = s.claim_events(now, 60_000, 5, &token).await.unwrap();
                if claimed.is_empty() {
                    break;
                }
                // One transaction per round, as the sender records them.
                let outcomes: Vec<_> = claimed
                    .iter()
                    .map(|e| (e.id.clone(), Outcome::Delivered { at_ms: now }))
                    .collect();
                assert_eq!(
                    s.record_outcomes(&token, &outcomes).await.unwrap(),
                    claimed.len()
                );
                mine.extend(claimed.into_iter().map(|e| e.id));
            }
            mine
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    let distinct: HashSet<_> = all.iter().collect();
    assert_eq!(all.len(), 60, "every event claimed once: {all:?}");
    assert_eq!(distinct.len(), 60);
    assert!(
        s.outbox_events()
            .await
            .unwrap()
            .iter()
            .all(|e| e.status == OutboxStatus::Delivered && e.attempts == 1)
    );
}

async fn stats_and_pruning(s: &Storage) {
    assert_eq!(s.outbox_stats().await.unwrap().pending, 0);
    assert_eq!(s.outbox_stats().await.unwrap().oldest_pending, None);
    write_events(
        s,
        vec![
            event("r", "late", t0() + Duration::seconds(5)),
            event("r", "early", t0()),
        ],
    )
    .await;
    let stats = s.outbox_stats().await.unwrap();
    assert_eq!(stats.pending, 2);
    assert_eq!(stats.oldest_pending, Some(t0()));

    let now = unix_ms(t0() + Duration::seconds(5));
    for e in s.claim_events(now, 1000, 10, "a").await.unwrap() {
        if e.id == "early" {
            assert!(s.record_delivered(&e.id, "a", now).await.unwrap());
        } else {
            assert!(
                s.record_retry(&e.id, "a", now + 10, "timeout")
                    .await
                    .unwrap()
            );
        }
    }
    let stats = s.outbox_stats().await.unwrap();
    assert_eq!(stats.pending, 1);
    assert_eq!(stats.oldest_pending, Some(t0() + Duration::seconds(5)));
    assert_eq!(
        s.prune_delivered_events(now).await.unwrap(),
        0,
        "not before"
    );
    assert_eq!(s.prune_delivered_events(now + 1).await.unwrap(), 1);
    let left: Vec<_> = s
        .outbox_events()
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(left, ["late"], "pending events are never pruned");
}
