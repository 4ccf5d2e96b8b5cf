//! The service-request service's tables and migrations. Only this service reads or writes them.

use jamaa_db::add_column;
use jamaa_events::migrations::{CreateInboxEvents, CreateOutboxEvents};
use sea_orm_migration::prelude::*;

pub mod service {
    use sea_orm::entity::prelude::*;

    /// A service a commune offers in its catalogue.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "services")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub commune_id: Uuid,
        /// The commune's code, copied from the creating administrator's token, so the public
        /// `ListServices` can filter by it.
        pub commune_code: String,
        /// Unique in the commune.
        pub code: String,
        pub name_ar: String,
        pub name_fr: String,
        pub name_en: String,
        pub name_tzm: String,
        pub description_ar: String,
        pub description_fr: String,
        pub description_en: String,
        pub description_tzm: String,
        pub active: bool,
        pub created_at: DateTimeUtc,
        /// The current version (1 at creation).
        pub version: i32,
        /// The current version's definition: a `jamaa.servicerequest.v1.ServiceDefinition` in
        /// proto3 JSON (empty for services made before versions existed).
        pub definition: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod service_version {
    use sea_orm::entity::prelude::*;

    /// One version of a service's definition; requests point at the version they were filed
    /// under, so later edits never change what a filed request was asked.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "service_versions")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub service_id: Uuid,
        pub version: i32,
        /// A `jamaa.servicerequest.v1.ServiceDefinition` in proto3 JSON.
        pub definition: String,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod closed_day {
    use sea_orm::entity::prelude::*;

    /// A configured closed day: a moving national holiday (`commune_code` empty) or a
    /// commune's local closure.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "closed_days")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        /// Empty for national holidays.
        pub commune_code: String,
        pub commune_id: Option<Uuid>,
        pub date: Date,
        /// `moving_holiday` or `local_closure`.
        pub kind: String,
        pub name_ar: String,
        pub name_fr: String,
        pub name_en: String,
        pub name_tzm: String,
        pub created_by: Uuid,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod office {
    use sea_orm::entity::prelude::*;

    /// A commune's office where citizens come to the desk.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "offices")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub commune_id: Uuid,
        pub commune_code: String,
        pub name_ar: String,
        pub name_fr: String,
        pub name_en: String,
        pub name_tzm: String,
        pub address: String,
        /// The weekly opening intervals, as JSON (see [`crate::appointments::Interval`]).
        pub opening_hours: String,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod slot {
    use sea_orm::entity::prelude::*;

    /// A time at an office for one service, with a capacity; `booked` only moves by
    /// conditional updates (never above `capacity`).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "slots")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub commune_id: Uuid,
        pub office_id: Uuid,
        pub service_id: Uuid,
        pub start_at: DateTimeUtc,
        pub duration_minutes: i32,
        pub capacity: i32,
        pub booked: i32,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod appointment {
    use sea_orm::entity::prelude::*;

    /// A citizen's booking of a slot; its id is the client's (idempotency).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "appointments")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub commune_id: Uuid,
        pub slot_id: Uuid,
        pub office_id: Uuid,
        pub service_id: Uuid,
        pub citizen_id: Uuid,
        pub request_id: Option<Uuid>,
        pub start_at: DateTimeUtc,
        /// As in [`crate::appointments::status_to_db`].
        pub status: String,
        /// The start time a reminder went out for (once per start time).
        pub reminded_for: Option<DateTimeUtc>,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod citizen_profile {
    use sea_orm::entity::prelude::*;

    /// What service-request knows of a citizen, for equity statistics only.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "citizen_profiles")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: Uuid,
        /// `female`, `male` or `unknown`.
        pub gender: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod request_stat {
    use sea_orm::entity::prelude::*;

    /// The figures of one month of one service for one gender and area, recomputed by the
    /// statistics roller (see [`crate::statistics`]).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "request_stats")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub commune_id: Uuid,
        pub commune_code: String,
        pub service_id: Uuid,
        pub service_code: String,
        /// `YYYY-MM`, the month the requests were filed in.
        pub month: String,
        pub gender: String,
        pub area: String,
        pub received: i64,
        pub resolved: i64,
        pub rejected: i64,
        pub open: i64,
        pub with_deadline: i64,
        pub on_time: i64,
        pub rating_count: i64,
        pub rating_sum: i64,
        /// Answered requests by processing time in working days, as JSON `{days: count}`.
        pub days: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod stats_cursor {
    use sea_orm::entity::prelude::*;

    /// How far the statistics roller has read the requests (by `updated_at`).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "stats_cursors")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub name: String,
        pub watermark: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod request_follower {
    use sea_orm::entity::prelude::*;

    /// A citizen following someone else's request (unique per request and citizen).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "request_followers")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub request_id: Uuid,
        pub user_id: Uuid,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod attachment {
    use sea_orm::entity::prelude::*;

    /// A file attached to a request; its bytes are in the attachment store under
    /// `storage_key`.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "attachments")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub request_id: Uuid,
        pub file_name: String,
        pub content_type: String,
        pub size_bytes: i64,
        pub sha256: String,
        pub storage_key: String,
        pub uploaded_by: Uuid,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod response_template {
    use sea_orm::entity::prelude::*;

    /// A commune's standard public note for a status.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "response_templates")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub commune_id: Uuid,
        /// As in [`crate::domain::status_to_db`].
        pub status: String,
        pub service_id: Option<Uuid>,
        pub name: String,
        pub text_ar: String,
        pub text_fr: String,
        pub text_en: String,
        pub text_tzm: String,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod appeal {
    use sea_orm::entity::prelude::*;

    /// One step of an access-to-information request's appeal trail.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "appeals")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub request_id: Uuid,
        /// As in [`crate::appeals::level_to_db`].
        pub level: String,
        pub reason: String,
        pub filed_at: DateTimeUtc,
        pub decision: Option<String>,
        pub upheld: Option<bool>,
        pub decided_at: Option<DateTimeUtc>,
        pub decided_by: Option<Uuid>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod service_request {
    use sea_orm::entity::prelude::*;

    /// A citizen's request to their commune.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "requests")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub commune_id: Uuid,
        /// The citizen's account; the nil UUID for a walk-in without one (the column predates
        /// walk-ins and SQLite cannot drop its NOT NULL). Read it through
        /// [`crate::requests::account_of`], never directly.
        pub citizen_id: Uuid,
        /// The citizen's `request_id`: unique per citizen, it makes submissions idempotent.
        pub client_request_id: Uuid,
        pub service_id: Uuid,
        pub service_code: String,
        #[sea_orm(unique)]
        pub tracking_code: String,
        pub description: String,
        /// Attribute values by code, as a JSON object.
        pub attributes: String,
        pub latitude: Option<f64>,
        pub longitude: Option<f64>,
        /// As in [`crate::domain::status_to_db`].
        pub status: String,
        /// Raised by one at each change (optimistic concurrency; the etag).
        pub version: i32,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
        /// The service's version the request was filed under.
        pub service_version: i32,
        /// The service's kind then, as in [`crate::domain::kind_to_db`].
        pub service_kind: String,
        pub address: Option<String>,
        /// A walk-in filed at the desk: their name and phone, and the agent who filed.
        pub walk_in_name: Option<String>,
        pub walk_in_phone: Option<String>,
        pub filed_by: Option<Uuid>,
        /// SHA-256 (hex) of the receipt's secret.
        pub receipt_secret_hash: Option<String>,
        pub urgent: bool,
        /// The answer's due date in the commune's calendar; `None` without a deadline policy.
        pub due_date: Option<Date>,
        /// Set while the clock stands still (awaiting the citizen, when the policy says so).
        pub clock_stopped_on: Option<Date>,
        pub extended: bool,
        pub extension_reason: Option<String>,
        /// The due date `DeadlineApproaching` / `DeadlineBreached` was emitted for (each once
        /// per due date, whichever scheduler instance claims it first).
        pub approaching_notified_for: Option<Date>,
        pub breached_notified_for: Option<Date>,
        pub department_id: Option<Uuid>,
        pub assignee_id: Option<Uuid>,
        /// As in [`crate::domain::priority_to_db`].
        pub priority: String,
        pub rating: Option<i32>,
        pub rating_comment: Option<String>,
        pub rated_at: Option<DateTimeUtc>,
        /// When it last became RESOLVED (the reopening window counts from it).
        pub resolved_at: Option<DateTimeUtc>,
        /// When it was last answered (RESOLVED or REJECTED): statistics' processing time.
        pub answered_at: Option<DateTimeUtc>,
        /// The district or arrondissement given at filing.
        pub area: Option<String>,
        /// The filer's language code at filing (`ar`, `fr`, `en`, `tzm`): templates speak it.
        pub language: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod history_entry {
    use sea_orm::entity::prelude::*;

    /// One status change of a request; the first goes from `unspecified` to `submitted`.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "request_history")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub request_id: Uuid,
        pub from_status: String,
        pub to_status: String,
        /// The public note shown to the citizen.
        pub note: String,
        pub actor_id: Uuid,
        pub changed_at: DateTimeUtc,
        /// Staff only.
        pub internal_note: String,
        /// The legal ground of a refused access-to-information request.
        pub legal_ground: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod tracking_number {
    use sea_orm::entity::prelude::*;

    /// One allocated tracking sequence number: each submission inserts a row and uses its
    /// auto-increment id (a database sequence; no shared counter row is ever updated). Gaps are
    /// fine: a tracking code need not be gapless.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "tracking_numbers")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub issued_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// The service-request service's migrations, in order.
pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(CreateOutboxEvents),
            Box::new(CreateInboxEvents),
            Box::new(CreateServiceRequestTables),
            Box::new(AddVersionsDeadlinesAndDesk),
            Box::new(CreateAppointmentTables),
            Box::new(CreateStatisticsTables),
            Box::new(CreateRequestFollowers),
            Box::new(CreateAttachments),
            Box::new(CreateTemplatesAndAppeals),
        ]
    }
}

struct CreateServiceRequestTables;

impl MigrationName for CreateServiceRequestTables {
    fn name(&self) -> &str {
        "m0001_000001_create_service_request_tables"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateServiceRequestTables {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("services")
                    .col(ColumnDef::new("id").uuid().not_null().primary_key())
                    .col(ColumnDef::new("commune_id").uuid().not_null())
                    .col(ColumnDef::new("commune_code").string().not_null())
                    .col(ColumnDef::new("code").string_len(64).not_null())
                    .col(ColumnDef::new("name_ar").string().not_null())
                    .col(ColumnDef::new("name_fr").string().not_null())
                    .col(ColumnDef::new("name_en").string().not_null())
                    .col(ColumnDef::new("name_tzm").string().not_null())
                    .col(ColumnDef::new("description_ar").text().not_null())
                    .col(ColumnDef::new("description_fr").text().not_null())
                    .col(ColumnDef::new("description_en").text().not_null())
                    .col(ColumnDef::new("description_tzm").text().not_null())
                    .col(ColumnDef::new("active").boolean().not_null())
                    .col(
                        ColumnDef::new("created_at")
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("services_commune_code_unique")
                    .table("services")
                    .col("commune_id")
                    .col("code")
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("services_by_commune_code")
                    .table("services")
                    .col("commune_code")
                    .col("id")
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("requests")
                    .col(ColumnDef::new("id").uuid().not_null().primary_key())
                    .col(ColumnDef::new("commune_id").uuid().not_null())
                    .col(ColumnDef::new("citizen_id").uuid().not_null())
                    .col(ColumnDef::new("client_request_id").uuid().not_null())
                    .col(ColumnDef::new("service_id").uuid().not_null())
                    .col(ColumnDef::new("service_code").string_len(64).not_null())
                    .col(
                        ColumnDef::new("tracking_code")
                            .string_len(64)
                            .not_null()
                            .unique_key(),
                    )
                    .col(ColumnDef::new("description").text().not_null())
                    .col(ColumnDef::new("attributes").text().not_null())
                    .col(ColumnDef::new("latitude").double().null())
                    .col(ColumnDef::new("longitude").double().null())
                    .col(ColumnDef::new("status").string_len(32).not_null())
                    .col(ColumnDef::new("version").integer().not_null())
                    .col(
                        ColumnDef::new("created_at")
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new("updated_at")
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from("requests", "service_id")
                            .to("services", "id"),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("requests_citizen_client_request_unique")
                    .table("requests")
                    .col("citizen_id")
                    .col("client_request_id")
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("requests_by_commune")
                    .table("requests")
                    .col("commune_id")
                    .col("id")
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("requests_by_citizen")
                    .table("requests")
                    .col("citizen_id")
                    .col("id")
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("request_history")
                    .col(ColumnDef::new("id").uuid().not_null().primary_key())
                    .col(ColumnDef::new("request_id").uuid().not_null())
                    .col(ColumnDef::new("from_status").string_len(32).not_null())
                    .col(ColumnDef::new("to_status").string_len(32).not_null())
                    .col(ColumnDef::new("note").text().not_null())
                    .col(ColumnDef::new("actor_id").uuid().not_null())
                    .col(
                        ColumnDef::new("changed_at")
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from("request_history", "request_id")
                            .to("requests", "id"),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("request_history_by_request")
                    .table("request_history")
                    .col("request_id")
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("tracking_numbers")
                    .col(
                        ColumnDef::new("id")
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new("issued_at")
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await
    }
}

struct AddVersionsDeadlinesAndDesk;

impl MigrationName for AddVersionsDeadlinesAndDesk {
    fn name(&self) -> &str {
        "m0002_000001_add_versions_deadlines_and_desk"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for AddVersionsDeadlinesAndDesk {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        add_column(
            manager,
            "services",
            ColumnDef::new("version").integer().not_null().default(1),
        )
        .await?;
        add_column(
            manager,
            "services",
            ColumnDef::new("definition").text().not_null().default(""),
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table("service_versions")
                    .col(ColumnDef::new("id").uuid().not_null().primary_key())
                    .col(ColumnDef::new("service_id").uuid().not_null())
                    .col(ColumnDef::new("version").integer().not_null())
                    .col(ColumnDef::new("definition").text().not_null())
                    .col(
                        ColumnDef::new("created_at")
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from("service_versions", "service_id")
                            .to("services", "id"),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("service_versions_unique")
                    .table("service_versions")
                    .col("service_id")
                    .col("version")
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("closed_days")
                    .col(ColumnDef::new("id").uuid().not_null().primary_key())
                    .col(ColumnDef::new("commune_code").string_len(16).not_null())
                    .col(ColumnDef::new("commune_id").uuid().null())
                    .col(ColumnDef::new("date").date().not_null())
                    .col(ColumnDef::new("kind").string_len(32).not_null())
                    .col(ColumnDef::new("name_ar").string().not_null())
                    .col(ColumnDef::new("name_fr").string().not_null())
                    .col(ColumnDef::new("name_en").string().not_null())
                    .col(ColumnDef::new("name_tzm").string().not_null())
                    .col(ColumnDef::new("created_by").uuid().not_null())
                    .col(
                        ColumnDef::new("created_at")
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("closed_days_unique")
                    .table("closed_days")
                    .col("commune_code")
                    .col("date")
                    .unique()
                    .to_owned(),
            )
            .await?;
        let requests = "requests";
        add_column(
            manager,
            requests,
            ColumnDef::new("service_version")
                .integer()
                .not_null()
                .default(1),
        )
        .await?;
        add_column(
            manager,
            requests,
            ColumnDef::new("service_kind")
                .string_len(32)
                .not_null()
                .default(""),
        )
        .await?;
        add_column(manager, requests, ColumnDef::new("address").text().null()).await?;
        add_column(
            manager,
            requests,
            ColumnDef::new("walk_in_name").string().null(),
        )
        .await?;
        add_column(
            manager,
            requests,
            ColumnDef::new("walk_in_phone").string_len(32).null(),
        )
        .await?;
        add_column(manager, requests, ColumnDef::new("filed_by").uuid().null()).await?;
        add_column(
            manager,
            requests,
            ColumnDef::new("receipt_secret_hash").string_len(64).null(),
        )
        .await?;
        add_column(
            manager,
            requests,
            ColumnDef::new("urgent").boolean().not_null().default(false),
        )
        .await?;
        add_column(manager, requests, ColumnDef::new("due_date").date().null()).await?;
        add_column(
            manager,
            requests,
            ColumnDef::new("clock_stopped_on").date().null(),
        )
        .await?;
        add_column(
            manager,
            requests,
            ColumnDef::new("extended")
                .boolean()
                .not_null()
                .default(false),
        )
        .await?;
        add_column(
            manager,
            requests,
            ColumnDef::new("extension_reason").text().null(),
        )
        .await?;
        add_column(
            manager,
            requests,
            ColumnDef::new("approaching_notified_for").date().null(),
        )
        .await?;
        add_column(
            manager,
            requests,
            ColumnDef::new("breached_notified_for").date().null(),
        )
        .await?;
        add_column(
            manager,
            requests,
            ColumnDef::new("department_id").uuid().null(),
        )
        .await?;
        add_column(
            manager,
            requests,
            ColumnDef::new("assignee_id").uuid().null(),
        )
        .await?;
        add_column(
            manager,
            requests,
            ColumnDef::new("priority")
                .string_len(16)
                .not_null()
                .default("normal"),
        )
        .await?;
        add_column(manager, requests, ColumnDef::new("rating").integer().null()).await?;
        add_column(
            manager,
            requests,
            ColumnDef::new("rating_comment").text().null(),
        )
        .await?;
        add_column(
            manager,
            requests,
            ColumnDef::new("rated_at").timestamp_with_time_zone().null(),
        )
        .await?;
        add_column(
            manager,
            requests,
            ColumnDef::new("resolved_at")
                .timestamp_with_time_zone()
                .null(),
        )
        .await?;
        manager
            .create_index(
                Index::create()
                    .name("requests_by_due_date")
                    .table("requests")
                    .col("due_date")
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("requests_by_commune_department")
                    .table("requests")
                    .col("commune_id")
                    .col("department_id")
                    .col("id")
                    .to_owned(),
            )
            .await?;
        add_column(
            manager,
            "request_history",
            ColumnDef::new("internal_note")
                .text()
                .not_null()
                .default(""),
        )
        .await?;
        add_column(
            manager,
            "request_history",
            ColumnDef::new("legal_ground").text().not_null().default(""),
        )
        .await
    }
}

struct CreateAppointmentTables;

impl MigrationName for CreateAppointmentTables {
    fn name(&self) -> &str {
        "m0003_000001_create_appointment_tables"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateAppointmentTables {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("offices")
                    .col(ColumnDef::new("id").uuid().not_null().primary_key())
                    .col(ColumnDef::new("commune_id").uuid().not_null())
                    .col(ColumnDef::new("commune_code").string_len(16).not_null())
                    .col(ColumnDef::new("name_ar").string().not_null())
                    .col(ColumnDef::new("name_fr").string().not_null())
                    .col(ColumnDef::new("name_en").string().not_null())
                    .col(ColumnDef::new("name_tzm").string().not_null())
                    .col(ColumnDef::new("address").text().not_null())
                    .col(ColumnDef::new("opening_hours").text().not_null())
                    .col(
                        ColumnDef::new("created_at")
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("offices_by_commune_code")
                    .table("offices")
                    .col("commune_code")
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("slots")
                    .col(ColumnDef::new("id").uuid().not_null().primary_key())
                    .col(ColumnDef::new("commune_id").uuid().not_null())
                    .col(ColumnDef::new("office_id").uuid().not_null())
                    .col(ColumnDef::new("service_id").uuid().not_null())
                    .col(
                        ColumnDef::new("start_at")
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ColumnDef::new("duration_minutes").integer().not_null())
                    .col(ColumnDef::new("capacity").integer().not_null())
                    .col(ColumnDef::new("booked").integer().not_null())
                    .foreign_key(
                        ForeignKey::create()
                            .from("slots", "office_id")
                            .to("offices", "id"),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("slots_unique")
                    .table("slots")
                    .col("office_id")
                    .col("service_id")
                    .col("start_at")
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("appointments")
                    .col(ColumnDef::new("id").uuid().not_null().primary_key())
                    .col(ColumnDef::new("commune_id").uuid().not_null())
                    .col(ColumnDef::new("slot_id").uuid().not_null())
                    .col(ColumnDef::new("office_id").uuid().not_null())
                    .col(ColumnDef::new("service_id").uuid().not_null())
                    .col(ColumnDef::new("citizen_id").uuid().not_null())
                    .col(ColumnDef::new("request_id").uuid().null())
                    .col(
                        ColumnDef::new("start_at")
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ColumnDef::new("status").string_len(16).not_null())
                    .col(
                        ColumnDef::new("reminded_for")
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(
                        ColumnDef::new("created_at")
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new("updated_at")
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from("appointments", "slot_id")
                            .to("slots", "id"),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("appointments_by_citizen")
                    .table("appointments")
                    .col("citizen_id")
                    .col("start_at")
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("appointments_by_office")
                    .table("appointments")
                    .col("office_id")
                    .col("start_at")
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("appointments_by_start")
                    .table("appointments")
                    .col("status")
                    .col("start_at")
                    .to_owned(),
            )
            .await
    }
}

struct CreateStatisticsTables;

impl MigrationName for CreateStatisticsTables {
    fn name(&self) -> &str {
        "m0004_000001_create_statistics_tables"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateStatisticsTables {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        add_column(
            manager,
            "requests",
            ColumnDef::new("answered_at")
                .timestamp_with_time_zone()
                .null(),
        )
        .await?;
        add_column(
            manager,
            "requests",
            ColumnDef::new("area").string_len(64).null(),
        )
        .await?;
        manager
            .create_index(
                Index::create()
                    .name("requests_by_updated_at")
                    .table("requests")
                    .col("updated_at")
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("requests_by_service_created_at")
                    .table("requests")
                    .col("service_id")
                    .col("created_at")
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("citizen_profiles")
                    .col(ColumnDef::new("user_id").uuid().not_null().primary_key())
                    .col(ColumnDef::new("gender").string_len(16).not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("request_stats")
                    .col(ColumnDef::new("id").uuid().not_null().primary_key())
                    .col(ColumnDef::new("commune_id").uuid().not_null())
                    .col(ColumnDef::new("commune_code").string_len(16).not_null())
                    .col(ColumnDef::new("service_id").uuid().not_null())
                    .col(ColumnDef::new("service_code").string_len(64).not_null())
                    .col(ColumnDef::new("month").string_len(7).not_null())
                    .col(ColumnDef::new("gender").string_len(16).not_null())
                    .col(ColumnDef::new("area").string_len(64).not_null())
                    .col(ColumnDef::new("received").big_integer().not_null())
                    .col(ColumnDef::new("resolved").big_integer().not_null())
                    .col(ColumnDef::new("rejected").big_integer().not_null())
                    .col(ColumnDef::new("open").big_integer().not_null())
                    .col(ColumnDef::new("with_deadline").big_integer().not_null())
                    .col(ColumnDef::new("on_time").big_integer().not_null())
                    .col(ColumnDef::new("rating_count").big_integer().not_null())
                    .col(ColumnDef::new("rating_sum").big_integer().not_null())
                    .col(ColumnDef::new("days").text().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("request_stats_by_commune_month")
                    .table("request_stats")
                    .col("commune_code")
                    .col("month")
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("request_stats_by_service_month")
                    .table("request_stats")
                    .col("service_id")
                    .col("month")
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("stats_cursors")
                    .col(
                        ColumnDef::new("name")
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new("watermark")
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await
    }
}

struct CreateRequestFollowers;

impl MigrationName for CreateRequestFollowers {
    fn name(&self) -> &str {
        "m0005_000001_create_request_followers"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateRequestFollowers {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("request_followers")
                    .col(ColumnDef::new("id").uuid().not_null().primary_key())
                    .col(ColumnDef::new("request_id").uuid().not_null())
                    .col(ColumnDef::new("user_id").uuid().not_null())
                    .col(
                        ColumnDef::new("created_at")
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from("request_followers", "request_id")
                            .to("requests", "id"),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("request_followers_unique")
                    .table("request_followers")
                    .col("request_id")
                    .col("user_id")
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("requests_by_service_latitude")
                    .table("requests")
                    .col("service_id")
                    .col("latitude")
                    .to_owned(),
            )
            .await
    }
}

struct CreateAttachments;

impl MigrationName for CreateAttachments {
    fn name(&self) -> &str {
        "m0006_000001_create_attachments"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateAttachments {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("attachments")
                    .col(ColumnDef::new("id").uuid().not_null().primary_key())
                    .col(ColumnDef::new("request_id").uuid().not_null())
                    .col(ColumnDef::new("file_name").string().not_null())
                    .col(ColumnDef::new("content_type").string_len(64).not_null())
                    .col(ColumnDef::new("size_bytes").big_integer().not_null())
                    .col(ColumnDef::new("sha256").string_len(64).not_null())
                    .col(ColumnDef::new("storage_key").string().not_null())
                    .col(ColumnDef::new("uploaded_by").uuid().not_null())
                    .col(
                        ColumnDef::new("created_at")
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from("attachments", "request_id")
                            .to("requests", "id"),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("attachments_by_request")
                    .table("attachments")
                    .col("request_id")
                    .to_owned(),
            )
            .await
    }
}

struct CreateTemplatesAndAppeals;

impl MigrationName for CreateTemplatesAndAppeals {
    fn name(&self) -> &str {
        "m0007_000001_create_templates_and_appeals"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateTemplatesAndAppeals {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        add_column(
            manager,
            "requests",
            ColumnDef::new("language")
                .string_len(8)
                .not_null()
                .default("ar"),
        )
        .await?;
        manager
            .create_table(
                Table::create()
                    .table("response_templates")
                    .col(ColumnDef::new("id").uuid().not_null().primary_key())
                    .col(ColumnDef::new("commune_id").uuid().not_null())
                    .col(ColumnDef::new("status").string_len(32).not_null())
                    .col(ColumnDef::new("service_id").uuid().null())
                    .col(ColumnDef::new("name").string().not_null())
                    .col(ColumnDef::new("text_ar").text().not_null())
                    .col(ColumnDef::new("text_fr").text().not_null())
                    .col(ColumnDef::new("text_en").text().not_null())
                    .col(ColumnDef::new("text_tzm").text().not_null())
                    .col(
                        ColumnDef::new("created_at")
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("response_templates_by_commune")
                    .table("response_templates")
                    .col("commune_id")
                    .col("status")
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("appeals")
                    .col(ColumnDef::new("id").uuid().not_null().primary_key())
                    .col(ColumnDef::new("request_id").uuid().not_null())
                    .col(ColumnDef::new("level").string_len(32).not_null())
                    .col(ColumnDef::new("reason").text().not_null())
                    .col(
                        ColumnDef::new("filed_at")
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ColumnDef::new("decision").text().null())
                    .col(ColumnDef::new("upheld").boolean().null())
                    .col(
                        ColumnDef::new("decided_at")
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(ColumnDef::new("decided_by").uuid().null())
                    .foreign_key(
                        ForeignKey::create()
                            .from("appeals", "request_id")
                            .to("requests", "id"),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("appeals_once_per_level")
                    .table("appeals")
                    .col("request_id")
                    .col("level")
                    .unique()
                    .to_owned(),
            )
            .await
    }
}
