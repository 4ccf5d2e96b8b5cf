//! The working-day calendar: which days a commune is open, and deadlines counted on them.
//!
//! Closed are Saturdays and Sundays, Morocco's national holidays on fixed dates (built in), the
//! national holidays whose dates move each year (the religious ones, configured by platform
//! administrators as their dates are announced) and each commune's local closures. Everything
//! here is pure: the days come in, dates go out.

use std::collections::BTreeSet;

use chrono::{Datelike, Duration, NaiveDate, Weekday};
use jamaa_proto::r#type::v1::LocalizedText;

/// A national holiday that falls on the same date every year.
pub struct FixedHoliday {
    pub month: u32,
    pub day: u32,
    pub name_ar: &'static str,
    pub name_fr: &'static str,
    pub name_en: &'static str,
}

/// Morocco's national holidays on fixed dates (the Gregorian ones; Yennayer, the Amazigh new
/// year, since 2024).
pub const FIXED_HOLIDAYS: [FixedHoliday; 10] = [
    holiday(1, 1, "رأس السنة الميلادية", "Nouvel an", "New Year's Day"),
    holiday(
        1,
        11,
        "ذكرى تقديم وثيقة الاستقلال",
        "Manifeste de l'indépendance",
        "Independence Manifesto Day",
    ),
    holiday(
        1,
        14,
        "رأس السنة الأمازيغية",
        "Nouvel an amazigh",
        "Amazigh New Year",
    ),
    holiday(5, 1, "عيد الشغل", "Fête du travail", "Labour Day"),
    holiday(7, 30, "عيد العرش", "Fête du trône", "Throne Day"),
    holiday(
        8,
        14,
        "ذكرى استرجاع وادي الذهب",
        "Allégeance Oued Eddahab",
        "Oued Ed-Dahab Day",
    ),
    holiday(
        8,
        20,
        "ذكرى ثورة الملك والشعب",
        "Révolution du roi et du peuple",
        "Revolution of the King and the People",
    ),
    holiday(8, 21, "عيد الشباب", "Fête de la jeunesse", "Youth Day"),
    holiday(
        11,
        6,
        "ذكرى المسيرة الخضراء",
        "Marche verte",
        "Green March Day",
    ),
    holiday(
        11,
        18,
        "عيد الاستقلال",
        "Fête de l'indépendance",
        "Independence Day",
    ),
];

const fn holiday(
    month: u32,
    day: u32,
    name_ar: &'static str,
    name_fr: &'static str,
    name_en: &'static str,
) -> FixedHoliday {
    FixedHoliday {
        month,
        day,
        name_ar,
        name_fr,
        name_en,
    }
}

impl FixedHoliday {
    pub fn name(&self) -> LocalizedText {
        LocalizedText {
            ar: self.name_ar.to_string(),
            fr: self.name_fr.to_string(),
            en: self.name_en.to_string(),
            tzm: String::new(),
        }
    }

    /// This holiday's date in `year`.
    pub fn in_year(&self, year: i32) -> Option<NaiveDate> {
        NaiveDate::from_ymd_opt(year, self.month, self.day)
    }
}

/// The fixed national holiday on `date`, if any.
pub fn fixed_holiday_on(date: NaiveDate) -> Option<&'static FixedHoliday> {
    FIXED_HOLIDAYS
        .iter()
        .find(|holiday| holiday.month == date.month() && holiday.day == date.day())
}

/// How a deadline is counted (from the service's policy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DayCount {
    /// Only days the commune is open count.
    WorkingDays(u32),
    /// Every day counts; a due date on a closed day moves to the next working day.
    CalendarDays(u32),
}

/// One commune's calendar: the fixed rules plus the configured closed days (moving national
/// holidays and the commune's closures).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkingCalendar {
    closed: BTreeSet<NaiveDate>,
}

/// The most days a deadline may span, so a bad calendar can never loop for long.
const MAX_SPAN_DAYS: i64 = 3660;

impl WorkingCalendar {
    /// A calendar with `closed` days besides weekends and the fixed holidays.
    pub fn new(closed: impl IntoIterator<Item = NaiveDate>) -> Self {
        WorkingCalendar {
            closed: closed.into_iter().collect(),
        }
    }

