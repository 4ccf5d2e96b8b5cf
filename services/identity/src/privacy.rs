//! A person's rights over their data under law 09-08: access (an export of everything identity
//! holds about them) and erasure (the account pseudonymised: personal data removed, records
//! that others must keep left in place, detached from the person). Both are audited.

use chrono::Utc;
use jamaa_auth::Role;
use jamaa_proto::events::v1 as events;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, TransactionTrait};
use serde_json::json;
use uuid::Uuid;

use crate::accounts::Accounts;
use crate::audit::{self, Actor, Entry, Outcome};
use crate::error::Error;
use crate::storage::{
    audit_entry, invitation, national_id, recovery_code, refresh_token, totp_credential, user,
    verification_code,
};

impl Accounts {
    /// Everything identity holds about `user_id`, as a JSON document.
    pub async fn export_personal_data(
        &self,
        user_id: Uuid,
        actor: &Actor,
    ) -> Result<serde_json::Value, Error> {
        let account = self.account(user_id).await?;
        let sessions = refresh_token::Entity::find()
            .filter(refresh_token::Column::UserId.eq(user_id))
            .order_by_asc(refresh_token::Column::CreatedAt)
            .all(&self.db)
            .await?;
        let codes = verification_code::Entity::find()
            .filter(verification_code::Column::UserId.eq(user_id))
            .order_by_asc(verification_code::Column::CreatedAt)
            .all(&self.db)
            .await?;
        let national_id = national_id::Entity::find_by_id(user_id)
            .one(&self.db)
            .await?;
        let second_factor = totp_credential::Entity::find_by_id(user_id)
            .one(&self.db)
            .await?;
        let target = format!("users/{user_id}");
        let entries = audit_entry::Entity::find()
            .filter(
                Condition::any()
                    .add(audit_entry::Column::ActorId.eq(user_id))
                    .add(audit_entry::Column::Target.eq(target.clone())),
            )
            .order_by_asc(audit_entry::Column::Id)
            .all(&self.db)
            .await?;
        let user = &account.user;
        let document = json!({
            "exported_at": Utc::now().to_rfc3339(),
            "account": {
                "id": user.id.to_string(),
                "email": user.email,
                "display_name": user.display_name,
                "preferred_language": user.preferred_language,
                "commune_id": user.commune_id.map(|id| id.to_string()),
                "commune_code": account.commune_code,
                "created_at": user.created_at.to_rfc3339(),
                "disabled_at": user.disabled_at.map(|at| at.to_rfc3339()),
                "assurance_level": user.assurance_level,
                                "contact_verified_at": user.contact_verified_at.map(|at| at.to_rfc3339()),
                "gender": user.gender,
                "phone_number": user.phone_number,
                "phone_verified_at": user.phone_verified_at.map(|at| at.to_rfc3339()),
            },
            "roles": account.roles.iter().map(|role| json!({
                "role": role.as_str(),
                "department_id": account.departments.get(role).map(|id| id.to_string()),
            })).collect::<Vec<_>>(),
            "national_id": national_id.map(|row| json!({
                "masked": row.masked,
                "verified_at": row.verified_at.to_rfc3339(),
                "verified_by": row.verified_by.to_string(),
            })),
            "second_factor": second_factor.map(|row| json!({
                "method": "totp",
                "enrolled_at": row.created_at.to_rfc3339(),
                "confirmed_at": row.confirmed_at.map(|at| at.to_rfc3339()),
            })),
            "sessions": sessions.iter().map(|row| json!({
                "opened_at": row.created_at.to_rfc3339(),
                "expires_at": row.expires_at.to_rfc3339(),
                "used_at": row.used_at.map(|at| at.to_rfc3339()),
                "revoked": row.revoked,
            })).collect::<Vec<_>>(),
            "one_time_codes": codes.iter().map(|row| json!({
                "purpose": row.purpose,
                "sent_at": row.created_at.to_rfc3339(),
                "expires_at": row.expires_at.to_rfc3339(),
                "used_at": row.used_at.map(|at| at.to_rfc3339()),
            })).collect::<Vec<_>>(),
            "audit_entries": entries.iter().map(|row| json!({
                "action": row.action,
                "target": row.target,
                "outcome": row.outcome,
                "client_address": row.client_address,
                "at": row.created_at.to_rfc3339(),
            })).collect::<Vec<_>>(),
        });
        audit::record(
            &self.db,
            Entry {
                commune_id: user.commune_id,
                actor: actor.clone(),
                action: "data.export",
                target,
                outcome: Outcome::Success,
                detail: json!({}),
            },
        )
        .await?;
        Ok(document)
    }

