//! Requests and their workflow. Each state change, its history row and its event commit in one
//! transaction through the outbox.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Utc};
use jamaa_events::Outbox;
use jamaa_proto::events::v1 as events;
use jamaa_proto::servicerequest::v1::RequestStatus;
use jamaa_proto::timestamp_from_millis;
use jamaa_server::PageRequest;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    EntityTrait, NotSet, QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait,
};
use uuid::Uuid;

use crate::domain::{self, RequestDescription};
use crate::error::Error;
use crate::storage::{history_entry, service, service_request, tracking_number};

/// A point on the earth, already checked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Location {
    pub latitude: f64,
    pub longitude: f64,
}

/// A citizen's new request, parsed.
pub struct NewRequest {
    /// The citizen's `request_id`: the same value returns the same request.
    pub client_request_id: Uuid,
    pub citizen_id: Uuid,
    pub commune_id: Uuid,
    /// The citizen's commune code, the first part of the tracking code.
    pub commune_code: String,
    pub service_id: Uuid,
    pub description: RequestDescription,
    pub attributes: BTreeMap<String, String>,
    pub location: Option<Location>,
}

/// A staff member's move of a request along its workflow, parsed.
pub struct StatusChange {
    pub request_id: Uuid,
    /// The staff member's commune: requests of other communes are not found.
    pub commune_id: Uuid,
    pub actor_id: Uuid,
    pub to: RequestStatus,
    /// The public note (required when rejecting; checked by the caller).
    pub note: String,
}

/// Whose requests a list shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListScope {
    /// A citizen's own requests.
    Citizen(Uuid),
    /// Every request of a commune (for its staff).
    Commune(Uuid),
}

/// A request with its status history, oldest first (empty in lists).
#[derive(Debug, Clone)]
pub struct RequestView {
    pub request: service_request::Model,
    pub history: Vec<history_entry::Model>,
}

/// The request operations.
pub struct Requests {
    db: DatabaseConnection,
    outbox: Outbox,
}

impl Requests {
    pub fn new(db: DatabaseConnection, outbox: Outbox) -> Self {
        Requests { db, outbox }
    }

    /// Files a request for an active service of the citizen's commune: the request (SUBMITTED),
    /// its first history row and `RequestSubmitted` commit together. Idempotent: a citizen's
    /// second submission with the same `client_request_id` returns the first request.
    pub async fn submit(&self, new: NewRequest) -> Result<RequestView, Error> {
        if let Some(existing) =
            find_by_client_id(&self.db, new.citizen_id, new.client_request_id).await?
        {
            return self.with_history(existing).await;
        }
        let service = service::Entity::find_by_id(new.service_id)
            .one(&self.db)
            .await?
            .filter(|service| service.commune_id == new.commune_id)
            .ok_or_else(|| Error::NotFound(format!("service {}", new.service_id)))?;
        if !service.active {
            return Err(Error::ServiceInactive(service.code));
        }
        let txn = self.db.begin().await?;
        match self.insert_submission(&txn, &new, &service).await {
            Ok(view) => {
                self.outbox.commit(txn).await?;
                Ok(view)
            }
            Err(Error::Database(error)) if is_unique_violation(&error) => {
                // The same citizen submitted the same request_id concurrently: theirs won.
                txn.rollback().await?;
                match find_by_client_id(&self.db, new.citizen_id, new.client_request_id).await? {
                    Some(existing) => self.with_history(existing).await,
                    None => Err(Error::Database(error)),
                }
            }
            Err(error) => {
                txn.rollback().await?;
                Err(error)
            }
        }
    }

