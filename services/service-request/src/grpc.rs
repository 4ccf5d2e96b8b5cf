//! The gRPC face of the service-request service: parse requests, check the caller, call
//! [`Catalogue`] and [`Requests`], map replies.

use std::collections::HashMap;
use std::sync::Arc;

use jamaa_auth::{Principal, Role, principal};
use jamaa_proto::servicerequest::v1 as pb;
use jamaa_proto::servicerequest::v1::service_request_service_server::ServiceRequestService;
use jamaa_proto::timestamp_from_millis;
use jamaa_proto::r#type::v1::{GeoPoint, LocalizedText};
use jamaa_server::PageRequest;
use jamaa_server::status::{FieldViolations, invalid_argument};
use tonic::{Request, Response, Status};

use crate::catalogue::{Catalogue, NewService};
use crate::domain::{self, RequestDescription, ServiceCode};
use crate::error::Error;
use crate::requests::{self, ListScope, Location, NewRequest, RequestView, Requests};
use crate::storage::{history_entry, service, service_request};

/// The staff roles that may move requests along their workflow.
pub const WORKFLOW_ROLES: [Role; 4] = [
    Role::CommuneAdmin,
    Role::CaseOfficer,
    Role::ReceptionAgent,
    Role::DepartmentHead,
];

/// The `ServiceRequestService` implementation.
pub struct ServiceRequestGrpc {
    catalogue: Arc<Catalogue>,
    requests: Arc<Requests>,
}

impl ServiceRequestGrpc {
    pub fn new(catalogue: Arc<Catalogue>, requests: Arc<Requests>) -> Self {
        ServiceRequestGrpc {
            catalogue,
            requests,
        }
    }
}

#[tonic::async_trait]
impl ServiceRequestService for ServiceRequestGrpc {
    async fn create_service(
        &self,
        request: Request<pb::CreateServiceRequest>,
    ) -> Result<Response<pb::CreateServiceResponse>, Status> {
        let caller = principal(&request)?;
        let commune_id = caller.require_staff(&[Role::CommuneAdmin])?;
        let commune_code = commune_code_of(caller)?;
        let request = request.into_inner();
        let mut violations = FieldViolations::new();
        let code = violations.check("code", ServiceCode::parse(&request.code));
        let name = violations.check("name", domain::parse_service_name(request.name.as_ref()));
        let description = violations.check(
            "description",
            domain::parse_service_description(request.description.as_ref()),
        );
        let (Some(code), Some(name), Some(description)) = (code, name, description) else {
            return Err(violations.into_status());
        };
        violations.into_result()?;
        let created = self
            .catalogue
            .create_service(NewService {
                commune_id,
                commune_code,
                code,
                name,
                description,
            })
            .await?;
        Ok(Response::new(pb::CreateServiceResponse {
            service: Some(service_to_proto(&created)),
        }))
    }

    /// Public: no token needed.
    async fn list_services(
        &self,
        request: Request<pb::ListServicesRequest>,
    ) -> Result<Response<pb::ListServicesResponse>, Status> {
        let request = request.into_inner();
        let commune_code = request.commune_code.trim().to_uppercase();
        if commune_code.is_empty() {
            return Err(invalid_argument("commune_code", "is required"));
        }
        let page = PageRequest::parse(request.page_size, &request.page_token)?;
        let (services, next_page_token) = self
            .catalogue
            .list_active_services(&commune_code, page)
            .await?;
        Ok(Response::new(pb::ListServicesResponse {
            services: services.iter().map(service_to_proto).collect(),
            next_page_token,
        }))
    }

