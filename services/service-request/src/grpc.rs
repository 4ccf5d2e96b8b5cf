//! The gRPC face of the service-request service: parse requests, check the caller, call
//! [`Catalogue`], [`Requests`] and [`ClosedDays`], map replies.

use std::collections::HashMap;
use std::sync::Arc;

use jamaa_auth::{Principal, Role, principal};
use jamaa_proto::servicerequest::v1 as pb;
use jamaa_proto::servicerequest::v1::service_request_service_server::ServiceRequestService;
use jamaa_proto::timestamp_from_millis;
use jamaa_proto::r#type::v1::GeoPoint;
use jamaa_server::PageRequest;
use jamaa_server::status::{FieldViolations, invalid_argument};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::appeals::{Appeals, level_from_db};
use crate::attachments::{Attachments, NewAttachment, check_content, parse_file_name};
use crate::catalogue::{Catalogue, NewService};
use crate::closed_days::{ClosedDayKind, ClosedDayScope, ClosedDayView, ClosedDays, NewClosedDay};
use crate::definition::{name_of, parse_definition};
use crate::domain::{self, RequestDescription, ServiceCode};
use crate::error::Error;
use crate::followers::{Followers, MAX_RADIUS_METERS};
use crate::public_reports::{PublicFilter, PublicReports};
use crate::requests::{
    self, Assignment, Canceller, Filed, Filer, ListScope, Location, NewRequest, RequestView,
    Requests, StaffScope, WalkIn, account_of, etag_of,
};
use crate::response_templates::{NewTemplate, ResponseTemplates, text_of};
use crate::statistics::{Breakdown, Statistics, StatisticsRow, to_csv};
use crate::storage::{appeal, attachment, history_entry, response_template, service_request};

/// The largest attachment, in bytes (3 MiB: a gRPC message stays under tonic's 4 MiB).
pub const MAX_ATTACHMENT_BYTES: usize = 3 * 1024 * 1024;

/// The staff roles that may move requests along their workflow.
pub const WORKFLOW_ROLES: [Role; 4] = [
    Role::CommuneAdmin,
    Role::CaseOfficer,
    Role::ReceptionAgent,
    Role::DepartmentHead,
];

/// The staff roles that may assign requests.
pub const ASSIGNING_ROLES: [Role; 3] = [
    Role::CommuneAdmin,
    Role::DepartmentHead,
    Role::ReceptionAgent,
];

/// The staff roles that may extend a deadline.
pub const EXTENDING_ROLES: [Role; 3] =
    [Role::CommuneAdmin, Role::DepartmentHead, Role::CaseOfficer];

/// The staff roles that file at the desk for walk-ins.
pub const DESK_ROLES: [Role; 2] = [Role::ReceptionAgent, Role::CommuneAdmin];

/// The staff roles that read requests.
pub const READING_ROLES: [Role; 6] = [
    Role::CommuneAdmin,
    Role::CaseOfficer,
    Role::ReceptionAgent,
    Role::DepartmentHead,
    Role::CouncilSecretary,
    Role::Moderator,
];

/// What the `ServiceRequestService` implementation calls.
pub struct Parts {
    pub catalogue: Arc<Catalogue>,
    pub requests: Arc<Requests>,
    pub closed_days: Arc<ClosedDays>,
    pub statistics: Arc<Statistics>,
    pub followers: Arc<Followers>,
    pub attachments: Arc<Attachments>,
    pub templates: Arc<ResponseTemplates>,
    pub appeals: Arc<Appeals>,
    pub public_reports: Arc<PublicReports>,
}

/// The `ServiceRequestService` implementation.
pub struct ServiceRequestGrpc {
    catalogue: Arc<Catalogue>,
    requests: Arc<Requests>,
    closed_days: Arc<ClosedDays>,
    statistics: Arc<Statistics>,
    followers: Arc<Followers>,
    attachments: Arc<Attachments>,
    templates: Arc<ResponseTemplates>,
    appeals: Arc<Appeals>,
    public_reports: Arc<PublicReports>,
}

impl ServiceRequestGrpc {
    pub fn new(parts: Parts) -> Self {
        let Parts {
            catalogue,
            requests,
            closed_days,
            statistics,
            followers,
            attachments,
            templates,
            appeals,
            public_reports,
        } = parts;
        ServiceRequestGrpc {
            catalogue,
            requests,
            closed_days,
            statistics,
            followers,
            attachments,
            templates,
            appeals,
            public_reports,
        }
    }

    /// The request `id` if `caller` may see it (else NOT_FOUND).
    async fn visible_request(
        &self,
        caller: &Principal,
        id: Uuid,
    ) -> Result<service_request::Model, Status> {
        Ok(self
            .requests
            .find(id)
            .await?
            .filter(|view| audience(caller, &view.request).is_some())
            .ok_or_else(|| Error::NotFound(format!("request {id}")))?
            .request)
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
        let service = request.into_inner().service.unwrap_or_default();
        let mut violations = FieldViolations::new();
        let code = violations.check("service.code", ServiceCode::parse(&service.code));
        let definition = parse_definition(&service, &mut violations);
        let (Some(code), Some(definition)) = (code, definition) else {
            return Err(violations.into_status());
        };
        let created = self
            .catalogue
            .create_service(NewService {
                commune_id,
                commune_code,
                code,
                definition,
            })
            .await?;
        Ok(Response::new(pb::CreateServiceResponse {
            service: Some(created),
        }))
    }

    async fn update_service(
        &self,
        request: Request<pb::UpdateServiceRequest>,
    ) -> Result<Response<pb::UpdateServiceResponse>, Status> {
        let caller = principal(&request)?;
        let commune_id = caller.require_staff(&[Role::CommuneAdmin])?;
        let service = request.into_inner().service.unwrap_or_default();
        let mut violations = FieldViolations::new();
        let id = violations.check("service.id", domain::parse_id(&service.id));
        let definition = parse_definition(&service, &mut violations);
        let (Some(id), Some(definition)) = (id, definition) else {
            return Err(violations.into_status());
        };
        if let Ok(current) = self.catalogue.find_of_commune(commune_id, id).await
            && !service.code.trim().is_empty()
            && service.code.trim() != current.code
        {
            return Err(invalid_argument(
                "service.code",
                "cannot change; leave it empty or send the service's code",
            ));
        }
        let updated = self
            .catalogue
            .update_service(commune_id, id, definition)
            .await?;
        Ok(Response::new(pb::UpdateServiceResponse {
            service: Some(updated),
        }))
    }

    /// Public: no token needed.
    async fn get_service(
        &self,
        request: Request<pb::GetServiceRequest>,
    ) -> Result<Response<pb::GetServiceResponse>, Status> {
        let request = request.into_inner();
        let mut violations = FieldViolations::new();
        let id = violations.check("id", domain::parse_id(&request.id));
        if request.version < 0 {
            violations.add("version", "must be 0 (the current one) or a version number");
        }
        let Some(id) = id else {
            return Err(violations.into_status());
        };
        violations.into_result()?;
        let version = (request.version > 0).then_some(request.version);
        let service = self.catalogue.get_service(id, version).await?;
        Ok(Response::new(pb::GetServiceResponse {
            service: Some(service),
        }))
    }