    /// Writes a submission inside `txn`: tracking number, request, first history row, event.
    async fn insert_submission(
        &self,
        txn: &DatabaseTransaction,
        new: &NewRequest,
        service: &service::Model,
    ) -> Result<RequestView, Error> {
        let now = Utc::now();
        let sequence = next_tracking_number(txn, now).await?;
        let tracking_code = domain::tracking_code(&new.commune_code, now.year(), sequence);
        let attributes = serde_json::to_string(&new.attributes)
            .map_err(|error| Error::Internal(format!("cannot encode attributes: {error}")))?;
        let request = service_request::ActiveModel {
            id: Set(Uuid::now_v7()),
            commune_id: Set(new.commune_id),
            citizen_id: Set(new.citizen_id),
            client_request_id: Set(new.client_request_id),
            service_id: Set(service.id),
            service_code: Set(service.code.clone()),
            tracking_code: Set(tracking_code),
            description: Set(new.description.as_str().to_string()),
            attributes: Set(attributes),
            latitude: Set(new.location.map(|location| location.latitude)),
            longitude: Set(new.location.map(|location| location.longitude)),
            status: Set(domain::status_to_db(RequestStatus::Submitted).to_string()),
            version: Set(1),
            created_at: Set(now),
            updated_at: Set(now),
        }
        .insert(txn)
        .await?;
        let first = insert_history(
            txn,
            request.id,
            RequestStatus::Unspecified,
            RequestStatus::Submitted,
            String::new(),
            new.citizen_id,
            now,
        )
        .await?;
        self.outbox
            .add(
                txn,
                subject(request.id),
                &events::RequestSubmitted {
                    request_id: request.id.to_string(),
                    commune_id: request.commune_id.to_string(),
                    citizen_id: request.citizen_id.to_string(),
                    tracking_code: request.tracking_code.clone(),
                    service_code: request.service_code.clone(),
                    submit_time: Some(timestamp_from_millis(now.timestamp_millis())),
                },
            )
            .await?;
        Ok(RequestView {
            request,
            history: vec![first],
        })
    }

    /// The request `id` with its history, or `None` when it does not exist. The caller checks
    /// whether the viewer may see it.
    pub async fn find(&self, id: Uuid) -> Result<Option<RequestView>, Error> {
        match service_request::Entity::find_by_id(id)
            .one(&self.db)
            .await?
        {
            Some(request) => Ok(Some(self.with_history(request).await?)),
            None => Ok(None),
        }
    }

    /// A page of requests in `scope`, optionally only in `status`, newest first, without
    /// history. Returns the requests and the next page token.
    pub async fn list(
        &self,
        scope: ListScope,
        status: Option<RequestStatus>,
        page: PageRequest,
    ) -> Result<(Vec<service_request::Model>, String), Error> {
        let mut query = match scope {
            ListScope::Citizen(citizen_id) => service_request::Entity::find()
                .filter(service_request::Column::CitizenId.eq(citizen_id)),
            ListScope::Commune(commune_id) => service_request::Entity::find()
                .filter(service_request::Column::CommuneId.eq(commune_id)),
        };
        if let Some(status) = status {
            query = query.filter(service_request::Column::Status.eq(domain::status_to_db(status)));
        }
        if let Some(before) = page.before {
            query = query.filter(service_request::Column::Id.lt(before));
        }
        let mut rows = query
            .order_by_desc(service_request::Column::Id)
            .limit(page.fetch_limit())
            .all(&self.db)
            .await?;
        let next_page_token = page.finish(&mut rows, |row| row.id);
        Ok((rows, next_page_token))
    }

