//! Desk appointments: offices with opening hours, slots with a capacity for one service, the
//! citizens' bookings, the desk's record of who came, and reminders.
//!
//! A slot is never booked beyond its capacity: a booking takes a place with a conditional
//! update (`booked = booked + 1 WHERE booked < capacity`) in the transaction that inserts the
//! appointment, so concurrent bookings of the last places serialise on the slot's row and the
//! losers are told the slot is full.

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use jamaa_events::Outbox;
use jamaa_proto::events::v1 as events;
use jamaa_proto::servicerequest::v1::{AppointmentStatus, OpeningHours};
use jamaa_proto::timestamp_from_millis;
use jamaa_proto::r#type::v1::LocalizedText;
use sea_orm::sea_query::{Condition, Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, DatabaseTransaction, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait,
};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::closed_days::calendar_of;
use crate::deadlines::CommuneClock;
use crate::error::{Error, unique_violation};
use crate::storage::{appointment, office, service, slot};

/// The most days one CreateSlots or ListSlots call spans.
pub const MAX_RANGE_DAYS: i64 = 92;
/// The most slots one CreateSlots call makes.
const MAX_SLOTS_PER_CALL: usize = 5000;

/// A new office, parsed.
pub struct NewOffice {
    pub commune_id: Uuid,
    pub commune_code: String,
    pub name: LocalizedText,
    pub address: String,
    /// Checked: weekdays 1–7, `opens` before `closes`.
    pub opening_hours: Vec<Interval>,
}

/// One opening interval of an office, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Interval {
    /// 1 (Monday) to 7 (Sunday).
    pub weekday: u32,
    pub opens: NaiveTime,
    pub closes: NaiveTime,
}

impl Interval {
    pub fn parse(hours: &OpeningHours) -> Result<Interval, String> {
        let weekday = u32::try_from(hours.weekday)
            .ok()
            .filter(|day| (1..=7).contains(day))
            .ok_or_else(|| "weekday must be 1 (Monday) to 7 (Sunday)".to_string())?;
        let time = |raw: &str| {
            NaiveTime::parse_from_str(raw.trim(), "%H:%M")
                .map_err(|_| format!("{raw:?} is not a time written HH:MM"))
        };
        let (opens, closes) = (time(&hours.opens)?, time(&hours.closes)?);
        if opens >= closes {
            return Err("opens must be before closes".into());
        }
        Ok(Interval {
            weekday,
            opens,
            closes,
        })
    }

    pub fn to_proto(self) -> OpeningHours {
        OpeningHours {
            weekday: i32::try_from(self.weekday).unwrap_or_default(),
            opens: self.opens.format("%H:%M").to_string(),
            closes: self.closes.format("%H:%M").to_string(),
        }
    }
}

/// Slots to open, parsed.
pub struct NewSlots {
    pub commune_id: Uuid,
    pub office_id: Uuid,
    pub service_id: Uuid,
    pub start_date: NaiveDate,
    pub end_date: NaiveDate,
    pub slot_minutes: u32,
    pub capacity: i32,
}

/// Who acts on an appointment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    /// The citizen whose appointment it is.
    Citizen(Uuid),
    /// Desk staff of the commune.
    Desk(Uuid),
}

/// The appointment operations.
pub struct Appointments {
    db: DatabaseConnection,
    outbox: Outbox,
    clock: CommuneClock,
}

impl Appointments {
    pub fn new(db: DatabaseConnection, outbox: Outbox, clock: CommuneClock) -> Self {
        Appointments { db, outbox, clock }
    }

    pub async fn create_office(&self, new: NewOffice) -> Result<office::Model, Error> {
        let hours = serde_json::to_string(&new.opening_hours)
            .map_err(|error| Error::Internal(format!("cannot encode opening hours: {error}")))?;
        Ok(office::ActiveModel {
            id: Set(Uuid::now_v7()),
            commune_id: Set(new.commune_id),
            commune_code: Set(new.commune_code),
            name_ar: Set(new.name.ar),
            name_fr: Set(new.name.fr),
            name_en: Set(new.name.en),
            name_tzm: Set(new.name.tzm),
            address: Set(new.address),
            opening_hours: Set(hours),
            created_at: Set(Utc::now()),
        }
        .insert(&self.db)
        .await?)
    }

