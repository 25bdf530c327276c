//! Entity of the `room_snapshots` table.

use sea_orm::entity::prelude::*;

/// A row of `room_snapshots`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "room_snapshots")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(column_type = "Text")]
    pub room_id: String,
    pub tick: i64,
    /// MessagePack bytes of the room's state.
    #[sea_orm(column_type = "Blob")]
    pub state: Vec<u8>,
    pub created_at: TimeDateTimeWithTimeZone,
    /// The node that wrote it (cluster mode).
    #[sea_orm(column_type = "Text", nullable)]
    pub node_id: Option<String>,
    /// The room's fencing number when it was written.
    pub fence: i64,
}

/// `room_snapshots` has no relations (no foreign keys, see the migrations crate).
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
