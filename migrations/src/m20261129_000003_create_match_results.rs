//! `match_results`: one row per player of a finished match, upserted so that persisting the same
//! result twice (a retry after a lost acknowledgement) is harmless.

use sea_orm_migration::prelude::*;

/// Creates `match_results` with its `(room_id, player_id)` primary key.
#[derive(DeriveMigrationName)]
pub struct Migration;

/// Identifiers of the `match_results` table.
#[derive(DeriveIden)]
pub enum MatchResults {
    Table,
    RoomId,
    PlayerId,
    Score,
    Rank,
    FinishedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(MatchResults::Table)
                    .col(ColumnDef::new(MatchResults::RoomId).text().not_null())
                    .col(ColumnDef::new(MatchResults::PlayerId).text().not_null())
                    .col(ColumnDef::new(MatchResults::Score).big_integer().not_null())
                    .col(ColumnDef::new(MatchResults::Rank).integer().not_null())
                    .col(
                        ColumnDef::new(MatchResults::FinishedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    // The primary key's leading column makes "results of a room" an index scan.
                    .primary_key(
                        Index::create()
                            .name("pk_match_results")
                            .col(MatchResults::RoomId)
                            .col(MatchResults::PlayerId),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(MatchResults::Table).to_owned())
            .await
    }
}