    /// Public: no token needed (inactive services only for the commune's staff).
    async fn list_services(
        &self,
        request: Request<pb::ListServicesRequest>,
    ) -> Result<Response<pb::ListServicesResponse>, Status> {
        let caller = request.extensions().get::<Principal>().cloned();
        let request = request.into_inner();
        let commune_code = request.commune_code.trim().to_uppercase();
        if commune_code.is_empty() {
            return Err(invalid_argument("commune_code", "is required"));
        }
        if request.include_inactive {
            let own_staff = caller.as_ref().is_some_and(|caller| {
                caller.commune_code.as_deref() == Some(commune_code.as_str())
                    && caller.commune_id.is_some_and(|id| caller.is_staff_of(id))
            });
            if !own_staff {
                return Err(Error::PermissionDenied(
                    "only the commune's staff list its inactive services".into(),
                )
                .into());
            }
        }
        let page = PageRequest::parse(request.page_size, &request.page_token)?;
        let (services, next_page_token) = self
            .catalogue
            .list_services(&commune_code, request.include_inactive, page)
            .await?;
        Ok(Response::new(pb::ListServicesResponse {
            services,
            next_page_token,
        }))
    }

    async fn activate_service(
        &self,
        request: Request<pb::ActivateServiceRequest>,
    ) -> Result<Response<pb::ActivateServiceResponse>, Status> {
        let commune_id = principal(&request)?.require_staff(&[Role::CommuneAdmin])?;
        let id = parse_id_field("id", &request.get_ref().id)?;
        let service = self.catalogue.set_active(commune_id, id, true).await?;
        Ok(Response::new(pb::ActivateServiceResponse {
            service: Some(service),
        }))
    }

    async fn deactivate_service(
        &self,
        request: Request<pb::DeactivateServiceRequest>,
    ) -> Result<Response<pb::DeactivateServiceResponse>, Status> {
        let commune_id = principal(&request)?.require_staff(&[Role::CommuneAdmin])?;
        let id = parse_id_field("id", &request.get_ref().id)?;
        let service = self.catalogue.set_active(commune_id, id, false).await?;
        Ok(Response::new(pb::DeactivateServiceResponse {
            service: Some(service),
        }))
    }

    async fn import_starter_catalogue(
        &self,
        request: Request<pb::ImportStarterCatalogueRequest>,
    ) -> Result<Response<pb::ImportStarterCatalogueResponse>, Status> {
        let caller = principal(&request)?;
        let commune_id = caller.require_staff(&[Role::CommuneAdmin])?;
        let commune_code = commune_code_of(caller)?;
        let services = self
            .catalogue
            .import_starter(commune_id, &commune_code)
            .await?;
        Ok(Response::new(pb::ImportStarterCatalogueResponse {
            services,
        }))
    }

    async fn submit_request(
        &self,
        request: Request<pb::SubmitRequestRequest>,
    ) -> Result<Response<pb::SubmitRequestResponse>, Status> {
        let caller = principal(&request)?;
        let api_client = caller.api_client.clone();
        let at_desk = request.get_ref().walk_in.is_some() && api_client.is_none();
        let (commune_id, commune_code) = if let Some(client) = &api_client {
            // A client application files for the person reporting: their name and phone.
            if request.get_ref().walk_in.is_none() {
                return Err(invalid_argument(
                    "walk_in",
                    "an application gives the reporter's name and phone",
                ));
            }
            (client.commune_id, client.commune_code.clone())
        } else if at_desk {
            (caller.require_staff(&DESK_ROLES)?, commune_code_of(caller)?)
        } else {
            (caller.require_citizen()?, commune_code_of(caller)?)
        };
        let caller_id = caller.user_id;
        let caller_language = match caller.language.as_str() {
            language @ ("ar" | "fr" | "en" | "tzm") => language.to_string(),
            _ => "ar".to_string(),
        };
        let request = request.into_inner();
        let mut violations = FieldViolations::new();
        let client_request_id =
            violations.check("request_id", domain::parse_id(&request.request_id));
        let service_id = violations.check("service_id", domain::parse_id(&request.service_id));
        let description = violations.check(
            "description",
            RequestDescription::parse(&request.description),
        );
        let address = violations.check("address", domain::parse_address(&request.address));
        let area = violations.check("area", domain::parse_area(&request.area));
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
        let filer = match &request.walk_in {
            None => Some(Filer::Citizen(caller_id)),
            Some(walk_in) => {
                let full_name = violations.check(
                    "walk_in.full_name",
                    domain::parse_full_name(&walk_in.full_name),
                );
                let phone = violations.check("walk_in.phone", domain::parse_phone(&walk_in.phone));
                let account = violations.check(
                    "walk_in.citizen_id",
                    domain::parse_optional_id(&walk_in.citizen_id),
                );
                match (
                    full_name,
                    phone,
                    account,
                    api_client.as_ref().map(|c| c.key_id),
                ) {
                    (Some(full_name), Some(phone), Some(None), Some(key_id)) => {
                        Some(Filer::ApiClient {
                            key_id,
                            walk_in: WalkIn {
                                full_name,
                                phone,
                                account: None,
                            },
                        })
                    }
                    (Some(_), Some(_), Some(Some(_)), Some(_)) => {
                        violations.add(
                            "walk_in.citizen_id",
                            "an application cannot file for an account",
                        );
                        None
                    }
                    (Some(full_name), Some(phone), Some(account), None) => Some(Filer::Desk {
                        agent_id: caller_id,
                        walk_in: WalkIn {
                            full_name,
                            phone,
                            account,
                        },
                    }),
                    _ => None,
                }
            }
        };
        let (
            Some(client_request_id),
            Some(service_id),
            Some(description),
            Some(address),
            Some(area),
            Some(filer),
        ) = (
            client_request_id,
            service_id,
            description,
            address,
            area,
            filer,
        )
        else {
            return Err(violations.into_status());
        };
        violations.into_result()?;
        let filed = self
            .requests
            .submit(NewRequest {
                client_request_id,
                filer,
                commune_id,
                commune_code,
                service_id,
                description,
                attributes: request.attributes,
                location: location.flatten(),
                address,
                area,
                urgent: request.urgent,
                language: if at_desk {
                    "ar".to_string()
                } else {
                    caller_language
                },
            })
            .await?;
        let receipt = receipt_of(&filed);
        let audience = if api_client.is_some() {
            Audience::Citizen
        } else {
            Audience::of(caller_id, &filed.view.request, at_desk)
        };
        Ok(Response::new(pb::SubmitRequestResponse {
            request: Some(view_to_proto(&filed.view, audience)?),
            receipt: Some(receipt),
        }))
    }

