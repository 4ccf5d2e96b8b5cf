//! Public reports: what anyone may see of a commune's requests, for maps and Open311 clients.
//! Only requests of INCIDENT_REPORT services are public (a pothole, a broken lamp); a request
//! for an administrative act, a permit or information is the citizen's own business and never
//! listed. A public report carries no identity, contact, attribute answers or internal note:
//! the service, the status with its latest public note, the description, the place and dates.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use jamaa_proto::servicerequest::v1::{self as pb, PublicRequestState, ServiceKind};
use jamaa_proto::timestamp_from_millis;
use jamaa_proto::r#type::v1::GeoPoint;
use jamaa_server::PageRequest;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use crate::catalogue::definition_of;
use crate::domain::{self, OPEN_STATUSES};
use crate::error::Error;
use crate::storage::{history_entry, service, service_request};

/// What a listing asks for, parsed.
pub struct PublicFilter {
    pub commune_code: String,
    pub ids: Vec<Uuid>,
    pub service_code: Option<String>,
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
    pub state: PublicRequestState,
    pub page: PageRequest,
}

/// The public reports of every commune.
pub struct PublicReports {
    db: DatabaseConnection,
}

impl PublicReports {
    pub fn new(db: DatabaseConnection) -> Self {
        PublicReports { db }
    }

    /// One page of the reports `filter` asks for, newest first, and the next page's token.
    pub async fn list(
        &self,
        filter: PublicFilter,
    ) -> Result<(Vec<pb::PublicRequest>, String), Error> {
        let services = service::Entity::find()
            .filter(service::Column::CommuneCode.eq(filter.commune_code.as_str()))
            .all(&self.db)
            .await?;
        let Some(commune_id) = services.first().map(|row| row.commune_id) else {
            return Ok((Vec::new(), String::new()));
        };
        let names: HashMap<Uuid, pb::ServiceDefinition> = services
            .iter()
            .map(|row| definition_of(row).map(|definition| (row.id, definition)))
            .collect::<Result<_, _>>()?;
        let open: Vec<&str> = OPEN_STATUSES
            .iter()
            .map(|status| domain::status_to_db(*status))
            .collect();
        let mut query = service_request::Entity::find()
            .filter(service_request::Column::CommuneId.eq(commune_id))
            .filter(
                service_request::Column::ServiceKind
                    .eq(domain::kind_to_db(ServiceKind::IncidentReport)),
            );
        if !filter.ids.is_empty() {
            query = query.filter(service_request::Column::Id.is_in(filter.ids.clone()));
        }
        if let Some(code) = &filter.service_code {
            query = query.filter(service_request::Column::ServiceCode.eq(code.as_str()));
        }
        if let Some(start) = filter.start {
            query = query.filter(service_request::Column::CreatedAt.gte(start));
        }
        if let Some(end) = filter.end {
            query = query.filter(service_request::Column::CreatedAt.lt(end));
        }
        query = match filter.state {
            PublicRequestState::Open => query.filter(service_request::Column::Status.is_in(open)),
            PublicRequestState::Closed => {
                query.filter(service_request::Column::Status.is_not_in(open))
            }
            PublicRequestState::Unspecified => query,
        };
        if let Some(before) = filter.page.before {
            query = query.filter(service_request::Column::Id.lt(before));
        }
        let mut rows = query
            .order_by_desc(service_request::Column::Id)
            .limit(filter.page.fetch_limit())
            .all(&self.db)
            .await?;
        let next_page_token = filter.page.finish(&mut rows, |row| row.id);
        let notes = latest_public_notes(&self.db, rows.iter().map(|row| row.id).collect()).await?;
        let reports = rows
            .iter()
            .map(|row| {
                let status = crate::requests::stored_status(&row.status)?;
                Ok(pb::PublicRequest {
                    request_id: row.id.to_string(),
                    tracking_code: row.tracking_code.clone(),
                    service_code: row.service_code.clone(),
                    service_name: names.get(&row.service_id).and_then(|d| d.name.clone()),
                    status: status as i32,
                    open: OPEN_STATUSES.contains(&status),
                    status_note: notes.get(&row.id).cloned().unwrap_or_default(),
                    description: row.description.clone(),
                    location: row
                        .latitude
                        .zip(row.longitude)
                        .map(|(latitude, longitude)| GeoPoint {
                            latitude,
                            longitude,
                        }),
                    address: row.address.clone().unwrap_or_default(),
                    create_time: Some(timestamp_from_millis(row.created_at.timestamp_millis())),
                    update_time: Some(timestamp_from_millis(row.updated_at.timestamp_millis())),
                    due_date: row.due_date.map(|due| due.to_string()).unwrap_or_default(),
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        Ok((reports, next_page_token))
    }
}

/// The latest non-empty public note of each of `ids`.
async fn latest_public_notes(
    db: &DatabaseConnection,
    ids: Vec<Uuid>,
) -> Result<HashMap<Uuid, String>, Error> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let history = history_entry::Entity::find()
        .filter(history_entry::Column::RequestId.is_in(ids))
        .filter(history_entry::Column::Note.ne(""))
        .order_by_asc(history_entry::Column::ChangedAt)
        .order_by_asc(history_entry::Column::Id)
        .all(db)
        .await?;
    // Oldest first: the last one written per request is its latest.
    Ok(history
        .into_iter()
        .map(|entry| (entry.request_id, entry.note))
        .collect())
}
