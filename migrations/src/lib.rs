//! Schema migrations for Skirmish.
//!
//! The [`Migrator`] lists every migration in order; each one has an `up` and a `down` so that a
//! deployment can be rolled back one step at a time. The same migrations run on PostgreSQL and
//! SQLite: they only use column types and statements both backends understand (text, big integers,
//! blobs, timestamps with time zone), and no foreign keys, so that the persistence actor can write
//! its tables in any order within a batch.

pub use sea_orm_migration::prelude::*;

mod m20261129_000001_create_rooms;
mod m20261129_000002_create_room_snapshots;
mod m20261129_000003_create_match_results;
mod m20261129_000004_create_settings;
mod m20261202_000005_create_webhook_outbox;
mod m20261202_000006_cluster;

pub use m20261129_000001_create_rooms::Rooms;
pub use m20261129_000002_create_room_snapshots::RoomSnapshots;
pub use m20261129_000003_create_match_results::MatchResults;
pub use m20261129_000004_create_settings::Settings;
pub use m20261202_000005_create_webhook_outbox::{OUTBOX_DUE_INDEX, WebhookOutbox};
pub use m20261202_000006_cluster::Nodes;

/// The tables the migrations create, in creation order (used by tests and the CLI's `status`).
pub const TABLES: [&str; 6] = [
    "rooms",
    "room_snapshots",
    "match_results",
    "settings",
    "webhook_outbox",
    "nodes",
];

/// Every migration of the Skirmish schema, oldest first.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261129_000001_create_rooms::Migration),
            Box::new(m20261129_000002_create_room_snapshots::Migration),
            Box::new(m20261129_000003_create_match_results::Migration),
            Box::new(m20261129_000004_create_settings::Migration),
            Box::new(m20261202_000005_create_webhook_outbox::Migration),
            Box::new(m20261202_000006_cluster::Migration),
        ]
    }
}