    async fn get_request(
        &self,
        request: Request<pb::GetRequestRequest>,
    ) -> Result<Response<pb::GetRequestResponse>, Status> {
        let caller = principal(&request)?;
        let id = parse_id_field("id", &request.get_ref().id)?;
        let view = self
            .requests
            .find(id)
            .await?
            .and_then(|view| audience(caller, &view.request).map(|audience| (view, audience)))
            .ok_or_else(|| Error::NotFound(format!("request {id}")))?;
        Ok(Response::new(pb::GetRequestResponse {
            request: Some(view_to_proto(&view.0, view.1)?),
        }))
    }

    async fn list_requests(
        &self,
        request: Request<pb::ListRequestsRequest>,
    ) -> Result<Response<pb::ListRequestsResponse>, Status> {
        let caller = principal(&request)?;
        let request = request.get_ref();
        let mut violations = FieldViolations::new();
        let status = violations.check("status", domain::parse_status_filter(request.status));
        let assignee = violations.check(
            "assignee_id",
            domain::parse_optional_id(&request.assignee_id),
        );
        let (Some(status), Some(assignee)) = (status, assignee) else {
            return Err(violations.into_status());
        };
        let (scope, audience) = list_scope(caller, assignee)?;
        let page = PageRequest::parse(request.page_size, &request.page_token)?;
        let (rows, next_page_token) = self.requests.list(scope, status, page).await?;
        let requests = rows
            .iter()
            .map(|row| request_to_proto(row, &[], audience))
            .collect::<Result<Vec<_>, Error>>()?;
        Ok(Response::new(pb::ListRequestsResponse {
            requests,
            next_page_token,
        }))
    }

    /// Public: no token needed; the receipt's secret is the key.
    async fn get_public_request_status(
        &self,
        request: Request<pb::GetPublicRequestStatusRequest>,
    ) -> Result<Response<pb::GetPublicRequestStatusResponse>, Status> {
        let request = request.into_inner();
        let mut violations = FieldViolations::new();
        let tracking_code = request.tracking_code.trim().to_uppercase();
        if tracking_code.is_empty() || tracking_code.len() > 64 {
            violations.add(
                "tracking_code",
                "is required (it is printed on the receipt)",
            );
        }
        if request.secret.trim().is_empty() || request.secret.len() > 64 {
            violations.add("secret", "is required (it is printed on the receipt)");
        }
        violations.into_result()?;
        let (view, definition) = self
            .requests
            .find_by_receipt(&tracking_code, &request.secret)
            .await?
            .ok_or_else(|| {
                Error::NotFound("a request with this tracking code and secret".to_string())
            })?;
        let row = &view.request;
        Ok(Response::new(pb::GetPublicRequestStatusResponse {
            status: Some(pb::PublicRequestStatus {
                tracking_code: row.tracking_code.clone(),
                service_code: row.service_code.clone(),
                service_name: Some(name_of(&definition)),
                status: requests::stored_status(&row.status)? as i32,
                create_time: Some(timestamp_from_millis(row.created_at.timestamp_millis())),
                update_time: Some(timestamp_from_millis(row.updated_at.timestamp_millis())),
                due_date: row.due_date.map(|due| due.to_string()).unwrap_or_default(),
                history: view
                    .history
                    .iter()
                    .map(|entry| {
                        let mut change = history_to_proto(entry, Audience::Citizen)?;
                        change.actor_id = String::new();
                        Ok(change)
                    })
                    .collect::<Result<Vec<_>, Error>>()?,
            }),
        }))
    }

    async fn change_request_status(
        &self,
        request: Request<pb::ChangeRequestStatusRequest>,
    ) -> Result<Response<pb::ChangeRequestStatusResponse>, Status> {
        let caller = principal(&request)?;
        let scope = staff_scope(caller, &WORKFLOW_ROLES)?;
        let actor_id = caller.user_id;
        let request = request.into_inner();
        let mut violations = FieldViolations::new();
        let id = violations.check("id", domain::parse_id(&request.id));
        let to = violations.check("status", domain::parse_new_status(request.status));
        // With a template the note comes from it; with an unknown target only the note's
        // length is checked.
        let uses_template = !request.template_id.trim().is_empty();
        let note_for = to
            .filter(|_| !uses_template)
            .unwrap_or(pb::RequestStatus::Unspecified);
        let note = violations.check("note", domain::parse_note(&request.note, note_for));
        let internal_note = violations.check(
            "internal_note",
            domain::parse_reason(&request.internal_note, false),
        );
        let legal_ground = violations.check(
            "legal_ground",
            domain::parse_reason(&request.legal_ground, false),
        );
        let template_id = violations.check(
            "template_id",
            domain::parse_optional_id(&request.template_id),
        );
        if uses_template && !request.note.trim().is_empty() {
            violations.add("note", "must be empty when a template gives the note");
        }
        let (
            Some(id),
            Some(to),
            Some(note),
            Some(internal_note),
            Some(legal_ground),
            Some(template_id),
        ) = (id, to, note, internal_note, legal_ground, template_id)
        else {
            return Err(violations.into_status());
        };
        violations.into_result()?;
        let template = match template_id {
            Some(template_id) => Some(self.templates.find(scope.commune_id, template_id).await?),
            None => None,
        };
        let view = self
            .requests
            .change_status(requests::StatusChange {
                request_id: id,
                scope,
                actor_id,
                to,
                note,
                internal_note,
                legal_ground,
                etag: optional_etag(&request.etag),
                template,
            })
            .await?;
        Ok(Response::new(pb::ChangeRequestStatusResponse {
            request: Some(view_to_proto(&view, Audience::Staff)?),
        }))
    }

    async fn cancel_request(
        &self,
        request: Request<pb::CancelRequestRequest>,
    ) -> Result<Response<pb::CancelRequestResponse>, Status> {
        let caller = principal(&request)?;
        let (canceller, audience) = if caller.has_role(Role::Citizen) {
            caller.require_citizen()?;
            (Canceller::Citizen(caller.user_id), Audience::Citizen)
        } else {
            let scope = staff_scope(caller, &DESK_ROLES)?;
            (
                Canceller::Desk {
                    scope,
                    agent_id: caller.user_id,
                },
                Audience::Staff,
            )
        };
        let request = request.into_inner();
        let mut violations = FieldViolations::new();
        let id = violations.check("id", domain::parse_id(&request.id));
        let reason = violations.check("reason", domain::parse_reason(&request.reason, false));
        let (Some(id), Some(reason)) = (id, reason) else {
            return Err(violations.into_status());
        };
        let view = self.requests.cancel(id, canceller, reason).await?;
        Ok(Response::new(pb::CancelRequestResponse {
            request: Some(view_to_proto(&view, audience)?),
        }))
    }

