//! A petition's life under organic law 113-14 (articles 121–125): draft → collecting (a
//! configured window) → threshold reached → submitted by its agent → under review by the
//! council's bureau → admissible (on the agenda of a named session) or inadmissible (reasons
//! required) → answered (the council's decision). A reasoned decision is due within three
//! months of submission: the scheduler emits `PetitionDecisionOverdue` once when it is not, and
//! closes the petitions whose window ended before they were submitted (EXPIRED).

use chrono::{DateTime, Months, Utc};
use jamaa_proto::events::v1 as events;
use jamaa_proto::timestamp_from_millis;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, TransactionTrait};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::domain::PetitionStatus;
use crate::error::Error;
use crate::petitions::{PetitionView, Petitions};
use crate::storage::{petition, petition_signature, signatory_list_read};

/// Months the council has to decide after submission (article 123).
pub const DECISION_MONTHS: u32 = 3;

/// The bureau's decision on a petition under review.
pub enum Admissibility {
    /// Placed on the agenda of `session` (its name, e.g. "Session ordinaire de février 2027").
    Admissible { session: String },
    /// Refused, with the reasons (required).
    Inadmissible { reasons: String },
}

/// Whether a petition may move from `from` to `to`.
pub fn may_move(from: PetitionStatus, to: PetitionStatus) -> bool {
    use PetitionStatus::*;
    matches!(
        (from, to),
        (Draft, Collecting)
            | (Collecting | ThresholdReached, Expired)
            | (ThresholdReached, Submitted)
            | (Submitted, UnderReview)
            | (UnderReview, Admissible | Inadmissible)
            | (Admissible, Answered)
    )
}

impl Petitions {
    /// The agent publishes their draft: signatures open until the window ends.
    pub async fn publish(
        &self,
        author_id: Uuid,
        commune_id: Uuid,
        id: Uuid,
    ) -> Result<PetitionView, Error> {
        let now = Utc::now();
        let until = now + self.collecting_window(commune_id).await?;
        self.transition(
            commune_id,
            id,
            Some(author_id),
            PetitionStatus::Collecting,
            |update| update.col_expr(petition::Column::CollectUntil, Expr::value(Some(until))),
        )
        .await
    }

    /// The agent submits a petition that reached its threshold; the council's three months
    /// start. `PetitionSubmitted` commits with it.
    pub async fn submit(
        &self,
        author_id: Uuid,
        commune_id: Uuid,
        id: Uuid,
    ) -> Result<PetitionView, Error> {
        let now = Utc::now();
        let due = now
            .checked_add_months(Months::new(DECISION_MONTHS))
            .unwrap_or(now);
        let view = self
            .transition(
                commune_id,
                id,
                Some(author_id),
                PetitionStatus::Submitted,
                |update| {
                    update
                        .col_expr(petition::Column::SubmittedAt, Expr::value(Some(now)))
                        .col_expr(petition::Column::DecisionDueAt, Expr::value(Some(due)))
                },
            )
            .await?;
        let petition = &view.petition;
        self.publish_event(
            petition.id,
            &events::PetitionSubmitted {
                petition_id: petition.id.to_string(),
                commune_id: petition.commune_id.to_string(),
                author_id: petition.author_id.to_string(),
                title: petition.title.clone(),
                signature_count: view.signature_count,
                decision_due_time: Some(timestamp_from_millis(due.timestamp_millis())),
            },
        )
        .await?;
        Ok(view)
    }

    /// The bureau takes a submitted petition under review.
    pub async fn review(&self, commune_id: Uuid, id: Uuid) -> Result<PetitionView, Error> {
        self.transition(
            commune_id,
            id,
            None,
            PetitionStatus::UnderReview,
            |update| update,
        )
        .await
    }

    /// The bureau decides admissibility; `PetitionDecided` tells the agent.
    pub async fn decide_admissibility(
        &self,
        commune_id: Uuid,
        id: Uuid,
        decision: Admissibility,
    ) -> Result<PetitionView, Error> {
        let now = Utc::now();
        let (to, session, reasons) = match decision {
            Admissibility::Admissible { session } => {
                (PetitionStatus::Admissible, Some(session), None)
            }
            Admissibility::Inadmissible { reasons } => {
                (PetitionStatus::Inadmissible, None, Some(reasons))
            }
        };
        let (session_value, reasons_value) = (session.clone(), reasons.clone());
        let view = self
            .transition(commune_id, id, None, to, move |update| {
                let update = update
                    .col_expr(petition::Column::Session, Expr::value(session_value))
                    .col_expr(
                        petition::Column::InadmissibleReasons,
                        Expr::value(reasons_value),
                    );
                if to == PetitionStatus::Inadmissible {
                    update.col_expr(petition::Column::DecidedAt, Expr::value(Some(now)))
                } else {
                    update
                }
            })
            .await?;
        self.decided_event(&view, to, session.or(reasons).unwrap_or_default())
            .await?;
        Ok(view)
    }

