//! People's notification preferences: per topic the channels besides the inbox and whether to
//! gather them into a daily digest, quiet hours (in the commune's time zone), language, and the
//! areas and announcement topics they follow. Everyone has the defaults
//! ([`crate::routing::Topic::default_channels`], no quiet hours) until they change something.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveTime, TimeZone, Timelike, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::routing::{EMAIL, SMS, Topic};
use crate::storage::{audience_member, preference};

/// How one topic reaches a person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicChoice {
    /// Channel names besides the inbox: `email`, `sms`.
    pub channels: Vec<String>,
    /// Gather this topic's e-mails into a daily digest (digestible topics only).
    pub daily_digest: bool,
}

/// Quiet hours: minutes after local midnight; `start > end` spans midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuietHours {
    pub start: u32,
    pub end: u32,
}

impl QuietHours {
    /// `"HH:MM"` to `"HH:MM"`; `Ok(None)` for two empty strings.
    pub fn parse(start: &str, end: &str) -> Result<Option<QuietHours>, String> {
        let (start, end) = (start.trim(), end.trim());
        if start.is_empty() && end.is_empty() {
            return Ok(None);
        }
        let minutes = |text: &str| {
            NaiveTime::parse_from_str(text, "%H:%M")
                .map(|time| time.hour() * 60 + time.minute())
                .map_err(|_| format!("{text:?} is not a time of day as HH:MM"))
        };
        let (start, end) = (minutes(start)?, minutes(end)?);
        if start == end {
            return Err("quiet hours must not start when they end".into());
        }
        Ok(Some(QuietHours { start, end }))
    }

    fn contains(self, minute: u32) -> bool {
        if self.start < self.end {
            (self.start..self.end).contains(&minute)
        } else {
            minute >= self.start || minute < self.end
        }
    }

    /// When quiet hours that hold `now` (in `zone`) end; `None` when `now` is not in them.
    pub fn end_after<Z: TimeZone>(self, now: DateTime<Utc>, zone: &Z) -> Option<DateTime<Utc>> {
        let local = now.with_timezone(zone);
        let minute = local.hour() * 60 + local.minute();
        if !self.contains(minute) {
            return None;
        }
        let wait = (self.end + 24 * 60 - minute) % (24 * 60);
        let end = now + chrono::Duration::minutes(i64::from(wait))
            - chrono::Duration::seconds(i64::from(local.second()));
        Some(end)
    }

    pub fn format(minutes: u32) -> String {
        format!("{:02}:{:02}", minutes / 60, minutes % 60)
    }
}

/// A person's preferences (the defaults filled in).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preferences {
    pub topics: BTreeMap<Topic, TopicChoice>,
    pub quiet_hours: Option<QuietHours>,
    pub updated_at: Option<DateTime<Utc>>,
}

impl Default for Preferences {
    fn default() -> Self {
        Preferences {
            topics: Topic::ALL
                .into_iter()
                .map(|topic| {
                    let choice = TopicChoice {
                        channels: topic
                            .default_channels()
                            .iter()
                            .map(|channel| channel.to_string())
                            .collect(),
                        daily_digest: false,
                    };
                    (topic, choice)
                })
                .collect(),
            quiet_hours: None,
            updated_at: None,
        }
    }
}

impl Preferences {
    fn from_row(row: &preference::Model) -> Preferences {
        let mut preferences = Preferences::default();
        if let Ok(stored) = serde_json::from_str::<HashMap<String, TopicChoice>>(&row.topics) {
            for (code, choice) in stored {
                if let Some(topic) = Topic::parse(&code) {
                    preferences.topics.insert(topic, choice);
                }
            }
        }
        preferences.quiet_hours = match (row.quiet_start, row.quiet_end) {
            (Some(start), Some(end)) => Some(QuietHours {
                start: start.clamp(0, 1439) as u32,
                end: end.clamp(0, 1439) as u32,
            }),
            _ => None,
        };
        preferences.updated_at = Some(row.updated_at);
        preferences
    }

