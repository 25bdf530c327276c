//! Cluster mode: the `nodes` registry, the owner, lease and fencing number of each room, and the
//! writer of each snapshot. A database trigger refuses (skips) a snapshot whose fencing number is
//! not the room's current one, so a node that lost a room can never write it again.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DatabaseBackend};

use crate::{RoomSnapshots, Rooms};

/// Creates `nodes` and adds the ownership columns.
#[derive(DeriveMigrationName)]
pub struct Migration;

/// Identifiers of the `nodes` table.
#[derive(DeriveIden)]
pub enum Nodes {
    Table,
    NodeId,
    /// Bumped at each registration: a room is owned by one incarnation of a node.
    Incarnation,
    /// The base URL clients and other nodes reach the node at (`ws://host:port`).
    PublicUrl,
    Draining,
    /// Load figures for placement: open rooms, and connected players plus held seats.
    Rooms,
    Players,
    StartedAt,
    HeartbeatAt,
    /// The database's clock: the node is dead after this instant unless it renews.
    ExpiresAt,
}

/// The columns added to `rooms` and `room_snapshots`.
#[derive(DeriveIden)]
enum Added {
    OwnerNode,
    OwnerIncarnation,
    Fence,
    Players,
    OrphanedAt,
    NodeId,
}

const PG_TRIGGER: &str = r#"
CREATE FUNCTION skirmish_fenced_snapshot() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    current_fence bigint;
BEGIN
    -- FOR SHARE waits for a claim in progress on the room, so the check sees its new fence.
    SELECT fence INTO current_fence FROM rooms WHERE id = NEW.room_id FOR SHARE;
    IF FOUND AND current_fence <> NEW.fence THEN
        RETURN NULL;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER fenced_snapshot BEFORE INSERT ON room_snapshots
    FOR EACH ROW EXECUTE FUNCTION skirmish_fenced_snapshot();
"#;

const SQLITE_TRIGGER: &str = "CREATE TRIGGER fenced_snapshot BEFORE INSERT ON room_snapshots \
    WHEN EXISTS (SELECT 1 FROM rooms WHERE id = NEW.room_id AND fence <> NEW.fence) \
    BEGIN SELECT RAISE(IGNORE); END";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Nodes::Table)
                    .col(
                        ColumnDef::new(Nodes::NodeId)
                            .text()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Nodes::Incarnation).big_integer().not_null())
                    .col(ColumnDef::new(Nodes::PublicUrl).text().not_null())
                    .col(
                        ColumnDef::new(Nodes::Draining)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .col(
                        ColumnDef::new(Nodes::Rooms)
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .col(
                        ColumnDef::new(Nodes::Players)
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .col(
                        ColumnDef::new(Nodes::StartedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Nodes::HeartbeatAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Nodes::ExpiresAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        // SQLite alters one column per statement.
        let room_columns = [
            ColumnDef::new(Added::OwnerNode).text().null().to_owned(),
            ColumnDef::new(Added::OwnerIncarnation)
                .big_integer()
                .null()
                .to_owned(),
            ColumnDef::new(Added::Fence)
                .big_integer()
                .not_null()
                .default(0)
                .to_owned(),
            ColumnDef::new(Added::Players)
                .big_integer()
                .not_null()
                .default(0)
                .to_owned(),
            ColumnDef::new(Added::OrphanedAt)
                .timestamp_with_time_zone()
                .null()
                .to_owned(),
        ];
        for mut column in room_columns {
            manager
                .alter_table(
                    Table::alter()
                        .table(Rooms::Table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        let snapshot_columns = [
            ColumnDef::new(Added::NodeId).text().null().to_owned(),
            ColumnDef::new(Added::Fence)
                .big_integer()
                .not_null()
                .default(0)
                .to_owned(),
        ];
        for mut column in snapshot_columns {
            manager
                .alter_table(
                    Table::alter()
                        .table(RoomSnapshots::Table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        // Finding a dead node's rooms: open rooms by owner.
        manager
            .create_index(
                Index::create()
                    .name("idx_rooms_owner")
                    .table(Rooms::Table)
                    .col(Added::OwnerNode)
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        match db.get_database_backend() {
            DatabaseBackend::Postgres => db.execute_unprepared(PG_TRIGGER).await.map(drop),
            _ => db.execute_unprepared(SQLITE_TRIGGER).await.map(drop),
        }
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        match db.get_database_backend() {
            DatabaseBackend::Postgres => {
                db.execute_unprepared(
                    "DROP TRIGGER IF EXISTS fenced_snapshot ON room_snapshots; \
                     DROP FUNCTION IF EXISTS skirmish_fenced_snapshot();",
                )
                .await?;
            }
            _ => {
                db.execute_unprepared("DROP TRIGGER IF EXISTS fenced_snapshot")
                    .await?;
            }
        }
        manager
            .drop_index(
                Index::drop()
                    .name("idx_rooms_owner")
                    .table(Rooms::Table)
                    .to_owned(),
            )
            .await?;
        for column in [Added::NodeId, Added::Fence] {
            manager
                .alter_table(
                    Table::alter()
                        .table(RoomSnapshots::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        for column in [
            Added::OwnerNode,
            Added::OwnerIncarnation,
            Added::Fence,
            Added::Players,
            Added::OrphanedAt,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Rooms::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .drop_table(Table::drop().table(Nodes::Table).to_owned())
            .await
    }
}
