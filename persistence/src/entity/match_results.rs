//! Entity of the `match_results` table.

use sea_orm::entity::prelude::*;

/// A row of `match_results`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "match_results")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false, column_type = "Text")]
    pub room_id: String,
    #[sea_orm(primary_key, auto_increment = false, column_type = "Text")]
    pub player_id: String,
    pub score: i64,
    pub rank: i32,
    pub finished_at: TimeDateTimeWithTimeZone,
}

/// `match_results` has no relations (no foreign keys, see the migrations crate).
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
