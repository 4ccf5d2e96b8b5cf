//! The configured closed days: moving national holidays (platform administrators) and each
//! commune's local closures (its administrators); and each commune's [`WorkingCalendar`].

use chrono::{Datelike, NaiveDate, Utc};
use jamaa_proto::r#type::v1::LocalizedText;
use sea_orm::sea_query::Condition;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, Set,
};
use uuid::Uuid;

use crate::calendar::{FIXED_HOLIDAYS, WorkingCalendar, fixed_holiday_on};
use crate::error::{Error, unique_violation};
use crate::storage::closed_day;

/// Who a closed day applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClosedDayScope {
    /// A national holiday whose date moves (every commune).
    National,
    /// One commune's closure.
    Commune { id: Uuid, code: String },
}

/// A new closed day, parsed.
pub struct NewClosedDay {
    pub scope: ClosedDayScope,
    pub date: NaiveDate,
    pub name: LocalizedText,
    pub created_by: Uuid,
}

/// A day in a commune's year that is closed, for listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClosedDayView {
    /// `None` for the built-in fixed holidays.
    pub id: Option<Uuid>,
    pub date: NaiveDate,
    pub name: LocalizedText,
    pub kind: ClosedDayKind,
    pub commune_id: Option<Uuid>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClosedDayKind {
    FixedHoliday,
    MovingHoliday,
    LocalClosure,
}

const MOVING_HOLIDAY: &str = "moving_holiday";
const LOCAL_CLOSURE: &str = "local_closure";

/// The closed-day operations.
pub struct ClosedDays {
    db: DatabaseConnection,
}

impl ClosedDays {
    pub fn new(db: DatabaseConnection) -> Self {
        ClosedDays { db }
    }

    /// Adds a closed day. A date that is already a fixed holiday, or already configured for
    /// the same scope, is refused.
    pub async fn create(&self, new: NewClosedDay) -> Result<ClosedDayView, Error> {
        if let Some(holiday) = fixed_holiday_on(new.date) {
            return Err(Error::ClosedDayExists(format!(
                "{} is already a national holiday ({})",
                new.date, holiday.name_fr
            )));
        }
        let (commune_code, commune_id, kind) = match &new.scope {
            ClosedDayScope::National => (String::new(), None, MOVING_HOLIDAY),
            ClosedDayScope::Commune { id, code } => (code.clone(), Some(*id), LOCAL_CLOSURE),
        };
        let duplicate = || Error::ClosedDayExists(format!("{} is already closed", new.date));
        let row = closed_day::ActiveModel {
            id: Set(Uuid::now_v7()),
            commune_code: Set(commune_code),
            commune_id: Set(commune_id),
            date: Set(new.date),
            kind: Set(kind.to_string()),
            name_ar: Set(new.name.ar),
            name_fr: Set(new.name.fr),
            name_en: Set(new.name.en),
            name_tzm: Set(new.name.tzm),
            created_by: Set(new.created_by),
            created_at: Set(Utc::now()),
        }
        .insert(&self.db)
        .await
        .map_err(|error| unique_violation(error, duplicate()))?;
        Ok(view_of(&row))
    }

    /// The configured closed day `id`, if any.
    pub async fn find(&self, id: Uuid) -> Result<Option<ClosedDayView>, Error> {
        Ok(closed_day::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .map(|row| view_of(&row)))
    }

    /// Removes the configured closed day `id`.
    pub async fn delete(&self, id: Uuid) -> Result<(), Error> {
        closed_day::Entity::delete_by_id(id).exec(&self.db).await?;
        Ok(())
    }

    /// Every closed day (besides weekends) of the commune with code `commune_code` in `year`:
    /// the fixed holidays, the moving ones and the commune's closures, in date order.
    pub async fn list(&self, commune_code: &str, year: i32) -> Result<Vec<ClosedDayView>, Error> {
        let (Some(first), Some(last)) = (
            NaiveDate::from_ymd_opt(year, 1, 1),
            NaiveDate::from_ymd_opt(year, 12, 31),
        ) else {
            return Ok(Vec::new());
        };
        let rows = closed_day::Entity::find()
            .filter(
                Condition::any()
                    .add(closed_day::Column::CommuneCode.eq(""))
                    .add(closed_day::Column::CommuneCode.eq(commune_code)),
            )
            .filter(closed_day::Column::Date.between(first, last))
            .order_by_asc(closed_day::Column::Date)
            .all(&self.db)
            .await?;
        let mut days: Vec<ClosedDayView> = FIXED_HOLIDAYS
            .iter()
            .filter_map(|holiday| {
                Some(ClosedDayView {
                    id: None,
                    date: holiday.in_year(year)?,
                    name: holiday.name(),
                    kind: ClosedDayKind::FixedHoliday,
                    commune_id: None,
                })
            })
            .chain(rows.iter().map(view_of))
            .collect();
        days.sort_by_key(|day| day.date);
        Ok(days)
    }

    /// The working-day calendar of commune `commune_id`.
    pub async fn calendar(&self, commune_id: Uuid) -> Result<WorkingCalendar, Error> {
        calendar_of(&self.db, commune_id).await
    }
}

/// The working-day calendar of commune `commune_id`, read through `db` (a transaction or the
/// pool): its closures and the moving national holidays, from last year on.
pub async fn calendar_of(
    db: &impl ConnectionTrait,
    commune_id: Uuid,
) -> Result<WorkingCalendar, Error> {
    let from = NaiveDate::from_ymd_opt(Utc::now().year() - 1, 1, 1).unwrap_or(NaiveDate::MIN);
    let rows = closed_day::Entity::find()
        .filter(
            Condition::any()
                .add(closed_day::Column::CommuneId.is_null())
                .add(closed_day::Column::CommuneId.eq(commune_id)),
        )
        .filter(closed_day::Column::Date.gte(from))
        .all(db)
        .await?;
    Ok(WorkingCalendar::new(rows.into_iter().map(|row| row.date)))
}

fn view_of(row: &closed_day::Model) -> ClosedDayView {
    ClosedDayView {
        id: Some(row.id),
        date: row.date,
        name: LocalizedText {
            ar: row.name_ar.clone(),
            fr: row.name_fr.clone(),
            en: row.name_en.clone(),
            tzm: row.name_tzm.clone(),
        },
        kind: if row.kind == MOVING_HOLIDAY {
            ClosedDayKind::MovingHoliday
        } else {
            ClosedDayKind::LocalClosure
        },
        commune_id: row.commune_id,
    }
}