    async fn reopen_request(
        &self,
        request: Request<pb::ReopenRequestRequest>,
    ) -> Result<Response<pb::ReopenRequestResponse>, Status> {
        let caller = principal(&request)?;
        caller.require_citizen()?;
        let citizen_id = caller.user_id;
        let request = request.into_inner();
        let mut violations = FieldViolations::new();
        let id = violations.check("id", domain::parse_id(&request.id));
        let reason = violations.check("reason", domain::parse_reason(&request.reason, true));
        let (Some(id), Some(reason)) = (id, reason) else {
            return Err(violations.into_status());
        };
        let view = self.requests.reopen(id, citizen_id, reason).await?;
        Ok(Response::new(pb::ReopenRequestResponse {
            request: Some(view_to_proto(&view, Audience::Citizen)?),
        }))
    }

    async fn assign_request(
        &self,
        request: Request<pb::AssignRequestRequest>,
    ) -> Result<Response<pb::AssignRequestResponse>, Status> {
        let caller = principal(&request)?;
        let scope = staff_scope(caller, &ASSIGNING_ROLES)?;
        let actor_id = caller.user_id;
        let request = request.into_inner();
        let mut violations = FieldViolations::new();
        let id = violations.check("id", domain::parse_id(&request.id));
        let department_id = violations.check(
            "department_id",
            domain::parse_optional_id(&request.department_id),
        );
        let assignee_id = violations.check(
            "assignee_id",
            domain::parse_optional_id(&request.assignee_id),
        );
        let priority = violations.check("priority", domain::parse_priority(request.priority));
        let (Some(id), Some(department_id), Some(assignee_id), Some(priority)) =
            (id, department_id, assignee_id, priority)
        else {
            return Err(violations.into_status());
        };
        if let (Some(department), Some(departments)) = (department_id, &scope.departments)
            && !departments.contains(&department)
        {
            return Err(Error::PermissionDenied(
                "you may assign requests only within your own department".into(),
            )
            .into());
        }
        let view = self
            .requests
            .assign(Assignment {
                request_id: id,
                scope,
                actor_id,
                department_id,
                assignee_id,
                priority,
                etag: optional_etag(&request.etag),
            })
            .await?;
        Ok(Response::new(pb::AssignRequestResponse {
            request: Some(view_to_proto(&view, Audience::Staff)?),
        }))
    }

    async fn extend_request_deadline(
        &self,
        request: Request<pb::ExtendRequestDeadlineRequest>,
    ) -> Result<Response<pb::ExtendRequestDeadlineResponse>, Status> {
        let caller = principal(&request)?;
        let scope = staff_scope(caller, &EXTENDING_ROLES)?;
        let actor_id = caller.user_id;
        let request = request.into_inner();
        let mut violations = FieldViolations::new();
        let id = violations.check("id", domain::parse_id(&request.id));
        let reason = violations.check("reason", domain::parse_reason(&request.reason, true));
        let (Some(id), Some(reason)) = (id, reason) else {
            return Err(violations.into_status());
        };
        let view = self
            .requests
            .extend_deadline(id, &scope, actor_id, reason)
            .await?;
        Ok(Response::new(pb::ExtendRequestDeadlineResponse {
            request: Some(view_to_proto(&view, Audience::Staff)?),
        }))
    }

    async fn rate_request(
        &self,
        request: Request<pb::RateRequestRequest>,
    ) -> Result<Response<pb::RateRequestResponse>, Status> {
        let caller = principal(&request)?;
        caller.require_citizen()?;
        let citizen_id = caller.user_id;
        let request = request.into_inner();
        let mut violations = FieldViolations::new();
        let id = violations.check("id", domain::parse_id(&request.id));
        let rating = violations.check("rating", domain::parse_rating(request.rating));
        let comment = violations.check("comment", domain::parse_reason(&request.comment, false));
        let (Some(id), Some(rating), Some(comment)) = (id, rating, comment) else {
            return Err(violations.into_status());
        };
        let view = self.requests.rate(id, citizen_id, rating, comment).await?;
        Ok(Response::new(pb::RateRequestResponse {
            request: Some(view_to_proto(&view, Audience::Citizen)?),
        }))
    }

    async fn create_response_template(
        &self,
        request: Request<pb::CreateResponseTemplateRequest>,
    ) -> Result<Response<pb::CreateResponseTemplateResponse>, Status> {
        let commune_id = principal(&request)?.require_staff(&[Role::CommuneAdmin])?;
        let template = request.into_inner().template.unwrap_or_default();
        let mut violations = FieldViolations::new();
        let status = violations.check("template.status", domain::parse_new_status(template.status));
        let service_id = violations.check(
            "template.service_id",
            domain::parse_optional_id(&template.service_id),
        );
        let name = template.name.trim().to_string();
        if name.is_empty() || name.chars().count() > MAX_TEMPLATE_NAME_CHARS {
            violations.add(
                "template.name",
                format!("must have 1 to {MAX_TEMPLATE_NAME_CHARS} characters"),
            );
        }
        let text = violations.check(
            "template.text",
            domain::parse_service_name(template.text.as_ref())
                .and_then(|text| domain::parse_service_description(Some(&text))),
        );
        let (Some(status), Some(service_id), Some(text)) = (status, service_id, text) else {
            return Err(violations.into_status());
        };
        violations.into_result()?;
        let created = self
            .templates
            .create(NewTemplate {
                commune_id,
                status,
                service_id,
                name,
                text,
            })
            .await?;
        Ok(Response::new(pb::CreateResponseTemplateResponse {
            template: Some(template_to_proto(&created)?),
        }))
    }

    async fn list_response_templates(
        &self,
        request: Request<pb::ListResponseTemplatesRequest>,
    ) -> Result<Response<pb::ListResponseTemplatesResponse>, Status> {
        let commune_id = principal(&request)?.require_staff(&READING_ROLES)?;
        let status = domain::parse_status_filter(request.get_ref().status)
            .map_err(|problem| invalid_argument("status", problem))?;
        let templates = self.templates.list(commune_id, status).await?;
        Ok(Response::new(pb::ListResponseTemplatesResponse {
            templates: templates
                .iter()
                .map(template_to_proto)
                .collect::<Result<_, _>>()?,
        }))
    }

    async fn delete_response_template(
        &self,
        request: Request<pb::DeleteResponseTemplateRequest>,
    ) -> Result<Response<pb::DeleteResponseTemplateResponse>, Status> {
        let commune_id = principal(&request)?.require_staff(&[Role::CommuneAdmin])?;
        let id = parse_id_field("id", &request.get_ref().id)?;
        self.templates.delete(commune_id, id).await?;
        Ok(Response::new(pb::DeleteResponseTemplateResponse {}))
    }

