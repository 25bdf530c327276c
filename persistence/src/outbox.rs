//! The webhook outbox: events written in the same transaction as the change they report
//! ([`crate::Storage::write_batch`] inserts [`crate::Batch::events`]), then claimed, delivered and
//! settled by a sender.
//!
//! Several server nodes may share one database, so an event is *claimed* before it is sent: a
//! conditional `UPDATE` sets `claimed_until_ms` (a lease) and a `claim_token` on due, unclaimed
//! rows; on PostgreSQL the rows are picked with `FOR UPDATE SKIP LOCKED`, so concurrent claimers
//! take disjoint rows without waiting on each other, and the outer `WHERE` re-checks the claim so
//! that a row is never held by two claims. SQLite has one writer at a time, which serialises claims
//! by itself. Only the holder of the claim (same token) can record the outcome; a lease that runs
//! out (its node died mid-attempt) makes the event claimable again, which is what makes delivery
//! *at least once*.
//!
//! Times the sender compares (`next_attempt_at_ms`, `claimed_until_ms`) are unix milliseconds from
//! the caller's clock; nodes are expected to have synchronised clocks (a skew only shifts when a
//! retry or an expired lease is picked up).

use sea_orm::sea_query::{Expr, LockBehavior, LockType, OnConflict, Order, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseBackend, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, TransactionTrait,
};
use time::OffsetDateTime;

use crate::entity::webhook_outbox::{self, Column as C};
use crate::{Storage, StorageError, db_time};

/// An event to put in the outbox. Its `id` is fixed here and kept across every retry.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEvent {
    /// A UUID as text.
    pub id: String,
    /// `match.finished`, `room.closed`, ...
    pub event_type: String,
    /// The complete JSON body to send, as text.
    pub payload: String,
    pub created_at: OffsetDateTime,
    /// The room whose records the event must be committed with. Not stored: the write buffer uses
    /// it to keep an event in the same batch (so the same transaction) as its room's status.
    pub room_id: String,
}

/// Where an event stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutboxStatus {
    /// Not delivered yet; attempted whenever due.
    Pending,
    /// A 2xx answer was received.
    Delivered,
    /// Given up on after the retry window.
    Failed,
}

impl OutboxStatus {
    /// The value stored in `webhook_outbox.status`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Result<Self, StorageError> {
        match s {
            "pending" => Ok(Self::Pending),
            "delivered" => Ok(Self::Delivered),
            "failed" => Ok(Self::Failed),
            other => Err(StorageError::Corrupt(format!(
                "unknown outbox status {other:?}"
            ))),
        }
    }
}

/// An event a sender holds a claim on: it may send it until the lease runs out.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimedEvent {
    pub id: String,
    pub event_type: String,
    pub payload: String,
    pub created_at: OffsetDateTime,
    /// Attempts including the one this claim is for (1 on the first).
    pub attempts: u32,
}

/// An outbox row as stored (for operators and tests).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    pub id: String,
    pub event_type: String,
    pub payload: String,
    pub created_at: OffsetDateTime,
    pub attempts: u32,
    pub status: OutboxStatus,
    pub next_attempt_at_ms: i64,
    pub last_error: Option<String>,
    pub claimed_until_ms: i64,
    pub delivered_at_ms: Option<i64>,
}

/// What became of an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A 2xx answer, at this time (unix ms).
    Delivered { at_ms: i64 },
    /// Failed; attempt again at this time (unix ms).
    Retry {
        next_attempt_at_ms: i64,
        error: String,
    },
    /// Failed past the retry window: given up.
    Failed { error: String },
}

/// Figures for the outbox gauges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OutboxStats {
    /// Events not delivered yet and not given up on.
    pub pending: u64,
    /// When the oldest of them was created.
    pub oldest_pending: Option<OffsetDateTime>,
}

/// Inserts `events` within `txn` (the batch's transaction). An event already stored (a retried
/// batch whose commit did succeed) is left as it is, so retries never duplicate an event.
pub(crate) async fn insert_events(
    txn: &impl ConnectionTrait,
    events: &[OutboxEvent],
) -> Result<(), StorageError> {
    let mut seen = std::collections::HashSet::new();
    let models: Vec<webhook_outbox::ActiveModel> = events
        .iter()
        .filter(|e| seen.insert(e.id.as_str()))
        .map(|e| webhook_outbox::ActiveModel {
            id: Set(e.id.clone()),
            event_type: Set(e.event_type.clone()),
            payload: Set(e.payload.clone()),
            created_at: Set(db_time(e.created_at)),
            attempts: Set(0),
            next_attempt_at_ms: Set(unix_ms(e.created_at)),
            status: Set(OutboxStatus::Pending.as_str().to_owned()),
            last_error: Set(None),
            claimed_until_ms: Set(0),
            claim_token: Set(None),
            delivered_at_ms: Set(None),
        })
        .collect();
    for chunk in crate::chunks(models) {
        webhook_outbox::Entity::insert_many(chunk)
            .on_conflict(OnConflict::column(C::Id).do_nothing().to_owned())
            .do_nothing()
            .exec_without_returning(txn)
            .await?;
    }
    Ok(())
}

