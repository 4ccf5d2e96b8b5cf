//! Public statistics: per commune, service and period, how many requests were received and
//! answered, how long answers took in working days (median, 90th percentile), the share answered
//! on time, the mean satisfaction and what is still open; broken down by gender or area for the
//! commune's equity body, with cells under [`SMALL_CELL`] suppressed. No personal data.
//!
//! Reads never scan the requests: a roller (every few seconds) recomputes the monthly buckets
//! `(service, month, gender, area)` of the requests that changed since its watermark and stores
//! them in `request_stats`, with each bucket's answer times as a histogram, so periods merge
//! exactly. The request path writes no counter (the hot-row trap of `performance-notes.md`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, Utc};
use jamaa_proto::servicerequest::v1::RequestStatus;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set, TransactionTrait,
};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::calendar::WorkingCalendar;
use crate::closed_days::ClosedDays;
use crate::deadlines::CommuneClock;
use crate::domain::{self, OPEN_STATUSES};
use crate::error::Error;
use crate::storage::{citizen_profile, request_stat, service, service_request, stats_cursor};

/// Cells counting fewer requests than this are suppressed in breakdowns.
pub const SMALL_CELL: i64 = 5;
/// Rows whose `updated_at` is this close behind the watermark are read again (a transaction
/// that took its time stamp before the last roll but committed after it is not missed).
const OVERLAP_SECONDS: i64 = 10;
/// The most changed requests one page of a roll reads (a roll reads page after page, by
/// `(updated_at, id)`, until it has seen every change since the watermark's overlap).
pub const ROLL_BATCH: u64 = 20_000;
/// What a roll reads of a changed request: commune, service, created, updated, id.
type ChangedRequest = (Uuid, Uuid, DateTime<Utc>, DateTime<Utc>, Uuid);
/// The most requests one page of a bucket's recount reads.
pub const RECOMPUTE_PAGE: u64 = 5_000;
/// What a recount reads of a request: id, created, citizen, area, status, answered, resolved,
/// due date, rating.
type CountedRequest = (
    Uuid,
    DateTime<Utc>,
    Uuid,
    Option<String>,
    String,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
    Option<NaiveDate>,
    Option<i32>,
);

/// The name of the roller's watermark row.
const CURSOR: &str = "request_stats";

/// What a breakdown groups by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Breakdown {
    None,
    Gender,
    Area,
}

/// The counts of one group of requests, mergeable.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Aggregate {
    pub received: i64,
    pub resolved: i64,
    pub rejected: i64,
    /// Still open (filed in the period, not answered or reopened).
    pub open: i64,
    /// Answered requests that had a due date, and those answered by it.
    pub with_deadline: i64,
    pub on_time: i64,
    pub rating_count: i64,
    pub rating_sum: i64,
    /// Answered requests by their processing time in working days.
    pub days: BTreeMap<u32, i64>,
}

impl Aggregate {
    pub fn merge(&mut self, other: &Aggregate) {
        self.received += other.received;
        self.resolved += other.resolved;
        self.rejected += other.rejected;
        self.open += other.open;
        self.with_deadline += other.with_deadline;
        self.on_time += other.on_time;
        self.rating_count += other.rating_count;
        self.rating_sum += other.rating_sum;
        for (days, count) in &other.days {
            *self.days.entry(*days).or_default() += count;
        }
    }

    pub fn answered(&self) -> i64 {
        self.resolved + self.rejected
    }

    /// The `p`-th percentile (0 < p ≤ 1) of processing days, nearest rank: the smallest value
    /// with at least ⌈p·n⌉ answers at or below it. `None` without answers.
    pub fn percentile(&self, p: f64) -> Option<u32> {
        let total: i64 = self.days.values().sum();
        if total == 0 {
            return None;
        }
        // ⌈p·n⌉ in integers: p is given in thousandths.
        let thousandths = (p * 1000.0).round() as i64;
        let rank = (thousandths * total + 999) / 1000;
        let mut seen = 0;
        for (days, count) in &self.days {
            seen += count;
            if seen >= rank.max(1) {
                return Some(*days);
            }
        }
        self.days.keys().next_back().copied()
    }

    /// The share of answers with a due date given by it.
    pub fn on_time_share(&self) -> Option<f64> {
        (self.with_deadline > 0).then(|| self.on_time as f64 / self.with_deadline as f64)
    }