    async fn file_appeal(
        &self,
        request: Request<pb::FileAppealRequest>,
    ) -> Result<Response<pb::FileAppealResponse>, Status> {
        let caller = principal(&request)?.clone();
        caller.require_citizen()?;
        let request = request.into_inner();
        let mut violations = FieldViolations::new();
        let id = violations.check("id", domain::parse_id(&request.id));
        let level = match pb::AppealLevel::try_from(request.level) {
            Ok(level @ (pb::AppealLevel::HeadOfBody | pb::AppealLevel::NationalCommission)) => {
                Some(level)
            }
            _ => {
                violations.add("level", "must be HEAD_OF_BODY or NATIONAL_COMMISSION");
                None
            }
        };
        let reason = violations.check("reason", domain::parse_reason(&request.reason, true));
        let (Some(id), Some(level), Some(reason)) = (id, level, reason) else {
            return Err(violations.into_status());
        };
        let view = self
            .requests
            .find(id)
            .await?
            .filter(|view| account_of(&view.request) == Some(caller.user_id))
            .ok_or_else(|| Error::NotFound(format!("request {id}")))?;
        self.appeals
            .file(&view.request, level, reason, chrono::Utc::now())
            .await?;
        let view = self
            .requests
            .find(id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("request {id}")))?;
        Ok(Response::new(pb::FileAppealResponse {
            request: Some(view_to_proto(&view, Audience::Citizen)?),
        }))
    }

    async fn record_appeal_decision(
        &self,
        request: Request<pb::RecordAppealDecisionRequest>,
    ) -> Result<Response<pb::RecordAppealDecisionResponse>, Status> {
        let caller = principal(&request)?.clone();
        let scope = staff_scope(&caller, &[Role::CommuneAdmin])?;
        let request = request.into_inner();
        let mut violations = FieldViolations::new();
        let id = violations.check("id", domain::parse_id(&request.id));
        let appeal_id = violations.check("appeal_id", domain::parse_id(&request.appeal_id));
        let decision = violations.check("decision", domain::parse_reason(&request.decision, true));
        let (Some(id), Some(appeal_id), Some(decision)) = (id, appeal_id, decision) else {
            return Err(violations.into_status());
        };
        self.requests
            .find(id)
            .await?
            .filter(|view| scope.covers(&view.request))
            .ok_or_else(|| Error::NotFound(format!("request {id}")))?;
        self.appeals
            .decide(
                id,
                appeal_id,
                decision,
                request.upheld,
                caller.user_id,
                chrono::Utc::now(),
            )
            .await?;
        let view = self
            .requests
            .find(id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("request {id}")))?;
        Ok(Response::new(pb::RecordAppealDecisionResponse {
            request: Some(view_to_proto(&view, Audience::Staff)?),
        }))
    }

    async fn add_attachment(
        &self,
        request: Request<pb::AddAttachmentRequest>,
    ) -> Result<Response<pb::AddAttachmentResponse>, Status> {
        let caller = principal(&request)?.clone();
        let request = request.into_inner();
        let mut violations = FieldViolations::new();
        let request_id = violations.check("request_id", domain::parse_id(&request.request_id));
        let file_name = violations.check("file_name", parse_file_name(&request.file_name));
        if request.data.is_empty() || request.data.len() > MAX_ATTACHMENT_BYTES {
            violations.add(
                "data",
                format!("must have 1 to {MAX_ATTACHMENT_BYTES} bytes"),
            );
        }
        let content_type = violations.check(
            "content_type",
            check_content(&request.content_type, &request.data),
        );
        let (Some(request_id), Some(file_name), Some(content_type)) =
            (request_id, file_name, content_type)
        else {
            return Err(violations.into_status());
        };
        violations.into_result()?;
        self.visible_request(&caller, request_id).await?;
        let added = self
            .attachments
            .add(NewAttachment {
                request_id,
                file_name,
                content_type,
                bytes: request.data,
                uploaded_by: caller.user_id,
            })
            .await?;
        Ok(Response::new(pb::AddAttachmentResponse {
            attachment: Some(attachment_to_proto(&added)),
        }))
    }

    async fn list_attachments(
        &self,
        request: Request<pb::ListAttachmentsRequest>,
    ) -> Result<Response<pb::ListAttachmentsResponse>, Status> {
        let caller = principal(&request)?;
        let request_id = parse_id_field("request_id", &request.get_ref().request_id)?;
        self.visible_request(caller, request_id).await?;
        let attachments = self.attachments.list(request_id).await?;
        Ok(Response::new(pb::ListAttachmentsResponse {
            attachments: attachments.iter().map(attachment_to_proto).collect(),
        }))
    }

    async fn get_attachment(
        &self,
        request: Request<pb::GetAttachmentRequest>,
    ) -> Result<Response<pb::GetAttachmentResponse>, Status> {
        let caller = principal(&request)?;
        let mut violations = FieldViolations::new();
        let request_id = violations.check(
            "request_id",
            domain::parse_id(&request.get_ref().request_id),
        );
        let id = violations.check("id", domain::parse_id(&request.get_ref().id));
        let (Some(request_id), Some(id)) = (request_id, id) else {
            return Err(violations.into_status());
        };
        self.visible_request(caller, request_id).await?;
        let (row, data) = self.attachments.get(request_id, id).await?;
        Ok(Response::new(pb::GetAttachmentResponse {
            attachment: Some(attachment_to_proto(&row)),
            data,
        }))
    }

    /// Public: no token needed.
    async fn list_public_requests(
        &self,
        request: Request<pb::ListPublicRequestsRequest>,
    ) -> Result<Response<pb::ListPublicRequestsResponse>, Status> {
        let request = request.into_inner();
        let mut violations = FieldViolations::new();
        let commune_code = request.commune_code.trim().to_uppercase();
        if commune_code.is_empty() || commune_code.len() > 16 {
            violations.add("commune_code", "is required");
        }
        if request.request_ids.len() > 100 {
            violations.add("request_ids", "at most 100");
        }
        let mut ids = Vec::new();
        for (index, raw) in request.request_ids.iter().take(100).enumerate() {
            if let Some(id) =
                violations.check(&format!("request_ids[{index}]"), domain::parse_id(raw))
            {
                ids.push(id);
            }
        }
        let time =
            |field: &str, at: Option<jamaa_proto::Timestamp>, violations: &mut FieldViolations| {
                at.and_then(|at| {
                    let parsed = chrono::DateTime::from_timestamp(at.seconds, 0);
                    if parsed.is_none() {
                        violations.add(field, "is not a valid time");
                    }
                    parsed
                })
            };
        let start = time("start_time", request.start_time, &mut violations);
        let end = time("end_time", request.end_time, &mut violations);
        if start.zip(end).is_some_and(|(start, end)| start > end) {
            violations.add("end_time", "must not be before start_time");
        }
        let state = match pb::PublicRequestState::try_from(request.state) {
            Ok(state) => state,
            Err(_) => {
                violations.add("state", "is not a known state");
                pb::PublicRequestState::Unspecified
            }
        };
        let page = PageRequest::parse(request.page_size, &request.page_token)?;
        violations.into_result()?;
        let service_code = Some(request.service_code.trim().to_string()).filter(|c| !c.is_empty());
        let (requests, next_page_token) = self
            .public_reports
            .list(PublicFilter {
                commune_code,
                ids,
                service_code,
                start,
                end,
                state,
                page,
            })
            .await?;
        Ok(Response::new(pb::ListPublicRequestsResponse {
            requests,
            next_page_token,
        }))
    }

    async fn list_nearby_requests(
        &self,
        request: Request<pb::ListNearbyRequestsRequest>,
    ) -> Result<Response<pb::ListNearbyRequestsResponse>, Status> {
        let request = request.into_inner();
        let mut violations = FieldViolations::new();
        let service_id = violations.check("service_id", domain::parse_id(&request.service_id));
        let location = match request.location {
            Some(point) => {
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
            }
            None => {
                violations.add("location", "is required");
                None
            }
        };
        let radius = match request.radius_meters {
            0 => Some(100),
            r if (1..=i32::try_from(MAX_RADIUS_METERS).unwrap_or(i32::MAX)).contains(&r) => {
                u32::try_from(r).ok()
            }
            _ => {
                violations.add(
                    "radius_meters",
                    format!("must be between 1 and {MAX_RADIUS_METERS}"),
                );
                None
            }
        };
        let (Some(service_id), Some(location), Some(radius)) = (service_id, location, radius)
        else {
            return Err(violations.into_status());
        };
        let nearby = self.followers.nearby(service_id, location, radius).await?;
        Ok(Response::new(pb::ListNearbyRequestsResponse {
            requests: nearby
                .iter()
                .map(|entry| {
                    Ok(pb::NearbyRequest {
                        request_id: entry.request.id.to_string(),
                        tracking_code: entry.request.tracking_code.clone(),
                        status: requests::stored_status(&entry.request.status)? as i32,
                        distance_meters: entry.distance_meters,
                        create_time: Some(timestamp_from_millis(
                            entry.request.created_at.timestamp_millis(),
                        )),
                        follower_count: i64::try_from(entry.followers).unwrap_or(i64::MAX),
                    })
                })
                .collect::<Result<_, Error>>()?,
        }))
    }

    async fn follow_request(
        &self,
        request: Request<pb::FollowRequestRequest>,
    ) -> Result<Response<pb::FollowRequestResponse>, Status> {
        let caller = principal(&request)?;
        let commune_id = caller.require_citizen()?;
        let id = parse_id_field("id", &request.get_ref().id)?;
        self.followers
            .follow(id, caller.user_id, commune_id)
            .await?;
        Ok(Response::new(pb::FollowRequestResponse {}))
    }

    async fn unfollow_request(
        &self,
        request: Request<pb::UnfollowRequestRequest>,
    ) -> Result<Response<pb::UnfollowRequestResponse>, Status> {
        let caller = principal(&request)?;
        let commune_id = caller.require_citizen()?;
        let id = parse_id_field("id", &request.get_ref().id)?;
        self.followers
            .unfollow(id, caller.user_id, commune_id)
            .await?;
        Ok(Response::new(pb::UnfollowRequestResponse {}))
    }

    /// Public without a breakdown; breakdowns for the commune's staff.
    async fn get_request_statistics(
        &self,
        request: Request<pb::GetRequestStatisticsRequest>,
    ) -> Result<Response<pb::GetRequestStatisticsResponse>, Status> {
        let caller = request.extensions().get::<Principal>().cloned();
        let rows = self
            .statistics_for(caller.as_ref(), request.get_ref())
            .await?;
        Ok(Response::new(pb::GetRequestStatisticsResponse {
            rows: rows.iter().map(statistics_row_to_proto).collect(),
        }))
    }

    /// Same access as GetRequestStatistics.
    async fn export_request_statistics(
        &self,
        request: Request<pb::ExportRequestStatisticsRequest>,
    ) -> Result<Response<pb::ExportRequestStatisticsResponse>, Status> {
        let caller = request.extensions().get::<Principal>().cloned();
        let format = pb::ExportFormat::try_from(request.get_ref().format)
            .unwrap_or(pb::ExportFormat::Unspecified);
        if format == pb::ExportFormat::Unspecified {
            return Err(invalid_argument("format", "is required: CSV or JSON"));
        }
        let export = request.get_ref();
        let query = pb::GetRequestStatisticsRequest {
            commune_code: export.commune_code.clone(),
            service_code: export.service_code.clone(),
            start_month: export.start_month.clone(),
            end_month: export.end_month.clone(),
            breakdown: export.breakdown,
        };
        let rows = self.statistics_for(caller.as_ref(), &query).await?;
        let (content_type, data) = match format {
            pb::ExportFormat::Json => {
                let rows: Vec<pb::StatisticsRow> =
                    rows.iter().map(statistics_row_to_proto).collect();
                let json = serde_json::to_vec(&rows).map_err(|error| {
                    Error::Internal(format!("cannot encode statistics: {error}"))
                })?;
                ("application/json", json)
            }
            _ => ("text/csv; charset=utf-8", to_csv(&rows).into_bytes()),
        };
        Ok(Response::new(pb::ExportRequestStatisticsResponse {
            content_type: content_type.to_string(),
            data,
        }))
    }

    async fn create_closed_day(
        &self,
        request: Request<pb::CreateClosedDayRequest>,
    ) -> Result<Response<pb::CreateClosedDayResponse>, Status> {
        let caller = principal(&request)?;
        let scope = closed_day_scope(caller)?;
        let created_by = caller.user_id;
        let closed_day = request.into_inner().closed_day.unwrap_or_default();
        let mut violations = FieldViolations::new();
        let date = violations.check("closed_day.date", domain::parse_date(&closed_day.date));
        let name = violations.check(
            "closed_day.name",
            domain::parse_service_name(closed_day.name.as_ref()),
        );
        let (Some(date), Some(name)) = (date, name) else {
            return Err(violations.into_status());
        };
        let created = self
            .closed_days
            .create(NewClosedDay {
                scope,
                date,
                name,
                created_by,
            })
            .await?;
        Ok(Response::new(pb::CreateClosedDayResponse {
            closed_day: Some(closed_day_to_proto(&created)),
        }))
    }

    async fn delete_closed_day(
        &self,
        request: Request<pb::DeleteClosedDayRequest>,
    ) -> Result<Response<pb::DeleteClosedDayResponse>, Status> {
        let caller = principal(&request)?;
        let scope = closed_day_scope(caller)?;
        let id = parse_id_field("id", &request.get_ref().id)?;
        let allowed = |day: &ClosedDayView| match &scope {
            ClosedDayScope::National => day.commune_id.is_none(),
            ClosedDayScope::Commune { id, .. } => day.commune_id == Some(*id),
        };
        self.closed_days
            .find(id)
            .await?
            .filter(allowed)
            .ok_or_else(|| Error::NotFound(format!("closed day {id}")))?;
        self.closed_days.delete(id).await?;
        Ok(Response::new(pb::DeleteClosedDayResponse {}))
    }

    /// Public: no token needed.
    async fn list_closed_days(
        &self,
        request: Request<pb::ListClosedDaysRequest>,
    ) -> Result<Response<pb::ListClosedDaysResponse>, Status> {
        let request = request.into_inner();
        let mut violations = FieldViolations::new();
        let commune_code = request.commune_code.trim().to_uppercase();
        if commune_code.is_empty() {
            violations.add("commune_code", "is required");
        }
        if !(2000..=2100).contains(&request.year) {
            violations.add("year", "must be between 2000 and 2100");
        }
        violations.into_result()?;
        let days = self.closed_days.list(&commune_code, request.year).await?;
        Ok(Response::new(pb::ListClosedDaysResponse {
            closed_days: days.iter().map(closed_day_to_proto).collect(),
        }))
    }
}