    /// The council's decision on an admissible petition.
    pub async fn answer(
        &self,
        commune_id: Uuid,
        id: Uuid,
        decision: String,
    ) -> Result<PetitionView, Error> {
        let now = Utc::now();
        let text = decision.clone();
        let view = self
            .transition(
                commune_id,
                id,
                None,
                PetitionStatus::Answered,
                move |update| {
                    update
                        .col_expr(petition::Column::Decision, Expr::value(Some(text)))
                        .col_expr(petition::Column::DecidedAt, Expr::value(Some(now)))
                },
            )
            .await?;
        self.decided_event(&view, PetitionStatus::Answered, decision)
            .await?;
        Ok(view)
    }

    /// The signatories of a petition, for its agent or the council secretary; each reading is
    /// recorded (who, when).
    pub async fn signatories(
        &self,
        commune_id: Uuid,
        id: Uuid,
        reader_id: Uuid,
    ) -> Result<Vec<petition_signature::Model>, Error> {
        let txn = self.db.begin().await?;
        let petition = petition::Entity::find_by_id(id)
            .filter(petition::Column::CommuneId.eq(commune_id))
            .one(&txn)
            .await?
            .ok_or(Error::PetitionNotFound(id))?;
        sea_orm::ActiveModelTrait::insert(
            signatory_list_read::ActiveModel {
                id: sea_orm::Set(Uuid::now_v7()),
                petition_id: sea_orm::Set(petition.id),
                reader_id: sea_orm::Set(reader_id),
                read_at: sea_orm::Set(Utc::now()),
            },
            &txn,
        )
        .await?;
        let signatures = petition_signature::Entity::find()
            .filter(petition_signature::Column::PetitionId.eq(petition.id))
            .order_by_asc(petition_signature::Column::SignedAt)
            .limit(100_000)
            .all(&txn)
            .await?;
        txn.commit().await?;
        Ok(signatures)
    }

    /// The author of petition `id`, if it is of `commune_id`.
    pub async fn author_of(&self, commune_id: Uuid, id: Uuid) -> Result<Uuid, Error> {
        petition::Entity::find_by_id(id)
            .filter(petition::Column::CommuneId.eq(commune_id))
            .one(&self.db)
            .await?
            .map(|petition| petition.author_id)
            .ok_or(Error::PetitionNotFound(id))
    }

    /// Moves petition `id` of `commune_id` to `to` if allowed (and, with `author`, only by its
    /// agent), setting more columns with `more`; guarded by the status read.
    async fn transition<F>(
        &self,
        commune_id: Uuid,
        id: Uuid,
        author: Option<Uuid>,
        to: PetitionStatus,
        more: F,
    ) -> Result<PetitionView, Error>
    where
        F: FnOnce(sea_orm::UpdateMany<petition::Entity>) -> sea_orm::UpdateMany<petition::Entity>,
    {
        let current = petition::Entity::find_by_id(id)
            .filter(petition::Column::CommuneId.eq(commune_id))
            .one(&self.db)
            .await?
            .filter(|petition| author.is_none_or(|author| petition.author_id == author))
            .ok_or(Error::PetitionNotFound(id))?;
        let from = PetitionStatus::parse(&current.status)
            .ok_or_else(|| Error::Internal(format!("petition {id} has an unknown status")))?;
        if !may_move(from, to) {
            return Err(Error::InvalidTransition { from, to });
        }
        let update = petition::Entity::update_many()
            .col_expr(petition::Column::Status, Expr::value(to.as_str()))
            .filter(petition::Column::Id.eq(id))
            .filter(petition::Column::Status.eq(from.as_str()));
        let updated = more(update).exec(&self.db).await?;
        if updated.rows_affected != 1 {
            return Err(Error::Conflict);
        }
        self.get(commune_id, id).await
    }