    async fn submit_request(
        &self,
        request: Request<pb::SubmitRequestRequest>,
    ) -> Result<Response<pb::SubmitRequestResponse>, Status> {
        let caller = principal(&request)?;
        let commune_id = caller.require_citizen()?;
        let commune_code = commune_code_of(caller)?;
        let citizen_id = caller.user_id;
        let request = request.into_inner();
        let mut violations = FieldViolations::new();
        let client_request_id =
            violations.check("request_id", domain::parse_id(&request.request_id));
        let service_id = violations.check("service_id", domain::parse_id(&request.service_id));
        let description = violations.check(
            "description",
            RequestDescription::parse(&request.description),
        );
        let attributes =
            violations.check("attributes", domain::parse_attributes(&request.attributes));
        // `Some(None)`: a location was given but is invalid (its violations are recorded).
        let location = request.location.map(|point| {
            let latitude =
                violations.check("location.latitude", domain::parse_latitude(point.latitude));
            let longitude = violations.check(
                "location.longitude",
                domain::parse_longitude(point.longitude),
            );
            latitude
                .zip(longitude)
                .map(|(latitude, longitude)| Location {
                    latitude,
                    longitude,
                })
        });
        let (Some(client_request_id), Some(service_id), Some(description), Some(attributes)) =
            (client_request_id, service_id, description, attributes)
        else {
            return Err(violations.into_status());
        };
        violations.into_result()?;
        let view = self
            .requests
            .submit(NewRequest {
                client_request_id,
                citizen_id,
                commune_id,
                commune_code,
                service_id,
                description,
                attributes,
                location: location.flatten(),
            })
            .await?;
        Ok(Response::new(pb::SubmitRequestResponse {
            request: Some(view_to_proto(&view)?),
        }))
    }

    async fn get_request(
        &self,
        request: Request<pb::GetRequestRequest>,
    ) -> Result<Response<pb::GetRequestResponse>, Status> {
        let caller = principal(&request)?;
        let id = domain::parse_id(&request.get_ref().id)
            .map_err(|description| invalid_argument("id", description))?;
        let view = self
            .requests
            .find(id)
            .await?
            .filter(|view| may_see(caller, &view.request))
            .ok_or_else(|| Error::NotFound(format!("request {id}")))?;
        Ok(Response::new(pb::GetRequestResponse {
            request: Some(view_to_proto(&view)?),
        }))
    }

    async fn list_requests(
        &self,
        request: Request<pb::ListRequestsRequest>,
    ) -> Result<Response<pb::ListRequestsResponse>, Status> {
        let scope = list_scope(principal(&request)?)?;
        let request = request.into_inner();
        let status = domain::parse_status_filter(request.status)
            .map_err(|description| invalid_argument("status", description))?;
        let page = PageRequest::parse(request.page_size, &request.page_token)?;
        let (rows, next_page_token) = self.requests.list(scope, status, page).await?;
        let requests = rows
            .iter()
            .map(|row| request_to_proto(row, &[]))
            .collect::<Result<Vec<_>, Error>>()?;
        Ok(Response::new(pb::ListRequestsResponse {
            requests,
            next_page_token,
        }))
    }

    async fn change_request_status(
        &self,
        request: Request<pb::ChangeRequestStatusRequest>,
    ) -> Result<Response<pb::ChangeRequestStatusResponse>, Status> {
        let caller = principal(&request)?;
        let commune_id = caller.require_staff(&WORKFLOW_ROLES)?;
        let actor_id = caller.user_id;
        let request = request.into_inner();
        let mut violations = FieldViolations::new();
        let id = violations.check("id", domain::parse_id(&request.id));
        let to = violations.check("status", domain::parse_new_status(request.status));
        // With an unknown target only the note's length is checked.
        let note = violations.check(
            "note",
            domain::parse_note(&request.note, to.unwrap_or(pb::RequestStatus::Unspecified)),
        );
        let (Some(id), Some(to), Some(note)) = (id, to, note) else {
            return Err(violations.into_status());
        };
        violations.into_result()?;
        let view = self
            .requests
            .change_status(requests::StatusChange {
                request_id: id,
                commune_id,
                actor_id,
                to,
                note,
            })
            .await?;
        Ok(Response::new(pb::ChangeRequestStatusResponse {
            request: Some(view_to_proto(&view)?),
        }))
    }
}

