//! The sender: hands queued deliveries to their channel, retrying temporary failures with
//! exponential backoff and jitter up to [`MAX_ATTEMPTS`], then marks them failed. Rows are leased
//! (`locked_until`) so several replicas never send one twice at once; a replica that dies
//! mid-send leaves its lease to expire and another sends. A message is written by the event
//! handler in the transaction that claims the event, so nothing is lost and nothing doubled by a
//! redelivered event.

use std::sync::Arc;

use chrono::Utc;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, Condition, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use uuid::Uuid;

use crate::channels::{Channel, Outgoing, SendError};
use crate::storage::delivery;

/// Tries per delivery before it is marked failed.
pub const MAX_ATTEMPTS: i32 = 6;
/// How long a sender holds a delivery it is sending.
const LEASE_SECONDS: i64 = 60;
/// How many deliveries one pass takes.
const BATCH: u64 = 20;
/// How often the sender looks for due deliveries.
const POLL_EVERY: std::time::Duration = std::time::Duration::from_millis(300);

/// Sends due deliveries of `channel` until `shutdown`.
pub fn send_periodically(
    db: DatabaseConnection,
    channel: Arc<dyn Channel>,
    shutdown: tokio_util::sync::CancellationToken,
) {
    jamaa_server::run_every(POLL_EVERY, shutdown, "sending deliveries", move || {
        let (db, channel) = (db.clone(), channel.clone());
        async move { send_due(&db, channel.as_ref()).await.map(|_| ()) }
    });
}

/// One pass: sends what is due; returns how many were handed over.
pub async fn send_due(db: &DatabaseConnection, channel: &dyn Channel) -> Result<usize, DbErr> {
    let now = Utc::now();
    let due = delivery::Entity::find()
        .filter(delivery::Column::Channel.eq(channel.name()))
        .filter(delivery::Column::Status.is_in(["queued", "retrying"]))
        .filter(delivery::Column::NextAttemptAt.lte(now))
        .filter(
            Condition::any()
                .add(delivery::Column::LockedUntil.is_null())
                .add(delivery::Column::LockedUntil.lt(now)),
        )
        .order_by_asc(delivery::Column::NextAttemptAt)
        .limit(BATCH)
        .all(db)
        .await?;
    let mut sent = 0;
    for row in due {
        if !lease(db, row.id).await? {
            continue;
        }
        let message = Outgoing {
            to: row.address.clone(),
            subject: row.subject.clone(),
            body: row.body.clone(),
        };
        let outcome = channel.send(&message).await;
        let attempts = row.attempts + 1;
        let update = delivery::Entity::update_many()
            .col_expr(delivery::Column::Attempts, Expr::value(attempts))
            .col_expr(
                delivery::Column::LockedUntil,
                Expr::value(Option::<chrono::DateTime<Utc>>::None),
            )
            .filter(delivery::Column::Id.eq(row.id));
        let update = match &outcome {
            Ok(()) => {
                sent += 1;
                update
                    .col_expr(delivery::Column::Status, Expr::value("sent"))
                    .col_expr(delivery::Column::SentAt, Expr::value(Utc::now()))
            }
            Err(SendError::Temporary(error)) if attempts < MAX_ATTEMPTS => update
                .col_expr(delivery::Column::Status, Expr::value("retrying"))
                .col_expr(
                    delivery::Column::NextAttemptAt,
                    Expr::value(Utc::now() + backoff(attempts, row.id)),
                )
                .col_expr(delivery::Column::LastError, Expr::value(error.clone())),
            Err(error) => update
                .col_expr(delivery::Column::Status, Expr::value("failed"))
                .col_expr(delivery::Column::LastError, Expr::value(error.to_string())),
        };
        update.exec(db).await?;
        if let Err(error) = outcome {
            tracing::warn!(delivery = %row.id, channel = channel.name(), attempts, %error, "a delivery failed");
        }
    }
    Ok(sent)
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
}
