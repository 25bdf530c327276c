//! Entity of the `webhook_outbox` table.

use sea_orm::entity::prelude::*;

/// A row of `webhook_outbox`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_outbox")]
pub struct Model {
    /// A UUID as text.
    #[sea_orm(primary_key, auto_increment = false, column_type = "Text")]
    pub id: String,
    #[sea_orm(column_type = "Text")]
    pub event_type: String,
    /// The JSON body as sent.
    #[sea_orm(column_type = "Text")]
    pub payload: String,
    pub created_at: TimeDateTimeWithTimeZone,
    pub attempts: i32,
    pub next_attempt_at_ms: i64,
    /// `"pending"`, `"delivered"` or `"failed"`.
    #[sea_orm(column_type = "Text")]
    pub status: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub last_error: Option<String>,
    pub claimed_until_ms: i64,
    #[sea_orm(column_type = "Text", nullable)]
    pub claim_token: Option<String>,
    pub delivered_at_ms: Option<i64>,
}

/// `webhook_outbox` has no relations (no foreign keys, see the migrations crate).
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