    pub async fn list_offices(&self, commune_code: &str) -> Result<Vec<office::Model>, Error> {
        Ok(office::Entity::find()
            .filter(office::Column::CommuneCode.eq(commune_code))
            .order_by_asc(office::Column::Id)
            .all(&self.db)
            .await?)
    }

    async fn office_of_commune(&self, commune_id: Uuid, id: Uuid) -> Result<office::Model, Error> {
        office::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .filter(|office| office.commune_id == commune_id)
            .ok_or_else(|| Error::NotFound(format!("office {id}")))
    }

    /// Opens the slots of `new` on the working days of the commune's calendar within the
    /// office's opening hours; returns how many were added (existing ones are kept).
    pub async fn create_slots(&self, new: NewSlots) -> Result<usize, Error> {
        let office = self
            .office_of_commune(new.commune_id, new.office_id)
            .await?;
        service::Entity::find_by_id(new.service_id)
            .one(&self.db)
            .await?
            .filter(|service| service.commune_id == new.commune_id)
            .ok_or_else(|| Error::NotFound(format!("service {}", new.service_id)))?;
        let hours = opening_hours_of(&office)?;
        let calendar = calendar_of(&self.db, new.commune_id).await?;
        let now = Utc::now();
        let step = Duration::minutes(i64::from(new.slot_minutes));
        let mut starts = Vec::new();
        let mut day = new.start_date;
        while day <= new.end_date {
            if calendar.is_working_day(day) {
                let weekday = chrono::Datelike::weekday(&day).number_from_monday();
                for interval in hours.iter().filter(|interval| interval.weekday == weekday) {
                    let mut start = day.and_time(interval.opens);
                    while start + step <= day.and_time(interval.closes) {
                        let at = self.clock.to_utc(start);
                        if at > now {
                            starts.push(at);
                        }
                        start += step;
                    }
                }
            }
            day += Duration::days(1);
        }
        if starts.len() > MAX_SLOTS_PER_CALL {
            return Err(Error::precondition(
                "TOO_MANY_SLOTS",
                format!(
                    "at most {MAX_SLOTS_PER_CALL} slots per call: ask for fewer days or longer slots"
                ),
            ));
        }
        let existing: Vec<DateTime<Utc>> = slot::Entity::find()
            .filter(slot::Column::OfficeId.eq(new.office_id))
            .filter(slot::Column::ServiceId.eq(new.service_id))
            .filter(slot::Column::StartAt.is_in(starts.clone()))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|slot| slot.start_at)
            .collect();
        let fresh: Vec<slot::ActiveModel> = starts
            .into_iter()
            .filter(|start| !existing.contains(start))
            .map(|start| slot::ActiveModel {
                id: Set(Uuid::now_v7()),
                commune_id: Set(new.commune_id),
                office_id: Set(new.office_id),
                service_id: Set(new.service_id),
                start_at: Set(start),
                duration_minutes: Set(i32::try_from(new.slot_minutes).unwrap_or(i32::MAX)),
                capacity: Set(new.capacity),
                booked: Set(0),
            })
            .collect();
        let count = fresh.len();
        if count > 0 {
            let txn = self.db.begin().await?;
            for chunk in fresh.chunks(500) {
                slot::Entity::insert_many(chunk.to_vec()).exec(&txn).await?;
            }
            txn.commit().await?;
        }
        Ok(count)
    }

    /// The slots of an office for a service from `start_date` to `end_date` (local dates).
    pub async fn list_slots(
        &self,
        office_id: Uuid,
        service_id: Uuid,
        start_date: NaiveDate,
        end_date: NaiveDate,
        available_only: bool,
    ) -> Result<Vec<slot::Model>, Error> {
        let from = self.clock.to_utc(start_date.and_time(NaiveTime::MIN));
        let to = self
            .clock
            .to_utc((end_date + Duration::days(1)).and_time(NaiveTime::MIN));
        let mut query = slot::Entity::find()
            .filter(slot::Column::OfficeId.eq(office_id))
            .filter(slot::Column::ServiceId.eq(service_id))
            .filter(slot::Column::StartAt.gte(from))
            .filter(slot::Column::StartAt.lt(to));
        if available_only {
            query =
                query.filter(Expr::col(slot::Column::Booked).lt(Expr::col(slot::Column::Capacity)));
        }
        Ok(query
            .order_by_asc(slot::Column::StartAt)
            .limit(2000)
            .all(&self.db)
            .await?)
    }

    /// Books a place in `slot_id` for the citizen; idempotent by `appointment_id`.
    pub async fn book(
        &self,
        appointment_id: Uuid,
        slot_id: Uuid,
        citizen_id: Uuid,
        commune_id: Uuid,
        request_id: Option<Uuid>,
    ) -> Result<appointment::Model, Error> {
        if let Some(existing) = appointment::Entity::find_by_id(appointment_id)
            .one(&self.db)
            .await?
        {
            return if existing.citizen_id == citizen_id {
                Ok(existing)
            } else {
                Err(Error::precondition(
                    "APPOINTMENT_ID_TAKEN",
                    "this appointment_id is used already: choose a new UUID",
                ))
            };
        }
        let now = Utc::now();
        let txn = self.db.begin().await?;
        let slot = bookable_slot(&txn, slot_id, commune_id, now).await?;
        take_place(&txn, &slot).await?;
        let booked = appointment::ActiveModel {
            id: Set(appointment_id),
            commune_id: Set(commune_id),
            slot_id: Set(slot.id),
            office_id: Set(slot.office_id),
            service_id: Set(slot.service_id),
            citizen_id: Set(citizen_id),
            request_id: Set(request_id),
            start_at: Set(slot.start_at),
            status: Set(status_to_db(AppointmentStatus::Booked).to_string()),
            reminded_for: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
        }
        .insert(&txn)
        .await
        .map_err(|error| {
            unique_violation(
                error,
                Error::precondition(
                    "APPOINTMENT_ID_TAKEN",
                    "this appointment_id is used already: choose a new UUID",
                ),
            )
        })?;
        let office_name = office_name(&txn, slot.office_id).await?;
        self.outbox
            .add(
                &txn,
                subject(booked.id),
                &events::AppointmentBooked {
                    appointment_id: booked.id.to_string(),
                    commune_id: commune_id.to_string(),
                    citizen_id: citizen_id.to_string(),
                    office_id: slot.office_id.to_string(),
                    service_id: slot.service_id.to_string(),
                    start_time: Some(timestamp_from_millis(slot.start_at.timestamp_millis())),
                    office_name: Some(office_name),
                    local_start: self.clock.local_text(slot.start_at),
                },
            )
            .await?;
        self.outbox.commit(txn).await?;
        Ok(booked)
    }

    /// Moves the citizen's booked appointment to `slot_id` (same office and service).
    pub async fn move_to(
        &self,
        appointment_id: Uuid,
        slot_id: Uuid,
        citizen_id: Uuid,
    ) -> Result<appointment::Model, Error> {
        let now = Utc::now();
        let txn = self.db.begin().await?;
        let current = own_booked(&txn, appointment_id, Actor::Citizen(citizen_id), None).await?;
        let target = bookable_slot(&txn, slot_id, current.commune_id, now).await?;
        if target.office_id != current.office_id || target.service_id != current.service_id {
            return Err(Error::precondition(
                "OTHER_OFFICE_OR_SERVICE",
                "an appointment moves only to a slot of the same office and service",
            ));
        }
        if target.id == current.slot_id {
            txn.rollback().await?;
            return Ok(current);
        }
        take_place(&txn, &target).await?;
        free_place(&txn, current.slot_id).await?;
        let moved = appointment::Entity::update_many()
            .col_expr(appointment::Column::SlotId, Expr::value(target.id))
            .col_expr(appointment::Column::StartAt, Expr::value(target.start_at))
            .col_expr(
                appointment::Column::RemindedFor,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(appointment::Column::UpdatedAt, Expr::value(now))
            .filter(appointment::Column::Id.eq(current.id))
            .filter(appointment::Column::SlotId.eq(current.slot_id))
            .filter(appointment::Column::Status.eq(status_to_db(AppointmentStatus::Booked)))
            .exec(&txn)
            .await?;
        if moved.rows_affected != 1 {
            return Err(Error::Conflict);
        }
        txn.commit().await?;
        self.reload(appointment_id).await
    }

    /// Cancels a booked appointment and frees its place.
    pub async fn cancel(
        &self,
        appointment_id: Uuid,
        actor: Actor,
        commune_id: Uuid,
    ) -> Result<appointment::Model, Error> {
        let txn = self.db.begin().await?;
        let current = own_booked(&txn, appointment_id, actor, Some(commune_id)).await?;
        set_status(
            &txn,
            &current,
            AppointmentStatus::Booked,
            AppointmentStatus::Cancelled,
        )
        .await?;
        free_place(&txn, current.slot_id).await?;
        txn.commit().await?;
        self.reload(appointment_id).await
    }

    /// Records at the desk what became of an appointment: BOOKED → ARRIVED, SERVED or NO_SHOW;
    /// ARRIVED → SERVED.
    pub async fn record_outcome(
        &self,
        appointment_id: Uuid,
        commune_id: Uuid,
        outcome: AppointmentStatus,
    ) -> Result<appointment::Model, Error> {
        let txn = self.db.begin().await?;
        let current = appointment::Entity::find_by_id(appointment_id)
            .one(&txn)
            .await?
            .filter(|appointment| appointment.commune_id == commune_id)
            .ok_or_else(|| Error::NotFound(format!("appointment {appointment_id}")))?;
        let from = status_from_db(&current.status);
        let allowed = matches!(
            (from, outcome),
            (
                AppointmentStatus::Booked,
                AppointmentStatus::Arrived | AppointmentStatus::Served | AppointmentStatus::NoShow
            ) | (AppointmentStatus::Arrived, AppointmentStatus::Served)
        );
        if !allowed {
            return Err(Error::precondition(
                "INVALID_APPOINTMENT_TRANSITION",
                format!(
                    "an appointment {} cannot become {}",
                    status_label(from),
                    status_label(outcome)
                ),
            ));
        }
        set_status(&txn, &current, from, outcome).await?;
        txn.commit().await?;
        self.reload(appointment_id).await
    }

    /// A citizen's appointments, soonest first.
    pub async fn list_own(&self, citizen_id: Uuid) -> Result<Vec<appointment::Model>, Error> {
        Ok(appointment::Entity::find()
            .filter(appointment::Column::CitizenId.eq(citizen_id))
            .order_by_asc(appointment::Column::StartAt)
            .limit(500)
            .all(&self.db)
            .await?)
    }

    /// An office's appointments on a local date, by start time (staff of its commune).
    pub async fn list_for_office(
        &self,
        commune_id: Uuid,
        office_id: Uuid,
        date: NaiveDate,
    ) -> Result<Vec<appointment::Model>, Error> {
        self.office_of_commune(commune_id, office_id).await?;
        let from = self.clock.to_utc(date.and_time(NaiveTime::MIN));
        let to = self
            .clock
            .to_utc((date + Duration::days(1)).and_time(NaiveTime::MIN));
        Ok(appointment::Entity::find()
            .filter(appointment::Column::OfficeId.eq(office_id))
            .filter(appointment::Column::StartAt.gte(from))
            .filter(appointment::Column::StartAt.lt(to))
            .order_by_asc(appointment::Column::StartAt)
            .limit(2000)
            .all(&self.db)
            .await?)
    }

    async fn reload(&self, id: Uuid) -> Result<appointment::Model, Error> {
        appointment::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .ok_or_else(|| Error::Internal(format!("appointment {id} vanished")))
    }
}