    pub fn mean_satisfaction(&self) -> Option<f64> {
        (self.rating_count > 0).then(|| self.rating_sum as f64 / self.rating_count as f64)
    }
}

/// One row of a statistics answer.
#[derive(Debug, Clone, PartialEq)]
pub struct StatisticsRow {
    /// Empty for the commune's total.
    pub service_code: String,
    /// The breakdown's value (`female`, `male`, `unknown`, an area…); empty without one.
    pub group: String,
    pub aggregate: Aggregate,
    /// Whether the numbers are withheld (a breakdown cell under [`SMALL_CELL`]).
    pub suppressed: bool,
}

/// The statistics operations and the roller (cheap to clone).
#[derive(Clone)]
pub struct Statistics {
    db: DatabaseConnection,
    closed_days: Arc<ClosedDays>,
    clock: CommuneClock,
}

impl Statistics {
    pub fn new(db: DatabaseConnection, closed_days: Arc<ClosedDays>, clock: CommuneClock) -> Self {
        Statistics {
            db,
            closed_days,
            clock,
        }
    }

    /// Rolls every `every` until `shutdown`.
    pub fn run_every(&self, every: std::time::Duration, shutdown: CancellationToken) {
        let statistics = self.clone();
        jamaa_server::run_every(every, shutdown, "statistics roll", move || {
            let statistics = statistics.clone();
            async move { statistics.roll().await.map(|_| ()) }
        });
    }

    /// Recomputes the buckets of the requests changed since the watermark; returns how many.
    pub async fn roll(&self) -> Result<usize, Error> {
        let cursor = stats_cursor::Entity::find_by_id(CURSOR.to_string())
            .one(&self.db)
            .await?;
        let since = cursor
            .as_ref()
            .map(|cursor| cursor.watermark - Duration::seconds(OVERLAP_SECONDS))
            .unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
        // Page by (updated_at, id): more than a page of changes inside the overlap (a burst, a
        // bulk import) must not make every roll read the same first page again.
        let mut buckets: HashSet<(Uuid, Uuid, NaiveDate)> = HashSet::new();
        let mut watermark: Option<DateTime<Utc>> = None;
        let mut after: Option<(DateTime<Utc>, Uuid)> = None;
        loop {
            let mut page = service_request::Entity::find()
                .select_only()
                .column(service_request::Column::CommuneId)
                .column(service_request::Column::ServiceId)
                .column(service_request::Column::CreatedAt)
                .column(service_request::Column::UpdatedAt)
                .column(service_request::Column::Id);
            page = match after {
                None => page.filter(service_request::Column::UpdatedAt.gt(since)),
                Some((updated_at, id)) => page.filter(after_key(
                    service_request::Column::UpdatedAt,
                    updated_at,
                    id,
                )),
            };
            let changed: Vec<ChangedRequest> = page
                .order_by_asc(service_request::Column::UpdatedAt)
                .order_by_asc(service_request::Column::Id)
                .limit(ROLL_BATCH)
                .into_tuple()
                .all(&self.db)
                .await?;
            buckets.extend(changed.iter().map(|(commune, service, created, _, _)| {
                (*commune, *service, month_of(self.clock.today(*created)))
            }));
            if let Some((_, _, _, updated_at, id)) = changed.last() {
                watermark = watermark.max(Some(*updated_at));
                after = Some((*updated_at, *id));
            }
            if (changed.len() as u64) < ROLL_BATCH {
                break;
            }
        }
        let Some(watermark) = watermark else {
            return Ok(0);
        };
        for (commune_id, service_id, month) in &buckets {
            self.recompute(*commune_id, *service_id, *month).await?;
        }
        let txn = self.db.begin().await?;
        stats_cursor::Entity::delete_by_id(CURSOR.to_string())
            .exec(&txn)
            .await?;
        stats_cursor::ActiveModel {
            name: Set(CURSOR.to_string()),
            watermark: Set(watermark.max(cursor.map(|c| c.watermark).unwrap_or(watermark))),
        }
        .insert(&txn)
        .await?;
        txn.commit().await?;
        Ok(buckets.len())
    }

