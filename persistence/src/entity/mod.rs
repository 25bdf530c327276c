//! sea-orm entities, one file per table. They mirror the `migrations` crate; the public API of the
//! crate uses the record types in the crate root instead, so that callers never see database
//! representations (signed integers, status strings).

pub mod match_results;
pub mod room_snapshots;
pub mod rooms;
pub mod settings;
pub mod webhook_outbox;
