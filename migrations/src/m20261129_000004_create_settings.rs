//! `settings`: small key/value pairs the server must keep across restarts, such as the secret that
//! signs tickets and resume tokens (regenerating it would silently invalidate every token).

use sea_orm_migration::prelude::*;

/// Creates `settings`.
#[derive(DeriveMigrationName)]
pub struct Migration;

/// Identifiers of the `settings` table.
#[derive(DeriveIden)]
pub enum Settings {
    Table,
    Key,
    Value,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Settings::Table)
                    .col(
                        ColumnDef::new(Settings::Key)
                            .text()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Settings::Value).blob().not_null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Settings::Table).to_owned())
            .await
    }
}