    /// Recomputes one month of one service from its requests.
    async fn recompute(
        &self,
        commune_id: Uuid,
        service_id: Uuid,
        month: NaiveDate,
    ) -> Result<(), Error> {
        let start = self.clock.to_utc(month.and_time(NaiveTime::MIN));
        let end = self
            .clock
            .to_utc(next_month(month).and_time(NaiveTime::MIN));
        let calendar = self.closed_days.calendar(commune_id).await?;
        let mut groups: BTreeMap<(String, String), Aggregate> = BTreeMap::new();
        // Page by (created_at, id) over only the columns counted: a roll's memory follows the
        // page and the buckets, not the month (a million requests in one month must not be held
        // at once).
        let mut after: Option<(DateTime<Utc>, Uuid)> = None;
        loop {
            let mut page = service_request::Entity::find()
                .select_only()
                .column(service_request::Column::Id)
                .column(service_request::Column::CreatedAt)
                .column(service_request::Column::CitizenId)
                .column(service_request::Column::Area)
                .column(service_request::Column::Status)
                .column(service_request::Column::AnsweredAt)
                .column(service_request::Column::ResolvedAt)
                .column(service_request::Column::DueDate)
                .column(service_request::Column::Rating)
                .filter(service_request::Column::ServiceId.eq(service_id))
                .filter(service_request::Column::CreatedAt.lt(end));
            page = match after {
                None => page.filter(service_request::Column::CreatedAt.gte(start)),
                Some((created_at, id)) => page.filter(after_key(
                    service_request::Column::CreatedAt,
                    created_at,
                    id,
                )),
            };
            let requests: Vec<CountedRequest> = page
                .order_by_asc(service_request::Column::CreatedAt)
                .order_by_asc(service_request::Column::Id)
                .limit(RECOMPUTE_PAGE)
                .into_tuple()
                .all(&self.db)
                .await?;
            let genders = self.genders_of(&requests).await?;
            for request in &requests {
                self.count(request, &genders, &calendar, &mut groups);
            }
            match requests.last() {
                Some((id, created_at, ..)) if requests.len() as u64 == RECOMPUTE_PAGE => {
                    after = Some((*created_at, *id));
                }
                _ => break,
            }
        }
        let (mut commune_code, mut service_code) = (String::new(), String::new());
        if let Some(service) = service::Entity::find_by_id(service_id)
            .one(&self.db)
            .await?
        {
            commune_code = service.commune_code;
            service_code = service.code;
        }
        let month_text = month.format("%Y-%m").to_string();
        let txn = self.db.begin().await?;
        request_stat::Entity::delete_many()
            .filter(request_stat::Column::ServiceId.eq(service_id))
            .filter(request_stat::Column::Month.eq(month_text.as_str()))
            .exec(&txn)
            .await?;
        for ((gender, area), aggregate) in groups {
            let days = serde_json::to_string(&aggregate.days)
                .map_err(|error| Error::Internal(format!("cannot encode a histogram: {error}")))?;
            request_stat::ActiveModel {
                id: Set(Uuid::now_v7()),
                commune_id: Set(commune_id),
                commune_code: Set(commune_code.clone()),
                service_id: Set(service_id),
                service_code: Set(service_code.clone()),
                month: Set(month_text.clone()),
                gender: Set(gender),
                area: Set(area),
                received: Set(aggregate.received),
                resolved: Set(aggregate.resolved),
                rejected: Set(aggregate.rejected),
                open: Set(aggregate.open),
                with_deadline: Set(aggregate.with_deadline),
                on_time: Set(aggregate.on_time),
                rating_count: Set(aggregate.rating_count),
                rating_sum: Set(aggregate.rating_sum),
                days: Set(days),
            }
            .insert(&txn)
            .await?;
        }
        txn.commit().await?;
        Ok(())
    }

    /// The genders of the citizens who filed `requests` (those without a profile are absent).
    async fn genders_of(
        &self,
        requests: &[CountedRequest],
    ) -> Result<HashMap<Uuid, String>, Error> {
        let citizens: Vec<Uuid> = requests
            .iter()
            .map(|(_, _, citizen_id, ..)| *citizen_id)
            .filter(|id| !id.is_nil())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let mut genders = HashMap::new();
        for chunk in citizens.chunks(500) {
            for profile in citizen_profile::Entity::find()
                .filter(citizen_profile::Column::UserId.is_in(chunk.to_vec()))
                .all(&self.db)
                .await?
            {
                genders.insert(profile.user_id, profile.gender);
            }
        }
        Ok(genders)
    }