/// Sends `AppointmentReminder` for booked appointments starting within the window, once per
/// appointment and start time, whichever replica claims it (cheap to clone).
#[derive(Clone)]
pub struct AppointmentReminders {
    db: DatabaseConnection,
    outbox: Outbox,
    clock: CommuneClock,
    window: Duration,
}

impl AppointmentReminders {
    pub fn new(
        db: DatabaseConnection,
        outbox: Outbox,
        clock: CommuneClock,
        window_hours: u32,
    ) -> Self {
        AppointmentReminders {
            db,
            outbox,
            clock,
            window: Duration::hours(i64::from(window_hours)),
        }
    }

    /// Scans every `every` until `shutdown`.
    pub fn run_every(&self, every: std::time::Duration, shutdown: CancellationToken) {
        let reminders = self.clone();
        jamaa_server::run_every(every, shutdown, "appointment reminders", move || {
            let reminders = reminders.clone();
            async move { reminders.scan(Utc::now()).await.map(|_| ()) }
        });
    }

    /// One scan at `now`; returns how many reminders went out.
    pub async fn scan(&self, now: DateTime<Utc>) -> Result<usize, Error> {
        let due = appointment::Entity::find()
            .filter(appointment::Column::Status.eq(status_to_db(AppointmentStatus::Booked)))
            .filter(appointment::Column::StartAt.gt(now))
            .filter(appointment::Column::StartAt.lte(now + self.window))
            .filter(
                Condition::any()
                    .add(appointment::Column::RemindedFor.is_null())
                    .add(
                        Expr::col(appointment::Column::RemindedFor)
                            .ne(Expr::col(appointment::Column::StartAt)),
                    ),
            )
            .order_by_asc(appointment::Column::StartAt)
            .limit(500)
            .all(&self.db)
            .await?;
        let mut sent = 0;
        for appointment in due {
            let txn = self.db.begin().await?;
            let claimed = appointment::Entity::update_many()
                .col_expr(
                    appointment::Column::RemindedFor,
                    Expr::value(appointment.start_at),
                )
                .filter(appointment::Column::Id.eq(appointment.id))
                .filter(appointment::Column::StartAt.eq(appointment.start_at))
                .filter(
                    Condition::any()
                        .add(appointment::Column::RemindedFor.is_null())
                        .add(appointment::Column::RemindedFor.ne(appointment.start_at)),
                )
                .exec(&txn)
                .await?;
            if claimed.rows_affected != 1 {
                txn.rollback().await?;
                continue;
            }
            let office_name = office_name(&txn, appointment.office_id).await?;
            self.outbox
                .add(
                    &txn,
                    subject(appointment.id),
                    &events::AppointmentReminder {
                        appointment_id: appointment.id.to_string(),
                        commune_id: appointment.commune_id.to_string(),
                        citizen_id: appointment.citizen_id.to_string(),
                        office_id: appointment.office_id.to_string(),
                        start_time: Some(timestamp_from_millis(
                            appointment.start_at.timestamp_millis(),
                        )),
                        office_name: Some(office_name),
                        local_start: self.clock.local_text(appointment.start_at),
                    },
                )
                .await?;
            self.outbox.commit(txn).await?;
            sent += 1;
        }
        Ok(sent)
    }
}

