//! Comments on petitions, proposals and consultations, and their moderation: anyone of the
//! commune may report a comment (once each); at the commune's number of reports it is hidden
//! pending review; moderators hide or restore it with a reason. Every moderation is recorded
//! (`moderation_actions`: who, what, why, when).

use chrono::Utc;
use jamaa_proto::participation::v1::{CommentStatus, CommentSubject};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, Set, TransactionTrait,
};
use uuid::Uuid;

use crate::error::Error;
use crate::storage::{
    budget_project, comment, comment_report, consultation, moderation_action, petition, proposal,
};

/// How a comment's subject kind is stored.
pub fn subject_to_db(subject: CommentSubject) -> &'static str {
    match subject {
        CommentSubject::Unspecified => "",
        CommentSubject::Petition => "petition",
        CommentSubject::Proposal => "proposal",
        CommentSubject::Consultation => "consultation",
        CommentSubject::BudgetProject => "budget_project",
    }
}

/// A subject kind as stored.
pub fn subject_from_db(value: &str) -> CommentSubject {
    match value {
        "petition" => CommentSubject::Petition,
        "proposal" => CommentSubject::Proposal,
        "consultation" => CommentSubject::Consultation,
        "budget_project" => CommentSubject::BudgetProject,
        _ => CommentSubject::Unspecified,
    }
}

/// How a comment status is stored.
pub fn status_to_db(status: CommentStatus) -> &'static str {
    match status {
        CommentStatus::Unspecified | CommentStatus::Visible => "visible",
        CommentStatus::PendingReview => "pending_review",
        CommentStatus::Hidden => "hidden",
    }
}

pub fn status_from_db(value: &str) -> CommentStatus {
    match value {
        "pending_review" => CommentStatus::PendingReview,
        "hidden" => CommentStatus::Hidden,
        _ => CommentStatus::Visible,
    }
}

/// A comment with its reports counted.
#[derive(Debug, Clone)]
pub struct CommentView {
    pub comment: comment::Model,
    pub reports: u64,
}

/// The comment operations.
pub struct Comments {
    db: DatabaseConnection,
    /// Each commune's rules: the reports that hide a comment.
    settings: std::sync::Arc<crate::commune_settings::CommuneSettingsStore>,
}

impl Comments {
    pub fn new(
        db: DatabaseConnection,
        settings: std::sync::Arc<crate::commune_settings::CommuneSettingsStore>,
    ) -> Self {
        Comments { db, settings }
    }

    /// Whether `subject_id` of kind `subject` exists in `commune_id`.
    async fn subject_exists(
        &self,
        commune_id: Uuid,
        subject: CommentSubject,
        subject_id: Uuid,
    ) -> Result<bool, Error> {
        Ok(match subject {
            CommentSubject::Petition => petition::Entity::find_by_id(subject_id)
                .filter(petition::Column::CommuneId.eq(commune_id))
                .one(&self.db)
                .await?
                .is_some(),
            CommentSubject::Proposal => proposal::Entity::find_by_id(subject_id)
                .filter(proposal::Column::CommuneId.eq(commune_id))
                .one(&self.db)
                .await?
                .is_some(),
            CommentSubject::Consultation => consultation::Entity::find_by_id(subject_id)
                .filter(consultation::Column::CommuneId.eq(commune_id))
                .one(&self.db)
                .await?
                .is_some(),
            CommentSubject::BudgetProject => budget_project::Entity::find_by_id(subject_id)
                .filter(budget_project::Column::CommuneId.eq(commune_id))
                .one(&self.db)
                .await?
                .is_some(),
            CommentSubject::Unspecified => false,
        })
    }

    pub async fn add(
        &self,
        commune_id: Uuid,
        subject: CommentSubject,
        subject_id: Uuid,
        author_id: Uuid,
        body: String,
    ) -> Result<CommentView, Error> {
        if !self.subject_exists(commune_id, subject, subject_id).await? {
            return Err(Error::SubjectNotFound(subject_id));
        }
        let comment = comment::ActiveModel {
            id: Set(Uuid::now_v7()),
            commune_id: Set(commune_id),
            subject_kind: Set(subject_to_db(subject).to_string()),
            subject_id: Set(subject_id),
            author_id: Set(author_id),
            body: Set(body),
            status: Set(status_to_db(CommentStatus::Visible).to_string()),
            created_at: Set(Utc::now()),
        }
        .insert(&self.db)
        .await?;
        Ok(CommentView {
            comment,
            reports: 0,
        })
    }

