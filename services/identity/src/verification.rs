//! One-time codes sent to a person: six digits, stored only as a keyed hash, valid
//! [`CODE_TTL_MINUTES`] (contact and phone verification) and at most [`MAX_TRIES`] tries. Only
//! the newest code of a purpose counts; a code may also be bound to what it proves (the phone
//! number it was sent to): it then works only while that is still the one being proved. Each try is counted BEFORE the code is compared, atomically, so
//! parallel guesses get no more than [`MAX_TRIES`] comparisons between them.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set,
};
use uuid::Uuid;

use crate::error::Error;
use crate::personal_data::PersonalDataKeys;
use crate::storage::verification_code;

/// How long a contact- or phone-verification code works.
pub const CODE_TTL_MINUTES: i64 = 10;
/// How long a password-reset code works.
pub const RESET_CODE_TTL_MINUTES: i64 = 30;
/// How many times a code may be tried, the right try included.
pub const MAX_TRIES: i32 = 5;
/// How long a person waits between two codes of one purpose.
pub const RESEND_AFTER_SECONDS: i64 = 60;

/// What a code proves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Contact,
    PasswordReset,
    /// Proving a mobile phone number (the code is bound to the number).
    Phone,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Contact => "contact",
            Purpose::PasswordReset => "password_reset",
            Purpose::Phone => "phone",
        }
    }

    /// How long a code of this purpose works.
    pub fn ttl(self) -> chrono::Duration {
        chrono::Duration::minutes(match self {
            Purpose::Contact | Purpose::Phone => CODE_TTL_MINUTES,
            Purpose::PasswordReset => RESET_CODE_TTL_MINUTES,
        })
    }

    pub fn to_event(self) -> jamaa_proto::events::v1::verification_code_issued::Purpose {
        use jamaa_proto::events::v1::verification_code_issued::Purpose as P;
        match self {
            Purpose::Contact => P::ContactVerification,
            Purpose::PasswordReset => P::PasswordReset,
            Purpose::Phone => P::PhoneVerification,
        }
    }

    /// What the code's hash is keyed to: the purpose, and what the code proves when it is bound
    /// to it (so a code sent to one number cannot prove another).
    fn scope(self, bound_to: Option<&str>) -> String {
        match bound_to {
            Some(subject) => format!("{}:{subject}", self.as_str()),
            None => self.as_str().to_string(),
        }
    }
}

/// A code just issued: the digits (sent by event, never stored) and when it expires.
pub struct IssuedCode {
    pub code: String,
    pub expires_at: DateTime<Utc>,
}

/// Stores a new code for `user_id` and `purpose`, valid `ttl`, bound to `bound_to` when given
/// (see [`check`]); earlier codes of the purpose stop counting. Runs in the caller's
/// transaction, beside the event that carries the code.
pub async fn issue(
    db: &impl ConnectionTrait,
    keys: &PersonalDataKeys,
    user_id: Uuid,
    purpose: Purpose,
    bound_to: Option<&str>,
    ttl: chrono::Duration,
) -> Result<IssuedCode, Error> {
    let code = six_digits()?;
    let now = Utc::now();
    let expires_at = now + ttl;
    verification_code::ActiveModel {
        id: Set(Uuid::now_v7()),
        user_id: Set(user_id),
        purpose: Set(purpose.as_str().to_string()),
        code_hash: Set(keys.code_hash(user_id, &purpose.scope(bound_to), &code)),
        expires_at: Set(expires_at),
        tries: Set(0),
        used_at: Set(None),
        created_at: Set(now),
    }
    .insert(db)
    .await?;
    Ok(IssuedCode { code, expires_at })
}

/// How long until `user_id` may be sent another code for `purpose` (zero: now).
pub async fn wait_before_next(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    purpose: Purpose,
) -> Result<std::time::Duration, Error> {
    let Some(newest) = newest(db, user_id, purpose).await? else {
        return Ok(std::time::Duration::ZERO);
    };
    let next = newest.created_at + chrono::Duration::seconds(RESEND_AFTER_SECONDS);
    Ok((next - Utc::now())
        .to_std()
        .unwrap_or(std::time::Duration::ZERO))
}

/// Spends a try of the newest code of `purpose`: `Ok` when `code` is it and it was bound to
/// `bound_to` (the same as when issued; the code is then used up); otherwise why not.
pub async fn check(
    db: &impl ConnectionTrait,
    keys: &PersonalDataKeys,
    user_id: Uuid,
    purpose: Purpose,
    bound_to: Option<&str>,
    code: &str,
) -> Result<(), Error> {
    let Some(stored) = newest(db, user_id, purpose).await? else {
        return Err(Error::CodeExpired);
    };
    if stored.used_at.is_some() || stored.expires_at <= Utc::now() {
        return Err(Error::CodeExpired);
    }
    let counted = verification_code::Entity::update_many()
        .col_expr(
            verification_code::Column::Tries,
            Expr::col(verification_code::Column::Tries).add(1),
        )
        .filter(verification_code::Column::Id.eq(stored.id))
        .filter(verification_code::Column::Tries.lt(MAX_TRIES))
        .filter(verification_code::Column::UsedAt.is_null())
        .exec(db)
        .await?;
    if counted.rows_affected != 1 {
        return Err(Error::CodeExhausted);
    }
    if keys.code_hash(user_id, &purpose.scope(bound_to), code.trim()) != stored.code_hash {
        let tries_left = Ord::max(MAX_TRIES - stored.tries - 1, 0);
        return Err(if tries_left == 0 {
            Error::CodeExhausted
        } else {
            Error::WrongCode { tries_left }
        });
    }
    let spent = verification_code::Entity::update_many()
        .col_expr(verification_code::Column::UsedAt, Expr::value(Utc::now()))
        .filter(verification_code::Column::Id.eq(stored.id))
        .filter(verification_code::Column::UsedAt.is_null())
        .exec(db)
        .await?;
    if spent.rows_affected != 1 {
        return Err(Error::CodeExpired);
    }
    Ok(())
}