    /// Counts one request into its group of `groups`.
    fn count(
        &self,
        request: &CountedRequest,
        genders: &HashMap<Uuid, String>,
        calendar: &WorkingCalendar,
        groups: &mut BTreeMap<(String, String), Aggregate>,
    ) {
        let (_, created_at, citizen_id, area, status, answered_at, resolved_at, due_date, rating) =
            request;
        let gender = genders
            .get(citizen_id)
            .cloned()
            .unwrap_or_else(|| "unknown".to_string());
        let area = area.clone().unwrap_or_else(|| "unknown".to_string());
        let aggregate = groups.entry((gender, area)).or_default();
        aggregate.received += 1;
        let status = domain::status_from_db(status).unwrap_or(RequestStatus::Unspecified);
        let open = OPEN_STATUSES.contains(&status);
        if open {
            aggregate.open += 1;
        }
        if let (Some(answered_at), false) = (answered_at, open) {
            let resolved = status == RequestStatus::Resolved
                || (status == RequestStatus::Closed && resolved_at.is_some());
            let rejected = status == RequestStatus::Rejected
                || (status == RequestStatus::Closed && resolved_at.is_none());
            if resolved || rejected {
                if resolved {
                    aggregate.resolved += 1;
                } else {
                    aggregate.rejected += 1;
                }
                let answered_on = self.clock.today(*answered_at);
                let days =
                    calendar.working_days_between(self.clock.today(*created_at), answered_on);
                *aggregate.days.entry(days).or_default() += 1;
                if let Some(due) = due_date {
                    aggregate.with_deadline += 1;
                    if answered_on <= *due {
                        aggregate.on_time += 1;
                    }
                }
            }
        }
        if let Some(rating) = rating {
            aggregate.rating_count += 1;
            aggregate.rating_sum += i64::from(*rating);
        }
    }

    /// The statistics of the commune with code `commune_code` for the months from `first` to
    /// `last`: one row per service (and breakdown group), then the commune's total (service
    /// code empty).
    pub async fn query(
        &self,
        commune_code: &str,
        service_code: Option<&str>,
        first: NaiveDate,
        last: NaiveDate,
        breakdown: Breakdown,
    ) -> Result<Vec<StatisticsRow>, Error> {
        let mut query = request_stat::Entity::find()
            .filter(request_stat::Column::CommuneCode.eq(commune_code))
            .filter(request_stat::Column::Month.gte(first.format("%Y-%m").to_string()))
            .filter(request_stat::Column::Month.lte(last.format("%Y-%m").to_string()));
        if let Some(code) = service_code {
            query = query.filter(request_stat::Column::ServiceCode.eq(code));
        }
        let cells = query.all(&self.db).await?;
        let mut rows: BTreeMap<(String, String), Aggregate> = BTreeMap::new();
        let mut totals: BTreeMap<String, Aggregate> = BTreeMap::new();
        for cell in &cells {
            let group = match breakdown {
                Breakdown::None => String::new(),
                Breakdown::Gender => cell.gender.clone(),
                Breakdown::Area => cell.area.clone(),
            };
            let aggregate = aggregate_of(cell)?;
            rows.entry((cell.service_code.clone(), group.clone()))
                .or_default()
                .merge(&aggregate);
            totals.entry(group).or_default().merge(&aggregate);
        }
        let suppress =
            |aggregate: &Aggregate| breakdown != Breakdown::None && aggregate.received < SMALL_CELL;
        let mut answer: Vec<StatisticsRow> = rows
            .into_iter()
            .map(|((service_code, group), aggregate)| StatisticsRow {
                suppressed: suppress(&aggregate),
                service_code,
                group,
                aggregate,
            })
            .collect();
        answer.extend(totals.into_iter().map(|(group, aggregate)| StatisticsRow {
            suppressed: suppress(&aggregate),
            service_code: String::new(),
            group,
            aggregate,
        }));
        for row in &mut answer {
            if row.suppressed {
                row.aggregate = Aggregate::default();
            }
        }
        Ok(answer)
    }
}

fn aggregate_of(cell: &request_stat::Model) -> Result<Aggregate, Error> {
    let days: BTreeMap<u32, i64> = serde_json::from_str(&cell.days)
        .map_err(|error| Error::Internal(format!("unreadable histogram: {error}")))?;
    Ok(Aggregate {
        received: cell.received,
        resolved: cell.resolved,
        rejected: cell.rejected,
        open: cell.open,
        with_deadline: cell.with_deadline,
        on_time: cell.on_time,
        rating_count: cell.rating_count,
        rating_sum: cell.rating_sum,
        days,
    })
}