impl ServiceRequestGrpc {
    /// Parses a statistics query, checks who may see its breakdown, and answers it.
    async fn statistics_for(
        &self,
        caller: Option<&Principal>,
        query: &pb::GetRequestStatisticsRequest,
    ) -> Result<Vec<StatisticsRow>, Status> {
        let mut violations = FieldViolations::new();
        let commune_code = query.commune_code.trim().to_uppercase();
        if commune_code.is_empty() {
            violations.add("commune_code", "is required");
        }
        let first = violations.check("start_month", domain::parse_month(&query.start_month));
        let last = violations.check("end_month", domain::parse_month(&query.end_month));
        let breakdown = match pb::StatisticsBreakdown::try_from(query.breakdown) {
            Ok(pb::StatisticsBreakdown::Unspecified | pb::StatisticsBreakdown::None) => {
                Some(Breakdown::None)
            }
            Ok(pb::StatisticsBreakdown::Gender) => Some(Breakdown::Gender),
            Ok(pb::StatisticsBreakdown::Area) => Some(Breakdown::Area),
            Err(_) => {
                violations.add("breakdown", "is not a known breakdown");
                None
            }
        };
        let (Some(first), Some(last), Some(breakdown)) = (first, last, breakdown) else {
            return Err(violations.into_status());
        };
        if last < first || (last - first).num_days() > 3660 {
            violations.add(
                "end_month",
                "must be on or after start_month, at most 120 months later",
            );
        }
        violations.into_result()?;
        if breakdown != Breakdown::None {
            if caller.is_none() {
                return Err(Status::unauthenticated(
                    "sign in first: breakdowns are for the commune's administrators and council secretary",
                ));
            }
            let own_staff = caller.is_some_and(|caller| {
                caller.commune_code.as_deref() == Some(commune_code.as_str())
                    && caller.require_staff(&EQUITY_ROLES).is_ok()
            });
            if !own_staff {
                return Err(Error::PermissionDenied(
                    "breakdowns by gender or area are for the commune's administrators and council secretary".into(),
                )
                .into());
            }
        }
        let service_code = Some(query.service_code.trim()).filter(|code| !code.is_empty());
        Ok(self
            .statistics
            .query(&commune_code, service_code, first, last, breakdown)
            .await?)
    }
}

