//! `rooms`: one row per room, upserted whenever its status changes, so that a restarted server
//! knows which rooms were open.

use sea_orm_migration::prelude::*;

/// Creates `rooms`.
#[derive(DeriveMigrationName)]
pub struct Migration;

/// Identifiers of the `rooms` table.
#[derive(DeriveIden)]
pub enum Rooms {
    Table,
    Id,
    Mode,
    /// The room's configuration as JSON text (text rather than `json` so both backends agree).
    Config,
    /// `"open"` or `"closed"`.
    Status,
    CreatedAt,
    ClosedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Rooms::Table)
                    .col(ColumnDef::new(Rooms::Id).text().not_null().primary_key())
                    .col(ColumnDef::new(Rooms::Mode).text().not_null())
                    .col(ColumnDef::new(Rooms::Config).text().not_null())
                    .col(ColumnDef::new(Rooms::Status).text().not_null())
                    .col(
                        ColumnDef::new(Rooms::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Rooms::ClosedAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .to_owned(),
            )
            .await?;
        // Restart asks for the open rooms; a partial index would be PostgreSQL-only, a plain one
        // on status serves both backends.
        manager
            .create_index(
                Index::create()
                    .name("idx_rooms_status")
                    .table(Rooms::Table)
                    .col(Rooms::Status)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Rooms::Table).to_owned())
            .await
    }
}
