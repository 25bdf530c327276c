//! `webhook_outbox`: webhook events waiting to be delivered, written in the same transaction as the
//! change they report (the transactional outbox), so that an event exists exactly when its change
//! was committed, and survives restarts and crashes until it is delivered.
//!
//! Scheduling times are unix milliseconds in big integers rather than timestamps: the sender
//! compares them in `WHERE` clauses, and integers compare the same on both backends (SQLite keeps
//! timestamps as text).

use sea_orm_migration::prelude::*;

/// Creates `webhook_outbox` and the index the sender claims due events through.
#[derive(DeriveMigrationName)]
pub struct Migration;

/// Identifiers of the `webhook_outbox` table.
#[derive(DeriveIden)]
pub enum WebhookOutbox {
    Table,
    /// The event id (a UUID as text), also the body's `id`: kept across retries.
    Id,
    /// `match.finished`, `room.closed`.
    EventType,
    /// The complete JSON body that is POSTed, so every attempt sends the same bytes.
    Payload,
    CreatedAt,
    /// Delivery attempts made so far.
    Attempts,
    /// Not attempted before this (unix ms); the retry backoff moves it forward.
    NextAttemptAtMs,
    /// `pending`, `delivered` or `failed`.
    Status,
    LastError,
    /// A node that claimed the event holds it until this (unix ms); no other node sends it before.
    ClaimedUntilMs,
    /// Which claim holds it (one per claiming round), so that only the holder records the outcome.
    ClaimToken,
    /// When it was delivered (unix ms); delivered rows are deleted some time after.
    DeliveredAtMs,
}

/// Name of the index that serves "pending events that are due".
pub const OUTBOX_DUE_INDEX: &str = "idx_webhook_outbox_status_next_attempt";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use WebhookOutbox as W;
        manager
            .create_table(
                Table::create()
                    .table(W::Table)
                    .col(ColumnDef::new(W::Id).text().not_null().primary_key())
                    .col(ColumnDef::new(W::EventType).text().not_null())
                    .col(ColumnDef::new(W::Payload).text().not_null())
                    .col(
                        ColumnDef::new(W::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ColumnDef::new(W::Attempts).integer().not_null().default(0))
                    .col(ColumnDef::new(W::NextAttemptAtMs).big_integer().not_null())
                    .col(
                        ColumnDef::new(W::Status)
                            .text()
                            .not_null()
                            .default("pending"),
                    )
                    .col(ColumnDef::new(W::LastError).text().null())
                    .col(
                        ColumnDef::new(W::ClaimedUntilMs)
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .col(ColumnDef::new(W::ClaimToken).text().null())
                    .col(ColumnDef::new(W::DeliveredAtMs).big_integer().null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(OUTBOX_DUE_INDEX)
                    .table(W::Table)
                    .col(W::Status)
                    .col(W::NextAttemptAtMs)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(WebhookOutbox::Table).to_owned())
            .await
    }
}
