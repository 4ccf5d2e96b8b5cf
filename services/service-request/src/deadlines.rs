//! The deadline scheduler: it finds open requests whose due date is near or past and emits
//! `DeadlineApproaching` and `DeadlineBreached`, each once per request and due date.
//!
//! Several replicas may scan at once: a request is claimed by a conditional update of its
//! "notified for" date in the same transaction as the event (outbox), so exactly one scan wins
//! and a crash before the commit leaves the claim for the next scan.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, FixedOffset, NaiveDate, Offset, Utc};
use jamaa_events::Outbox;
use jamaa_proto::events::v1 as events;
use sea_orm::sea_query::{Condition, Expr, ExprTrait};
use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    TransactionTrait,
};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::calendar::WorkingCalendar;
use crate::closed_days::ClosedDays;
use crate::domain::{self, OPEN_STATUSES};
use crate::error::Error;
use crate::requests::{account_of, optional_id, subject};
use crate::storage::service_request;

/// Which civil day it is for the communes.
#[derive(Debug, Clone, Copy)]
pub struct CommuneClock {
    offset: FixedOffset,
}

impl CommuneClock {
    /// A clock `utc_offset_minutes` ahead of UTC (clamped to ±14 hours).
    pub fn new(utc_offset_minutes: i32) -> Self {
        let seconds = utc_offset_minutes.clamp(-14 * 60, 14 * 60) * 60;
        CommuneClock {
            offset: FixedOffset::east_opt(seconds).unwrap_or_else(|| Utc.fix()),
        }
    }

    /// The instant of the communes' local date and time `local`.
    pub fn to_utc(&self, local: chrono::NaiveDateTime) -> DateTime<Utc> {
        (local - self.offset).and_utc()
    }

    /// `at` in the communes' local time, written `YYYY-MM-DD HH:MM`.
    pub fn local_text(&self, at: DateTime<Utc>) -> String {
        at.with_timezone(&self.offset)
            .format("%Y-%m-%d %H:%M")
            .to_string()
    }

    /// The communes' civil date at `now`.
    pub fn today(&self, now: DateTime<Utc>) -> NaiveDate {
        now.with_timezone(&self.offset).date_naive()
    }
}

/// What one scan emitted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ScanReport {
    pub approaching: usize,
    pub breached: usize,
}

/// The most requests one scan looks at; the next scan takes the rest.
const SCAN_BATCH: u64 = 500;

/// The scheduler (cheap to clone).
#[derive(Clone)]
pub struct DeadlineScheduler {
    inner: Arc<Inner>,
}

struct Inner {
    db: DatabaseConnection,
    outbox: Outbox,
    closed_days: Arc<ClosedDays>,
    clock: CommuneClock,
    warning_working_days: u32,
}

impl DeadlineScheduler {
    pub fn new(
        db: DatabaseConnection,
        outbox: Outbox,
        closed_days: Arc<ClosedDays>,
        clock: CommuneClock,
        warning_working_days: u32,
    ) -> Self {
        DeadlineScheduler {
            inner: Arc::new(Inner {
                db,
                outbox,
                closed_days,
                clock,
                warning_working_days,
            }),
        }
    }

    /// Scans every `every` until `shutdown`.
    pub fn run_every(&self, every: std::time::Duration, shutdown: CancellationToken) {
        let scheduler = self.clone();
        jamaa_server::run_every(every, shutdown, "deadline scan", move || {
            let scheduler = scheduler.clone();
            async move { scheduler.scan(Utc::now()).await.map(|_| ()) }
        });
    }

    /// One scan at `now`: emits the events due and says how many.
    pub async fn scan(&self, now: DateTime<Utc>) -> Result<ScanReport, Error> {
        let inner = &self.inner;
        let today = inner.clock.today(now);
        // Far enough ahead to hold the warning window across weekends and holidays.
        let horizon = today + Duration::days(i64::from(inner.warning_working_days) * 2 + 14);
        let open: Vec<&str> = OPEN_STATUSES
            .iter()
            .map(|status| domain::status_to_db(*status))
            .collect();
        let candidates = service_request::Entity::find()
            .filter(service_request::Column::DueDate.lte(horizon))
            .filter(service_request::Column::Status.is_in(open))
            .filter(service_request::Column::ClockStoppedOn.is_null())
            .filter(
                Condition::any()
                    .add(service_request::Column::BreachedNotifiedFor.is_null())
                    .add(
                        Expr::col(service_request::Column::BreachedNotifiedFor)
                            .ne(Expr::col(service_request::Column::DueDate)),
                    ),
            )
            .order_by_asc(service_request::Column::DueDate)
            .limit(SCAN_BATCH)
            .all(&inner.db)
            .await?;
        let mut calendars: HashMap<Uuid, WorkingCalendar> = HashMap::new();
        let mut report = ScanReport::default();
        for request in candidates {
            let Some(due) = request.due_date else {
                continue;
            };
            let calendar = match calendars.entry(request.commune_id) {
                std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
                std::collections::hash_map::Entry::Vacant(entry) => {
                    entry.insert(inner.closed_days.calendar(request.commune_id).await?)
                }
            };
            if today > due {
                if self.claim_breach(&request, due).await? {
                    report.breached += 1;
                }
            } else if request.approaching_notified_for != Some(due) {
                let left = calendar.working_days_between(today, due);
                if left <= inner.warning_working_days
                    && self.claim_warning(&request, due, left).await?
                {
                    report.approaching += 1;
                }
            }
        }
        Ok(report)
    }

