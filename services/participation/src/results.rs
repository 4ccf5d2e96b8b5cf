//! Accountability: what the commune does about a petition, a proposal or a budget project — a result with its
//! progress (0–100 %), its status and dated updates, public to the commune. Each update is an
//! event (`ResultUpdated`) that the author and the followers of the linked proposal hear of.

use chrono::Utc;
use jamaa_events::Outbox;
use jamaa_proto::events::v1 as events;
use jamaa_proto::participation::v1::{CommentSubject, ResultStatus};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set, TransactionTrait,
};
use uuid::Uuid;

use crate::comments::subject_to_db;
use crate::error::Error;
use crate::storage::{budget_project, petition, proposal, result_update, work_result};

pub fn status_to_db(status: ResultStatus) -> &'static str {
    match status {
        ResultStatus::Unspecified | ResultStatus::Planned => "planned",
        ResultStatus::InProgress => "in_progress",
        ResultStatus::Done => "done",
        ResultStatus::Cancelled => "cancelled",
    }
}

pub fn status_from_db(value: &str) -> ResultStatus {
    match value {
        "in_progress" => ResultStatus::InProgress,
        "done" => ResultStatus::Done,
        "cancelled" => ResultStatus::Cancelled,
        _ => ResultStatus::Planned,
    }
}

/// A result with its updates, oldest first.
#[derive(Debug, Clone)]
pub struct ResultView {
    pub result: work_result::Model,
    pub updates: Vec<result_update::Model>,
}

/// The accountability operations.
pub struct Results {
    db: DatabaseConnection,
    outbox: Outbox,
}

impl Results {
    pub fn new(db: DatabaseConnection, outbox: Outbox) -> Self {
        Results { db, outbox }
    }

    /// A result for a petition or proposal of the commune, at 0 % and PLANNED.
    pub async fn create(
        &self,
        commune_id: Uuid,
        subject: CommentSubject,
        subject_id: Uuid,
        title: String,
        description: String,
    ) -> Result<ResultView, Error> {
        let author_id = match subject {
            CommentSubject::Petition => petition::Entity::find_by_id(subject_id)
                .filter(petition::Column::CommuneId.eq(commune_id))
                .one(&self.db)
                .await?
                .map(|petition| petition.author_id),
            CommentSubject::Proposal => proposal::Entity::find_by_id(subject_id)
                .filter(proposal::Column::CommuneId.eq(commune_id))
                .one(&self.db)
                .await?
                .map(|proposal| proposal.author_id),
            CommentSubject::BudgetProject => budget_project::Entity::find_by_id(subject_id)
                .filter(budget_project::Column::CommuneId.eq(commune_id))
                .one(&self.db)
                .await?
                .map(|project| project.author_id),
            _ => None,
        }
        .ok_or(Error::SubjectNotFound(subject_id))?;
        let result = work_result::ActiveModel {
            id: Set(Uuid::now_v7()),
            commune_id: Set(commune_id),
            subject_kind: Set(subject_to_db(subject).to_string()),
            subject_id: Set(subject_id),
            subject_author_id: Set(author_id),
            title: Set(title),
            description: Set(description),
            progress: Set(0),
            status: Set(status_to_db(ResultStatus::Planned).to_string()),
            created_at: Set(Utc::now()),
            updated_at: Set(Utc::now()),
        }
        .insert(&self.db)
        .await?;
        Ok(ResultView {
            result,
            updates: Vec::new(),
        })
    }

    /// Records progress: the result's progress and status change, a dated update is added,
    /// and `ResultUpdated` commits with them.
    pub async fn update(
        &self,
        commune_id: Uuid,
        id: Uuid,
        progress: i32,
        status: ResultStatus,
        note: String,
    ) -> Result<ResultView, Error> {
        let now = Utc::now();
        let txn = self.db.begin().await?;
        let result = work_result::Entity::find_by_id(id)
            .filter(work_result::Column::CommuneId.eq(commune_id))
            .one(&txn)
            .await?
            .ok_or(Error::ResultNotFound(id))?;
        work_result::Entity::update_many()
            .col_expr(work_result::Column::Progress, Expr::value(progress))
            .col_expr(
                work_result::Column::Status,
                Expr::value(status_to_db(status)),
            )
            .col_expr(work_result::Column::UpdatedAt, Expr::value(now))
            .filter(work_result::Column::Id.eq(result.id))
            .exec(&txn)
            .await?;
        result_update::ActiveModel {
            id: Set(Uuid::now_v7()),
            result_id: Set(result.id),
            progress: Set(progress),
            status: Set(status_to_db(status).to_string()),
            note: Set(note.clone()),
            created_at: Set(now),
        }
        .insert(&txn)
        .await?;
        self.outbox
            .add(
                &txn,
                format!("results/{}", result.id),
                &events::ResultUpdated {
                    result_id: result.id.to_string(),
                    commune_id: result.commune_id.to_string(),
                    subject_id: result.subject_id.to_string(),
                    subject_author_id: result.subject_author_id.to_string(),
                    title: result.title.clone(),
                    progress,
                    status: status as i32,
                    note,
                },
            )
            .await?;
        self.outbox.commit(txn).await?;
        self.get(commune_id, id).await
    }

    pub async fn get(&self, commune_id: Uuid, id: Uuid) -> Result<ResultView, Error> {
        let result = work_result::Entity::find_by_id(id)
            .filter(work_result::Column::CommuneId.eq(commune_id))
            .one(&self.db)
            .await?
            .ok_or(Error::ResultNotFound(id))?;
        let updates = result_update::Entity::find()
            .filter(result_update::Column::ResultId.eq(result.id))
            .order_by_asc(result_update::Column::Id)
            .all(&self.db)
            .await?;
        Ok(ResultView { result, updates })
    }

    /// A commune's results, newest first (without their updates).
    pub async fn list(&self, commune_id: Uuid) -> Result<Vec<work_result::Model>, Error> {
        Ok(work_result::Entity::find()
            .filter(work_result::Column::CommuneId.eq(commune_id))
            .order_by_desc(work_result::Column::Id)
            .limit(500)
            .all(&self.db)
            .await?)
    }
}