/// The staff roles that read breakdowns (for the commune's equity body).
pub const EQUITY_ROLES: [Role; 2] = [Role::CommuneAdmin, Role::CouncilSecretary];

fn statistics_row_to_proto(row: &StatisticsRow) -> pb::StatisticsRow {
    let a = &row.aggregate;
    let days = |value: Option<u32>| value.map(|days| i32::try_from(days).unwrap_or(i32::MAX));
    pb::StatisticsRow {
        service_code: row.service_code.clone(),
        group: row.group.clone(),
        received: a.received,
        resolved: a.resolved,
        rejected: a.rejected,
        median_working_days: days(a.percentile(0.5)),
        p90_working_days: days(a.percentile(0.9)),
        on_time_share: a.on_time_share(),
        mean_satisfaction: a.mean_satisfaction(),
        open_backlog: a.open,
        suppressed: row.suppressed,
    }
}

/// What a reader of a request may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Audience {
    /// The citizen: no internal notes, no desk details.
    Citizen,
    /// Staff of the commune: everything.
    Staff,
}

impl Audience {
    /// The audience of the filer's own answer.
    fn of(caller_id: Uuid, request: &service_request::Model, at_desk: bool) -> Audience {
        if at_desk || account_of(request) != Some(caller_id) {
            Audience::Staff
        } else {
            Audience::Citizen
        }
    }
}

/// How `caller` may see `request`, if at all: the citizen whose request it is, or staff of its
/// commune within their departments.
fn audience(caller: &Principal, request: &service_request::Model) -> Option<Audience> {
    if caller.service.is_none() && account_of(request) == Some(caller.user_id) {
        return Some(Audience::Citizen);
    }
    let scope = staff_scope(caller, &READING_ROLES).ok()?;
    scope.covers(request).then_some(Audience::Staff)
}

/// The caller's staff scope for an action needing one of `roles`: their commune, and their
/// departments when every one of those roles they hold is limited to a department.
fn staff_scope(caller: &Principal, roles: &[Role]) -> Result<StaffScope, Status> {
    let commune_id = caller.require_staff(roles)?;
    let held: Vec<Role> = roles
        .iter()
        .copied()
        .filter(|role| caller.has_role(*role))
        .collect();
    let departments = if held
        .iter()
        .any(|role| caller.department_for(*role).is_none())
    {
        None
    } else {
        Some(
            held.iter()
                .filter_map(|role| caller.department_for(*role))
                .collect(),
        )
    };
    Ok(StaffScope {
        commune_id,
        departments,
    })
}

/// Which requests `caller` lists: staff their commune's (or departments'), citizens their own.
fn list_scope(caller: &Principal, assignee: Option<Uuid>) -> Result<(ListScope, Audience), Status> {
    if caller.has_role(Role::Citizen) && caller.commune_id.is_some() {
        return Ok((ListScope::Citizen(caller.user_id), Audience::Citizen));
    }
    match staff_scope(caller, &READING_ROLES) {
        Ok(scope) => Ok((ListScope::Staff { scope, assignee }, Audience::Staff)),
        Err(_) => Err(Error::PermissionDenied(
            "only citizens and commune staff list requests".into(),
        )
        .into()),
    }
}

/// Who may configure closed days: platform administrators (national moving holidays) and
/// commune administrators (their commune's closures).
fn closed_day_scope(caller: &Principal) -> Result<ClosedDayScope, Status> {
    if caller.is_platform_admin() {
        return Ok(ClosedDayScope::National);
    }
    let id = caller.require_staff(&[Role::CommuneAdmin])?;
    Ok(ClosedDayScope::Commune {
        id,
        code: commune_code_of(caller)?,
    })
}

