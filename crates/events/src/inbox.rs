//! The consumer side of exactly-once effects: an event id is recorded in the consumer's own
//! database, in the same transaction as the handler's effect, under a unique key.

use sea_orm::entity::prelude::*;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ConnectionTrait, Set};

/// One processed event, per consumer.
pub mod inbox_event {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "inbox_events")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub consumer: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub event_id: Uuid,
        pub event_type: String,
        pub processed_at_ms: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Records that `consumer` processed `event_id`. Returns `false` when it already had: the caller
/// must then skip its effect (and may commit or roll back; nothing changes either way).
/// Call it inside the transaction that applies the effect.
pub async fn try_claim<C: ConnectionTrait>(
    db: &C,
    consumer: &str,
    event_id: Uuid,
    event_type: &str,
) -> Result<bool, DbErr> {
    let row = inbox_event::ActiveModel {
        consumer: Set(consumer.to_string()),
        event_id: Set(event_id),
        event_type: Set(event_type.to_string()),
        processed_at_ms: Set(chrono::Utc::now().timestamp_millis()),
    };
    let inserted = inbox_event::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([inbox_event::Column::Consumer, inbox_event::Column::EventId])
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(inserted == 1)
}
