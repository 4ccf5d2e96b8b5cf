//! Notification's tables and migrations. Only this service reads or writes them.

use jamaa_events::migrations::{CreateInboxEvents, CreateOutboxEvents};
use sea_orm_migration::prelude::*;

pub mod recipient {
    use sea_orm::entity::prelude::*;

    /// What the service knows of a person it may write to, from `CitizenRegistered`.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "recipients")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: Uuid,
        pub commune_id: Uuid,
        /// The preferred language's code: `ar`, `fr`, `en` or `tzm`.
        pub language: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod follower {
    use sea_orm::entity::prelude::*;

    /// Someone following a request (`RequestFollowed`) or a proposal (`ProposalFollowed`), by
    /// its id (UUIDs do not collide): they hear of its changes too.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "request_followers")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub request_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: Uuid,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod department_head {
    use sea_orm::entity::prelude::*;

    /// A department's head (from `StaffRoleChanged`): told when its requests breach a deadline.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "department_heads")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub department_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: Uuid,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod notification {
    use sea_orm::entity::prelude::*;

    /// A message in a person's inbox, written once from one event (unique per event and
    /// recipient).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "notifications")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub recipient_id: Uuid,
        pub commune_id: Option<Uuid>,
        /// The CloudEvent that caused it.
        pub event_id: Uuid,
        pub event_type: String,
        /// The resource it is about, e.g. `requests/0190…`.
        pub subject: String,
        pub title: String,
        pub body: String,
        /// The code of the language it was written in.
        pub language: String,
        pub created_at: DateTimeUtc,
        /// `None` while unread.
        pub read_at: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod delivery {
    use sea_orm::entity::prelude::*;

    /// One message to one address on one channel, from one event (unique per event, channel and
    /// address). `queued` → `sent`, or `retrying` (with `next_attempt_at`) → … → `failed`.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "deliveries")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub event_id: Uuid,
        /// `email`.
        pub channel: String,
        /// The person, when they have an account.
        pub recipient_id: Option<Uuid>,
        /// The channel's address: an e-mail address.
        pub address: String,
        pub subject: String,
        pub body: String,
        /// `queued`, `retrying`, `sent` or `failed`.
        pub status: String,
        pub attempts: i32,
        pub next_attempt_at: DateTimeUtc,
        /// A sender holds the row until then (several replicas send).
        pub locked_until: Option<DateTimeUtc>,
        pub last_error: Option<String>,
        pub created_at: DateTimeUtc,
        pub sent_at: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Notification's migrations, in order.
pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(CreateOutboxEvents),
            Box::new(CreateInboxEvents),
            Box::new(CreateNotificationTables),
            Box::new(CreateDeliveries),
            Box::new(CreateRequestFollowers),
            Box::new(CreateDepartmentHeads),
            Box::new(IndexRecipientsByCommune),
        ]
    }
}

struct CreateNotificationTables;

impl MigrationName for CreateNotificationTables {
    fn name(&self) -> &str {
        "m0001_000001_create_notification_tables"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateNotificationTables {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("recipients")
                    .col(ColumnDef::new("user_id").uuid().not_null().primary_key())
                    .col(ColumnDef::new("commune_id").uuid().not_null())
                    .col(ColumnDef::new("language").string_len(3).not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("notifications")
                    .col(ColumnDef::new("id").uuid().not_null().primary_key())
                    .col(ColumnDef::new("recipient_id").uuid().not_null())
                    .col(ColumnDef::new("commune_id").uuid().null())
                    .col(ColumnDef::new("event_id").uuid().not_null())
                    .col(ColumnDef::new("event_type").string().not_null())
                    .col(ColumnDef::new("subject").string().not_null())
                    .col(ColumnDef::new("title").text().not_null())
                    .col(ColumnDef::new("body").text().not_null())
                    .col(ColumnDef::new("language").string_len(3).not_null())
                    .col(
                        ColumnDef::new("created_at")
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ColumnDef::new("read_at").timestamp_with_time_zone().null())
                    .to_owned(),
            )
            .await?;
        // One notification per event and recipient, even if the inbox row were ever lost.
        manager
            .create_index(
                Index::create()
                    .name("notifications_event_recipient")
                    .table("notifications")
                    .col("event_id")
                    .col("recipient_id")
                    .unique()
                    .to_owned(),
            )
            .await?;
        // A person's inbox, newest first (ids are UUID v7).
        manager
            .create_index(
                Index::create()
                    .name("notifications_recipient_id")
                    .table("notifications")
                    .col("recipient_id")
                    .col("id")
                    .to_owned(),
            )
            .await
    }
}

struct CreateDeliveries;

impl MigrationName for CreateDeliveries {
    fn name(&self) -> &str {
        "m0002_000001_create_deliveries"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateDeliveries {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("deliveries")
                    .col(ColumnDef::new("id").uuid().not_null().primary_key())
                    .col(ColumnDef::new("event_id").uuid().not_null())
                    .col(ColumnDef::new("channel").string_len(16).not_null())
                    .col(ColumnDef::new("recipient_id").uuid().null())
                    .col(ColumnDef::new("address").string().not_null())
                    .col(ColumnDef::new("subject").string().not_null())
                    .col(ColumnDef::new("body").text().not_null())
                    .col(ColumnDef::new("status").string_len(16).not_null())
                    .col(ColumnDef::new("attempts").integer().not_null())
                    .col(
                        ColumnDef::new("next_attempt_at")
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new("locked_until")
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(ColumnDef::new("last_error").text().null())
                    .col(
                        ColumnDef::new("created_at")
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ColumnDef::new("sent_at").timestamp_with_time_zone().null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("deliveries_once")
                    .table("deliveries")
                    .col("event_id")
                    .col("channel")
                    .col("address")
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("deliveries_due")
                    .table("deliveries")
                    .col("status")
                    .col("next_attempt_at")
                    .to_owned(),
            )
            .await
    }
}

struct CreateRequestFollowers;

impl MigrationName for CreateRequestFollowers {
    fn name(&self) -> &str {
        "m0003_000001_create_request_followers"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateRequestFollowers {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("request_followers")
                    .col(ColumnDef::new("request_id").uuid().not_null())
                    .col(ColumnDef::new("user_id").uuid().not_null())
                    .primary_key(Index::create().col("request_id").col("user_id"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("request_followers_by_user")
                    .table("request_followers")
                    .col("user_id")
                    .to_owned(),
            )
            .await
    }
}

struct CreateDepartmentHeads;

impl MigrationName for CreateDepartmentHeads {
    fn name(&self) -> &str {
        "m0004_000001_create_department_heads"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateDepartmentHeads {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("department_heads")
                    .col(ColumnDef::new("department_id").uuid().not_null())
                    .col(ColumnDef::new("user_id").uuid().not_null())
                    .primary_key(Index::create().col("department_id").col("user_id"))
                    .to_owned(),
            )
            .await
    }
}

struct IndexRecipientsByCommune;

impl MigrationName for IndexRecipientsByCommune {
    fn name(&self) -> &str {
        "m0005_000001_index_recipients_by_commune"
    }
}

/// Fan-out to a commune's residents reads them in pages by (commune_id, user_id).
#[async_trait::async_trait]
impl MigrationTrait for IndexRecipientsByCommune {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name("recipients_by_commune")
                    .table("recipients")
                    .col("commune_id")
                    .col("user_id")
                    .to_owned(),
            )
            .await
    }
}