    /// The channels a message of `topic` travels on: a critical one on the topic's defaults and
    /// whatever the person added; others as the person chose.
    pub fn channels_for(&self, topic: Topic, critical: bool) -> Vec<&str> {
        let chosen: Vec<&str> = self
            .topics
            .get(&topic)
            .map(|choice| choice.channels.iter().map(String::as_str).collect())
            .unwrap_or_default();
        let mut channels: Vec<&str> = if critical {
            topic.default_channels().to_vec()
        } else {
            Vec::new()
        };
        for channel in chosen {
            if !channels.contains(&channel) {
                channels.push(channel);
            }
        }
        channels
    }

    /// Whether e-mails of `topic` wait for the daily digest.
    pub fn digests(&self, topic: Topic) -> bool {
        topic.digestible()
            && self
                .topics
                .get(&topic)
                .is_some_and(|choice| choice.daily_digest)
    }
}

/// Checks a topic's channels: only `email` and `sms`, each once.
pub fn check_channels(channels: &[String]) -> Result<(), String> {
    for (index, channel) in channels.iter().enumerate() {
        if channel != EMAIL && channel != SMS {
            return Err(format!("{channel:?} is not a channel (email, sms)"));
        }
        if channels[..index].contains(channel) {
            return Err(format!("{channel} is named twice"));
        }
    }
    Ok(())
}

/// The preferences of `user_id` (the defaults when they never changed them).
pub async fn load(db: &impl ConnectionTrait, user_id: Uuid) -> Result<Preferences, DbErr> {
    Ok(preference::Entity::find_by_id(user_id)
        .one(db)
        .await?
        .map(|row| Preferences::from_row(&row))
        .unwrap_or_default())
}

/// The preferences of each of `people` who changed theirs (the others have the defaults).
pub async fn load_many(
    db: &impl ConnectionTrait,
    people: &[Uuid],
) -> Result<HashMap<Uuid, Preferences>, DbErr> {
    if people.is_empty() {
        return Ok(HashMap::new());
    }
    Ok(preference::Entity::find()
        .filter(preference::Column::UserId.is_in(people.iter().copied()))
        .all(db)
        .await?
        .iter()
        .map(|row| (row.user_id, Preferences::from_row(row)))
        .collect())
}