/// The caller's commune code (the first part of tracking codes, the key of public lists).
fn commune_code_of(caller: &Principal) -> Result<String, Error> {
    caller
        .commune_code
        .clone()
        .filter(|code| !code.is_empty())
        .ok_or_else(|| Error::PermissionDenied("this action needs an account in a commune".into()))
}

/// Whether `caller` may see `request`: the citizen who filed it, or staff of its commune.
fn may_see(caller: &Principal, request: &service_request::Model) -> bool {
    request.citizen_id == caller.user_id || caller.is_staff_of(request.commune_id)
}

/// Which requests `caller` lists: staff see their commune's, citizens their own.
fn list_scope(caller: &Principal) -> Result<ListScope, Error> {
    match caller.commune_id {
        Some(commune_id) if caller.is_staff_of(commune_id) => Ok(ListScope::Commune(commune_id)),
        Some(_) if caller.has_role(Role::Citizen) => Ok(ListScope::Citizen(caller.user_id)),
        _ => Err(Error::PermissionDenied(
            "only citizens and commune staff list requests".into(),
        )),
    }
}

fn service_to_proto(service: &service::Model) -> pb::ServiceDefinition {
    pb::ServiceDefinition {
        id: service.id.to_string(),
        commune_id: service.commune_id.to_string(),
        code: service.code.clone(),
        name: Some(LocalizedText {
            ar: service.name_ar.clone(),
            fr: service.name_fr.clone(),
            en: service.name_en.clone(),
            tzm: service.name_tzm.clone(),
        }),
        description: Some(LocalizedText {
            ar: service.description_ar.clone(),
            fr: service.description_fr.clone(),
            en: service.description_en.clone(),
            tzm: service.description_tzm.clone(),
        }),
        active: service.active,
        create_time: Some(timestamp_from_millis(service.created_at.timestamp_millis())),
    }
}

fn view_to_proto(view: &RequestView) -> Result<pb::ServiceRequest, Error> {
    request_to_proto(&view.request, &view.history)
}

fn request_to_proto(
    request: &service_request::Model,
    history: &[history_entry::Model],
) -> Result<pb::ServiceRequest, Error> {
    let attributes: HashMap<String, String> =
        serde_json::from_str(&request.attributes).map_err(|error| {
            Error::Internal(format!(
                "request {} has unreadable attributes: {error}",
                request.id
            ))
        })?;
    let location = match (request.latitude, request.longitude) {
        (Some(latitude), Some(longitude)) => Some(GeoPoint {
            latitude,
            longitude,
        }),
        _ => None,
    };
    Ok(pb::ServiceRequest {
        id: request.id.to_string(),
        commune_id: request.commune_id.to_string(),
        service_id: request.service_id.to_string(),
        service_code: request.service_code.clone(),
        citizen_id: request.citizen_id.to_string(),
        tracking_code: request.tracking_code.clone(),
        description: request.description.clone(),
        attributes,
        location,
        status: requests::stored_status(&request.status)? as i32,
        create_time: Some(timestamp_from_millis(request.created_at.timestamp_millis())),
        update_time: Some(timestamp_from_millis(request.updated_at.timestamp_millis())),
        history: history
            .iter()
            .map(history_to_proto)
            .collect::<Result<Vec<_>, Error>>()?,
    })
}

fn history_to_proto(entry: &history_entry::Model) -> Result<pb::StatusChange, Error> {
    Ok(pb::StatusChange {
        from_status: requests::stored_status(&entry.from_status)? as i32,
        to_status: requests::stored_status(&entry.to_status)? as i32,
        note: entry.note.clone(),
        actor_id: entry.actor_id.to_string(),
        change_time: Some(timestamp_from_millis(entry.changed_at.timestamp_millis())),
    })
}
