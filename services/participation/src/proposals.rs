//! Proposals: a citizen proposes an idea in a category (optionally at a place); residents
//! support it, one support each, withdrawable while it is open; at the commune's support
//! threshold it goes to official review; the commune answers with a status and a text
//! (`ProposalAnswered`, heard by its author and its followers).
//!
//! Supports are rows (`proposal_supports`), counted with `COUNT(*)`: no counter row that every
//! supporter would update (the hot-row trap of `performance-notes.md`).

use chrono::Utc;
use jamaa_events::Outbox;
use jamaa_proto::events::v1 as events;
use jamaa_proto::participation::v1::ProposalStatus;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait,
};
use uuid::Uuid;

use crate::commune_settings::CommuneSettingsStore;
use crate::error::Error;
use crate::storage::{proposal, proposal_follower, proposal_support};

/// How a proposal status is stored.
pub fn status_to_db(status: ProposalStatus) -> &'static str {
    match status {
        ProposalStatus::Unspecified => "",
        ProposalStatus::Open => "open",
        ProposalStatus::InReview => "in_review",
        ProposalStatus::Evaluating => "evaluating",
        ProposalStatus::Accepted => "accepted",
        ProposalStatus::Rejected => "rejected",
        ProposalStatus::Implemented => "implemented",
    }
}

pub fn status_from_db(value: &str) -> ProposalStatus {
    [
        ProposalStatus::Open,
        ProposalStatus::InReview,
        ProposalStatus::Evaluating,
        ProposalStatus::Accepted,
        ProposalStatus::Rejected,
        ProposalStatus::Implemented,
    ]
    .into_iter()
    .find(|status| status_to_db(*status) == value)
    .unwrap_or(ProposalStatus::Unspecified)
}

/// Whether supports may still be given or withdrawn: until the commune answers.
pub fn is_open(status: ProposalStatus) -> bool {
    matches!(status, ProposalStatus::Open | ProposalStatus::InReview)
}

/// The statuses the commune answers with.
pub fn is_answer(status: ProposalStatus) -> bool {
    matches!(
        status,
        ProposalStatus::Evaluating
            | ProposalStatus::Accepted
            | ProposalStatus::Rejected
            | ProposalStatus::Implemented
    )
}

/// A proposal with its supports counted.
#[derive(Debug, Clone)]
pub struct ProposalView {
    pub proposal: proposal::Model,
    pub support_count: i64,
}

/// A new proposal, parsed.
pub struct NewProposal {
    pub request_id: Uuid,
    pub author_id: Uuid,
    pub commune_id: Uuid,
    pub title: String,
    pub body: String,
    pub category: String,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
}

/// The proposal operations.
pub struct Proposals {
    db: DatabaseConnection,
    outbox: Outbox,
    /// Each commune's rules: the supports that send a proposal to review.
    settings: std::sync::Arc<CommuneSettingsStore>,
}

impl Proposals {
    pub fn new(
        db: DatabaseConnection,
        outbox: Outbox,
        settings: std::sync::Arc<CommuneSettingsStore>,
    ) -> Self {
        Proposals {
            db,
            outbox,
            settings,
        }
    }

    /// Opens a proposal; the same author and `request_id` give back the first one.
    pub async fn create(&self, new: NewProposal) -> Result<ProposalView, Error> {
        if let Some(existing) = proposal::Entity::find()
            .filter(proposal::Column::AuthorId.eq(new.author_id))
            .filter(proposal::Column::ClientRequestId.eq(new.request_id))
            .one(&self.db)
            .await?
        {
            return self.view(existing).await;
        }
        let threshold = self
            .settings
            .get(new.commune_id)
            .await?
            .proposal_support_threshold;
        let row = proposal::ActiveModel {
            id: Set(Uuid::now_v7()),
            commune_id: Set(new.commune_id),
            author_id: Set(new.author_id),
            client_request_id: Set(new.request_id),
            title: Set(new.title),
            body: Set(new.body),
            category: Set(new.category),
            latitude: Set(new.latitude),
            longitude: Set(new.longitude),
            status: Set(status_to_db(ProposalStatus::Open).to_string()),
            support_threshold: Set(threshold),
            answer: Set(None),
            answered_at: Set(None),
            threshold_reached_at: Set(None),
            created_at: Set(Utc::now()),
        }
        .insert(&self.db)
        .await?;
        self.view(row).await
    }