    /// Erases `user_id` after checking its password: personal data removed, the account
    /// pseudonymised and disabled, every session ended, the erasure announced by event.
    pub async fn erase_account(
        &self,
        user_id: Uuid,
        password: &str,
        actor: &Actor,
    ) -> Result<(), Error> {
        let account = self.account(user_id).await?;
        if account.roles.contains(&Role::PlatformAdmin) {
            return Err(Error::PermissionDenied(
                "platform administrators cannot erase their own account".into(),
            ));
        }
        if !crate::accounts::verify_password(
            password.to_string(),
            account.user.password_hash.clone(),
        )
        .await?
        {
            return Err(Error::WrongPassword);
        }
        let now = Utc::now();
        let txn = self.db.begin().await?;
        user::Entity::update_many()
            // No address at all (not a placeholder): the e-mail is free again, and nothing
            // resembling one is left.
            .col_expr(user::Column::Email, Expr::value(Option::<String>::None))
            .col_expr(user::Column::DisplayName, Expr::value("—"))
            .col_expr(user::Column::Gender, Expr::value(Option::<String>::None))
            .col_expr(
                user::Column::PhoneNumber,
                Expr::value(Option::<String>::None),
            )
            .col_expr(
                user::Column::PhoneVerifiedAt,
                Expr::value(Option::<chrono::DateTime<Utc>>::None),
            )
            // No password hashes to this: sign-in can never succeed.
            .col_expr(user::Column::PasswordHash, Expr::value("erased"))
            .col_expr(user::Column::DisabledAt, Expr::value(now))
            .filter(user::Column::Id.eq(user_id))
            .exec(&txn)
            .await?;
        national_id::Entity::delete_by_id(user_id)
            .exec(&txn)
            .await?;
        // A staff member's accepted invitation named them: its address and name go too.
        if let Some(email) = &account.user.email {
            invitation::Entity::update_many()
                .col_expr(invitation::Column::Email, Expr::value(""))
                .col_expr(invitation::Column::DisplayName, Expr::value("—"))
                .filter(invitation::Column::Email.eq(email.clone()))
                .filter(
                    invitation::Column::CommuneId.eq(account.user.commune_id.unwrap_or_default()),
                )
                .exec(&txn)
                .await?;
        }
        totp_credential::Entity::delete_by_id(user_id)
            .exec(&txn)
            .await?;
        recovery_code::Entity::delete_many()
            .filter(recovery_code::Column::UserId.eq(user_id))
            .exec(&txn)
            .await?;
        verification_code::Entity::delete_many()
            .filter(verification_code::Column::UserId.eq(user_id))
            .exec(&txn)
            .await?;
        refresh_token::Entity::update_many()
            .col_expr(refresh_token::Column::Revoked, Expr::value(true))
            .filter(refresh_token::Column::UserId.eq(user_id))
            .exec(&txn)
            .await?;
        audit::record(
            &txn,
            Entry {
                commune_id: account.user.commune_id,
                actor: actor.clone(),
                action: "data.erase",
                target: format!("users/{user_id}"),
                outcome: Outcome::Success,
                detail: json!({}),
            },
        )
        .await?;
        self.outbox
            .add(
                &txn,
                format!("users/{user_id}"),
                &events::AccountErased {
                    user_id: user_id.to_string(),
                    commune_id: account
                        .user
                        .commune_id
                        .map(|id| id.to_string())
                        .unwrap_or_default(),
                    erase_time: Some(jamaa_proto::timestamp_from_millis(now.timestamp_millis())),
                },
            )
            .await?;
        self.outbox.commit(txn).await?;
        tracing::info!(%user_id, "erased an account at its owner's request");
        Ok(())
    }
}
