//! Participation's tables and migrations. Only this service reads or writes them.
//!
//! There is deliberately no signature counter column: every signer would update that one row
//! (a hot row, see performance-notes.md). A petition's signature count is `COUNT(*)` of its
//! rows in `petition_signatures`, which the primary key (petition_id, citizen_id) indexes.

use jamaa_db::add_column;
use jamaa_events::migrations::{CreateInboxEvents, CreateOutboxEvents};
use sea_orm_migration::prelude::*;

pub mod petition {
    use sea_orm::entity::prelude::*;

    /// A petition to the communal council.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "petitions")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub commune_id: Uuid,
        /// The citizen who opened it (the petitioners' agent).
        pub author_id: Uuid,
        /// The author's `request_id`; unique per author (idempotent creation).
        pub client_request_id: Uuid,
        pub title: String,
        pub body: String,
        /// Signatures needed, fixed when the petition was opened.
        pub signature_threshold: i32,
        /// [`crate::domain::PetitionStatus::as_str`].
        pub status: String,
        pub created_at: DateTimeUtc,
        /// When it reached its threshold; `None` before. Set once.
        pub threshold_reached_at: Option<DateTimeUtc>,
        /// Signatures are taken until then (`None` for drafts).
        pub collect_until: Option<DateTimeUtc>,
        pub submitted_at: Option<DateTimeUtc>,
        /// Three months after submission (law 113-14, article 123).
        pub decision_due_at: Option<DateTimeUtc>,
        pub session: Option<String>,
        pub inadmissible_reasons: Option<String>,
        pub decision: Option<String>,
        pub decided_at: Option<DateTimeUtc>,
        /// Whether `PetitionDecisionOverdue` went out (once).
        pub overdue_notified: bool,
        /// The association that filed it through its representative (the author), if any.
        pub association_id: Option<Uuid>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod petition_signature {
    use sea_orm::entity::prelude::*;

    /// One citizen's signature of one petition.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "petition_signatures")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub petition_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub citizen_id: Uuid,
        pub signed_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod signatory_list_read {
    use sea_orm::entity::prelude::*;

    /// Someone read a petition's signatories (the list is never public; every reading is kept).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "signatory_list_reads")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub petition_id: Uuid,
        pub reader_id: Uuid,
        pub read_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod proposal {
    use sea_orm::entity::prelude::*;

    /// A citizen's idea for the commune.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "proposals")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub commune_id: Uuid,
        pub author_id: Uuid,
        pub client_request_id: Uuid,
        pub title: String,
        pub body: String,
        pub category: String,
        pub latitude: Option<f64>,
        pub longitude: Option<f64>,
        /// As in [`crate::proposals::status_to_db`].
        pub status: String,
        pub support_threshold: i32,
        pub answer: Option<String>,
        pub answered_at: Option<DateTimeUtc>,
        pub threshold_reached_at: Option<DateTimeUtc>,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod proposal_support {
    use sea_orm::entity::prelude::*;

    /// One resident's support of one proposal.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "proposal_supports")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub proposal_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub citizen_id: Uuid,
        pub supported_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod proposal_follower {
    use sea_orm::entity::prelude::*;

    /// Someone following a proposal.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "proposal_followers")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub proposal_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: Uuid,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod consultation {
    use sea_orm::entity::prelude::*;

    /// A consultation or survey.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "consultations")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub commune_id: Uuid,
        pub title: String,
        pub description: String,
        /// The questions, as proto3 JSON of `jamaa.participation.v1.Question`s.
        pub questions: String,
        pub open_at: DateTimeUtc,
        pub close_at: DateTimeUtc,
        /// The lowest assurance level that may respond (`registered`, …).
        pub min_assurance: String,
        pub free_text_public: bool,
        pub created_by: Uuid,
        pub created_at: DateTimeUtc,
        /// Whether `ConsultationOpened`, then `ConsultationClosed`, went out (once each).
        pub opened_notified: bool,
        pub closed_notified: bool,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod consultation_response {
    use sea_orm::entity::prelude::*;

    /// One citizen's response (one per citizen and consultation).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "consultation_responses")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub consultation_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub citizen_id: Uuid,
        /// The answers, as proto3 JSON of `jamaa.participation.v1.Answer`s.
        pub answers: String,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod comment {
    use sea_orm::entity::prelude::*;

    /// A comment on a petition, proposal or consultation.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "comments")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub commune_id: Uuid,
        /// `petition`, `proposal` or `consultation`.
        pub subject_kind: String,
        pub subject_id: Uuid,
        pub author_id: Uuid,
        pub body: String,
        /// As in [`crate::comments::status_to_db`].
        pub status: String,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod comment_report {
    use sea_orm::entity::prelude::*;

    /// One person's report of one comment.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "comment_reports")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub comment_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub reporter_id: Uuid,
        pub reported_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod moderation_action {
    use sea_orm::entity::prelude::*;

    /// A moderator's decision on a comment (insert-only: the moderation log).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "moderation_actions")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub comment_id: Uuid,
        pub moderator_id: Uuid,
        /// `hide` or `restore`.
        pub action: String,
        pub reason: String,
        pub acted_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod work_result {
    use sea_orm::entity::prelude::*;

    /// What the commune does about a petition or proposal.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "results")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub commune_id: Uuid,
        /// `petition` or `proposal`.
        pub subject_kind: String,
        pub subject_id: Uuid,
        pub subject_author_id: Uuid,
        pub title: String,
        pub description: String,
        /// 0 to 100.
        pub progress: i32,
        /// As in [`crate::results::status_to_db`].
        pub status: String,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod result_update {
    use sea_orm::entity::prelude::*;

    /// One dated update of a result (insert-only).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "result_updates")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub result_id: Uuid,
        pub progress: i32,
        pub status: String,
        pub note: String,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod participation_setting {
    use sea_orm::entity::prelude::*;

    /// A commune's own participation rules (see [`crate::commune_settings`]).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "participation_settings")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub commune_id: Uuid,
        /// As [`jamaa_auth::AssuranceLevel::as_str`].
        pub petition_signing_assurance: String,
        pub petition_collecting_days: i32,
        pub association_min_age_months: i32,
        pub proposal_support_threshold: i32,
        pub comment_report_threshold: i32,
        pub updated_by: Uuid,
        pub updated_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod association {
    use sea_orm::entity::prelude::*;

    /// An association registered in a commune, with its legal representative.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "associations")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub commune_id: Uuid,
        pub name: String,
        /// Its declaration receipt number; unique in the commune.
        pub registration_number: String,
        pub founding_date: Date,
        pub representative_id: Uuid,
        /// The staff member who registered it.
        pub registered_by: Uuid,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod budget {
    use sea_orm::entity::prelude::*;

    /// A participatory budget (see [`crate::budgets`]).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "budgets")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub commune_id: Uuid,
        pub title: String,
        pub description: String,
        /// Whole dirhams.
        pub total_dirhams: i64,
        /// [`crate::budgets::rule_to_db`].
        pub voting_rule: String,
        /// AT_MOST_K: k.
        pub max_projects: Option<i32>,
        pub min_assurance: String,
        /// [`crate::budgets::phase_to_db`].
        pub phase: String,
        /// Once the results are out: the funded projects' costs added up.
        pub allocated_dirhams: Option<i64>,
        pub created_by: Uuid,
        pub created_at: DateTimeUtc,
        pub phase_changed_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod budget_project {
    use sea_orm::entity::prelude::*;

    /// A project proposed for a budget.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "budget_projects")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub budget_id: Uuid,
        pub commune_id: Uuid,
        pub author_id: Uuid,
        /// The author's `request_id`; unique per author (idempotent proposing).
        pub client_request_id: Uuid,
        pub title: String,
        pub description: String,
        pub cost_dirhams: i64,
        /// [`crate::budgets::project_status_to_db`].
        pub status: String,
        pub review_note: Option<String>,
        /// Set when the results are computed.
        pub votes: Option<i64>,
        pub rank: Option<i32>,
        pub selected: Option<bool>,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod budget_ballot {
    use sea_orm::entity::prelude::*;

    /// That a resident voted in a budget (once: the primary key).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "budget_ballots")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub budget_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub citizen_id: Uuid,
        pub cast_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod budget_vote {
    use sea_orm::entity::prelude::*;

    /// One project on one resident's ballot.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "budget_votes")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub project_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub citizen_id: Uuid,
        pub budget_id: Uuid,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Participation's migrations, in order.
pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(CreateOutboxEvents),
            Box::new(CreateInboxEvents),
            Box::new(CreateParticipationTables),
            Box::new(AddPetitionLifecycle),
            Box::new(CreateProposals),
            Box::new(CreateConsultations),
            Box::new(CreateComments),
            Box::new(CreateResults),
            Box::new(CreateBudgetsAndAssociations),
        ]
    }
}

struct CreateParticipationTables;

impl MigrationName for CreateParticipationTables {
    fn name(&self) -> &str {
        "m0001_000001_create_participation_tables"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateParticipationTables {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("petitions")
                    .col(ColumnDef::new("id").uuid().not_null().primary_key())
                    .col(ColumnDef::new("commune_id").uuid().not_null())
                    .col(ColumnDef::new("author_id").uuid().not_null())
                    .col(ColumnDef::new("client_request_id").uuid().not_null())
                    .col(ColumnDef::new("title").text().not_null())
                    .col(ColumnDef::new("body").text().not_null())
                    .col(ColumnDef::new("signature_threshold").integer().not_null())
                    .col(ColumnDef::new("status").string_len(32).not_null())
                    .col(
                        ColumnDef::new("created_at")
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new("threshold_reached_at")
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("petitions_author_request")
                    .table("petitions")
                    .col("author_id")
                    .col("client_request_id")
                    .unique()
                    .to_owned(),
            )
            .await?;
        // Listing: a commune's petitions, newest (highest UUID v7) first.
        manager
            .create_index(
                Index::create()
                    .name("petitions_commune_id")
                    .table("petitions")
                    .col("commune_id")
                    .col("id")
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("petition_signatures")
                    .col(ColumnDef::new("petition_id").uuid().not_null())
                    .col(ColumnDef::new("citizen_id").uuid().not_null())
                    .col(
                        ColumnDef::new("signed_at")
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .primary_key(Index::create().col("petition_id").col("citizen_id"))
                    .foreign_key(
                        ForeignKey::create()
                            .from("petition_signatures", "petition_id")
                            .to("petitions", "id"),
                    )
                    .to_owned(),
            )
            .await
    }
}

struct AddPetitionLifecycle;

impl MigrationName for AddPetitionLifecycle {
    fn name(&self) -> &str {
        "m0002_000001_add_petition_lifecycle"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for AddPetitionLifecycle {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let petitions = "petitions";
        for column in [
            "collect_until",
            "submitted_at",
            "decision_due_at",
            "decided_at",
        ] {
            add_column(
                manager,
                petitions,
                ColumnDef::new(column).timestamp_with_time_zone().null(),
            )
            .await?;
        }
        for column in ["session", "inadmissible_reasons", "decision"] {
            add_column(manager, petitions, ColumnDef::new(column).text().null()).await?;
        }
        add_column(
            manager,
            petitions,
            ColumnDef::new("overdue_notified")
                .boolean()
                .not_null()
                .default(false),
        )
        .await?;
        manager
            .create_index(
                Index::create()
                    .name("petitions_by_status")
                    .table("petitions")
                    .col("status")
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("signatory_list_reads")
                    .col(ColumnDef::new("id").uuid().not_null().primary_key())
                    .col(ColumnDef::new("petition_id").uuid().not_null())
                    .col(ColumnDef::new("reader_id").uuid().not_null())
                    .col(
                        ColumnDef::new("read_at")
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await
    }
}

struct CreateProposals;

impl MigrationName for CreateProposals {
    fn name(&self) -> &str {
        "m0003_000001_create_proposals"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateProposals {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("proposals")
                    .col(ColumnDef::new("id").uuid().not_null().primary_key())
                    .col(ColumnDef::new("commune_id").uuid().not_null())
                    .col(ColumnDef::new("author_id").uuid().not_null())
                    .col(ColumnDef::new("client_request_id").uuid().not_null())
                    .col(ColumnDef::new("title").text().not_null())
                    .col(ColumnDef::new("body").text().not_null())
                    .col(ColumnDef::new("category").string_len(64).not_null())
                    .col(ColumnDef::new("latitude").double().null())
                    .col(ColumnDef::new("longitude").double().null())
                    .col(ColumnDef::new("status").string_len(32).not_null())
                    .col(ColumnDef::new("support_threshold").integer().not_null())
                    .col(ColumnDef::new("answer").text().null())
                    .col(
                        ColumnDef::new("answered_at")
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(
                        ColumnDef::new("threshold_reached_at")
                            .timestamp_with_time_zone()
                            .null(),
                    )
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
                    .name("proposals_author_request")
                    .table("proposals")
                    .col("author_id")
                    .col("client_request_id")
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("proposals_by_commune")
                    .table("proposals")
                    .col("commune_id")
                    .col("id")
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("proposal_supports")
                    .col(ColumnDef::new("proposal_id").uuid().not_null())
                    .col(ColumnDef::new("citizen_id").uuid().not_null())
                    .col(
                        ColumnDef::new("supported_at")
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .primary_key(Index::create().col("proposal_id").col("citizen_id"))
                    .foreign_key(
                        ForeignKey::create()
                            .from("proposal_supports", "proposal_id")
                            .to("proposals", "id"),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("proposal_followers")
                    .col(ColumnDef::new("proposal_id").uuid().not_null())
                    .col(ColumnDef::new("user_id").uuid().not_null())
                    .primary_key(Index::create().col("proposal_id").col("user_id"))
                    .to_owned(),
            )
            .await
    }
}

struct CreateConsultations;

impl MigrationName for CreateConsultations {
    fn name(&self) -> &str {
        "m0004_000001_create_consultations"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateConsultations {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("consultations")
                    .col(ColumnDef::new("id").uuid().not_null().primary_key())
                    .col(ColumnDef::new("commune_id").uuid().not_null())
                    .col(ColumnDef::new("title").text().not_null())
                    .col(ColumnDef::new("description").text().not_null())
                    .col(ColumnDef::new("questions").text().not_null())
                    .col(
                        ColumnDef::new("open_at")
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new("close_at")
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ColumnDef::new("min_assurance").string_len(32).not_null())
                    .col(ColumnDef::new("free_text_public").boolean().not_null())
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
                    .name("consultations_by_commune")
                    .table("consultations")
                    .col("commune_id")
                    .col("id")
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("consultation_responses")
                    .col(ColumnDef::new("consultation_id").uuid().not_null())
                    .col(ColumnDef::new("citizen_id").uuid().not_null())
                    .col(ColumnDef::new("answers").text().not_null())
                    .col(
                        ColumnDef::new("created_at")
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .primary_key(Index::create().col("consultation_id").col("citizen_id"))
                    .foreign_key(
                        ForeignKey::create()
                            .from("consultation_responses", "consultation_id")
                            .to("consultations", "id"),
                    )
                    .to_owned(),
            )
            .await
    }
}

struct CreateComments;

impl MigrationName for CreateComments {
    fn name(&self) -> &str {
        "m0005_000001_create_comments"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateComments {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("comments")
                    .col(ColumnDef::new("id").uuid().not_null().primary_key())
                    .col(ColumnDef::new("commune_id").uuid().not_null())
                    .col(ColumnDef::new("subject_kind").string_len(16).not_null())
                    .col(ColumnDef::new("subject_id").uuid().not_null())
                    .col(ColumnDef::new("author_id").uuid().not_null())
                    .col(ColumnDef::new("body").text().not_null())
                    .col(ColumnDef::new("status").string_len(16).not_null())
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
                    .name("comments_by_subject")
                    .table("comments")
                    .col("subject_id")
                    .col("id")
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("comment_reports")
                    .col(ColumnDef::new("comment_id").uuid().not_null())
                    .col(ColumnDef::new("reporter_id").uuid().not_null())
                    .col(
                        ColumnDef::new("reported_at")
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .primary_key(Index::create().col("comment_id").col("reporter_id"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("moderation_actions")
                    .col(ColumnDef::new("id").uuid().not_null().primary_key())
                    .col(ColumnDef::new("comment_id").uuid().not_null())
                    .col(ColumnDef::new("moderator_id").uuid().not_null())
                    .col(ColumnDef::new("action").string_len(16).not_null())
                    .col(ColumnDef::new("reason").text().not_null())
                    .col(
                        ColumnDef::new("acted_at")
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await
    }
}

struct CreateResults;

impl MigrationName for CreateResults {
    fn name(&self) -> &str {
        "m0006_000001_create_results"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateResults {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("results")
                    .col(ColumnDef::new("id").uuid().not_null().primary_key())
                    .col(ColumnDef::new("commune_id").uuid().not_null())
                    .col(ColumnDef::new("subject_kind").string_len(16).not_null())
                    .col(ColumnDef::new("subject_id").uuid().not_null())
                    .col(ColumnDef::new("subject_author_id").uuid().not_null())
                    .col(ColumnDef::new("title").text().not_null())
                    .col(ColumnDef::new("description").text().not_null())
                    .col(ColumnDef::new("progress").integer().not_null())
                    .col(ColumnDef::new("status").string_len(16).not_null())
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
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("results_by_commune")
                    .table("results")
                    .col("commune_id")
                    .col("id")
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("result_updates")
                    .col(ColumnDef::new("id").uuid().not_null().primary_key())
                    .col(ColumnDef::new("result_id").uuid().not_null())
                    .col(ColumnDef::new("progress").integer().not_null())
                    .col(ColumnDef::new("status").string_len(16).not_null())
                    .col(ColumnDef::new("note").text().not_null())
                    .col(
                        ColumnDef::new("created_at")
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from("result_updates", "result_id")
                            .to("results", "id"),
                    )
                    .to_owned(),
            )
            .await
    }
}

struct CreateBudgetsAndAssociations;

impl MigrationName for CreateBudgetsAndAssociations {
    fn name(&self) -> &str {
        "m0007_000001_create_budgets_and_associations"
    }
}

fn timestamp(name: &'static str) -> ColumnDef {
    ColumnDef::new(name)
        .timestamp_with_time_zone()
        .not_null()
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for CreateBudgetsAndAssociations {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        add_column(
            manager,
            "petitions",
            ColumnDef::new("association_id").uuid().null(),
        )
        .await?;
        for column in ["opened_notified", "closed_notified"] {
            add_column(
                manager,
                "consultations",
                ColumnDef::new(column).boolean().not_null().default(false),
            )
            .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table("participation_settings")
                    .col(ColumnDef::new("commune_id").uuid().not_null().primary_key())
                    .col(
                        ColumnDef::new("petition_signing_assurance")
                            .string_len(32)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new("petition_collecting_days")
                            .integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new("association_min_age_months")
                            .integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new("proposal_support_threshold")
                            .integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new("comment_report_threshold")
                            .integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new("updated_by").uuid().not_null())
                    .col(timestamp("updated_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("associations")
                    .col(ColumnDef::new("id").uuid().not_null().primary_key())
                    .col(ColumnDef::new("commune_id").uuid().not_null())
                    .col(ColumnDef::new("name").text().not_null())
                    .col(
                        ColumnDef::new("registration_number")
                            .string_len(64)
                            .not_null(),
                    )
                    .col(ColumnDef::new("founding_date").date().not_null())
                    .col(ColumnDef::new("representative_id").uuid().not_null())
                    .col(ColumnDef::new("registered_by").uuid().not_null())
                    .col(timestamp("created_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("associations_commune_registration")
                    .table("associations")
                    .col("commune_id")
                    .col("registration_number")
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("budgets")
                    .col(ColumnDef::new("id").uuid().not_null().primary_key())
                    .col(ColumnDef::new("commune_id").uuid().not_null())
                    .col(ColumnDef::new("title").text().not_null())
                    .col(ColumnDef::new("description").text().not_null())
                    .col(ColumnDef::new("total_dirhams").big_integer().not_null())
                    .col(ColumnDef::new("voting_rule").string_len(16).not_null())
                    .col(ColumnDef::new("max_projects").integer().null())
                    .col(ColumnDef::new("min_assurance").string_len(32).not_null())
                    .col(ColumnDef::new("phase").string_len(16).not_null())
                    .col(ColumnDef::new("allocated_dirhams").big_integer().null())
                    .col(ColumnDef::new("created_by").uuid().not_null())
                    .col(timestamp("created_at"))
                    .col(timestamp("phase_changed_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("budgets_by_commune")
                    .table("budgets")
                    .col("commune_id")
                    .col("id")
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("budget_projects")
                    .col(ColumnDef::new("id").uuid().not_null().primary_key())
                    .col(ColumnDef::new("budget_id").uuid().not_null())
                    .col(ColumnDef::new("commune_id").uuid().not_null())
                    .col(ColumnDef::new("author_id").uuid().not_null())
                    .col(ColumnDef::new("client_request_id").uuid().not_null())
                    .col(ColumnDef::new("title").text().not_null())
                    .col(ColumnDef::new("description").text().not_null())
                    .col(ColumnDef::new("cost_dirhams").big_integer().not_null())
                    .col(ColumnDef::new("status").string_len(16).not_null())
                    .col(ColumnDef::new("review_note").text().null())
                    .col(ColumnDef::new("votes").big_integer().null())
                    .col(ColumnDef::new("rank").integer().null())
                    .col(ColumnDef::new("selected").boolean().null())
                    .col(timestamp("created_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .from("budget_projects", "budget_id")
                            .to("budgets", "id"),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("budget_projects_author_request")
                    .table("budget_projects")
                    .col("author_id")
                    .col("client_request_id")
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("budget_projects_by_budget")
                    .table("budget_projects")
                    .col("budget_id")
                    .col("id")
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("budget_ballots")
                    .col(ColumnDef::new("budget_id").uuid().not_null())
                    .col(ColumnDef::new("citizen_id").uuid().not_null())
                    .col(timestamp("cast_at"))
                    .primary_key(Index::create().col("budget_id").col("citizen_id"))
                    .foreign_key(
                        ForeignKey::create()
                            .from("budget_ballots", "budget_id")
                            .to("budgets", "id"),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("budget_votes")
                    .col(ColumnDef::new("project_id").uuid().not_null())
                    .col(ColumnDef::new("citizen_id").uuid().not_null())
                    .col(ColumnDef::new("budget_id").uuid().not_null())
                    .primary_key(Index::create().col("project_id").col("citizen_id"))
                    .foreign_key(
                        ForeignKey::create()
                            .from("budget_votes", "project_id")
                            .to("budget_projects", "id"),
                    )
                    .to_owned(),
            )
            .await?;
        // Counting: a budget's votes grouped by project.
        manager
            .create_index(
                Index::create()
                    .name("budget_votes_by_budget")
                    .table("budget_votes")
                    .col("budget_id")
                    .col("project_id")
                    .to_owned(),
            )
            .await
    }
}
