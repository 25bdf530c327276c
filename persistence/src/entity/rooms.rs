//! Entity of the `rooms` table.

use sea_orm::entity::prelude::*;

/// A row of `rooms`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "rooms")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false, column_type = "Text")]
    pub id: String,
    #[sea_orm(column_type = "Text")]
    pub mode: String,
    /// JSON text.
    #[sea_orm(column_type = "Text")]
    pub config: String,
    /// `"open"` or `"closed"`.
    #[sea_orm(column_type = "Text")]
    pub status: String,
    pub created_at: TimeDateTimeWithTimeZone,
    pub closed_at: Option<TimeDateTimeWithTimeZone>,
    /// Cluster mode: the owning node and its incarnation (none: no live owner, or a single node).
    #[sea_orm(column_type = "Text", nullable)]
    pub owner_node: Option<String>,
    pub owner_incarnation: Option<i64>,
    /// The fencing number: bumped each time the room changes hands.
    pub fence: i64,
    /// Held slots as the owner last published them (cluster listing and placement).
    pub players: i64,
    /// When the owner released the room (drain), for the handoff's duration.
    pub orphaned_at: Option<TimeDateTimeWithTimeZone>,
}

/// `rooms` has no relations (no foreign keys, see the migrations crate).
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