    pub async fn get(&self, commune_id: Uuid, id: Uuid) -> Result<ProposalView, Error> {
        let row = self.find(&self.db, commune_id, id).await?;
        self.view(row).await
    }

    /// A commune's proposals, newest first, optionally of one category.
    pub async fn list(
        &self,
        commune_id: Uuid,
        category: Option<&str>,
        page: jamaa_server::PageRequest,
    ) -> Result<(Vec<ProposalView>, String), Error> {
        let mut query = proposal::Entity::find().filter(proposal::Column::CommuneId.eq(commune_id));
        if let Some(category) = category {
            query = query.filter(proposal::Column::Category.eq(category));
        }
        if let Some(before) = page.before {
            query = query.filter(proposal::Column::Id.lt(before));
        }
        let mut rows = query
            .order_by_desc(proposal::Column::Id)
            .limit(page.fetch_limit())
            .all(&self.db)
            .await?;
        let token = page.finish(&mut rows, |row| row.id);
        let mut views = Vec::with_capacity(rows.len());
        for row in rows {
            views.push(self.view(row).await?);
        }
        Ok((views, token))
    }

    /// A resident supports an open proposal, once (again: nothing changes). The support that
    /// reaches the threshold sends it to official review, exactly once (a conditional update).
    pub async fn support(
        &self,
        citizen_id: Uuid,
        commune_id: Uuid,
        id: Uuid,
    ) -> Result<(ProposalView, bool), Error> {
        let txn = self.db.begin().await?;
        let row = self.find(&txn, commune_id, id).await?;
        if !is_open(status_from_db(&row.status)) {
            return Err(Error::NotCollecting(
                "this proposal takes no more supports".into(),
            ));
        }
        let inserted = proposal_support::Entity::insert(proposal_support::ActiveModel {
            proposal_id: Set(row.id),
            citizen_id: Set(citizen_id),
            supported_at: Set(Utc::now()),
        })
        .on_conflict(
            OnConflict::columns([
                proposal_support::Column::ProposalId,
                proposal_support::Column::CitizenId,
            ])
            .do_nothing()
            .to_owned(),
        )
        .exec_without_returning(&txn)
        .await?;
        txn.commit().await?;
        // Counting after the commit sees every concurrent support that committed first; the
        // last committer past the threshold makes the move (once: the update is conditional).
        let count = count_supports(&self.db, row.id).await?;
        if count >= i64::from(row.support_threshold) {
            proposal::Entity::update_many()
                .col_expr(
                    proposal::Column::Status,
                    Expr::value(status_to_db(ProposalStatus::InReview)),
                )
                .col_expr(
                    proposal::Column::ThresholdReachedAt,
                    Expr::value(Some(Utc::now())),
                )
                .filter(proposal::Column::Id.eq(row.id))
                .filter(proposal::Column::Status.eq(status_to_db(ProposalStatus::Open)))
                .exec(&self.db)
                .await?;
        }
        Ok((self.get(commune_id, id).await?, inserted == 1))
    }

    /// A supporter withdraws their support while the proposal is open.
    pub async fn withdraw_support(
        &self,
        citizen_id: Uuid,
        commune_id: Uuid,
        id: Uuid,
    ) -> Result<ProposalView, Error> {
        let row = self.find(&self.db, commune_id, id).await?;
        if !is_open(status_from_db(&row.status)) {
            return Err(Error::NotCollecting(
                "supports can be withdrawn only while the proposal is open".into(),
            ));
        }
        proposal_support::Entity::delete_many()
            .filter(proposal_support::Column::ProposalId.eq(row.id))
            .filter(proposal_support::Column::CitizenId.eq(citizen_id))
            .exec(&self.db)
            .await?;
        self.get(commune_id, id).await
    }

