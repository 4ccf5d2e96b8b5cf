//! A commune's staff: departments, invitations (invite → event → the invitee sets a password)
//! and the roles staff hold, each optionally limited to one department. Every change of rights
//! is audited in the same transaction.

use chrono::Utc;
use jamaa_auth::Role;
use jamaa_events::Outbox;
use jamaa_proto::events::v1 as events;
use jamaa_proto::r#type::v1::{Language, LocalizedText};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set, TransactionTrait,
};
use uuid::Uuid;

use crate::accounts::{
    Account, Accounts, Session, SignUpWith, find_user_by_email, grant_in_department, hash_password,
    insert_user, unique_violation,
};
use crate::audit::{self, Actor, Entry, Outcome};
use crate::domain::{DisplayName, Email, Password};
use crate::error::Error;
use crate::storage::{department, invitation, user_role};
use crate::tokens;

/// How long an invitation works.
pub const INVITATION_TTL_DAYS: i64 = 7;

/// A department code: 2 to 32 upper-case letters, digits or underscores, e.g. `URBANISM`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DepartmentCode(String);

impl DepartmentCode {
    pub fn parse(raw: &str) -> Result<DepartmentCode, String> {
        let code = raw.trim();
        let valid = (2..=32).contains(&code.len())
            && code
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
        if valid {
            Ok(DepartmentCode(code.to_string()))
        } else {
            Err("must be 2 to 32 upper-case letters, digits or underscores, e.g. URBANISM".into())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A staff role, optionally limited to a department (checked to be the commune's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoleGrant {
    pub role: Role,
    pub department_id: Option<Uuid>,
}

/// A new invitation.
pub struct NewInvitation {
    pub email: Email,
    pub display_name: DisplayName,
    pub language: Language,
    pub roles: Vec<RoleGrant>,
}

impl Accounts {
    pub async fn create_department(
        &self,
        commune_id: Uuid,
        code: DepartmentCode,
        name: LocalizedText,
        actor: &Actor,
    ) -> Result<department::Model, Error> {
        let txn = self.db.begin().await?;
        let created = department::ActiveModel {
            id: Set(Uuid::now_v7()),
            commune_id: Set(commune_id),
            code: Set(code.as_str().to_string()),
            name_ar: Set(name.ar),
            name_fr: Set(name.fr),
            name_en: Set(name.en),
            name_tzm: Set(name.tzm),
            created_at: Set(Utc::now()),
        }
        .insert(&txn)
        .await
        .map_err(|error| unique_violation(error, Error::DepartmentExists(code.0.clone())))?;
        audit::record(
            &txn,
            Entry {
                commune_id: Some(commune_id),
                actor: actor.clone(),
                action: "department.create",
                target: format!("departments/{}", created.id),
                outcome: Outcome::Success,
                detail: serde_json::json!({ "code": created.code }),
            },
        )
        .await?;
        txn.commit().await?;
        Ok(created)
    }

    pub async fn departments(&self, commune_id: Uuid) -> Result<Vec<department::Model>, Error> {
        Ok(department::Entity::find()
            .filter(department::Column::CommuneId.eq(commune_id))
            .order_by_asc(department::Column::Code)
            .all(&self.db)
            .await?)
    }

    /// Checks that every department named in `roles` belongs to `commune_id`; the index of the
    /// first that does not otherwise.
    pub async fn check_departments(
        &self,
        commune_id: Uuid,
        roles: &[RoleGrant],
    ) -> Result<(), usize> {
        let own = match self.departments(commune_id).await {
            Ok(own) => own,
            Err(_) => return Err(0),
        };
        for (index, grant) in roles.iter().enumerate() {
            if let Some(id) = grant.department_id
                && !own.iter().any(|department| department.id == id)
            {
                return Err(index);
            }
        }
        Ok(())
    }

    /// Stores an invitation and the event that delivers it; returns its id and expiry.
    pub async fn invite_staff(
        &self,
        commune_id: Uuid,
        new: NewInvitation,
        actor: &Actor,
    ) -> Result<(Uuid, chrono::DateTime<Utc>), Error> {
        if find_user_by_email(&self.db, &new.email).await?.is_some() {
            return Err(Error::EmailTaken { field: "email" });
        }
        let (token, token_hash) = tokens::new_refresh_token()?;
        let id = Uuid::now_v7();
        let expires_at = Utc::now() + chrono::Duration::days(INVITATION_TTL_DAYS);
        let roles: Vec<serde_json::Value> = new
            .roles
            .iter()
            .map(|grant| {
                serde_json::json!({
                    "role": grant.role.as_str(),
                    "department_id": grant.department_id.map(|id| id.to_string()),
                })
            })
            .collect();
        let txn = self.db.begin().await?;
        invitation::ActiveModel {
            id: Set(id),
            commune_id: Set(commune_id),
            email: Set(new.email.as_str().to_string()),
            display_name: Set(new.display_name.as_str().to_string()),
            preferred_language: Set(new.language.code().to_string()),
            roles: Set(serde_json::Value::Array(roles.clone()).to_string()),
            token_hash: Set(token_hash),
            invited_by: Set(actor.user_id.unwrap_or_default()),
            expires_at: Set(expires_at),
            accepted_at: Set(None),
            created_at: Set(Utc::now()),
        }
        .insert(&txn)
        .await?;
        audit::record(
            &txn,
            Entry {
                commune_id: Some(commune_id),
                actor: actor.clone(),
                action: "staff.invite",
                target: format!("invitations/{id}"),
                outcome: Outcome::Success,
                // Never the invitee's e-mail: the invitation row holds it (and the account
                // it becomes); the audit log holds only ids.
                detail: serde_json::json!({ "roles": roles }),
            },
        )
        .await?;
        self.outbox
            .add(
                &txn,
                format!("invitations/{id}"),
                &events::StaffInvited {
                    invitation_id: id.to_string(),
                    commune_id: commune_id.to_string(),
                    email: new.email.as_str().to_string(),
                    display_name: new.display_name.as_str().to_string(),
                    preferred_language: new.language as i32,
                    token,
                    expire_time: Some(jamaa_proto::timestamp_from_millis(
                        expires_at.timestamp_millis(),
                    )),
                },
            )
            .await?;
        self.outbox.commit(txn).await?;
        Ok((id, expires_at))
    }

    /// Creates the invited staff account with its roles and `password`, spends the invitation
    /// and opens a session.
    pub async fn accept_invitation(
        &self,
        token: &str,
        password: Password,
        actor: &Actor,
    ) -> Result<Session, Error> {
        let hash = tokens::hash_refresh_token(token);
        let found = invitation::Entity::find()
            .filter(invitation::Column::TokenHash.eq(hash))
            .one(&self.db)
            .await?
            .filter(|row| row.accepted_at.is_none() && row.expires_at > Utc::now())
            .ok_or(Error::BadInvitation)?;
        let roles = parse_stored_roles(&found.roles)?;
        let email = Email::parse(&found.email).map_err(Error::Internal)?;
        let language = Language::from_code(&found.preferred_language).unwrap_or(Language::Ar);
        let password_hash = hash_password(password).await?;
        let txn = self.db.begin().await?;
        let spent = invitation::Entity::update_many()
            .col_expr(
                invitation::Column::AcceptedAt,
                sea_orm::sea_query::Expr::value(Utc::now()),
            )
            .filter(invitation::Column::Id.eq(found.id))
            .filter(invitation::Column::AcceptedAt.is_null())
            .exec(&txn)
            .await?;
        if spent.rows_affected != 1 {
            return Err(Error::BadInvitation);
        }
        let user_id = insert_user(
            &txn,
            Some(found.commune_id),
            &SignUpWith::Email(email),
            password_hash,
            &found.display_name,
            language,
        )
        .await?;
        let actor = Actor::user(user_id, actor.client_address.clone());
        audit::record(
            &txn,
            Entry {
                commune_id: Some(found.commune_id),
                actor: actor.clone(),
                action: "staff.accept_invitation",
                target: format!("users/{user_id}"),
                outcome: Outcome::Success,
                detail: serde_json::json!({ "invitation": found.id.to_string() }),
            },
        )
        .await?;
        for grant in roles {
            grant_in_department(&txn, user_id, grant.role, grant.department_id).await?;
            record_role_change(
                &txn,
                &self.outbox,
                found.commune_id,
                &actor,
                "role.grant",
                user_id,
                grant,
            )
            .await?;
        }
        self.outbox.commit(txn).await?;
        let account = self.account(user_id).await?;
        self.open_session(account, false).await
    }

    /// Grants `grant` to staff member `user_id` of `commune_id`.
    pub async fn grant_role(
        &self,
        commune_id: Uuid,
        user_id: Uuid,
        grant: RoleGrant,
        actor: &Actor,
    ) -> Result<Account, Error> {
        self.staff_member(commune_id, user_id).await?;
        let txn = self.db.begin().await?;
        grant_in_department(&txn, user_id, grant.role, grant.department_id).await?;
        record_role_change(
            &txn,
            &self.outbox,
            commune_id,
            actor,
            "role.grant",
            user_id,
            grant,
        )
        .await?;
        self.outbox.commit(txn).await?;
        self.account(user_id).await
    }

    /// Revokes `role` from staff member `user_id` of `commune_id` (nothing to do when not held).
    pub async fn revoke_role(
        &self,
        commune_id: Uuid,
        user_id: Uuid,
        role: Role,
        actor: &Actor,
    ) -> Result<Account, Error> {
        let account = self.staff_member(commune_id, user_id).await?;
        if role == Role::CommuneAdmin && actor.user_id == Some(user_id) {
            return Err(Error::CannotRevokeOwnAdmin);
        }
        if !account.roles.contains(&role) {
            return Ok(account);
        }
        let txn = self.db.begin().await?;
        user_role::Entity::delete_many()
            .filter(user_role::Column::UserId.eq(user_id))
            .filter(user_role::Column::Role.eq(role.as_str()))
            .exec(&txn)
            .await?;
        let grant = RoleGrant {
            role,
            department_id: account.departments.get(&role).copied(),
        };
        record_role_change(
            &txn,
            &self.outbox,
            commune_id,
            actor,
            "role.revoke",
            user_id,
            grant,
        )
        .await?;
        self.outbox.commit(txn).await?;
        self.account(user_id).await
    }

    /// A staff account of `commune_id` (NOT_FOUND for other communes' accounts, FAILED_PRECONDITION
    /// for citizens).
    async fn staff_member(&self, commune_id: Uuid, user_id: Uuid) -> Result<Account, Error> {
        let account = self.account(user_id).await?;
        if account.user.commune_id != Some(commune_id) {
            return Err(Error::UserNotFound);
        }
        if account.roles.contains(&Role::Citizen) {
            return Err(Error::NotStaff);
        }
        Ok(account)
    }
}

/// Audits a role change and publishes `StaffRoleChanged` (in the same transaction).
async fn record_role_change(
    txn: &sea_orm::DatabaseTransaction,
    outbox: &Outbox,
    commune_id: Uuid,
    actor: &Actor,
    action: &'static str,
    user_id: Uuid,
    grant: RoleGrant,
) -> Result<(), Error> {
    audit::record(
        txn,
        Entry {
            commune_id: Some(commune_id),
            actor: actor.clone(),
            action,
            target: format!("users/{user_id}"),
            outcome: Outcome::Success,
            detail: serde_json::json!({
                "role": grant.role.as_str(),
                "department_id": grant.department_id.map(|id| id.to_string()),
            }),
        },
    )
    .await?;
    outbox
        .add(
            txn,
            format!("users/{user_id}"),
            &events::StaffRoleChanged {
                user_id: user_id.to_string(),
                commune_id: commune_id.to_string(),
                role: grant.role.as_str().to_string(),
                department_id: grant
                    .department_id
                    .map(|id| id.to_string())
                    .unwrap_or_default(),
                granted: action == "role.grant",
                change_time: Some(jamaa_proto::timestamp_from_millis(
                    Utc::now().timestamp_millis(),
                )),
            },
        )
        .await?;
    Ok(())
}

fn parse_stored_roles(text: &str) -> Result<Vec<RoleGrant>, Error> {
    let bad = || Error::Internal("an invitation's roles are unreadable".into());
    let values: Vec<serde_json::Value> = serde_json::from_str(text).map_err(|_| bad())?;
    values
        .iter()
        .map(|value| {
            let role = value["role"]
                .as_str()
                .and_then(Role::parse)
                .ok_or_else(bad)?;
            let department_id = match value["department_id"].as_str() {
                Some(id) => Some(Uuid::parse_str(id).map_err(|_| bad())?),
                None => None,
            };
            Ok(RoleGrant {
                role,
                department_id,
            })
        })
        .collect()
}
