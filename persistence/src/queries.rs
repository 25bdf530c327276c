//! The repository's queries: batched writes, reads, pruning and the server secret.

use std::collections::HashMap;

use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::{Alias, Expr, OnConflict, Order, Query, WindowStatement};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, TransactionTrait,
};

use crate::entity::{match_results, room_snapshots, rooms, settings};
use crate::records::{
    result_model, result_record, room_model, room_record, snapshot_model, snapshot_record,
};
use crate::{
    Batch, ROWS_PER_INSERT, ResultRecord, RoomRecord, RoomStatus, Storage, StorageError,
    StoredSnapshot, outbox,
};

/// Key of the server secret in `settings`.
const SECRET_KEY: &str = "server_secret";

impl Storage {
    /// Writes a batch in one transaction, with one multi-row `INSERT` per table (per
    /// [`ROWS_PER_INSERT`] rows). Rooms are upserted on `id` (status and `closed_at` are updated,
    /// only if the record's fencing number is the room's; snapshots with a stale one are skipped
    /// by a trigger)
    /// and results on `(room_id, player_id)`, so writing the same batch twice is harmless; if a
    /// batch holds the same room or result twice, the last one wins. Empty parts are skipped.
    /// Webhook events are inserted in the same transaction, so an event is stored exactly when the
    /// change it reports is; an event already stored is left alone.
    ///
    /// Every record is validated before the transaction starts: on
    /// [`StorageError::OutOfRange`] nothing was written.
    pub async fn write_batch(&self, batch: &Batch) -> Result<(), StorageError> {
        if batch.is_empty() {
            return Ok(());
        }
        let rooms = last_wins(&batch.rooms, |r| (r.room_id.as_str(), ""))
            .into_iter()
            .map(room_model)
            .collect::<Vec<_>>();
        let snapshots = batch
            .snapshots
            .iter()
            .map(snapshot_model)
            .collect::<Result<Vec<_>, _>>()?;
        let results = last_wins(&batch.results, |r| {
            (r.room_id.as_str(), r.player_id.as_str())
        })
        .into_iter()
        .map(result_model)
        .collect::<Result<Vec<_>, _>>()?;

        let txn = self.db.begin().await?;
        for chunk in chunks(rooms) {
            rooms::Entity::insert_many(chunk)
                .on_conflict(
                    OnConflict::column(rooms::Column::Id)
                        .update_columns([rooms::Column::Status, rooms::Column::ClosedAt])
                        // Fencing: a writer that no longer holds the room changes nothing.
                        .action_and_where(
                            Expr::col((rooms::Entity, rooms::Column::Fence))
                                .equals((Alias::new("excluded"), rooms::Column::Fence)),
                        )
                        .to_owned(),
                )
                .exec_without_returning(&txn)
                .await?;
        }
        for chunk in chunks(snapshots) {
            room_snapshots::Entity::insert_many(chunk)
                .exec_without_returning(&txn)
                .await?;
        }
        for chunk in chunks(results) {
            match_results::Entity::insert_many(chunk)
                .on_conflict(
                    OnConflict::columns([
                        match_results::Column::RoomId,
                        match_results::Column::PlayerId,
                    ])
                    .update_columns([
                        match_results::Column::Score,
                        match_results::Column::Rank,
                        match_results::Column::FinishedAt,
                    ])
                    .to_owned(),
                )
                .exec_without_returning(&txn)
                .await?;
        }
        outbox::insert_events(&txn, &batch.events).await?;
        txn.commit().await?;
        Ok(())
    }

    /// The snapshot of `room_id` with the highest tick (the newest row among equal ticks), read
    /// off the `(room_id, tick DESC, id DESC)` index (its first entry for the room).
    pub async fn latest_snapshot(
        &self,
        room_id: &str,
    ) -> Result<Option<StoredSnapshot>, StorageError> {
        room_snapshots::Entity::find()
            .filter(room_snapshots::Column::RoomId.eq(room_id))
            .order_by_desc(room_snapshots::Column::Tick)
            .order_by_desc(room_snapshots::Column::Id)
            .one(&self.db)
            .await?
            .map(snapshot_record)
            .transpose()
    }