/// The caller's commune code (the first part of tracking codes, the key of public lists).
fn commune_code_of(caller: &Principal) -> Result<String, Error> {
    caller
        .commune_code
        .clone()
        .filter(|code| !code.is_empty())
        .ok_or_else(|| Error::PermissionDenied("this action needs an account in a commune".into()))
}

fn parse_id_field(field: &str, raw: &str) -> Result<Uuid, Status> {
    domain::parse_id(raw).map_err(|description| invalid_argument(field, description))
}

fn optional_etag(raw: &str) -> Option<String> {
    let etag = raw.trim();
    (!etag.is_empty()).then(|| etag.to_string())
}

fn receipt_of(filed: &Filed) -> pb::Receipt {
    let request = &filed.view.request;
    pb::Receipt {
        tracking_code: request.tracking_code.clone(),
        secret: filed.secret.clone().unwrap_or_default(),
        due_date: request
            .due_date
            .map(|due| due.to_string())
            .unwrap_or_default(),
        next_steps: filed.definition.next_steps.clone(),
        service_code: request.service_code.clone(),
        service_name: Some(name_of(&filed.definition)),
        submit_time: Some(timestamp_from_millis(request.created_at.timestamp_millis())),
    }
}

/// The longest response template name, in characters.
const MAX_TEMPLATE_NAME_CHARS: usize = 100;

fn template_to_proto(template: &response_template::Model) -> Result<pb::ResponseTemplate, Error> {
    Ok(pb::ResponseTemplate {
        id: template.id.to_string(),
        commune_id: template.commune_id.to_string(),
        status: requests::stored_status(&template.status)? as i32,
        service_id: template
            .service_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        name: template.name.clone(),
        text: Some(text_of(template)),
        create_time: Some(timestamp_from_millis(
            template.created_at.timestamp_millis(),
        )),
    })
}

fn appeal_to_proto(appeal: &appeal::Model) -> pb::Appeal {
    pb::Appeal {
        id: appeal.id.to_string(),
        level: level_from_db(&appeal.level) as i32,
        reason: appeal.reason.clone(),
        file_time: Some(timestamp_from_millis(appeal.filed_at.timestamp_millis())),
        decision: appeal.decision.clone().unwrap_or_default(),
        upheld: appeal.upheld.unwrap_or(false),
        decide_time: appeal
            .decided_at
            .map(|at| timestamp_from_millis(at.timestamp_millis())),
    }
}

fn attachment_to_proto(row: &attachment::Model) -> pb::Attachment {
    pb::Attachment {
        id: row.id.to_string(),
        request_id: row.request_id.to_string(),
        file_name: row.file_name.clone(),
        content_type: row.content_type.clone(),
        size_bytes: row.size_bytes,
        sha256: row.sha256.clone(),
        uploaded_by: row.uploaded_by.to_string(),
        create_time: Some(timestamp_from_millis(row.created_at.timestamp_millis())),
    }
}

fn closed_day_to_proto(day: &ClosedDayView) -> pb::ClosedDay {
    pb::ClosedDay {
        id: day.id.map(|id| id.to_string()).unwrap_or_default(),
        date: day.date.to_string(),
        name: Some(day.name.clone()),
        kind: match day.kind {
            ClosedDayKind::FixedHoliday => pb::ClosedDayKind::FixedHoliday,
            ClosedDayKind::MovingHoliday => pb::ClosedDayKind::MovingHoliday,
            ClosedDayKind::LocalClosure => pb::ClosedDayKind::LocalClosure,
        } as i32,
        commune_id: day.commune_id.map(|id| id.to_string()).unwrap_or_default(),
    }
}

fn view_to_proto(view: &RequestView, audience: Audience) -> Result<pb::ServiceRequest, Error> {
    let mut request = request_to_proto(&view.request, &view.history, audience)?;
    request.appeals = view.appeals.iter().map(appeal_to_proto).collect();
    Ok(request)
}

fn request_to_proto(
    request: &service_request::Model,
    history: &[history_entry::Model],
    audience: Audience,
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
    let deadline = request.due_date.map(|due| pb::RequestDeadline {
        due_date: due.to_string(),
        clock_stopped: request.clock_stopped_on.is_some(),
        extended: request.extended,
        extension_reason: request.extension_reason.clone().unwrap_or_default(),
        urgent: request.urgent,
        breached: request.breached_notified_for.is_some(),
    });
    let walk_in = match (audience, &request.walk_in_name, &request.walk_in_phone) {
        (Audience::Staff, Some(full_name), Some(phone)) => Some(pb::WalkInCitizen {
            full_name: full_name.clone(),
            phone: phone.clone(),
            citizen_id: account_of(request)
                .map(|id| id.to_string())
                .unwrap_or_default(),
        }),
        _ => None,
    };
    let id_or_empty = |id: Option<Uuid>| id.map(|id| id.to_string()).unwrap_or_default();
    Ok(pb::ServiceRequest {
        id: request.id.to_string(),
        commune_id: request.commune_id.to_string(),
        service_id: request.service_id.to_string(),
        service_code: request.service_code.clone(),
        citizen_id: id_or_empty(account_of(request)),
        tracking_code: request.tracking_code.clone(),
        description: request.description.clone(),
        attributes,
        location,
        status: requests::stored_status(&request.status)? as i32,
        create_time: Some(timestamp_from_millis(request.created_at.timestamp_millis())),
        update_time: Some(timestamp_from_millis(request.updated_at.timestamp_millis())),
        history: history
            .iter()
            .map(|entry| history_to_proto(entry, audience))
            .collect::<Result<Vec<_>, Error>>()?,
        service_version: request.service_version,
        address: request.address.clone().unwrap_or_default(),
        deadline,
        department_id: id_or_empty(request.department_id),
        assignee_id: id_or_empty(request.assignee_id),
        priority: domain::priority_from_db(&request.priority) as i32,
        etag: etag_of(request),
        walk_in,
        filed_by: id_or_empty(request.filed_by),
        area: request.area.clone().unwrap_or_default(),
        appeals: Vec::new(),
        satisfaction: request.rating.map(|rating| pb::Satisfaction {
            rating,
            comment: request.rating_comment.clone().unwrap_or_default(),
            rate_time: request
                .rated_at
                .map(|at| timestamp_from_millis(at.timestamp_millis())),
        }),
    })
}

fn history_to_proto(
    entry: &history_entry::Model,
    audience: Audience,
) -> Result<pb::StatusChange, Error> {
    Ok(pb::StatusChange {
        from_status: requests::stored_status(&entry.from_status)? as i32,
        to_status: requests::stored_status(&entry.to_status)? as i32,
        note: entry.note.clone(),
        actor_id: entry.actor_id.to_string(),
        change_time: Some(timestamp_from_millis(entry.changed_at.timestamp_millis())),
        internal_note: match audience {
            Audience::Staff => entry.internal_note.clone(),
            Audience::Citizen => String::new(),
        },
        legal_ground: entry.legal_ground.clone(),
    })
}
