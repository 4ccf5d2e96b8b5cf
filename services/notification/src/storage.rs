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
        /// A resident of `commune_id` (from `CitizenRegistered`), whom "all residents"
        /// announcements reach; staff who only chose their language here are not.
        pub resident: bool,
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
    /// address). `queued` → `sent` → `delivered`, or `retrying` (with `next_attempt_at`) → … →
    /// `failed`; `digest` (held for the daily digest) → `digested`. An empty `address` is the
    /// recipient's verified address on the channel, looked up when it is sent (the event
    /// consumer never calls another service).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "deliveries")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub event_id: Uuid,
        /// `email` or `sms`.
        pub channel: String,
        /// The person, when they have an account.
        pub recipient_id: Option<Uuid>,
        /// The channel's address (an e-mail address, an E.164 phone number); empty: the
        /// recipient's, looked up when sending.
        pub address: String,
        pub subject: String,
        pub body: String,
        /// `queued`, `retrying`, `sent`, `delivered`, `failed`, `digest` or `digested`.
        pub status: String,
        pub attempts: i32,
        pub next_attempt_at: DateTimeUtc,
        /// A sender holds the row until then (several replicas send).
        pub locked_until: Option<DateTimeUtc>,
        pub last_error: Option<String>,
        pub created_at: DateTimeUtc,
        pub sent_at: Option<DateTimeUtc>,
        /// Security and legal deadlines: sent whatever the preferences and quiet hours say.
        pub critical: bool,
        /// The topic's code (`requests`, `participation`, `announcements`, `security`).
        pub topic: Option<String>,
        /// The code of the language of `subject` and `body`.
        pub language: Option<String>,
        pub event_type: Option<String>,
        pub commune_id: Option<Uuid>,
        /// The provider's id of the message (SMS), matched by its delivery receipt.
        pub provider_message_id: Option<String>,
        /// When the provider reported it delivered.
        pub delivered_at: Option<DateTimeUtc>,
        /// The address it was sent to, masked (the history shows it; the full one stays at
        /// identity).
        pub sent_to: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod commune {
    use sea_orm::entity::prelude::*;

    /// What the service knows of a commune, from `CommuneCreated` and `CommuneUpdated`.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "communes")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub commune_id: Uuid,
        pub code: String,
        /// IANA time zone: quiet hours and digests are in it.
        pub time_zone: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod preference {
    use sea_orm::entity::prelude::*;

    /// A person's preferences, once they change one (defaults until then; see
    /// `crate::preferences`).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "preferences")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: Uuid,
        /// JSON: topic code → {channels, daily_digest}.
        pub topics: String,
        /// Minutes after local midnight; both set or neither.
        pub quiet_start: Option<i32>,
        pub quiet_end: Option<i32>,
        pub updated_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod audience_member {
    use sea_orm::entity::prelude::*;

    /// A resident following an area or an announcement topic of their commune (`kind` is
    /// `area` or `topic`): announcements to that audience reach them.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "audience_members")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub commune_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub kind: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub value: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: Uuid,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod template_override {
    use sea_orm::entity::prelude::*;

    /// A commune's own wording of one kind of message in one language.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "template_overrides")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub commune_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub kind: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub language: String,
        pub title: String,
        pub body: String,
        pub updated_by: Uuid,
        pub updated_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod announcement {
    use sea_orm::entity::prelude::*;

    /// A commune's announcement. `scheduled` → `published` (fanned out once, by whichever
    /// replica claims it) or `cancelled`.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "announcements")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub commune_id: Uuid,
        /// JSON of a `jamaa.type.v1.LocalizedText`.
        pub title: String,
        /// JSON of a `jamaa.type.v1.LocalizedText`.
        pub body: String,
        /// `all_residents`, `area` or `topic`.
        pub audience_kind: String,
        pub audience_value: String,
        /// Comma-separated channel names besides the inbox (`email`, `sms`).
        pub channels: String,
        pub publish_at: DateTimeUtc,
        /// `scheduled`, `publishing`, `published` or `cancelled`.
        pub state: String,
        pub recipient_count: i64,
        pub created_by: Uuid,
        pub created_at: DateTimeUtc,
        pub published_at: Option<DateTimeUtc>,
        /// The client's idempotency key.
        pub request_id: Option<Uuid>,
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
            Box::new(CreateChannelsPreferencesAndAnnouncements),
            Box::new(MarkResidents),
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

struct MarkResidents;

impl MigrationName for MarkResidents {
    fn name(&self) -> &str {
        "m0007_000001_mark_residents"
    }
}

/// `recipients.resident`: the rows a staff member's language choice adds are not residents.
/// Rows before it came from `CitizenRegistered` or from anyone's language choice; they are taken
/// as residents (a staff member who chose a language before it needs a fresh choice to drop out).
#[async_trait::async_trait]
impl MigrationTrait for MarkResidents {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        jamaa_db::add_column(
            manager,
            "recipients",
            ColumnDef::new("resident")
                .boolean()
                .not_null()
                .default(true),
        )
        .await
    }
}

struct CreateChannelsPreferencesAndAnnouncements;

impl MigrationName for CreateChannelsPreferencesAndAnnouncements {
    fn name(&self) -> &str {
        "m0006_000001_create_channels_preferences_and_announcements"
    }
}

/// SMS and delivery receipts, criticality, preferences, audiences, communes' time zones,
/// template overrides and announcements.
#[async_trait::async_trait]
impl MigrationTrait for CreateChannelsPreferencesAndAnnouncements {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use jamaa_db::add_column;
        // Deliveries whose address is looked up when sending have none yet: one per event,
        // channel, address AND person.
        manager
            .drop_index(
                Index::drop()
                    .name("deliveries_once")
                    .table("deliveries")
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("deliveries_once_per_person")
                    .table("deliveries")
                    .col("event_id")
                    .col("channel")
                    .col("address")
                    .col("recipient_id")
                    .unique()
                    .to_owned(),
            )
            .await?;
        add_column(
            manager,
            "deliveries",
            ColumnDef::new("critical")
                .boolean()
                .not_null()
                .default(false),
        )
        .await?;
        add_column(
            manager,
            "deliveries",
            ColumnDef::new("topic").string_len(16).null(),
        )
        .await?;
        add_column(
            manager,
            "deliveries",
            ColumnDef::new("language").string_len(3).null(),
        )
        .await?;
        add_column(
            manager,
            "deliveries",
            ColumnDef::new("event_type").string().null(),
        )
        .await?;
        add_column(
            manager,
            "deliveries",
            ColumnDef::new("commune_id").uuid().null(),
        )
        .await?;
        add_column(
            manager,
            "deliveries",
            ColumnDef::new("provider_message_id").string().null(),
        )
        .await?;
        add_column(
            manager,
            "deliveries",
            ColumnDef::new("sent_to").string().null(),
        )
        .await?;
        add_column(
            manager,
            "deliveries",
            ColumnDef::new("delivered_at")
                .timestamp_with_time_zone()
                .null(),
        )
        .await?;
        manager
            .create_index(
                Index::create()
                    .name("deliveries_by_provider_id")
                    .table("deliveries")
                    .col("provider_message_id")
                    .to_owned(),
            )
            .await?;
        // A person's delivery history, newest first (ids are UUID v7), and their recent sends
        // (per-recipient rate limits).
        manager
            .create_index(
                Index::create()
                    .name("deliveries_by_recipient")
                    .table("deliveries")
                    .col("recipient_id")
                    .col("id")
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("deliveries_sent_by_channel")
                    .table("deliveries")
                    .col("channel")
                    .col("sent_at")
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("communes")
                    .col(ColumnDef::new("commune_id").uuid().not_null().primary_key())
                    .col(
                        ColumnDef::new("code")
                            .string_len(16)
                            .not_null()
                            .unique_key(),
                    )
                    .col(ColumnDef::new("time_zone").string_len(64).not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("preferences")
                    .col(ColumnDef::new("user_id").uuid().not_null().primary_key())
                    .col(ColumnDef::new("topics").text().not_null())
                    .col(ColumnDef::new("quiet_start").integer().null())
                    .col(ColumnDef::new("quiet_end").integer().null())
                    .col(
                        ColumnDef::new("updated_at")
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("audience_members")
                    .col(ColumnDef::new("commune_id").uuid().not_null())
                    .col(ColumnDef::new("kind").string_len(8).not_null())
                    .col(ColumnDef::new("value").string_len(64).not_null())
                    .col(ColumnDef::new("user_id").uuid().not_null())
                    .primary_key(
                        Index::create()
                            .col("commune_id")
                            .col("kind")
                            .col("value")
                            .col("user_id"),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("audience_members_by_user")
                    .table("audience_members")
                    .col("user_id")
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("template_overrides")
                    .col(ColumnDef::new("commune_id").uuid().not_null())
                    .col(ColumnDef::new("kind").string_len(48).not_null())
                    .col(ColumnDef::new("language").string_len(3).not_null())
                    .col(ColumnDef::new("title").text().not_null())
                    .col(ColumnDef::new("body").text().not_null())
                    .col(ColumnDef::new("updated_by").uuid().not_null())
                    .col(
                        ColumnDef::new("updated_at")
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .primary_key(
                        Index::create()
                            .col("commune_id")
                            .col("kind")
                            .col("language"),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("announcements")
                    .col(ColumnDef::new("id").uuid().not_null().primary_key())
                    .col(ColumnDef::new("commune_id").uuid().not_null())
                    .col(ColumnDef::new("title").text().not_null())
                    .col(ColumnDef::new("body").text().not_null())
                    .col(ColumnDef::new("audience_kind").string_len(16).not_null())
                    .col(ColumnDef::new("audience_value").string_len(64).not_null())
                    .col(ColumnDef::new("channels").string_len(32).not_null())
                    .col(
                        ColumnDef::new("publish_at")
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ColumnDef::new("state").string_len(16).not_null())
                    .col(ColumnDef::new("recipient_count").big_integer().not_null())
                    .col(ColumnDef::new("created_by").uuid().not_null())
                    .col(
                        ColumnDef::new("created_at")
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new("published_at")
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(ColumnDef::new("request_id").uuid().null().unique_key())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("announcements_by_commune")
                    .table("announcements")
                    .col("commune_id")
                    .col("id")
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("announcements_due")
                    .table("announcements")
                    .col("state")
                    .col("publish_at")
                    .to_owned(),
            )
            .await
    }
}
