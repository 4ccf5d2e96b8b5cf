//! The tables every service that emits or consumes events needs. A service lists these in its
//! own migrator, before its own migrations.

use sea_orm_migration::prelude::*;

/// Creates `outbox_events`.
pub struct CreateOutboxEvents;

impl MigrationName for CreateOutboxEvents {
    fn name(&self) -> &str {
        "m0000_000001_create_outbox_events"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateOutboxEvents {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("outbox_events")
                    .if_not_exists()
                    .col(ColumnDef::new("id").uuid().not_null().primary_key())
                    .col(ColumnDef::new("event_type").string().not_null())
                    .col(ColumnDef::new("source").string().not_null())
                    .col(ColumnDef::new("subject").string().not_null())
                    .col(ColumnDef::new("occurred_at_ms").big_integer().not_null())
                    .col(ColumnDef::new("payload").binary().not_null())
                    .col(ColumnDef::new("trace_headers").text().not_null())
                    .col(ColumnDef::new("attempts").integer().not_null().default(0))
                    .col(
                        ColumnDef::new("next_attempt_at_ms")
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new("locked_until_ms")
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .col(ColumnDef::new("sent_at_ms").big_integer().null())
                    .col(ColumnDef::new("last_error").text().null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("outbox_events_unsent")
                    .table("outbox_events")
                    .col("sent_at_ms")
                    .col("next_attempt_at_ms")
                    .to_owned(),
            )
            .await
    }
}

/// Creates `inbox_events`.
pub struct CreateInboxEvents;

impl MigrationName for CreateInboxEvents {
    fn name(&self) -> &str {
        "m0000_000002_create_inbox_events"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateInboxEvents {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("inbox_events")
                    .if_not_exists()
                    .col(ColumnDef::new("consumer").string().not_null())
                    .col(ColumnDef::new("event_id").uuid().not_null())
                    .col(ColumnDef::new("event_type").string().not_null())
                    .col(ColumnDef::new("processed_at_ms").big_integer().not_null())
                    .primary_key(Index::create().col("consumer").col("event_id"))
                    .to_owned(),
            )
            .await
    }
}
