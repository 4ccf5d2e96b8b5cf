//! The senders: one per channel, handing due deliveries to it. For each delivery a sender
//!
//! 1. leases it (`locked_until`), so several replicas never send one twice at once (a replica
//!    that dies mid-send leaves its lease to expire and another sends);
//! 2. looks the person's proven address up at identity ([`ContactDirectory`], cached) unless
//!    the delivery names one; identity away → the batch waits, nothing is dropped;
//! 3. holds non-critical messages until the person's quiet hours end (the commune's time zone);
//! 4. keeps to the limits: the provider's per-minute limit for the channel, and per person per
//!    hour at most `per_recipient_per_hour` messages and `identical_per_recipient_per_hour`
//!    identical ones (phone networks require it) — excess waits, it is never dropped;
//! 5. sends, then records `sent` (with the provider's id) or a temporary failure (retried with
//!    exponential backoff and jitter up to [`MAX_ATTEMPTS`]) or a permanent one.
//!
//! The SMS provider's receipts move `sent` to `delivered` (or `failed`): [`record_sms_receipt`].

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use jamaa_proto::r#type::v1::Language;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, Condition, DatabaseConnection, DbErr, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use uuid::Uuid;

use crate::channels::{Channel, Outgoing, SendError};
use crate::contacts::{Contact, ContactDirectory};
use crate::handler::DEFAULT_TIME_ZONE;
use crate::preferences::{self, Preferences};
use crate::routing::EMAIL;
use crate::storage::{commune, delivery};

/// Tries per delivery before it is marked failed.
pub const MAX_ATTEMPTS: i32 = 6;
/// How long a sender holds a delivery it is sending.
const LEASE_SECONDS: i64 = 60;
/// How many deliveries one pass takes.
const BATCH: u64 = 50;
/// How often the sender looks for due deliveries.
const POLL_EVERY: std::time::Duration = std::time::Duration::from_millis(300);
/// How long a delivery waits when identity cannot say where to send it.
const CONTACTS_AWAY_WAIT_SECONDS: i64 = 30;

/// A channel's limits (0: none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
pub struct Limits {
    /// The provider's limit: messages per minute on this channel, all replicas together.
    pub per_minute: u32,
    /// Messages per person per hour.
    pub per_recipient_per_hour: u32,
    /// Identical messages per person per hour.
    pub identical_per_recipient_per_hour: u32,
}

/// Sends one channel's deliveries.
pub struct Sender {
    pub db: DatabaseConnection,
    pub channel: Arc<dyn Channel>,
    pub contacts: Arc<ContactDirectory>,
    pub limits: Limits,
}

impl Sender {
    /// Sends due deliveries until `shutdown`.
    pub fn run(self, shutdown: tokio_util::sync::CancellationToken) {
        let sender = Arc::new(self);
        jamaa_server::run_every(POLL_EVERY, shutdown, "sending deliveries", move || {
            let sender = sender.clone();
            async move { sender.send_due().await.map(|_| ()) }
        });
    }

    /// One pass: sends what is due; returns how many were handed over.
    pub async fn send_due(&self) -> Result<usize, DbErr> {
        let name = self.channel.name();
        let now = Utc::now();
        let mut take = BATCH;
        if self.limits.per_minute > 0 {
            let last_minute = delivery::Entity::find()
                .filter(delivery::Column::Channel.eq(name))
                .filter(delivery::Column::SentAt.gt(now - chrono::Duration::seconds(60)))
                .count(&self.db)
                .await?;
            let left = u64::from(self.limits.per_minute).saturating_sub(last_minute);
            if left == 0 {
                return Ok(0);
            }
            take = take.min(left);
        }
        let due = delivery::Entity::find()
            .filter(delivery::Column::Channel.eq(name))
            .filter(delivery::Column::Status.is_in(["queued", "retrying"]))
            .filter(delivery::Column::NextAttemptAt.lte(now))
            .filter(
                Condition::any()
                    .add(delivery::Column::LockedUntil.is_null())
                    .add(delivery::Column::LockedUntil.lt(now)),
            )
            .order_by_asc(delivery::Column::NextAttemptAt)
            .limit(take)
            .all(&self.db)
            .await?;
        let mut leased = Vec::with_capacity(due.len());
        for row in due {
            if lease(&self.db, row.id).await? {
                leased.push(row);
            }
        }
        if leased.is_empty() {
            return Ok(0);
        }
        let people: Vec<Uuid> = leased
            .iter()
            .filter(|row| row.address.is_empty())
            .filter_map(|row| row.recipient_id)
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let contacts = match self.contacts.lookup(&people).await {
            Ok(contacts) => contacts,
            Err(error) => {
                tracing::warn!(channel = name, %error, "cannot ask identity for addresses: the deliveries wait");
                for row in &leased {
                    postpone(
                        &self.db,
                        row.id,
                        now + chrono::Duration::seconds(CONTACTS_AWAY_WAIT_SECONDS),
                    )
                    .await?;
                }
                return Ok(0);
            }
        };
        let recipients: Vec<Uuid> = leased.iter().filter_map(|row| row.recipient_id).collect();
        let preferences = preferences::load_many(&self.db, &recipients).await?;
        let zones = time_zones(&self.db, &leased).await?;
        let mut sent = 0;
        for row in leased {
            if self.send_one(row, &contacts, &preferences, &zones).await? {
                sent += 1;
            }
        }
        Ok(sent)
    }