/// Saves `preferences` for `user_id`.
pub async fn save(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    preferences: &Preferences,
) -> Result<DateTime<Utc>, DbErr> {
    let topics: HashMap<&str, &TopicChoice> = preferences
        .topics
        .iter()
        .map(|(topic, choice)| (topic.code(), choice))
        .collect();
    let now = Utc::now();
    let row = preference::ActiveModel {
        user_id: Set(user_id),
        topics: Set(serde_json::to_string(&topics).unwrap_or_else(|_| "{}".into())),
        quiet_start: Set(preferences.quiet_hours.map(|quiet| quiet.start as i32)),
        quiet_end: Set(preferences.quiet_hours.map(|quiet| quiet.end as i32)),
        updated_at: Set(now),
    };
    preference::Entity::insert(row)
        .on_conflict(
            OnConflict::column(preference::Column::UserId)
                .update_columns([
                    preference::Column::Topics,
                    preference::Column::QuietStart,
                    preference::Column::QuietEnd,
                    preference::Column::UpdatedAt,
                ])
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(now)
}

/// What `user_id` follows in their commune: `kind` is `area` or `topic`.
pub async fn followed(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    kind: &str,
) -> Result<Vec<String>, DbErr> {
    Ok(audience_member::Entity::find()
        .filter(audience_member::Column::UserId.eq(user_id))
        .filter(audience_member::Column::Kind.eq(kind))
        .all(db)
        .await?
        .into_iter()
        .map(|row| row.value)
        .collect())
}

/// Replaces what `user_id` follows of `kind` in `commune_id` with `values`.
pub async fn follow(
    db: &impl ConnectionTrait,
    commune_id: Uuid,
    user_id: Uuid,
    kind: &str,
    values: &[String],
) -> Result<(), DbErr> {
    audience_member::Entity::delete_many()
        .filter(audience_member::Column::UserId.eq(user_id))
        .filter(audience_member::Column::Kind.eq(kind))
        .exec(db)
        .await?;
    if values.is_empty() {
        return Ok(());
    }
    let rows = values.iter().map(|value| audience_member::ActiveModel {
        commune_id: Set(commune_id),
        kind: Set(kind.to_string()),
        value: Set(value.clone()),
        user_id: Set(user_id),
    });
    audience_member::Entity::insert_many(rows)
        .on_conflict_do_nothing()
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// An area or announcement topic code: 1–64 of lowercase letters, digits and `-`.
pub fn parse_code(value: &str) -> Result<String, String> {
    let value = value.trim().to_lowercase();
    let valid = !value.is_empty()
        && value.len() <= 64
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if valid {
        Ok(value)
    } else {
        Err(format!(
            "{value:?} must be 1 to 64 lowercase letters, digits or '-', e.g. \"hay-riad\""
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_hours_parse_and_span_midnight() {
        let quiet = QuietHours::parse("22:00", "07:30")
            .expect("parses")
            .expect("some");
        assert_eq!((quiet.start, quiet.end), (22 * 60, 7 * 60 + 30));
        assert!(quiet.contains(23 * 60));
        assert!(quiet.contains(0));
        assert!(quiet.contains(7 * 60 + 29));
        assert!(!quiet.contains(7 * 60 + 30));
        assert!(!quiet.contains(12 * 60));
        assert_eq!(QuietHours::parse("", "").expect("none"), None);
        assert!(QuietHours::parse("25:00", "07:00").is_err());
        assert!(QuietHours::parse("07:00", "07:00").is_err());
        assert!(QuietHours::parse("22:00", "").is_err());
    }

    #[test]
    fn quiet_hours_end_in_the_communes_time_zone() {
        let quiet = QuietHours::parse("22:00", "07:00")
            .expect("parses")
            .expect("some");
        let zone: chrono_tz::Tz = "Africa/Casablanca".parse().expect("zone");
        // 2026-12-04 23:15 UTC is 00:15 in Casablanca (UTC+1 outside Ramadan).
        let now = Utc
            .with_ymd_and_hms(2026, 12, 4, 23, 15, 0)
            .single()
            .expect("time");
        let end = quiet.end_after(now, &zone).expect("inside");
        assert_eq!(
            end,
            Utc.with_ymd_and_hms(2026, 12, 5, 6, 0, 0)
                .single()
                .expect("end")
        );
        let noon = Utc
            .with_ymd_and_hms(2026, 12, 4, 11, 0, 0)
            .single()
            .expect("time");
        assert_eq!(quiet.end_after(noon, &zone), None);
    }

    #[test]
    fn critical_messages_keep_the_defaults_others_follow_the_choice() {
        let mut preferences = Preferences::default();
        preferences.topics.insert(
            Topic::Security,
            TopicChoice {
                channels: vec![],
                daily_digest: false,
            },
        );
        preferences.topics.insert(
            Topic::Requests,
            TopicChoice {
                channels: vec!["sms".into()],
                daily_digest: true,
            },
        );
        assert_eq!(
            preferences.channels_for(Topic::Security, true),
            vec!["email", "sms"]
        );
        assert_eq!(
            preferences.channels_for(Topic::Requests, false),
            vec!["sms"]
        );
        assert_eq!(
            preferences.channels_for(Topic::Requests, true),
            vec!["email", "sms"]
        );
        assert!(
            !preferences.digests(Topic::Requests),
            "requests are never digested"
        );
        assert!(check_channels(&["email".into(), "email".into()]).is_err());
        assert!(check_channels(&["fax".into()]).is_err());
    }
}