/// The opening hours of an office row.
pub fn opening_hours_of(office: &office::Model) -> Result<Vec<Interval>, Error> {
    serde_json::from_str(&office.opening_hours).map_err(|error| {
        Error::Internal(format!(
            "office {} has unreadable hours: {error}",
            office.id
        ))
    })
}

/// How an appointment status is stored.
pub fn status_to_db(status: AppointmentStatus) -> &'static str {
    match status {
        AppointmentStatus::Unspecified => "unspecified",
        AppointmentStatus::Booked => "booked",
        AppointmentStatus::Arrived => "arrived",
        AppointmentStatus::Served => "served",
        AppointmentStatus::NoShow => "no_show",
        AppointmentStatus::Cancelled => "cancelled",
    }
}

/// The status stored as `value` (UNSPECIFIED for a value this code never writes).
pub fn status_from_db(value: &str) -> AppointmentStatus {
    [
        AppointmentStatus::Booked,
        AppointmentStatus::Arrived,
        AppointmentStatus::Served,
        AppointmentStatus::NoShow,
        AppointmentStatus::Cancelled,
    ]
    .into_iter()
    .find(|status| status_to_db(*status) == value)
    .unwrap_or(AppointmentStatus::Unspecified)
}

fn status_label(status: AppointmentStatus) -> &'static str {
    status
        .as_str_name()
        .trim_start_matches("APPOINTMENT_STATUS_")
}