    async fn send_one(
        &self,
        row: delivery::Model,
        contacts: &HashMap<Uuid, Contact>,
        preferences: &HashMap<Uuid, Preferences>,
        zones: &HashMap<Uuid, chrono_tz::Tz>,
    ) -> Result<bool, DbErr> {
        let name = self.channel.name();
        let now = Utc::now();
        let address = if row.address.is_empty() {
            let contact = row.recipient_id.and_then(|person| contacts.get(&person));
            let problem = match contact {
                None => Err("identity does not know this person (any more)".to_string()),
                Some(contact) if contact.disabled && !row.critical => {
                    Err("the account is disabled: only security messages reach it".to_string())
                }
                Some(contact) => contact
                    .address(name)
                    .map(str::to_string)
                    .ok_or_else(|| format!("the person has no proven {name} address")),
            };
            match problem {
                Ok(address) => address,
                Err(error) => {
                    finish(&self.db, &row, Err(SendError::Permanent(error)), None).await?;
                    return Ok(false);
                }
            }
        } else {
            row.address.clone()
        };
        if !row.critical
            && let Some(person) = row.recipient_id
            && let Some(quiet) = preferences.get(&person).and_then(|p| p.quiet_hours)
        {
            let zone = row
                .commune_id
                .and_then(|commune| zones.get(&commune).copied())
                .unwrap_or(chrono_tz::Africa::Casablanca);
            if let Some(end) = quiet.end_after(now, &zone) {
                postpone(&self.db, row.id, end).await?;
                return Ok(false);
            }
        }
        if let Some(person) = row.recipient_id
            && let Some(wait_until) = self.over_limit(person, &row, now).await?
        {
            postpone(&self.db, row.id, wait_until).await?;
            return Ok(false);
        }
        let language = row
            .language
            .as_deref()
            .and_then(Language::from_code)
            .unwrap_or(Language::Ar);
        let html = if name == EMAIL {
            crate::email_html::render(&row.subject, &row.body, language).ok()
        } else {
            None
        };
        let text = if name == EMAIL {
            row.body.clone()
        } else {
            sms_text(&row.subject, &row.body)
        };
        let message = Outgoing {
            reference: row.id.to_string(),
            to: address.clone(),
            subject: row.subject.clone(),
            text,
            html,
        };
        let outcome = self.channel.send(&message).await;
        let ok = outcome.is_ok();
        finish(&self.db, &row, outcome, Some(&address)).await?;
        Ok(ok)
    }

