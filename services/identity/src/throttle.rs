//! The throttle: at most [`MAX_FAILURES`] failed sign-ins per e-mail within [`WINDOW`]; past
//! that, every attempt for that e-mail (even with the right password) is refused with
//! RESOURCE_EXHAUSTED until the oldest failure leaves the window. The same per client address
//! ([`address_key`], the gateway passes it): failed attempts of every kind (sign-ins, codes,
//! client credentials) and sign-ups and reset requests, each within its own [`Limit`] from the
//! settings (`[identity.throttle]`).
//!
//! Failures are keyed by a hash of the e-mail that was tried, whether an account has it or not,
//! so unknown and known e-mails answer alike and the throttle reveals nothing. While an e-mail is
//! locked no failure is recorded (no password is checked), so the table holds at most
//! [`MAX_FAILURES`] live rows per e-mail.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, Set,
};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::error::Error;
use crate::storage::login_failure;

/// Failed sign-ins allowed per e-mail within [`WINDOW`].
pub const MAX_FAILURES: usize = 10;
/// The sliding window failures are counted in.
pub const WINDOW: chrono::Duration = chrono::Duration::minutes(5);

/// How many events a key may have within a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub max: usize,
    pub window: chrono::Duration,
}

/// The per-account limit of failed sign-ins.
pub const ACCOUNT_FAILURES: Limit = Limit {
    max: MAX_FAILURES,
    window: WINDOW,
};

/// Per-address limits (section `[identity.throttle]`).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct AddressLimits {
    /// Failed attempts (sign-ins, codes, client credentials) per address per 5 minutes.
    pub failures_per_5_minutes: usize,
    /// Sign-ups per address per hour.
    pub sign_ups_per_hour: usize,
    /// Password-reset requests per address per 5 minutes.
    pub reset_requests_per_5_minutes: usize,
}

impl AddressLimits {
    pub fn failures(&self) -> Limit {
        Limit {
            max: self.failures_per_5_minutes,
            window: chrono::Duration::minutes(5),
        }
    }

    pub fn sign_ups(&self) -> Limit {
        Limit {
            max: self.sign_ups_per_hour,
            window: chrono::Duration::hours(1),
        }
    }

    pub fn reset_requests(&self) -> Limit {
        Limit {
            max: self.reset_requests_per_5_minutes,
            window: chrono::Duration::minutes(5),
        }
    }
}

/// The throttle key of a client address for one kind of event (`failure`, `sign-up`, `reset`),
/// hashed.
pub fn address_key(kind: &str, address: &str) -> String {
    let digest = Sha256::digest(format!("address:{kind}:{}", address.trim()).as_bytes());
    digest.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The throttle key of what a caller typed as e-mail: trimmed, lower-cased, hashed.
pub fn account_key(email: &str) -> String {
    let digest = Sha256::digest(email.trim().to_lowercase().as_bytes());
    digest.iter().map(|byte| format!("{byte:02x}")).collect()
}

pub struct LoginThrottle {
    db: DatabaseConnection,
}

impl LoginThrottle {
    pub fn new(db: DatabaseConnection) -> Self {
        LoginThrottle { db }
    }

    /// Refuses with [`Error::TooManyAttempts`] when `key` has used up its failures.
    pub async fn check(&self, key: &str) -> Result<(), Error> {
        self.check_limit(key, ACCOUNT_FAILURES).await
    }

    /// Refuses with [`Error::TooManyAttempts`] when `key` had `limit.max` events in the window.
    pub async fn check_limit(&self, key: &str, limit: Limit) -> Result<(), Error> {
        let now = Utc::now();
        let failures = self.recent_failures(key, now, limit.window).await?;
        if failures.len() < limit.max {
            return Ok(());
        }
        let oldest = failures.first().map(|row| row.failed_at).unwrap_or(now);
        let retry_after = (oldest + limit.window - now)
            .to_std()
            .unwrap_or_default()
            .max(std::time::Duration::from_secs(1));
        Err(Error::TooManyAttempts { retry_after })
    }

    /// Records a failed sign-in for `key` and forgets its failures older than the window.
    pub async fn record_failure(&self, key: &str) -> Result<(), Error> {
        self.record(key, ACCOUNT_FAILURES).await
    }

    /// Records an event for `key` and forgets its events older than `limit`'s window.
    pub async fn record(&self, key: &str, limit: Limit) -> Result<(), Error> {
        let now = Utc::now();
        login_failure::Entity::delete_many()
            .filter(login_failure::Column::AccountKey.eq(key))
            .filter(login_failure::Column::FailedAt.lte(now - limit.window))
            .exec(&self.db)
            .await?;
        login_failure::ActiveModel {
            id: Set(Uuid::now_v7()),
            account_key: Set(key.to_string()),
            failed_at: Set(now),
        }
        .insert(&self.db)
        .await?;
        Ok(())
    }

    /// Forgets `key`'s failures after a successful sign-in.
    pub async fn clear(&self, key: &str) -> Result<(), Error> {
        login_failure::Entity::delete_many()
            .filter(login_failure::Column::AccountKey.eq(key))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    async fn recent_failures(
        &self,
        key: &str,
        now: DateTime<Utc>,
        window: chrono::Duration,
    ) -> Result<Vec<login_failure::Model>, Error> {
        Ok(login_failure::Entity::find()
            .filter(login_failure::Column::AccountKey.eq(key))
            .filter(login_failure::Column::FailedAt.gt(now - window))
            .order_by_asc(login_failure::Column::FailedAt)
            .all(&self.db)
            .await?)
    }
}

/// How long a counted event is kept at most: the longest window of any limit.
const KEEP: chrono::Duration = chrono::Duration::hours(2);

/// Forgets counted events older than every window, every minute until `shutdown` (keys that are
/// never tried again would otherwise keep their rows).
pub fn purge_periodically(db: DatabaseConnection, shutdown: tokio_util::sync::CancellationToken) {
    jamaa_server::run_every(
        std::time::Duration::from_secs(60),
        shutdown,
        "purging old throttle counts",
        move || {
            let db = db.clone();
            async move {
                login_failure::Entity::delete_many()
                    .filter(login_failure::Column::FailedAt.lt(Utc::now() - KEEP))
                    .exec(&db)
                    .await
                    .map(|_| ())
            }
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_ignores_case_and_spaces_and_hides_the_email() {
        let key = account_key("  Amina@Example.MA ");
        assert_eq!(key, account_key("amina@example.ma"));
        assert_eq!(key.len(), 64);
        assert!(!key.contains("amina"));
        assert_ne!(key, account_key("amine@example.ma"));
    }
}