/// Milliseconds since the unix epoch.
pub fn unix_ms(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

impl Storage {
    /// Claims up to `limit` pending events that are due at `now_ms` and not claimed by anyone,
    /// oldest due first, until `now_ms + lease_ms`, under `token` (unique per call), and counts
    /// the attempt. Returns what was claimed.
    pub async fn claim_events(
        &self,
        now_ms: i64,
        lease_ms: i64,
        limit: u64,
        token: &str,
    ) -> Result<Vec<ClaimedEvent>, StorageError> {
        let stmt = claim_statement(self.backend(), now_ms, lease_ms, limit, token);
        let claimed = self.db.execute(self.backend().build(&stmt)).await?;
        if claimed.rows_affected() == 0 {
            return Ok(Vec::new());
        }
        webhook_outbox::Entity::find()
            .filter(C::ClaimToken.eq(token))
            .filter(C::Status.eq(OutboxStatus::Pending.as_str()))
            .order_by_asc(C::NextAttemptAtMs)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|m| {
                Ok(ClaimedEvent {
                    attempts: attempts(&m)?,
                    id: m.id,
                    event_type: m.event_type,
                    payload: m.payload,
                    created_at: m.created_at,
                })
            })
            .collect()
    }

    /// Records the outcomes of a round of attempts made under `token`, in one transaction (one
    /// commit per round rather than per event: on SQLite concurrent single-row commits would queue
    /// for the one writer). An event whose claim `token` no longer holds is left alone. Returns
    /// how many were recorded.
    pub async fn record_outcomes(
        &self,
        token: &str,
        outcomes: &[(String, Outcome)],
    ) -> Result<usize, StorageError> {
        if outcomes.is_empty() {
            return Ok(0);
        }
        let txn = self.db.begin().await?;
        let mut recorded = 0;
        for (id, outcome) in outcomes {
            let stmt = settle_statement(id, token, outcome);
            recorded += txn
                .execute(self.backend().build(&stmt))
                .await?
                .rows_affected() as usize;
        }
        txn.commit().await?;
        Ok(recorded)
    }

    /// Records a delivery; `false` if `token` no longer holds the claim (nothing changed).
    pub async fn record_delivered(
        &self,
        id: &str,
        token: &str,
        now_ms: i64,
    ) -> Result<bool, StorageError> {
        self.record_one(id, token, Outcome::Delivered { at_ms: now_ms })
            .await
    }

    /// Records a failed attempt to be retried at `next_attempt_at_ms`; `false` if `token` no
    /// longer holds the claim.
    pub async fn record_retry(
        &self,
        id: &str,
        token: &str,
        next_attempt_at_ms: i64,
        error: &str,
    ) -> Result<bool, StorageError> {
        let outcome = Outcome::Retry {
            next_attempt_at_ms,
            error: error.to_owned(),
        };
        self.record_one(id, token, outcome).await
    }

    /// Gives up on an event (its retry window is over); `false` if `token` no longer holds the
    /// claim.
    pub async fn record_failed(
        &self,
        id: &str,
        token: &str,
        error: &str,
    ) -> Result<bool, StorageError> {
        let outcome = Outcome::Failed {
            error: error.to_owned(),
        };
        self.record_one(id, token, outcome).await
    }

    async fn record_one(
        &self,
        id: &str,
        token: &str,
        outcome: Outcome,
    ) -> Result<bool, StorageError> {
        let stmt = settle_statement(id, token, &outcome);
        let res = self.db.execute(self.backend().build(&stmt)).await?;
        Ok(res.rows_affected() == 1)
    }

    /// How many events are pending and when the oldest was created.
    pub async fn outbox_stats(&self) -> Result<OutboxStats, StorageError> {
        let pending =
            webhook_outbox::Entity::find().filter(C::Status.eq(OutboxStatus::Pending.as_str()));
        let count = sea_orm::PaginatorTrait::count(pending.clone(), &self.db).await?;
        let oldest = pending
            .select_only()
            .column(C::CreatedAt)
            .order_by(C::CreatedAt, Order::Asc)
            .limit(1)
            .into_tuple::<OffsetDateTime>()
            .one(&self.db)
            .await?;
        Ok(OutboxStats {
            pending: count,
            oldest_pending: oldest,
        })
    }

    /// Every outbox row, oldest first.
    pub async fn outbox_events(&self) -> Result<Vec<StoredEvent>, StorageError> {
        webhook_outbox::Entity::find()
            .order_by_asc(C::CreatedAt)
            .order_by_asc(C::Id)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|m| {
                Ok(StoredEvent {
                    attempts: attempts(&m)?,
                    status: OutboxStatus::parse(&m.status)?,
                    id: m.id,
                    event_type: m.event_type,
                    payload: m.payload,
                    created_at: m.created_at,
                    next_attempt_at_ms: m.next_attempt_at_ms,
                    last_error: m.last_error,
                    claimed_until_ms: m.claimed_until_ms,
                    delivered_at_ms: m.delivered_at_ms,
                })
            })
            .collect()
    }

    /// Deletes events delivered before `before_ms`; returns how many. Failed events are kept for
    /// an operator to look at.
    pub async fn prune_delivered_events(&self, before_ms: i64) -> Result<u64, StorageError> {
        let res = webhook_outbox::Entity::delete_many()
            .filter(C::Status.eq(OutboxStatus::Delivered.as_str()))
            .filter(C::DeliveredAtMs.lt(before_ms))
            .exec(&self.db)
            .await?;
        Ok(res.rows_affected)
    }
}

