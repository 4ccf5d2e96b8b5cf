//! Citizens residing in more than one commune: a declared residence counts (claim `residences`,
//! `Principal::resides_in`) once that commune's desk confirms it.

use chrono::Utc;
use jamaa_auth::Role;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, Set, TransactionTrait};
use uuid::Uuid;

use crate::accounts::{Account, Accounts};
use crate::audit::{self, Actor, Entry, Outcome};
use crate::domain::CommuneCode;
use crate::error::Error;
use crate::storage::residence;

impl Accounts {
    /// Records that citizen `user_id` also resides in `commune` (pending its desk).
    pub async fn declare_residence(
        &self,
        user_id: Uuid,
        commune: &CommuneCode,
        actor: &Actor,
    ) -> Result<Account, Error> {
        let account = self.account(user_id).await?;
        if !account.roles.contains(&Role::Citizen) {
            return Err(Error::NotACitizen);
        }
        let commune = self.commune_by_code(commune).await?;
        if account.user.commune_id == Some(commune.id) {
            return Err(Error::HomeCommune);
        }
        let txn = self.db.begin().await?;
        residence::Entity::insert(residence::ActiveModel {
            user_id: Set(user_id),
            commune_id: Set(commune.id),
            declared_at: Set(Utc::now()),
            confirmed_at: Set(None),
            confirmed_by: Set(None),
        })
        .on_conflict(
            OnConflict::columns([residence::Column::UserId, residence::Column::CommuneId])
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(&txn)
        .await?;
        audit::record(
            &txn,
            Entry {
                commune_id: Some(commune.id),
                actor: actor.clone(),
                action: "residence.declare",
                target: format!("users/{user_id}"),
                outcome: Outcome::Success,
                detail: serde_json::json!({}),
            },
        )
        .await?;
        txn.commit().await?;
        self.account(user_id).await
    }

    /// Confirms the residence `user_id` declared in `commune_id` (the agent's commune). A person
    /// with no residence declared there is NOT_FOUND to that commune.
    pub async fn confirm_residence(
        &self,
        commune_id: Uuid,
        user_id: Uuid,
        actor: &Actor,
    ) -> Result<Account, Error> {
        let txn = self.db.begin().await?;
        let confirmed = residence::Entity::update_many()
            .col_expr(residence::Column::ConfirmedAt, Expr::value(Utc::now()))
            .col_expr(residence::Column::ConfirmedBy, Expr::value(actor.user_id))
            .filter(residence::Column::UserId.eq(user_id))
            .filter(residence::Column::CommuneId.eq(commune_id))
            .filter(residence::Column::ConfirmedAt.is_null())
            .exec(&txn)
            .await?;
        if confirmed.rows_affected == 0 {
            let known = residence::Entity::find_by_id((user_id, commune_id))
                .one(&txn)
                .await?;
            return match known {
                // Confirmed already: nothing to do.
                Some(_) => {
                    drop(txn);
                    self.account(user_id).await
                }
                None => Err(Error::UserNotFound),
            };
        }
        audit::record(
            &txn,
            Entry {
                commune_id: Some(commune_id),
                actor: actor.clone(),
                action: "residence.confirm",
                target: format!("users/{user_id}"),
                outcome: Outcome::Success,
                detail: serde_json::json!({}),
            },
        )
        .await?;
        txn.commit().await?;
        self.account(user_id).await
    }
}