    /// The commune answers with a status and a text; `ProposalAnswered` commits with it.
    pub async fn answer(
        &self,
        commune_id: Uuid,
        id: Uuid,
        status: ProposalStatus,
        text: String,
    ) -> Result<ProposalView, Error> {
        let now = Utc::now();
        let txn = self.db.begin().await?;
        let row = self.find(&txn, commune_id, id).await?;
        proposal::Entity::update_many()
            .col_expr(proposal::Column::Status, Expr::value(status_to_db(status)))
            .col_expr(proposal::Column::Answer, Expr::value(Some(text.clone())))
            .col_expr(proposal::Column::AnsweredAt, Expr::value(Some(now)))
            .filter(proposal::Column::Id.eq(row.id))
            .exec(&txn)
            .await?;
        self.outbox
            .add(
                &txn,
                format!("proposals/{}", row.id),
                &events::ProposalAnswered {
                    proposal_id: row.id.to_string(),
                    commune_id: row.commune_id.to_string(),
                    author_id: row.author_id.to_string(),
                    title: row.title.clone(),
                    status: status as i32,
                    text,
                },
            )
            .await?;
        self.outbox.commit(txn).await?;
        self.get(commune_id, id).await
    }

    /// A resident follows (or stops following) a proposal; notification learns of it by event.
    pub async fn follow(
        &self,
        user_id: Uuid,
        commune_id: Uuid,
        id: Uuid,
        follow: bool,
    ) -> Result<(), Error> {
        let row = self.find(&self.db, commune_id, id).await?;
        let txn = self.db.begin().await?;
        let changed = if follow {
            proposal_follower::Entity::insert(proposal_follower::ActiveModel {
                proposal_id: Set(row.id),
                user_id: Set(user_id),
            })
            .on_conflict(
                OnConflict::columns([
                    proposal_follower::Column::ProposalId,
                    proposal_follower::Column::UserId,
                ])
                .do_nothing()
                .to_owned(),
            )
            .exec_without_returning(&txn)
            .await?
                == 1
        } else {
            proposal_follower::Entity::delete_many()
                .filter(proposal_follower::Column::ProposalId.eq(row.id))
                .filter(proposal_follower::Column::UserId.eq(user_id))
                .exec(&txn)
                .await?
                .rows_affected
                == 1
        };
        if changed {
            self.outbox
                .add(
                    &txn,
                    format!("proposals/{}", row.id),
                    &events::ProposalFollowed {
                        proposal_id: row.id.to_string(),
                        user_id: user_id.to_string(),
                        following: follow,
                    },
                )
                .await?;
        }
        self.outbox.commit(txn).await?;
        Ok(())
    }

    async fn find(
        &self,
        db: &impl ConnectionTrait,
        commune_id: Uuid,
        id: Uuid,
    ) -> Result<proposal::Model, Error> {
        proposal::Entity::find_by_id(id)
            .filter(proposal::Column::CommuneId.eq(commune_id))
            .one(db)
            .await?
            .ok_or(Error::ProposalNotFound(id))
    }

    async fn view(&self, proposal: proposal::Model) -> Result<ProposalView, Error> {
        let support_count = count_supports(&self.db, proposal.id).await?;
        Ok(ProposalView {
            proposal,
            support_count,
        })
    }
}

async fn count_supports(db: &impl ConnectionTrait, id: Uuid) -> Result<i64, Error> {
    let count = proposal_support::Entity::find()
        .filter(proposal_support::Column::ProposalId.eq(id))
        .count(db)
        .await?;
    i64::try_from(count).map_err(|_| Error::Internal(format!("support count {count} overflows")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_and_answers_are_the_commune_s() {
        for status in [
            ProposalStatus::Open,
            ProposalStatus::InReview,
            ProposalStatus::Evaluating,
            ProposalStatus::Accepted,
            ProposalStatus::Rejected,
            ProposalStatus::Implemented,
        ] {
            assert_eq!(status_from_db(status_to_db(status)), status);
        }
        assert!(is_answer(ProposalStatus::Accepted));
        assert!(!is_answer(ProposalStatus::Open));
        assert!(!is_answer(ProposalStatus::InReview));
    }
}
