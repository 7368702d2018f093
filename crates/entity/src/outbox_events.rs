//! `outbox_events`: Transactional outbox: events written with the change that causes them, published afterwards.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// A row of `outbox_events`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "outbox_events")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(column_type = "String(StringLen::N(100))")]
    pub topic: String,
    /// Venue the event concerns; no foreign key, events outlive rows.
    pub venue_id: Option<Uuid>,
    #[sea_orm(column_type = "JsonBinary")]
    pub payload: Json,
    pub created_at: DateTimeUtc,
    pub published_at: Option<DateTimeUtc>,
    /// The delivery sequence (the cursor clients resume from), given by the outbox relay in
    /// commit order; NULL until the relay has numbered the row.
    pub seq: Option<i64>,
}

/// Relations of `outbox_events`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
