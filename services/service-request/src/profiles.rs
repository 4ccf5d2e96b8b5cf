//! What service-request keeps of citizens from identity's events, for equity statistics only:
//! their gender (when they gave one). Never shown, never in an answer about a person. When an
//! account is erased its profile is dropped and its requests are detached from it (they stay,
//! without an account, and count as "unknown" in statistics).

use async_trait::async_trait;
use jamaa_events::{CloudEvent, EventHandler, HandlerError, inbox};
use jamaa_proto::events::v1 as events;
use jamaa_proto::identity::v1::Gender;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, Set, TransactionTrait};
use uuid::Uuid;

use crate::storage::{citizen_profile, service_request};

/// The consumer name of this service on the event bus (its queue is
/// `jamaa.events.service-request`).
pub const CONSUMER: &str = "service-request";

/// The event types this service consumes.
pub fn handled_event_types() -> Vec<String> {
    vec![
        CloudEvent::type_of::<events::CitizenRegistered>(),
        CloudEvent::type_of::<events::AccountErased>(),
    ]
}

/// Keeps citizens' profiles; idempotent through the inbox.
pub struct ProfileHandler {
    db: DatabaseConnection,
}

impl ProfileHandler {
    pub fn new(db: DatabaseConnection) -> Self {
        ProfileHandler { db }
    }
}

/// How a gender is stored and grouped in statistics.
pub fn gender_label(gender: Gender) -> &'static str {
    match gender {
        Gender::Female => "female",
        Gender::Male => "male",
        Gender::Unspecified => "unknown",
    }
}

#[async_trait]
impl EventHandler for ProfileHandler {
    async fn handle(&self, event: &CloudEvent) -> Result<(), HandlerError> {
        let txn = self.db.begin().await?;
        if !inbox::try_claim(&txn, CONSUMER, event.id, &event.event_type).await? {
            return Ok(());
        }
        if event.is::<events::CitizenRegistered>() {
            let payload = event.decode::<events::CitizenRegistered>()?;
            let user_id = parse_id(event, &payload.user_id)?;
            let gender = Gender::try_from(payload.gender).unwrap_or(Gender::Unspecified);
            citizen_profile::Entity::delete_by_id(user_id)
                .exec(&txn)
                .await?;
            citizen_profile::Entity::insert(citizen_profile::ActiveModel {
                user_id: Set(user_id),
                gender: Set(gender_label(gender).to_string()),
            })
            .exec(&txn)
            .await?;
        } else if event.is::<events::AccountErased>() {
            let payload = event.decode::<events::AccountErased>()?;
            let user_id = parse_id(event, &payload.user_id)?;
            citizen_profile::Entity::delete_by_id(user_id)
                .exec(&txn)
                .await?;
            // The requests stay (the commune's records, its statistics), detached from the
            // person: no account, no desk name or phone.
            service_request::Entity::update_many()
                .col_expr(service_request::Column::CitizenId, Expr::value(Uuid::nil()))
                .col_expr(
                    service_request::Column::WalkInName,
                    Expr::value(Option::<String>::None),
                )
                .col_expr(
                    service_request::Column::WalkInPhone,
                    Expr::value(Option::<String>::None),
                )
                .filter(service_request::Column::CitizenId.eq(user_id))
                .exec(&txn)
                .await?;
        }
        txn.commit().await?;
        Ok(())
    }
}

fn parse_id(event: &CloudEvent, value: &str) -> Result<Uuid, HandlerError> {
    Uuid::parse_str(value).map_err(|_| {
        HandlerError(format!(
            "event {} ({}) has a malformed user_id: {value:?}",
            event.id, event.event_type
        ))
    })
}
