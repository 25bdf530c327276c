//! `room_snapshots`: periodic MessagePack snapshots of each room's state, from which a restarted
//! server restores the room. Old rows are pruned by the persistence layer.

use sea_orm_migration::prelude::*;

/// Creates `room_snapshots` and its `(room_id, tick DESC, id DESC)` index.
#[derive(DeriveMigrationName)]
pub struct Migration;

/// Identifiers of the `room_snapshots` table.
#[derive(DeriveIden)]
pub enum RoomSnapshots {
    Table,
    Id,
    RoomId,
    Tick,
    /// The room's state as MessagePack bytes (`bytea` on PostgreSQL, `blob` on SQLite).
    State,
    CreatedAt,
}

/// Name of the index that serves "latest snapshot of a room" and pruning.
pub const SNAPSHOT_INDEX: &str = "idx_room_snapshots_room_id_tick";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(RoomSnapshots::Table)
                    .col(
                        ColumnDef::new(RoomSnapshots::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(RoomSnapshots::RoomId).text().not_null())
                    .col(ColumnDef::new(RoomSnapshots::Tick).big_integer().not_null())
                    .col(ColumnDef::new(RoomSnapshots::State).blob().not_null())
                    .col(
                        ColumnDef::new(RoomSnapshots::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        // (room_id, tick) is what the queries filter and order by; `id` is appended as the
        // tie-breaker both queries also order by (two snapshots of the same tick can exist after
        // a restore). Descending, because both queries want a room's newest first: "latest"
        // is the first index entry of the room, and pruning's window (PARTITION BY room_id ORDER
        // BY tick DESC, id DESC) is read straight off the index with no sort, even for a list
        // of rooms (an ascending index forced an Incremental Sort there; see BENCHMARKS.md).
        manager
            .create_index(
                Index::create()
                    .name(SNAPSHOT_INDEX)
                    .table(RoomSnapshots::Table)
                    .col(RoomSnapshots::RoomId)
                    .col((RoomSnapshots::Tick, IndexOrder::Desc))
                    .col((RoomSnapshots::Id, IndexOrder::Desc))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(RoomSnapshots::Table).to_owned())
            .await
    }
}
