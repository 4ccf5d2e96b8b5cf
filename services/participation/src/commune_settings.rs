//! Each commune's participation rules: the level a petition's signatories need, how long a
//! petition collects signatures, the minimum age of an association that files one, the
//! supports that send a proposal to review and the reports that hide a comment. A commune that
//! never set its own uses the platform's (the `[participation]` configuration).

use chrono::{DateTime, Utc};
use jamaa_auth::AssuranceLevel;
use sea_orm::sea_query::OnConflict;
use sea_orm::{DatabaseConnection, EntityTrait, Set};
use uuid::Uuid;

use crate::error::Error;
use crate::storage::participation_setting;

/// The minimum age of an association filing a petition unless the commune sets one: three
/// years, as organic law 113-14 asks of associations (article 122).
pub const DEFAULT_ASSOCIATION_MIN_AGE_MONTHS: i32 = 36;

/// A commune's rules, as they apply.
#[derive(Debug, Clone, PartialEq)]
pub struct CommuneSettings {
    pub petition_signing_assurance: AssuranceLevel,
    pub petition_collecting_days: i32,
    pub association_min_age_months: i32,
    pub proposal_support_threshold: i32,
    pub comment_report_threshold: i32,
    /// Whether these are the platform's (the commune never set its own).
    pub platform_defaults: bool,
    pub updated_at: Option<DateTime<Utc>>,
}

impl CommuneSettings {
    /// Checks each value's range, naming the field of a bad one.
    pub fn check(&self, violations: &mut jamaa_server::status::FieldViolations) {
        let ranges = [
            (
                "settings.petition_collecting_days",
                self.petition_collecting_days,
                1,
                365,
            ),
            (
                "settings.association_min_age_months",
                self.association_min_age_months,
                0,
                600,
            ),
            (
                "settings.proposal_support_threshold",
                self.proposal_support_threshold,
                1,
                1_000_000,
            ),
            (
                "settings.comment_report_threshold",
                self.comment_report_threshold,
                1,
                1_000,
            ),
        ];
        for (field, value, low, high) in ranges {
            if !(low..=high).contains(&value) {
                violations.add(field, format!("must be between {low} and {high}"));
            }
        }
    }
}

/// The rules of every commune: read and set.
pub struct CommuneSettingsStore {
    db: DatabaseConnection,
    defaults: CommuneSettings,
}

impl CommuneSettingsStore {
    /// A store falling back on `defaults` for communes without their own rules.
    pub fn new(db: DatabaseConnection, config: &crate::ParticipationConfig) -> Self {
        let defaults = CommuneSettings {
            petition_signing_assurance: AssuranceLevel::VerifiedInPerson,
            petition_collecting_days: i32::try_from(config.collecting_days.clamp(1, 365))
                .unwrap_or(90),
            association_min_age_months: DEFAULT_ASSOCIATION_MIN_AGE_MONTHS,
            proposal_support_threshold: config.proposal_support_threshold.max(1),
            comment_report_threshold: i32::try_from(config.comment_report_threshold.max(1))
                .unwrap_or(3),
            platform_defaults: true,
            updated_at: None,
        };
        CommuneSettingsStore { db, defaults }
    }

    /// The rules that apply in `commune_id`.
    pub async fn get(&self, commune_id: Uuid) -> Result<CommuneSettings, Error> {
        let Some(row) = participation_setting::Entity::find_by_id(commune_id)
            .one(&self.db)
            .await?
        else {
            return Ok(self.defaults.clone());
        };
        Ok(CommuneSettings {
            petition_signing_assurance: AssuranceLevel::parse(&row.petition_signing_assurance)
                .unwrap_or(AssuranceLevel::VerifiedInPerson),
            petition_collecting_days: row.petition_collecting_days,
            association_min_age_months: row.association_min_age_months,
            proposal_support_threshold: row.proposal_support_threshold,
            comment_report_threshold: row.comment_report_threshold,
            platform_defaults: false,
            updated_at: Some(row.updated_at),
        })
    }

    /// Sets `commune_id`'s rules (checked by the caller), recording who set them.
    pub async fn set(
        &self,
        commune_id: Uuid,
        settings: &CommuneSettings,
        updated_by: Uuid,
    ) -> Result<CommuneSettings, Error> {
        use participation_setting::Column;
        participation_setting::Entity::insert(participation_setting::ActiveModel {
            commune_id: Set(commune_id),
            petition_signing_assurance: Set(settings
                .petition_signing_assurance
                .as_str()
                .to_string()),
            petition_collecting_days: Set(settings.petition_collecting_days),
            association_min_age_months: Set(settings.association_min_age_months),
            proposal_support_threshold: Set(settings.proposal_support_threshold),
            comment_report_threshold: Set(settings.comment_report_threshold),
            updated_by: Set(updated_by),
            updated_at: Set(Utc::now()),
        })
        .on_conflict(
            OnConflict::column(Column::CommuneId)
                .update_columns([
                    Column::PetitionSigningAssurance,
                    Column::PetitionCollectingDays,
                    Column::AssociationMinAgeMonths,
                    Column::ProposalSupportThreshold,
                    Column::CommentReportThreshold,
                    Column::UpdatedBy,
                    Column::UpdatedAt,
                ])
                .to_owned(),
        )
        .exec_without_returning(&self.db)
        .await?;
        tracing::info!(%commune_id, %updated_by, "participation settings changed");
        self.get(commune_id).await
    }
}