    async fn decided_event(
        &self,
        view: &PetitionView,
        outcome: PetitionStatus,
        text: String,
    ) -> Result<(), Error> {
        let petition = &view.petition;
        self.publish_event(
            petition.id,
            &events::PetitionDecided {
                petition_id: petition.id.to_string(),
                commune_id: petition.commune_id.to_string(),
                author_id: petition.author_id.to_string(),
                title: petition.title.clone(),
                outcome: outcome.to_proto() as i32,
                text,
            },
        )
        .await
    }

    async fn publish_event<E: prost::Name>(
        &self,
        petition_id: Uuid,
        event: &E,
    ) -> Result<(), Error> {
        let txn = self.db.begin().await?;
        self.outbox
            .add(&txn, format!("petitions/{petition_id}"), event)
            .await?;
        self.outbox.commit(txn).await?;
        Ok(())
    }

    /// Scans every `every` until `shutdown`: expiries and overdue decisions.
    pub fn run_scheduler(
        self: std::sync::Arc<Self>,
        every: std::time::Duration,
        shutdown: CancellationToken,
    ) {
        jamaa_server::run_every(every, shutdown, "petition deadlines", move || {
            let petitions = self.clone();
            async move { petitions.scan(Utc::now()).await.map(|_| ()) }
        });
    }

    /// One scan at `now`: closes petitions whose window ended unsubmitted, and emits
    /// `PetitionDecisionOverdue` once for each petition whose decision is late. Returns (expired,
    /// overdue).
    pub async fn scan(&self, now: DateTime<Utc>) -> Result<(u64, usize), Error> {
        let expired = petition::Entity::update_many()
            .col_expr(
                petition::Column::Status,
                Expr::value(PetitionStatus::Expired.as_str()),
            )
            .filter(petition::Column::CollectUntil.lt(now))
            .filter(petition::Column::Status.is_in([
                PetitionStatus::Collecting.as_str(),
                PetitionStatus::ThresholdReached.as_str(),
            ]))
            .exec(&self.db)
            .await?
            .rows_affected;
        let late = petition::Entity::find()
            .filter(petition::Column::DecisionDueAt.lt(now))
            .filter(petition::Column::OverdueNotified.eq(false))
            .filter(petition::Column::Status.is_in([
                PetitionStatus::Submitted.as_str(),
                PetitionStatus::UnderReview.as_str(),
                PetitionStatus::Admissible.as_str(),
            ]))
            .limit(500)
            .all(&self.db)
            .await?;
        let mut overdue = 0;
        for petition in late {
            let txn = self.db.begin().await?;
            let claimed = petition::Entity::update_many()
                .col_expr(petition::Column::OverdueNotified, Expr::value(true))
                .filter(petition::Column::Id.eq(petition.id))
                .filter(petition::Column::OverdueNotified.eq(false))
                .exec(&txn)
                .await?;
            if claimed.rows_affected != 1 {
                txn.rollback().await?;
                continue;
            }
            self.outbox
                .add(
                    &txn,
                    format!("petitions/{}", petition.id),
                    &events::PetitionDecisionOverdue {
                        petition_id: petition.id.to_string(),
                        commune_id: petition.commune_id.to_string(),
                        author_id: petition.author_id.to_string(),
                        title: petition.title.clone(),
                        decision_due_time: petition
                            .decision_due_at
                            .map(|due| timestamp_from_millis(due.timestamp_millis())),
                    },
                )
                .await?;
            self.outbox.commit(txn).await?;
            overdue += 1;
        }
        Ok((expired, overdue))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use PetitionStatus::*;

    #[test]
    fn the_lifecycle_allows_exactly_the_laws_steps() {
        let all = [
            Draft,
            Collecting,
            ThresholdReached,
            Submitted,
            UnderReview,
            Admissible,
            Inadmissible,
            Answered,
            Expired,
        ];
        let allowed = [
            (Draft, Collecting),
            (Collecting, Expired),
            (ThresholdReached, Expired),
            (ThresholdReached, Submitted),
            (Submitted, UnderReview),
            (UnderReview, Admissible),
            (UnderReview, Inadmissible),
            (Admissible, Answered),
        ];
        for from in all {
            for to in all {
                assert_eq!(
                    may_move(from, to),
                    allowed.contains(&(from, to)),
                    "{from:?} -> {to:?}"
                );
            }
        }
    }
}