    /// When `person` may get `row` under the per-person limits; `None`: now.
    async fn over_limit(
        &self,
        person: Uuid,
        row: &delivery::Model,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, DbErr> {
        let hour_ago = now - chrono::Duration::hours(1);
        let recent = || {
            delivery::Entity::find()
                .filter(delivery::Column::RecipientId.eq(person))
                .filter(delivery::Column::Channel.eq(self.channel.name()))
                .filter(delivery::Column::SentAt.gt(hour_ago))
        };
        for (limit, query) in [
            (self.limits.per_recipient_per_hour, recent()),
            (
                self.limits.identical_per_recipient_per_hour,
                recent().filter(delivery::Column::Body.eq(row.body.clone())),
            ),
        ] {
            if limit == 0 {
                continue;
            }
            let sent: Vec<DateTime<Utc>> = query
                .select_only()
                .column(delivery::Column::SentAt)
                .order_by_desc(delivery::Column::SentAt)
                .limit(u64::from(limit))
                .into_tuple::<Option<DateTime<Utc>>>()
                .all(&self.db)
                .await?
                .into_iter()
                .flatten()
                .collect();
            if sent.len() >= limit as usize
                && let Some(oldest) = sent.last()
            {
                // The oldest of the last `limit` leaves the hour then.
                return Ok(Some(*oldest + chrono::Duration::hours(1)));
            }
        }
        Ok(None)
    }
}

/// An SMS says the title, then the text.
fn sms_text(title: &str, body: &str) -> String {
    if title.trim().is_empty() || body.starts_with(title.trim()) {
        body.to_string()
    } else {
        format!("{}\n{}", title.trim(), body)
    }
}

/// The time zones of the communes of `rows`.
async fn time_zones(
    db: &DatabaseConnection,
    rows: &[delivery::Model],
) -> Result<HashMap<Uuid, chrono_tz::Tz>, DbErr> {
    let ids: HashSet<Uuid> = rows.iter().filter_map(|row| row.commune_id).collect();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    Ok(commune::Entity::find()
        .filter(commune::Column::CommuneId.is_in(ids))
        .all(db)
        .await?
        .into_iter()
        .map(|row| {
            let zone = row
                .time_zone
                .parse()
                .or_else(|_| DEFAULT_TIME_ZONE.parse())
                .unwrap_or(chrono_tz::Africa::Casablanca);
            (row.commune_id, zone)
        })
        .collect())
}

/// Records how sending `row` went.
async fn finish(
    db: &DatabaseConnection,
    row: &delivery::Model,
    outcome: Result<crate::channels::Accepted, SendError>,
    address: Option<&str>,
) -> Result<(), DbErr> {
    let channel: &'static str = if row.channel == EMAIL { "email" } else { "sms" };
    let attempts = row.attempts + 1;
    let mut update = delivery::Entity::update_many()
        .col_expr(delivery::Column::Attempts, Expr::value(attempts))
        .col_expr(
            delivery::Column::LockedUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .filter(delivery::Column::Id.eq(row.id));
    if let Some(address) = address {
        update = update.col_expr(delivery::Column::SentTo, Expr::value(mask(address)));
    }
    let update = match &outcome {
        Ok(accepted) => {
            jamaa_telemetry::metrics::delivery(channel, "sent");
            update
                .col_expr(delivery::Column::Status, Expr::value("sent"))
                .col_expr(delivery::Column::SentAt, Expr::value(Utc::now()))
                .col_expr(
                    delivery::Column::ProviderMessageId,
                    Expr::value(accepted.provider_message_id.clone()),
                )
        }
        Err(SendError::Temporary(error)) if attempts < MAX_ATTEMPTS => {
            jamaa_telemetry::metrics::delivery(channel, "temporary_failure");
            update
                .col_expr(delivery::Column::Status, Expr::value("retrying"))
                .col_expr(
                    delivery::Column::NextAttemptAt,
                    Expr::value(Utc::now() + backoff(attempts, row.id)),
                )
                .col_expr(delivery::Column::LastError, Expr::value(error.clone()))
        }
        Err(error) => {
            jamaa_telemetry::metrics::delivery(channel, "permanent_failure");
            update
                .col_expr(delivery::Column::Status, Expr::value("failed"))
                .col_expr(delivery::Column::LastError, Expr::value(error.to_string()))
        }
    };
    update.exec(db).await?;
    if let Err(error) = outcome {
        tracing::warn!(delivery = %row.id, channel, attempts, %error, "a delivery failed");
    }
    Ok(())
}

/// Gives the lease of delivery `id` back and makes it wait until `until` (no try counted).
async fn postpone(db: &DatabaseConnection, id: Uuid, until: DateTime<Utc>) -> Result<(), DbErr> {
    delivery::Entity::update_many()
        .col_expr(delivery::Column::NextAttemptAt, Expr::value(until))
        .col_expr(
            delivery::Column::LockedUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .filter(delivery::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// Takes the lease of delivery `id`; false when another sender holds it.
async fn lease(db: &DatabaseConnection, id: Uuid) -> Result<bool, DbErr> {
    let now = Utc::now();
    let taken = delivery::Entity::update_many()
        .col_expr(
            delivery::Column::LockedUntil,
            Expr::value(now + chrono::Duration::seconds(LEASE_SECONDS)),
        )
        .filter(delivery::Column::Id.eq(id))
        .filter(
            Condition::any()
                .add(delivery::Column::LockedUntil.is_null())
                .add(delivery::Column::LockedUntil.lt(now)),
        )
        .exec(db)
        .await?;
    Ok(taken.rows_affected == 1)
}

/// 2^attempts seconds (at most about an hour), plus up to a quarter more, spread by the
/// delivery's id so that failures do not all come back at once.
fn backoff(attempts: i32, id: Uuid) -> chrono::Duration {
    let base = 2i64.pow(attempts.clamp(0, 12) as u32);
    let jitter_ms = (id.as_u128() % 250) as i64 * base;
    chrono::Duration::seconds(base) + chrono::Duration::milliseconds(jitter_ms)
}

/// An address with most of it hidden: `o***@example.ma`, `+2126******78`.
pub fn mask(address: &str) -> String {
    if let Some((local, domain)) = address.split_once('@') {
        let first: String = local.chars().take(1).collect();
        return format!("{first}***@{domain}");
    }
    let chars: Vec<char> = address.chars().collect();
    if chars.len() <= 6 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..5].iter().collect();
    let tail: String = chars[chars.len() - 2..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 7))
}

/// What an SMS provider's receipt said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Receipt {
    Delivered,
    Failed,
}

/// Applies a receipt to the SMS delivery the provider calls `provider_message_id`; returns the
/// delivery's status after it, or `None` when no delivery has that id. A receipt never moves a
/// delivery backwards (`delivered` stays delivered).
pub async fn record_sms_receipt(
    db: &DatabaseConnection,
    provider_message_id: &str,
    receipt: Receipt,
    error: &str,
) -> Result<Option<String>, DbErr> {
    let Some(row) = delivery::Entity::find()
        .filter(delivery::Column::Channel.eq(crate::routing::SMS))
        .filter(delivery::Column::ProviderMessageId.eq(provider_message_id))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    if row.status != "sent" {
        return Ok(Some(row.status));
    }
    let update = delivery::Entity::update_many()
        .filter(delivery::Column::Id.eq(row.id))
        .filter(delivery::Column::Status.eq("sent"));
    let status = match receipt {
        Receipt::Delivered => {
            jamaa_telemetry::metrics::delivery("sms", "delivered");
            update
                .col_expr(delivery::Column::Status, Expr::value("delivered"))
                .col_expr(delivery::Column::DeliveredAt, Expr::value(Utc::now()))
                .exec(db)
                .await?;
            "delivered"
        }
        Receipt::Failed => {
            jamaa_telemetry::metrics::delivery("sms", "undelivered");
            let reason = if error.trim().is_empty() {
                "the provider could not deliver it".to_string()
            } else {
                format!("the provider could not deliver it: {}", error.trim())
            };
            update
                .col_expr(delivery::Column::Status, Expr::value("failed"))
                .col_expr(delivery::Column::LastError, Expr::value(reason))
                .exec(db)
                .await?;
            "failed"
        }
    };
    Ok(Some(status.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_stays_bounded() {
        let id = Uuid::now_v7();
        let waits: Vec<i64> = (1..=MAX_ATTEMPTS)
            .map(|n| backoff(n, id).num_milliseconds())
            .collect();
        assert!(waits.windows(2).all(|w| w[0] < w[1]), "{waits:?}");
        assert!(backoff(1, id) >= chrono::Duration::seconds(2));
        assert!(backoff(100, id) <= chrono::Duration::seconds(4096 + 1024));
    }

    #[test]
    fn addresses_are_masked() {
        assert_eq!(mask("omar@example.ma"), "o***@example.ma");
        assert_eq!(mask("+212612345678"), "+2126******78");
        assert_eq!(mask("12345"), "*****");
    }

    #[test]
    fn an_sms_starts_with_its_title() {
        assert_eq!(sms_text("Code", "Your code is 1"), "Code\nYour code is 1");
        assert_eq!(sms_text("", "Your code is 1"), "Your code is 1");
    }
}
