//! The daily digest: e-mails of low-priority topics that a person asked to get together are held
//! (`digest`) and, once a day at `notification.digest_local_time` in their commune's time zone,
//! sent as ONE e-mail listing them (the inbox has had each of them all along). A digest is built
//! in one transaction that marks what it gathers `digested` only if no other replica did first.

use std::collections::HashMap;

use chrono::{DateTime, NaiveTime, TimeZone, Utc};
use jamaa_proto::r#type::v1::Language;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
    TransactionTrait,
};
use uuid::Uuid;

use crate::fanout::{self, FanoutError};
use crate::handler::DEFAULT_TIME_ZONE;
use crate::routing::{EMAIL, Topic};
use crate::storage::{commune, delivery, recipient};
use crate::templates::{self, Kind, Notice};

/// How often the digest job looks.
const POLL_EVERY: std::time::Duration = std::time::Duration::from_secs(60);
/// How many people one pass serves.
const PEOPLE_PER_PASS: u64 = 500;

/// Sends digests until `shutdown`.
pub fn send_periodically(
    db: DatabaseConnection,
    local_time: NaiveTime,
    shutdown: tokio_util::sync::CancellationToken,
) {
    jamaa_server::run_every(POLL_EVERY, shutdown, "sending daily digests", move || {
        let db = db.clone();
        async move { send_due(&db, local_time, Utc::now()).await.map(|_| ()) }
    });
}

/// The last digest time at or before `now` in `zone`.
fn last_digest_time<Z: TimeZone>(
    now: DateTime<Utc>,
    local_time: NaiveTime,
    zone: &Z,
) -> DateTime<Utc> {
    let today = now.with_timezone(zone).date_naive();
    let at = |date: chrono::NaiveDate| {
        zone.from_local_datetime(&date.and_time(local_time))
            .earliest()
            .map(|at| at.with_timezone(&Utc))
    };
    match at(today) {
        Some(time) if time <= now => time,
        _ => today
            .pred_opt()
            .and_then(at)
            .unwrap_or(now - chrono::Duration::days(1)),
    }
}

/// One pass at `now`: for each person with held e-mails older than their commune's last digest
/// time, queues one digest e-mail; returns how many.
pub async fn send_due(
    db: &DatabaseConnection,
    local_time: NaiveTime,
    now: DateTime<Utc>,
) -> Result<usize, FanoutError> {
    let held: Vec<(Option<Uuid>, Option<Uuid>)> = delivery::Entity::find()
        .select_only()
        .column(delivery::Column::RecipientId)
        .column(delivery::Column::CommuneId)
        .filter(delivery::Column::Status.eq("digest"))
        .filter(delivery::Column::Channel.eq(EMAIL))
        .distinct()
        .limit(PEOPLE_PER_PASS)
        .into_tuple()
        .all(db)
        .await?;
    let zones: HashMap<Uuid, chrono_tz::Tz> = commune::Entity::find()
        .all(db)
        .await?
        .into_iter()
        .filter_map(|row| Some((row.commune_id, row.time_zone.parse().ok()?)))
        .collect();
    let fallback: chrono_tz::Tz = DEFAULT_TIME_ZONE
        .parse()
        .unwrap_or(chrono_tz::Africa::Casablanca);
    let mut sent = 0;
    for (person, commune_id) in held {
        let Some(person) = person else { continue };
        let zone = commune_id
            .and_then(|commune| zones.get(&commune))
            .unwrap_or(&fallback);
        let cutoff = last_digest_time(now, local_time, zone);
        if send_one(db, person, commune_id, cutoff).await? {
            sent += 1;
        }
    }
    Ok(sent)
}