/// Makes every unused code of `purpose` stop working (what they proved is gone). They still
/// count for [`wait_before_next`].
pub async fn revoke(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    purpose: Purpose,
) -> Result<(), Error> {
    verification_code::Entity::update_many()
        .col_expr(verification_code::Column::UsedAt, Expr::value(Utc::now()))
        .filter(verification_code::Column::UserId.eq(user_id))
        .filter(verification_code::Column::Purpose.eq(purpose.as_str()))
        .filter(verification_code::Column::UsedAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}

async fn newest(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    purpose: Purpose,
) -> Result<Option<verification_code::Model>, Error> {
    Ok(verification_code::Entity::find()
        .filter(verification_code::Column::UserId.eq(user_id))
        .filter(verification_code::Column::Purpose.eq(purpose.as_str()))
        .order_by_desc(verification_code::Column::CreatedAt)
        .order_by_desc(verification_code::Column::Id)
        .one(db)
        .await?)
}

/// Six uniformly random digits (rejection sampling: no digit is likelier than another).
fn six_digits() -> Result<String, Error> {
    loop {
        let mut bytes = [0u8; 4];
        getrandom::fill(&mut bytes)
            .map_err(|error| Error::Internal(format!("no randomness: {error}")))?;
        let value = u32::from_be_bytes(bytes);
        // The largest multiple of 1,000,000 that fits in a u32.
        if value < 4_294_000_000 {
            return Ok(format!("{:06}", value % 1_000_000));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn database() -> (sea_orm::DatabaseConnection, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("jamaa-codes-{}", Uuid::new_v4().simple()));
        let db = jamaa_db::connect::<crate::storage::Migrator>(&jamaa_settings::DatabaseSettings {
            url: jamaa_settings::SecretString::from(format!(
                "sqlite://{}/identity.db",
                dir.display()
            )),
            max_connections: 1,
            migrate_on_start: true,
        })
        .await
        .expect("database");
        (db, dir)
    }

    /// A user row for the codes' foreign key.
    async fn user(db: &sea_orm::DatabaseConnection) -> Uuid {
        let id = Uuid::now_v7();
        crate::storage::user::ActiveModel {
            id: Set(id),
            commune_id: Set(None),
            email: Set(Some(format!("{}@example.ma", id.simple()))),
            password_hash: Set("x".into()),
            display_name: Set("Test".into()),
            preferred_language: Set("fr".into()),
            created_at: Set(Utc::now()),
            disabled_at: Set(None),
            assurance_level: Set("registered".into()),
            contact_verified_at: Set(None),
            gender: Set(None),
            phone_number: Set(Some("+212612345678".into())),
            phone_verified_at: Set(None),
        }
        .insert(db)
        .await
        .expect("a user");
        id
    }

    #[tokio::test]
    async fn a_bound_code_proves_only_what_it_was_sent_to() {
        let (db, dir) = database().await;
        let keys = crate::personal_data::test_keys();
        let user_id = user(&db).await;
        let issued = issue(
            &db,
            &keys,
            user_id,
            Purpose::Phone,
            Some("+212612345678"),
            Purpose::Phone.ttl(),
        )
        .await
        .expect("a code");
        let other = check(
            &db,
            &keys,
            user_id,
            Purpose::Phone,
            Some("+212698765432"),
            &issued.code,
        )
        .await;
        assert!(
            matches!(other, Err(Error::WrongCode { tries_left: 4 })),
            "{other:?}"
        );
        // Another purpose's code is another code.
        let contact = check(&db, &keys, user_id, Purpose::Contact, None, &issued.code).await;
        assert!(matches!(contact, Err(Error::CodeExpired)), "{contact:?}");
        check(
            &db,
            &keys,
            user_id,
            Purpose::Phone,
            Some("+212612345678"),
            &issued.code,
        )
        .await
        .expect("the number it was sent to");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn revoked_codes_stop_working_but_still_count_for_the_wait() {
        let (db, dir) = database().await;
        let keys = crate::personal_data::test_keys();
        let user_id = user(&db).await;
        let issued = issue(
            &db,
            &keys,
            user_id,
            Purpose::Phone,
            Some("+212612345678"),
            Purpose::Phone.ttl(),
        )
        .await
        .expect("a code");
        revoke(&db, user_id, Purpose::Phone).await.expect("revoked");
        let revoked = check(
            &db,
            &keys,
            user_id,
            Purpose::Phone,
            Some("+212612345678"),
            &issued.code,
        )
        .await;
        assert!(matches!(revoked, Err(Error::CodeExpired)), "{revoked:?}");
        let wait = wait_before_next(&db, user_id, Purpose::Phone)
            .await
            .expect("the wait");
        assert!(!wait.is_zero());
        let _ = std::fs::remove_dir_all(dir);
    }
}
