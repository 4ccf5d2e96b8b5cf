//! The service-request service's tables and migrations. Only this service reads or writes them.

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
        /// Raised by one at each change (optimistic concurrency).
        pub version: i32,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
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