/// The first day of `date`'s month.
/// The rows after `(at, id)` in `(column, id)` order, for keyset pages. The plain bound
/// `column >= at` comes first so that the database starts its index scan there: written only as
/// `column > at OR (column = at AND id > id)`, PostgreSQL scanned from the first row every page
/// (a month of a million requests: 178 ms a page instead of 3 ms, quadratic in all).
fn after_key(column: service_request::Column, at: DateTime<Utc>, id: Uuid) -> sea_orm::Condition {
    sea_orm::Condition::all().add(column.gte(at)).add(
        sea_orm::Condition::any()
            .add(column.gt(at))
            .add(service_request::Column::Id.gt(id)),
    )
}

pub fn month_of(date: NaiveDate) -> NaiveDate {
    date.with_day(1).unwrap_or(date)
}

fn next_month(month: NaiveDate) -> NaiveDate {
    let (year, next) = if month.month() == 12 {
        (month.year() + 1, 1)
    } else {
        (month.year(), month.month() + 1)
    };
    NaiveDate::from_ymd_opt(year, next, 1).unwrap_or(month)
}

/// Statistics as CSV (RFC 4180), one line per row, a header first.
pub fn to_csv(rows: &[StatisticsRow]) -> String {
    let mut csv = String::from(
        "service_code,group,received,resolved,rejected,median_working_days,p90_working_days,on_time_share,mean_satisfaction,open_backlog,suppressed\r\n",
    );
    let number = |value: Option<f64>| value.map(|v| format!("{v:.3}")).unwrap_or_default();
    let days = |value: Option<u32>| value.map(|v| v.to_string()).unwrap_or_default();
    for row in rows {
        let a = &row.aggregate;
        csv.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{},{}\r\n",
            csv_field(&row.service_code),
            csv_field(&row.group),
            a.received,
            a.resolved,
            a.rejected,
            days(a.percentile(0.5)),
            days(a.percentile(0.9)),
            number(a.on_time_share()),
            number(a.mean_satisfaction()),
            a.open,
            row.suppressed,
        ));
    }
    csv
}

fn csv_field(value: &str) -> String {
    if value.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_days(days: &[(u32, i64)]) -> Aggregate {
        Aggregate {
            days: days.iter().copied().collect(),
            ..Default::default()
        }
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        // 10 answers: 1,1,2,2,2,3,5,8,13,21 working days.
        let aggregate = with_days(&[(1, 2), (2, 3), (3, 1), (5, 1), (8, 1), (13, 1), (21, 1)]);
        assert_eq!(aggregate.percentile(0.5), Some(2));
        assert_eq!(aggregate.percentile(0.9), Some(13));
        assert_eq!(aggregate.percentile(1.0), Some(21));
        assert_eq!(with_days(&[(4, 1)]).percentile(0.9), Some(4));
        assert_eq!(Aggregate::default().percentile(0.5), None);
    }

    #[test]
    fn merged_histograms_give_the_exact_percentiles() {
        let mut january = with_days(&[(1, 3), (10, 1)]);
        let february = with_days(&[(2, 2), (10, 4)]);
        january.merge(&february);
        // 1,1,1,2,2,10,10,10,10,10 → median (5th) 2, p90 (9th) 10.
        assert_eq!(january.percentile(0.5), Some(2));
        assert_eq!(january.percentile(0.9), Some(10));
    }

    #[test]
    fn csv_quotes_what_needs_quoting() {
        let rows = [StatisticsRow {
            service_code: "pothole".into(),
            group: "Hay \"Salam\", north".into(),
            aggregate: Aggregate {
                received: 7,
                resolved: 2,
                with_deadline: 2,
                on_time: 1,
                rating_count: 2,
                rating_sum: 9,
                days: [(3, 2)].into_iter().collect(),
                ..Default::default()
            },
            suppressed: false,
        }];
        let csv = to_csv(&rows);
        let line = csv.lines().nth(1).expect("a data line");
        assert_eq!(
            line,
            "pothole,\"Hay \"\"Salam\"\", north\",7,2,0,3,3,0.500,4.500,0,false"
        );
    }

    #[test]
    fn months_roll_over_the_year() {
        let december = NaiveDate::from_ymd_opt(2026, 12, 17).expect("date");
        assert_eq!(
            month_of(december),
            NaiveDate::from_ymd_opt(2026, 12, 1).expect("date")
        );
        assert_eq!(
            next_month(month_of(december)),
            NaiveDate::from_ymd_opt(2027, 1, 1).expect("date")
        );
    }
}