async fn send_one(
    db: &DatabaseConnection,
    person: Uuid,
    commune_id: Option<Uuid>,
    cutoff: DateTime<Utc>,
) -> Result<bool, FanoutError> {
    let txn = db.begin().await?;
    let mut query = delivery::Entity::find()
        .filter(delivery::Column::RecipientId.eq(person))
        .filter(delivery::Column::Status.eq("digest"))
        .filter(delivery::Column::Channel.eq(EMAIL))
        .filter(delivery::Column::CreatedAt.lte(cutoff));
    query = match commune_id {
        Some(commune_id) => query.filter(delivery::Column::CommuneId.eq(commune_id)),
        None => query.filter(delivery::Column::CommuneId.is_null()),
    };
    let rows = query.order_by_asc(delivery::Column::Id).all(&txn).await?;
    if rows.is_empty() {
        return Ok(false);
    }
    let ids: Vec<Uuid> = rows.iter().map(|row| row.id).collect();
    let taken = delivery::Entity::update_many()
        .col_expr(delivery::Column::Status, Expr::value("digested"))
        .filter(delivery::Column::Id.is_in(ids.clone()))
        .filter(delivery::Column::Status.eq("digest"))
        .exec(&txn)
        .await?;
    if taken.rows_affected != ids.len() as u64 {
        // Another replica is sending this digest.
        return Ok(false);
    }
    let language = recipient::Entity::find_by_id(person)
        .one(&txn)
        .await?
        .and_then(|row| Language::from_code(&row.language))
        .unwrap_or(Language::Ar);
    let items: Vec<String> = rows
        .iter()
        .map(|row| format!("- {}", row.subject))
        .collect();
    let notice = Notice::DailyDigest {
        count: rows.len() as i64,
        items: items.join("\n"),
    };
    let custom = match commune_id {
        Some(commune_id) => {
            crate::template_overrides::of_kind(&txn, commune_id, Kind::DailyDigest).await?
        }
        None => Vec::new(),
    };
    let rendered = templates::render_for(&notice, language, &custom)
        .map_err(|error| FanoutError::Template(error.to_string()))?;
    let now = Utc::now();
    fanout::queue_deliveries(
        &txn,
        vec![delivery::ActiveModel {
            id: Set(Uuid::now_v7()),
            event_id: Set(Uuid::now_v7()),
            channel: Set(EMAIL.into()),
            recipient_id: Set(Some(person)),
            address: Set(String::new()),
            subject: Set(rendered.title),
            body: Set(rendered.body),
            status: Set("queued".into()),
            attempts: Set(0),
            next_attempt_at: Set(now),
            locked_until: Set(None),
            last_error: Set(None),
            created_at: Set(now),
            sent_at: Set(None),
            critical: Set(false),
            topic: Set(Some(Topic::Announcements.code().to_string())),
            language: Set(Some(rendered.language.code().to_string())),
            event_type: Set(Some("jamaa.notification.v1.DailyDigest".into())),
            commune_id: Set(commune_id),
            provider_message_id: Set(None),
            delivered_at: Set(None),
            sent_to: Set(None),
        }],
    )
    .await?;
    txn.commit().await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_digest_time_is_today_once_passed_else_yesterday() {
        let zone: chrono_tz::Tz = "Africa/Casablanca".parse().expect("zone");
        let six_pm = NaiveTime::from_hms_opt(18, 0, 0).expect("time");
        // 18:30 UTC is 19:30 in Casablanca: today's 18:00 local (17:00 UTC) has passed.
        let evening = Utc
            .with_ymd_and_hms(2026, 12, 4, 18, 30, 0)
            .single()
            .expect("now");
        assert_eq!(
            last_digest_time(evening, six_pm, &zone),
            Utc.with_ymd_and_hms(2026, 12, 4, 17, 0, 0)
                .single()
                .expect("t")
        );
        let morning = Utc
            .with_ymd_and_hms(2026, 12, 4, 8, 0, 0)
            .single()
            .expect("now");
        assert_eq!(
            last_digest_time(morning, six_pm, &zone),
            Utc.with_ymd_and_hms(2026, 12, 3, 17, 0, 0)
                .single()
                .expect("t")
        );
    }
}