fn subject(appointment_id: Uuid) -> String {
    format!("appointments/{appointment_id}")
}

async fn office_name(txn: &DatabaseTransaction, office_id: Uuid) -> Result<LocalizedText, Error> {
    let office = office::Entity::find_by_id(office_id)
        .one(txn)
        .await?
        .ok_or_else(|| Error::Internal(format!("office {office_id} vanished")))?;
    Ok(LocalizedText {
        ar: office.name_ar,
        fr: office.name_fr,
        en: office.name_en,
        tzm: office.name_tzm,
    })
}

/// A slot of the commune that has not started yet.
async fn bookable_slot(
    txn: &DatabaseTransaction,
    slot_id: Uuid,
    commune_id: Uuid,
    now: DateTime<Utc>,
) -> Result<slot::Model, Error> {
    let slot = slot::Entity::find_by_id(slot_id)
        .one(txn)
        .await?
        .filter(|slot| slot.commune_id == commune_id)
        .ok_or_else(|| Error::NotFound(format!("slot {slot_id}")))?;
    if slot.start_at <= now {
        return Err(Error::precondition(
            "SLOT_PASSED",
            "this slot has started already: choose a later one",
        ));
    }
    Ok(slot)
}

/// Takes one place in `slot` unless it is full.
async fn take_place(txn: &DatabaseTransaction, slot: &slot::Model) -> Result<(), Error> {
    let taken = slot::Entity::update_many()
        .col_expr(slot::Column::Booked, Expr::col(slot::Column::Booked).add(1))
        .filter(slot::Column::Id.eq(slot.id))
        .filter(Expr::col(slot::Column::Booked).lt(Expr::col(slot::Column::Capacity)))
        .exec(txn)
        .await?;
    if taken.rows_affected == 1 {
        Ok(())
    } else {
        Err(Error::precondition(
            "SLOT_FULL",
            "this slot is fully booked: choose another",
        ))
    }
}

