//! One-time codes sent to a person: six digits, stored only as a keyed hash, valid
//! [`CODE_TTL_MINUTES`] (contact verification) and at most [`MAX_TRIES`] tries. Only the newest
//! code of a purpose counts. Each try is counted BEFORE the code is compared, atomically, so
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

/// How long a contact-verification code works.
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
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Contact => "contact",
            Purpose::PasswordReset => "password_reset",
        }
    }

    /// How long a code of this purpose works.
    pub fn ttl(self) -> chrono::Duration {
        chrono::Duration::minutes(match self {
            Purpose::Contact => CODE_TTL_MINUTES,
            Purpose::PasswordReset => RESET_CODE_TTL_MINUTES,
        })
    }

    pub fn to_event(self) -> jamaa_proto::events::v1::verification_code_issued::Purpose {
        use jamaa_proto::events::v1::verification_code_issued::Purpose as P;
        match self {
            Purpose::Contact => P::ContactVerification,
            Purpose::PasswordReset => P::PasswordReset,
        }
    }
}

/// A code just issued: the digits (sent by event, never stored) and when it expires.
pub struct IssuedCode {
    pub code: String,
    pub expires_at: DateTime<Utc>,
}

/// Stores a new code for `user_id` and `purpose`, valid `ttl`; earlier codes of the purpose stop
/// counting. Runs in the caller's transaction, beside the event that carries the code.
pub async fn issue(
    db: &impl ConnectionTrait,
    keys: &PersonalDataKeys,
    user_id: Uuid,
    purpose: Purpose,
    ttl: chrono::Duration,
) -> Result<IssuedCode, Error> {
    let code = six_digits()?;
    let now = Utc::now();
    let expires_at = now + ttl;
    verification_code::ActiveModel {
        id: Set(Uuid::now_v7()),
        user_id: Set(user_id),
        purpose: Set(purpose.as_str().to_string()),
        code_hash: Set(keys.code_hash(user_id, purpose.as_str(), &code)),
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

/// Spends a try of the newest code of `purpose`: `Ok` when `code` is it (the code is then used
/// up); otherwise why not.
pub async fn check(
    db: &impl ConnectionTrait,
    keys: &PersonalDataKeys,
    user_id: Uuid,
    purpose: Purpose,
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
    if keys.code_hash(user_id, purpose.as_str(), code.trim()) != stored.code_hash {
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