    /// Whether the commune is open on `date`.
    pub fn is_working_day(&self, date: NaiveDate) -> bool {
        !matches!(date.weekday(), Weekday::Sat | Weekday::Sun)
            && fixed_holiday_on(date).is_none()
            && !self.closed.contains(&date)
    }

    /// The first working day on or after `date`.
    pub fn on_or_after(&self, date: NaiveDate) -> NaiveDate {
        let mut day = date;
        for _ in 0..MAX_SPAN_DAYS {
            if self.is_working_day(day) {
                return day;
            }
            day += Duration::days(1);
        }
        day
    }

    /// The `n`-th working day after `date` (`date` itself never counts; `n` = 0 gives the
    /// first working day on or after it).
    pub fn add_working_days(&self, date: NaiveDate, n: u32) -> NaiveDate {
        if n == 0 {
            return self.on_or_after(date);
        }
        let mut day = date;
        let mut counted = 0;
        for _ in 0..MAX_SPAN_DAYS {
            day += Duration::days(1);
            if self.is_working_day(day) {
                counted += 1;
                if counted == n {
                    return day;
                }
            }
        }
        day
    }

    /// How many working days `d` there are with `from < d <= to` (0 when `to <= from`).
    pub fn working_days_between(&self, from: NaiveDate, to: NaiveDate) -> u32 {
        let mut count = 0;
        let mut day = from;
        for _ in 0..MAX_SPAN_DAYS {
            day += Duration::days(1);
            if day > to {
                break;
            }
            if self.is_working_day(day) {
                count += 1;
            }
        }
        count
    }

    /// The due date of a request filed on `filed_on` whose policy counts `count`.
    pub fn due_date(&self, filed_on: NaiveDate, count: DayCount) -> NaiveDate {
        match count {
            DayCount::WorkingDays(days) => self.add_working_days(filed_on, days),
            DayCount::CalendarDays(days) => {
                self.on_or_after(filed_on + Duration::days(i64::from(days)))
            }
        }
    }

    /// The due date `due` pushed back by the time the clock stood still, from `stopped_on` to
    /// `resumed_on`: the working days (or, for calendar-day policies, the days) in between.
    pub fn after_clock_stop(
        &self,
        due: NaiveDate,
        stopped_on: NaiveDate,
        resumed_on: NaiveDate,
        count: DayCount,
    ) -> NaiveDate {
        match count {
            DayCount::WorkingDays(_) => {
                let paused = self.working_days_between(stopped_on, resumed_on);
                if paused == 0 {
                    due
                } else {
                    self.add_working_days(due, paused)
                }
            }
            DayCount::CalendarDays(_) => {
                let paused = (resumed_on - stopped_on).num_days().max(0);
                if paused == 0 {
                    due
                } else {
                    self.on_or_after(due + Duration::days(paused))
                }
            }
        }
    }

