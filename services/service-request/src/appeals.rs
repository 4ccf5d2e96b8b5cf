//! The appeal trail of an access-to-information request (law 31-13): a complaint to the head of
//! the body within 20 working days of the answer (or of the due date, when no answer came); the
//! head answers within 15 days; then a complaint to the national commission (CDAI) within 30
//! days of the head's answer (or of the end of those 15 days). The commune records both and the
//! decisions; the commission's decision is recorded by the commune when it is told.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use jamaa_proto::servicerequest::v1::{AppealLevel, RequestStatus, ServiceKind};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, Set,
    TransactionTrait,
};
use uuid::Uuid;

use crate::closed_days::calendar_of;
use crate::deadlines::CommuneClock;
use crate::domain::{self, OPEN_STATUSES};
use crate::error::Error;
use crate::storage::{appeal, service_request};

/// Working days after the answer (or the due date) to complain to the head of the body.
pub const HEAD_OF_BODY_WORKING_DAYS: u32 = 20;
/// Days the head of the body has to answer.
pub const HEAD_ANSWER_DAYS: i64 = 15;
/// Days after the head's answer (or its end) to complain to the national commission.
pub const COMMISSION_DAYS: i64 = 30;

/// How an appeal level is stored.
pub fn level_to_db(level: AppealLevel) -> &'static str {
    match level {
        AppealLevel::Unspecified => "",
        AppealLevel::HeadOfBody => "head_of_body",
        AppealLevel::NationalCommission => "national_commission",
    }
}

pub fn level_from_db(value: &str) -> AppealLevel {
    match value {
        "head_of_body" => AppealLevel::HeadOfBody,
        "national_commission" => AppealLevel::NationalCommission,
        _ => AppealLevel::Unspecified,
    }
}

/// The appeal operations.
pub struct Appeals {
    db: DatabaseConnection,
    clock: CommuneClock,
}

impl Appeals {
    pub fn new(db: DatabaseConnection, clock: CommuneClock) -> Self {
        Appeals { db, clock }
    }

    /// The appeals of a request, oldest first.
    pub async fn of_request(&self, request_id: Uuid) -> Result<Vec<appeal::Model>, Error> {
        Ok(appeal::Entity::find()
            .filter(appeal::Column::RequestId.eq(request_id))
            .order_by_asc(appeal::Column::FiledAt)
            .all(&self.db)
            .await?)
    }

    /// The citizen appeals their access-to-information request at `level`, if the law's window
    /// is open now.
    pub async fn file(
        &self,
        request: &service_request::Model,
        level: AppealLevel,
        reason: String,
        now: DateTime<Utc>,
    ) -> Result<appeal::Model, Error> {
        if domain::kind_from_db(&request.service_kind) != ServiceKind::InformationRequest {
            return Err(Error::precondition(
                "NOT_AN_INFORMATION_REQUEST",
                "appeals under law 31-13 are for access-to-information requests",
            ));
        }
        let existing = self.of_request(request.id).await?;
        if existing
            .iter()
            .any(|appeal| level_from_db(&appeal.level) == level)
        {
            return Err(Error::precondition(
                "ALREADY_APPEALED",
                "this request was appealed at this level already",
            ));
        }
        let today = self.clock.today(now);
        let window = match level {
            AppealLevel::HeadOfBody => self.head_window(request).await?,
            AppealLevel::NationalCommission => {
                let head = existing
                    .iter()
                    .find(|appeal| level_from_db(&appeal.level) == AppealLevel::HeadOfBody)
                    .ok_or_else(|| {
                        Error::precondition(
                            "HEAD_OF_BODY_FIRST",
                            "complain to the head of the body first (law 31-13, article 19)",
                        )
                    })?;
                Some(self.commission_window(head))
            }
            AppealLevel::Unspecified => None,
        };
        let Some((opens, closes)) = window else {
            return Err(Error::precondition(
                "APPEAL_NOT_OPEN",
                "an appeal opens once the request is answered or its due date has passed",
            ));
        };
        if today < opens {
            return Err(Error::precondition(
                "APPEAL_NOT_OPEN",
                format!("an appeal at this level can be filed from {opens}"),
            ));
        }
        if today > closes {
            return Err(Error::precondition(
                "APPEAL_WINDOW_PASSED",
                format!("the window for this appeal closed on {closes}"),
            ));
        }
        Ok(appeal::ActiveModel {
            id: Set(Uuid::now_v7()),
            request_id: Set(request.id),
            level: Set(level_to_db(level).to_string()),
            reason: Set(reason),
            filed_at: Set(now),
            decision: Set(None),
            upheld: Set(None),
            decided_at: Set(None),
            decided_by: Set(None),
        }
        .insert(&self.db)
        .await?)
    }