    /// Moves a request of the actor's commune to `change.to` if the workflow allows it. The
    /// update (guarded by the version read), its history row and `RequestStatusChanged` commit
    /// together; a concurrent change makes it fail with [`Error::Conflict`].
    pub async fn change_status(&self, change: StatusChange) -> Result<RequestView, Error> {
        let now = Utc::now();
        let txn = self.db.begin().await?;
        let request = service_request::Entity::find_by_id(change.request_id)
            .one(&txn)
            .await?
            .filter(|request| request.commune_id == change.commune_id)
            .ok_or_else(|| Error::NotFound(format!("request {}", change.request_id)))?;
        let from = stored_status(&request.status)?;
        if !domain::can_move(from, change.to) {
            return Err(Error::InvalidTransition {
                from,
                to: change.to,
            });
        }
        let updated = service_request::Entity::update_many()
            .col_expr(
                service_request::Column::Status,
                Expr::value(domain::status_to_db(change.to)),
            )
            .col_expr(
                service_request::Column::Version,
                Expr::col(service_request::Column::Version).add(1),
            )
            .col_expr(service_request::Column::UpdatedAt, Expr::value(now))
            .filter(service_request::Column::Id.eq(request.id))
            .filter(service_request::Column::Version.eq(request.version))
            .exec(&txn)
            .await?;
        if updated.rows_affected != 1 {
            return Err(Error::Conflict);
        }
        insert_history(
            &txn,
            request.id,
            from,
            change.to,
            change.note.clone(),
            change.actor_id,
            now,
        )
        .await?;
        self.outbox
            .add(
                &txn,
                subject(request.id),
                &events::RequestStatusChanged {
                    request_id: request.id.to_string(),
                    commune_id: request.commune_id.to_string(),
                    citizen_id: request.citizen_id.to_string(),
                    tracking_code: request.tracking_code.clone(),
                    service_code: request.service_code.clone(),
                    old_status: from as i32,
                    new_status: change.to as i32,
                    public_note: change.note,
                    changed_by: change.actor_id.to_string(),
                    change_time: Some(timestamp_from_millis(now.timestamp_millis())),
                },
            )
            .await?;
        self.outbox.commit(txn).await?;
        self.find(request.id).await?.ok_or_else(|| {
            Error::Internal(format!("request {} vanished after its change", request.id))
        })
    }

    async fn with_history(&self, request: service_request::Model) -> Result<RequestView, Error> {
        let history = history_entry::Entity::find()
            .filter(history_entry::Column::RequestId.eq(request.id))
            .order_by_asc(history_entry::Column::ChangedAt)
            .order_by_asc(history_entry::Column::Id)
            .all(&self.db)
            .await?;
        Ok(RequestView { request, history })
    }
}

/// The status stored in a row, or an internal error for a value this code never writes.
pub fn stored_status(value: &str) -> Result<RequestStatus, Error> {
    domain::status_from_db(value)
        .ok_or_else(|| Error::Internal(format!("unknown stored request status {value:?}")))
}

/// The subject of a request's events.
fn subject(request_id: Uuid) -> String {
    format!("requests/{request_id}")
}

/// Allocates a tracking sequence number by inserting a row (its id comes from a database
/// sequence, so concurrent submissions never wait on each other).
async fn next_tracking_number(txn: &DatabaseTransaction, now: DateTime<Utc>) -> Result<i64, Error> {
    let inserted = tracking_number::Entity::insert(tracking_number::ActiveModel {
        id: NotSet,
        issued_at: Set(now),
    })
    .exec(txn)
    .await?;
    Ok(inserted.last_insert_id)
}

async fn insert_history(
    txn: &DatabaseTransaction,
    request_id: Uuid,
    from: RequestStatus,
    to: RequestStatus,
    note: String,
    actor_id: Uuid,
    now: DateTime<Utc>,
) -> Result<history_entry::Model, Error> {
    Ok(history_entry::ActiveModel {
        id: Set(Uuid::now_v7()),
        request_id: Set(request_id),
        from_status: Set(domain::status_to_db(from).to_string()),
        to_status: Set(domain::status_to_db(to).to_string()),
        note: Set(note),
        actor_id: Set(actor_id),
        changed_at: Set(now),
    }
    .insert(txn)
    .await?)
}

async fn find_by_client_id(
    db: &impl ConnectionTrait,
    citizen_id: Uuid,
    client_request_id: Uuid,
) -> Result<Option<service_request::Model>, Error> {
    Ok(service_request::Entity::find()
        .filter(service_request::Column::CitizenId.eq(citizen_id))
        .filter(service_request::Column::ClientRequestId.eq(client_request_id))
        .one(db)
        .await?)
}

fn is_unique_violation(error: &sea_orm::DbErr) -> bool {
    matches!(
        error.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    )
}