    /// The comments on a subject, oldest first: visible ones only, or all for moderators.
    pub async fn list(
        &self,
        commune_id: Uuid,
        subject: CommentSubject,
        subject_id: Uuid,
        moderator: bool,
    ) -> Result<Vec<CommentView>, Error> {
        let mut query = comment::Entity::find()
            .filter(comment::Column::CommuneId.eq(commune_id))
            .filter(comment::Column::SubjectKind.eq(subject_to_db(subject)))
            .filter(comment::Column::SubjectId.eq(subject_id));
        if !moderator {
            query = query.filter(comment::Column::Status.eq(status_to_db(CommentStatus::Visible)));
        }
        let rows = query
            .order_by_asc(comment::Column::Id)
            .limit(1000)
            .all(&self.db)
            .await?;
        let mut views = Vec::with_capacity(rows.len());
        for comment in rows {
            let reports = self.reports_of(comment.id).await?;
            views.push(CommentView { comment, reports });
        }
        Ok(views)
    }

    /// `reporter_id` reports a comment (once); at the threshold a visible comment is hidden
    /// pending review.
    pub async fn report(
        &self,
        commune_id: Uuid,
        id: Uuid,
        reporter_id: Uuid,
    ) -> Result<CommentView, Error> {
        let comment = self.find(commune_id, id).await?;
        comment_report::Entity::insert(comment_report::ActiveModel {
            comment_id: Set(comment.id),
            reporter_id: Set(reporter_id),
            reported_at: Set(Utc::now()),
        })
        .on_conflict(
            OnConflict::columns([
                comment_report::Column::CommentId,
                comment_report::Column::ReporterId,
            ])
            .do_nothing()
            .to_owned(),
        )
        .exec_without_returning(&self.db)
        .await?;
        let threshold = self
            .settings
            .get(commune_id)
            .await?
            .comment_report_threshold;
        let threshold = u64::try_from(threshold.max(1)).unwrap_or(3);
        if self.reports_of(comment.id).await? >= threshold {
            comment::Entity::update_many()
                .col_expr(
                    comment::Column::Status,
                    Expr::value(status_to_db(CommentStatus::PendingReview)),
                )
                .filter(comment::Column::Id.eq(comment.id))
                .filter(comment::Column::Status.eq(status_to_db(CommentStatus::Visible)))
                .exec(&self.db)
                .await?;
        }
        self.view(commune_id, id).await
    }

    /// A moderator hides or restores a comment with a reason; the action is recorded with it.
    pub async fn moderate(
        &self,
        commune_id: Uuid,
        id: Uuid,
        moderator_id: Uuid,
        hide: bool,
        reason: String,
    ) -> Result<CommentView, Error> {
        let comment = self.find(commune_id, id).await?;
        let txn = self.db.begin().await?;
        let status = if hide {
            CommentStatus::Hidden
        } else {
            CommentStatus::Visible
        };
        comment::Entity::update_many()
            .col_expr(comment::Column::Status, Expr::value(status_to_db(status)))
            .filter(comment::Column::Id.eq(comment.id))
            .exec(&txn)
            .await?;
        if !hide {
            // Restored: the reports that hid it are spent.
            comment_report::Entity::delete_many()
                .filter(comment_report::Column::CommentId.eq(comment.id))
                .exec(&txn)
                .await?;
        }
        moderation_action::ActiveModel {
            id: Set(Uuid::now_v7()),
            comment_id: Set(comment.id),
            moderator_id: Set(moderator_id),
            action: Set(if hide { "hide" } else { "restore" }.to_string()),
            reason: Set(reason),
            acted_at: Set(Utc::now()),
        }
        .insert(&txn)
        .await?;
        txn.commit().await?;
        self.view(commune_id, id).await
    }

    async fn find(&self, commune_id: Uuid, id: Uuid) -> Result<comment::Model, Error> {
        comment::Entity::find_by_id(id)
            .filter(comment::Column::CommuneId.eq(commune_id))
            .one(&self.db)
            .await?
            .ok_or(Error::CommentNotFound(id))
    }

    async fn view(&self, commune_id: Uuid, id: Uuid) -> Result<CommentView, Error> {
        let comment = self.find(commune_id, id).await?;
        let reports = self.reports_of(id).await?;
        Ok(CommentView { comment, reports })
    }

    async fn reports_of(&self, id: Uuid) -> Result<u64, Error> {
        Ok(comment_report::Entity::find()
            .filter(comment_report::Column::CommentId.eq(id))
            .count(&self.db)
            .await?)
    }
}