    /// Emits `DeadlineApproaching` for `request` if no scan did for this due date.
    async fn claim_warning(
        &self,
        request: &service_request::Model,
        due: NaiveDate,
        working_days_left: u32,
    ) -> Result<bool, Error> {
        let inner = &self.inner;
        let txn = inner.db.begin().await?;
        let claimed = service_request::Entity::update_many()
            .col_expr(
                service_request::Column::ApproachingNotifiedFor,
                Expr::value(due),
            )
            .filter(service_request::Column::Id.eq(request.id))
            .filter(service_request::Column::DueDate.eq(due))
            .filter(
                Condition::any()
                    .add(service_request::Column::ApproachingNotifiedFor.is_null())
                    .add(service_request::Column::ApproachingNotifiedFor.ne(due)),
            )
            .exec(&txn)
            .await?;
        if claimed.rows_affected != 1 {
            txn.rollback().await?;
            return Ok(false);
        }
        inner
            .outbox
            .add(
                &txn,
                subject(request.id),
                &events::DeadlineApproaching {
                    request_id: request.id.to_string(),
                    commune_id: request.commune_id.to_string(),
                    tracking_code: request.tracking_code.clone(),
                    service_code: request.service_code.clone(),
                    department_id: optional_id(request.department_id),
                    assignee_id: optional_id(request.assignee_id),
                    due_date: due.to_string(),
                    working_days_left: i32::try_from(working_days_left).unwrap_or(i32::MAX),
                },
            )
            .await?;
        inner.outbox.commit(txn).await?;
        Ok(true)
    }

    /// Emits `DeadlineBreached` for `request` and escalates it (priority URGENT) if no scan did
    /// for this due date.
    async fn claim_breach(
        &self,
        request: &service_request::Model,
        due: NaiveDate,
    ) -> Result<bool, Error> {
        let inner = &self.inner;
        let txn = inner.db.begin().await?;
        let claimed = service_request::Entity::update_many()
            .col_expr(
                service_request::Column::BreachedNotifiedFor,
                Expr::value(due),
            )
            .col_expr(
                service_request::Column::Priority,
                Expr::value(domain::priority_to_db(
                    jamaa_proto::servicerequest::v1::RequestPriority::Urgent,
                )),
            )
            .col_expr(
                service_request::Column::Version,
                Expr::col(service_request::Column::Version).add(1),
            )
            .filter(service_request::Column::Id.eq(request.id))
            .filter(service_request::Column::DueDate.eq(due))
            .filter(
                Condition::any()
                    .add(service_request::Column::BreachedNotifiedFor.is_null())
                    .add(service_request::Column::BreachedNotifiedFor.ne(due)),
            )
            .exec(&txn)
            .await?;
        if claimed.rows_affected != 1 {
            txn.rollback().await?;
            return Ok(false);
        }
        inner
            .outbox
            .add(
                &txn,
                subject(request.id),
                &events::DeadlineBreached {
                    request_id: request.id.to_string(),
                    commune_id: request.commune_id.to_string(),
                    tracking_code: request.tracking_code.clone(),
                    service_code: request.service_code.clone(),
                    department_id: optional_id(request.department_id),
                    assignee_id: optional_id(request.assignee_id),
                    due_date: due.to_string(),
                    citizen_id: optional_id(account_of(request)),
                },
            )
            .await?;
        inner.outbox.commit(txn).await?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_communes_day_starts_at_their_midnight() {
        let clock = CommuneClock::new(60);
        let late = DateTime::parse_from_rfc3339("2026-12-03T23:30:00Z")
            .expect("a time")
            .with_timezone(&Utc);
        assert_eq!(
            clock.today(late),
            NaiveDate::from_ymd_opt(2026, 12, 4).expect("a date")
        );
        assert_eq!(
            CommuneClock::new(0).today(late),
            NaiveDate::from_ymd_opt(2026, 12, 3).expect("a date")
        );
    }
}