/// Sets what `outcome` says and releases the claim, if `token` holds it.
fn settle_statement(
    id: &str,
    token: &str,
    outcome: &Outcome,
) -> sea_orm::sea_query::UpdateStatement {
    let mut stmt = Query::update();
    stmt.table(webhook_outbox::Entity);
    match outcome {
        Outcome::Delivered { at_ms } => stmt
            .value(C::Status, OutboxStatus::Delivered.as_str())
            .value(C::DeliveredAtMs, *at_ms)
            .value(C::LastError, Option::<String>::None),
        Outcome::Retry {
            next_attempt_at_ms,
            error,
        } => stmt
            .value(C::Status, OutboxStatus::Pending.as_str())
            .value(C::NextAttemptAtMs, *next_attempt_at_ms)
            .value(C::LastError, error.as_str()),
        Outcome::Failed { error } => stmt
            .value(C::Status, OutboxStatus::Failed.as_str())
            .value(C::LastError, error.as_str()),
    };
    stmt.value(C::ClaimedUntilMs, 0_i64)
        .value(C::ClaimToken, Option::<String>::None)
        .and_where(C::Id.eq(id))
        .and_where(C::ClaimToken.eq(token))
        .to_owned()
}

fn attempts(m: &webhook_outbox::Model) -> Result<u32, StorageError> {
    u32::try_from(m.attempts).map_err(|_| {
        StorageError::Corrupt(format!(
            "outbox event {} has a negative attempt count {}",
            m.id, m.attempts
        ))
    })
}

/// `UPDATE webhook_outbox SET claimed_until_ms = now + lease, claim_token = token, attempts =
/// attempts + 1 WHERE id IN (SELECT id … due and unclaimed … ORDER BY next_attempt_at_ms LIMIT n
/// [FOR UPDATE SKIP LOCKED]) AND status = 'pending' AND claimed_until_ms <= now`. The outer
/// conditions repeat the inner ones: on PostgreSQL an `UPDATE` that waited for a row lock
/// re-evaluates its own `WHERE` on the row's new version, so a row that another node claimed in
/// the meantime is skipped rather than claimed twice.
fn claim_statement(
    backend: DatabaseBackend,
    now_ms: i64,
    lease_ms: i64,
    limit: u64,
    token: &str,
) -> sea_orm::sea_query::UpdateStatement {
    let pending = OutboxStatus::Pending.as_str();
    let mut due = Query::select();
    due.column(C::Id)
        .from(webhook_outbox::Entity)
        .and_where(C::Status.eq(pending))
        .and_where(C::NextAttemptAtMs.lte(now_ms))
        .and_where(C::ClaimedUntilMs.lte(now_ms))
        .order_by(C::NextAttemptAtMs, Order::Asc)
        .limit(limit.max(1));
    if backend == DatabaseBackend::Postgres {
        due.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
    }
    Query::update()
        .table(webhook_outbox::Entity)
        .value(C::ClaimedUntilMs, now_ms.saturating_add(lease_ms))
        .value(C::ClaimToken, token)
        .value(C::Attempts, Expr::col(C::Attempts).add(1))
        .and_where(C::Id.in_subquery(due))
        .and_where(C::Status.eq(pending))
        .and_where(C::ClaimedUntilMs.lte(now_ms))
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_claim_skips_locked_rows_on_postgres_only() {
        let pg = DatabaseBackend::Postgres
            .build(&claim_statement(DatabaseBackend::Postgres, 10, 5, 8, "t"))
            .to_string();
        let lite = DatabaseBackend::Sqlite
            .build(&claim_statement(DatabaseBackend::Sqlite, 10, 5, 8, "t"))
            .to_string();
        assert!(pg.contains("FOR UPDATE SKIP LOCKED"), "{pg}");
        assert!(!lite.contains("FOR UPDATE"), "{lite}");
        for sql in [&pg, &lite] {
            assert!(sql.contains(r#""claimed_until_ms" = 15"#), "{sql}");
            assert!(sql.contains("LIMIT 8"), "{sql}");
        }
    }

    #[test]
    fn unix_ms_of_a_time() {
        let t = time::macros::datetime!(2026-11-29 12:00:00.123456 UTC);
        assert_eq!(unix_ms(t), 1_795_953_600_123);
    }
}