async fn free_place(txn: &DatabaseTransaction, slot_id: Uuid) -> Result<(), Error> {
    slot::Entity::update_many()
        .col_expr(slot::Column::Booked, Expr::col(slot::Column::Booked).sub(1))
        .filter(slot::Column::Id.eq(slot_id))
        .filter(slot::Column::Booked.gt(0))
        .exec(txn)
        .await?;
    Ok(())
}

/// The booked appointment `id` if `actor` may act on it: its citizen, or desk staff of its
/// commune (`commune_id`).
async fn own_booked(
    txn: &DatabaseTransaction,
    id: Uuid,
    actor: Actor,
    commune_id: Option<Uuid>,
) -> Result<appointment::Model, Error> {
    let appointment = appointment::Entity::find_by_id(id)
        .one(txn)
        .await?
        .filter(|appointment| match actor {
            Actor::Citizen(citizen) => appointment.citizen_id == citizen,
            Actor::Desk(_) => Some(appointment.commune_id) == commune_id,
        })
        .ok_or_else(|| Error::NotFound(format!("appointment {id}")))?;
    if status_from_db(&appointment.status) != AppointmentStatus::Booked {
        return Err(Error::precondition(
            "APPOINTMENT_NOT_BOOKED",
            format!(
                "the appointment is {}, not BOOKED",
                status_label(status_from_db(&appointment.status))
            ),
        ));
    }
    Ok(appointment)
}

async fn set_status(
    txn: &DatabaseTransaction,
    current: &appointment::Model,
    from: AppointmentStatus,
    to: AppointmentStatus,
) -> Result<(), Error> {
    let updated = appointment::Entity::update_many()
        .col_expr(appointment::Column::Status, Expr::value(status_to_db(to)))
        .col_expr(appointment::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(appointment::Column::Id.eq(current.id))
        .filter(appointment::Column::Status.eq(status_to_db(from)))
        .exec(txn)
        .await?;
    if updated.rows_affected == 1 {
        Ok(())
    } else {
        Err(Error::Conflict)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opening_hours_parse() {
        let morning = OpeningHours {
            weekday: 1,
            opens: "08:30".into(),
            closes: "12:00".into(),
        };
        let parsed = Interval::parse(&morning).expect("valid");
        assert_eq!(parsed.to_proto(), morning);
        for (weekday, opens, closes) in [
            (0, "08:00", "09:00"),
            (8, "08:00", "09:00"),
            (1, "9:5x", "10:00"),
            (1, "12:00", "08:00"),
        ] {
            let hours = OpeningHours {
                weekday,
                opens: opens.into(),
                closes: closes.into(),
            };
            assert!(Interval::parse(&hours).is_err(), "{hours:?}");
        }
    }

    #[test]
    fn statuses_round_trip() {
        for status in [
            AppointmentStatus::Booked,
            AppointmentStatus::Arrived,
            AppointmentStatus::Served,
            AppointmentStatus::NoShow,
            AppointmentStatus::Cancelled,
        ] {
            assert_eq!(status_from_db(status_to_db(status)), status);
        }
    }
}