    /// `due` extended by `days` of the policy's unit.
    pub fn extended(&self, due: NaiveDate, days: u32, count: DayCount) -> NaiveDate {
        match count {
            DayCount::WorkingDays(_) => self.add_working_days(due, days),
            DayCount::CalendarDays(_) => self.on_or_after(due + Duration::days(i64::from(days))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(year: i32, month: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(year, month, day).expect("a valid test date")
    }

    #[test]
    fn weekends_and_fixed_holidays_are_closed() {
        let calendar = WorkingCalendar::default();
        assert!(calendar.is_working_day(date(2026, 12, 3))); // a Thursday
        assert!(!calendar.is_working_day(date(2026, 12, 5))); // Saturday
        assert!(!calendar.is_working_day(date(2026, 12, 6))); // Sunday
        assert!(!calendar.is_working_day(date(2026, 11, 18))); // Independence Day, a Wednesday
        assert!(!calendar.is_working_day(date(2027, 1, 14))); // Yennayer, a Thursday
    }

    #[test]
    fn configured_days_are_closed() {
        // Eid al-Fitr 2026 was announced for 20 March (a Friday).
        let calendar = WorkingCalendar::new([date(2026, 3, 20)]);
        assert!(!calendar.is_working_day(date(2026, 3, 20)));
        assert!(WorkingCalendar::default().is_working_day(date(2026, 3, 20)));
    }

    #[test]
    fn working_days_skip_weekends() {
        let calendar = WorkingCalendar::default();
        // Thursday 3 December 2026 + 2 working days = Monday 7 December.
        assert_eq!(
            calendar.add_working_days(date(2026, 12, 3), 2),
            date(2026, 12, 7)
        );
        // Filed on a Saturday: the first working day counted is Monday.
        assert_eq!(
            calendar.add_working_days(date(2026, 12, 5), 1),
            date(2026, 12, 7)
        );
        assert_eq!(
            calendar.add_working_days(date(2026, 12, 5), 0),
            date(2026, 12, 7)
        );
    }

    #[test]
    fn twenty_working_days_across_the_year_end() {
        let calendar = WorkingCalendar::default();
        // From Tuesday 15 December 2026: 12 working days are left in December (16–18, 21–25,
        // 28–31), then January 2027 skips the 1st (holiday), weekends, the 11th and the 14th.
        // Working days in January: 4, 5, 6, 7, 8, 12, 13, 15 → the 8th counted is the 15th.
        assert_eq!(
            calendar.add_working_days(date(2026, 12, 15), 20),
            date(2027, 1, 15)
        );
        assert_eq!(
            calendar.working_days_between(date(2026, 12, 15), date(2027, 1, 15)),
            20
        );
    }

    #[test]
    fn calendar_days_end_on_a_working_day() {
        let calendar = WorkingCalendar::default();
        // 60 days from 3 December 2026 is Monday 1 February 2027.
        assert_eq!(
            calendar.due_date(date(2026, 12, 3), DayCount::CalendarDays(60)),
            date(2027, 2, 1)
        );
        // 30 days from 1 July 2026 is 31 July (Friday, open); from 30 June it is 30 July, the
        // Throne Day: the next working day is the 31st.
        assert_eq!(
            calendar.due_date(date(2026, 6, 30), DayCount::CalendarDays(30)),
            date(2026, 7, 31)
        );
    }

    #[test]
    fn a_stopped_clock_pushes_the_due_date_back() {
        let calendar = WorkingCalendar::default();
        let count = DayCount::WorkingDays(20);
        let due = date(2027, 1, 15);
        // Stopped Thursday 3 December, resumed Tuesday 8 December: Friday, Monday and Tuesday
        // did not count.
        assert_eq!(
            calendar.working_days_between(date(2026, 12, 3), date(2026, 12, 8)),
            3
        );
        assert_eq!(
            calendar.after_clock_stop(due, date(2026, 12, 3), date(2026, 12, 8), count),
            date(2027, 1, 20)
        );
        // Stopped and resumed the same day: nothing changes.
        assert_eq!(
            calendar.after_clock_stop(due, date(2026, 12, 3), date(2026, 12, 3), count),
            due
        );
        let calendar_days = DayCount::CalendarDays(60);
        assert_eq!(
            calendar.after_clock_stop(
                date(2027, 2, 1),
                date(2026, 12, 3),
                date(2026, 12, 8),
                calendar_days
            ),
            date(2027, 2, 8)
        );
    }

    #[test]
    fn working_day_arithmetic_agrees_with_counting() {
        // Every start in two years, every span up to 30: the n-th working day after a date is
        // a working day, and exactly n working days lie between.
        let calendar = WorkingCalendar::new([date(2026, 3, 20), date(2026, 5, 27)]);
        let mut start = date(2026, 1, 1);
        while start < date(2028, 1, 1) {
            for n in 1..=30 {
                let due = calendar.add_working_days(start, n);
                assert!(calendar.is_working_day(due), "{start} + {n}");
                assert_eq!(
                    calendar.working_days_between(start, due),
                    n,
                    "{start} + {n}"
                );
                assert_eq!(
                    calendar.working_days_between(start, due - Duration::days(1)),
                    n - 1,
                    "{start} + {n}"
                );
            }
            start += Duration::days(1);
        }
    }
}