    /// When a complaint to the head of the body may be filed: from the answer (or the day after
    /// the due date, unanswered) for 20 working days.
    async fn head_window(
        &self,
        request: &service_request::Model,
    ) -> Result<Option<(NaiveDate, NaiveDate)>, Error> {
        let status = domain::status_from_db(&request.status).unwrap_or(RequestStatus::Unspecified);
        let start = if !OPEN_STATUSES.contains(&status) {
            request.answered_at.map(|at| self.clock.today(at))
        } else {
            request.due_date.map(|due| due + Duration::days(1))
        };
        let Some(start) = start else {
            return Ok(None);
        };
        let calendar = calendar_of(&self.db, request.commune_id).await?;
        Ok(Some((
            start,
            calendar.add_working_days(start, HEAD_OF_BODY_WORKING_DAYS),
        )))
    }

    /// When a complaint to the national commission may be filed: after the head's answer, or
    /// once its 15 days are over, for 30 days.
    fn commission_window(&self, head: &appeal::Model) -> (NaiveDate, NaiveDate) {
        let start = match head.decided_at {
            Some(decided) => self.clock.today(decided),
            None => self.clock.today(head.filed_at) + Duration::days(HEAD_ANSWER_DAYS + 1),
        };
        (start, start + Duration::days(COMMISSION_DAYS))
    }

    /// Records the decision on an appeal (the head of the body's, or the commission's as the
    /// commune was told it), once.
    pub async fn decide(
        &self,
        request_id: Uuid,
        appeal_id: Uuid,
        decision: String,
        upheld: bool,
        decided_by: Uuid,
        now: DateTime<Utc>,
    ) -> Result<appeal::Model, Error> {
        let txn = self.db.begin().await?;
        let updated = appeal::Entity::update_many()
            .col_expr(appeal::Column::Decision, Expr::value(Some(decision)))
            .col_expr(appeal::Column::Upheld, Expr::value(Some(upheld)))
            .col_expr(appeal::Column::DecidedAt, Expr::value(Some(now)))
            .col_expr(appeal::Column::DecidedBy, Expr::value(Some(decided_by)))
            .filter(appeal::Column::Id.eq(appeal_id))
            .filter(appeal::Column::RequestId.eq(request_id))
            .filter(appeal::Column::DecidedAt.is_null())
            .exec(&txn)
            .await?;
        if updated.rows_affected != 1 {
            let exists = appeal::Entity::find_by_id(appeal_id)
                .one(&txn)
                .await?
                .filter(|appeal| appeal.request_id == request_id);
            return Err(match exists {
                Some(_) => Error::precondition(
                    "ALREADY_DECIDED",
                    "this appeal's decision was recorded already",
                ),
                None => Error::NotFound(format!("appeal {appeal_id}")),
            });
        }
        txn.commit().await?;
        appeal::Entity::find_by_id(appeal_id)
            .one(&self.db)
            .await?
            .ok_or_else(|| Error::Internal(format!("appeal {appeal_id} vanished")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_round_trip() {
        for level in [AppealLevel::HeadOfBody, AppealLevel::NationalCommission] {
            assert_eq!(level_from_db(level_to_db(level)), level);
        }
        assert_eq!(level_from_db("bogus"), AppealLevel::Unspecified);
    }
}