    /// Every room whose stored status is open, ordered by id: the rooms to restore on restart.
    pub async fn open_rooms(&self) -> Result<Vec<RoomRecord>, StorageError> {
        rooms::Entity::find()
            .filter(rooms::Column::Status.eq(RoomStatus::Open.as_str()))
            .order_by_asc(rooms::Column::Id)
            .all(&self.db)
            .await?
            .into_iter()
            .map(room_record)
            .collect()
    }

    /// One room, if stored.
    pub async fn room(&self, room_id: &str) -> Result<Option<RoomRecord>, StorageError> {
        rooms::Entity::find_by_id(room_id.to_owned())
            .one(&self.db)
            .await?
            .map(room_record)
            .transpose()
    }

    /// The results of a room, best rank first (ties by player id).
    pub async fn results(&self, room_id: &str) -> Result<Vec<ResultRecord>, StorageError> {
        match_results::Entity::find()
            .filter(match_results::Column::RoomId.eq(room_id))
            .order_by_asc(match_results::Column::Rank)
            .order_by_asc(match_results::Column::PlayerId)
            .all(&self.db)
            .await?
            .into_iter()
            .map(result_record)
            .collect()
    }

    /// Keeps only the newest `keep` snapshots (by tick, then id) of every room; returns the
    /// number of rows deleted. This scans the whole table; the persistence actor uses
    /// [`Storage::prune_snapshots_of`] for the rooms it wrote to instead.
    pub async fn prune_snapshots(&self, keep: u32) -> Result<u64, StorageError> {
        let stmt = prune_statement(keep, None);
        let res = self.db.execute(self.backend().build(&stmt)).await?;
        Ok(res.rows_affected())
    }

    /// [`Storage::prune_snapshots`] restricted to `room_ids`, which only reads those rooms'
    /// index ranges: its cost grows with the rooms written since the last prune, not with the
    /// table.
    pub async fn prune_snapshots_of(
        &self,
        room_ids: &[String],
        keep: u32,
    ) -> Result<u64, StorageError> {
        let mut deleted = 0;
        for ids in room_ids.chunks(ROWS_PER_INSERT) {
            let stmt = prune_statement(keep, Some(ids));
            deleted += self
                .db
                .execute(self.backend().build(&stmt))
                .await?
                .rows_affected();
        }
        Ok(deleted)
    }

    /// The stored server secret; if there is none, stores `candidate` and returns it.
    ///
    /// Race-safe: it inserts `candidate` only if the key is absent (`ON CONFLICT DO NOTHING`),
    /// then reads whatever is stored, so two servers starting at once on one database agree on
    /// one secret and an existing secret is never replaced.
    pub async fn secret_or_insert(&self, candidate: &[u8]) -> Result<Vec<u8>, StorageError> {
        let row = settings::ActiveModel {
            key: Set(SECRET_KEY.to_owned()),
            value: Set(candidate.to_vec()),
        };
        settings::Entity::insert(row)
            .on_conflict(
                OnConflict::column(settings::Column::Key)
                    .do_nothing()
                    .to_owned(),
            )
            .do_nothing()
            .exec_without_returning(&self.db)
            .await?;
        settings::Entity::find_by_id(SECRET_KEY.to_owned())
            .one(&self.db)
            .await?
            .map(|m| m.value)
            .ok_or_else(|| {
                StorageError::Corrupt("the server secret vanished right after insertion".into())
            })
    }
}

/// `DELETE FROM room_snapshots WHERE id IN (SELECT id FROM (SELECT id, ROW_NUMBER() OVER
/// (PARTITION BY room_id ORDER BY tick DESC, id DESC) AS rn FROM room_snapshots [WHERE room_id IN
/// (…)]) AS ranked WHERE rn > keep)`: portable to PostgreSQL and SQLite (3.25+), and the window's
/// order is exactly the index's order, so PostgreSQL reads it with an index-only scan and no sort.
fn prune_statement(keep: u32, rooms: Option<&[String]>) -> sea_orm::sea_query::DeleteStatement {
    use room_snapshots::Column as C;
    let mut ranked = Query::select();
    ranked
        .column(C::Id)
        .expr_window_as(
            Expr::cust("ROW_NUMBER()"),
            WindowStatement::partition_by(C::RoomId)
                .order_by(C::Tick, Order::Desc)
                .order_by(C::Id, Order::Desc)
                .to_owned(),
            Alias::new("rn"),
        )
        .from(room_snapshots::Entity);
    if let Some(rooms) = rooms {
        ranked.and_where(C::RoomId.is_in(rooms.iter().cloned()));
    }
    let mut doomed = Query::select();
    doomed
        .column(Alias::new("id"))
        .from_subquery(ranked, Alias::new("ranked"))
        .and_where(Expr::col(Alias::new("rn")).gt(i64::from(keep)));
    Query::delete()
        .from_table(room_snapshots::Entity)
        .and_where(Expr::col(C::Id).in_subquery(doomed))
        .to_owned()
}

/// Keeps the last record of each key, in first-seen order: PostgreSQL rejects an upsert that
/// touches the same row twice in one statement.
fn last_wins<'a, T>(items: &'a [T], key: impl Fn(&'a T) -> (&'a str, &'a str)) -> Vec<&'a T> {
    let mut index: HashMap<(&str, &str), usize> = HashMap::with_capacity(items.len());
    let mut out: Vec<&T> = Vec::with_capacity(items.len());
    for item in items {
        match index.get(&key(item)) {
            Some(&i) => out[i] = item,
            None => {
                index.insert(key(item), out.len());
                out.push(item);
            }
        }
    }
    out
}

/// Splits owned rows into statements of at most [`ROWS_PER_INSERT`].
pub(crate) fn chunks<T>(rows: Vec<T>) -> impl Iterator<Item = Vec<T>> {
    let mut rows = rows.into_iter().peekable();
    std::iter::from_fn(move || {
        rows.peek()?;
        Some(rows.by_ref().take(ROWS_PER_INSERT).collect())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::DatabaseBackend;

    #[test]
    fn last_record_of_a_key_wins_in_first_seen_order() {
        let items = [("a", 1), ("b", 2), ("a", 3)];
        let kept: Vec<_> = last_wins(&items, |(k, _)| (k, "")).into_iter().collect();
        assert_eq!(kept, vec![&("a", 3), &("b", 2)]);
    }

    #[test]
    fn chunks_split_at_the_limit() {
        let sizes: Vec<usize> = chunks((0..2500).collect())
            .map(|c: Vec<i32>| c.len())
            .collect();
        assert_eq!(sizes, vec![1000, 1000, 500]);
        assert_eq!(chunks(Vec::<i32>::new()).count(), 0);
    }

    /// The pruning statement is the same SQL on both backends apart from placeholders (and it is
    /// the statement whose plan BENCHMARKS.md records).
    #[test]
    fn prune_sql() {
        let stmt = prune_statement(10, Some(&["a".to_owned()]));
        let pg = DatabaseBackend::Postgres.build(&stmt).to_string();
        let lite = DatabaseBackend::Sqlite.build(&stmt).to_string();
        let expected = r#"DELETE FROM "room_snapshots" WHERE "id" IN (SELECT "id" FROM (SELECT "id", ROW_NUMBER() OVER ( PARTITION BY "room_id" ORDER BY "tick" DESC, "id" DESC ) AS "rn" FROM "room_snapshots" WHERE "room_snapshots"."room_id" IN ('a')) AS "ranked" WHERE "rn" > 10)"#;
        assert_eq!(pg, expected);
        assert_eq!(lite, expected);
    }
}
