//! The authorization matrix of service-request: every RPC of ServiceRequestService and
//! AppointmentService called by every kind of caller — nobody, the citizen whose request it is,
//! another citizen of the commune, each staff role, a case officer limited to another
//! department, an administrator of the commune and of another commune, a platform administrator,
//! a service — on resources of one commune. A cell is let through (the call succeeds) or refused
//! (no caller, PERMISSION_DENIED, or NOT_FOUND for what the caller may not see). Calls that
//! change state get fresh resources for each cell.

use std::collections::BTreeSet;

use chrono::{Duration, Utc};
use jamaa_proto::identity::v1 as identity;
use jamaa_proto::servicerequest::v1 as requests;
use jamaa_proto::r#type::v1::{Language, LocalizedText};
use jamaa_service_request::deadlines::CommuneClock;
use jamaa_tests::{
    Backend, PLATFORM_ADMIN_EMAIL, PLATFORM_ADMIN_PASSWORD, TestStack, authorized, spawn_stack,
};
use tonic::Code;

crate::on_both_backends!(every_service_request_rpc_by_every_caller, matrix);

const CALLERS: [&str; 11] = [
    "nobody",
    "citizen",
    "other_citizen",
    "reception_agent",
    "case_officer",
    "other_department_officer",
    "council_secretary",
    "admin",
    "other_admin",
    "platform_admin",
    "service",
];

fn text(fr: &str) -> Option<LocalizedText> {
    Some(LocalizedText {
        fr: fr.into(),
        ..Default::default()
    })
}

fn request<T>(message: T, token: &str) -> tonic::Request<T> {
    if token.is_empty() {
        tonic::Request::new(message)
    } else {
        authorized(message, token)
    }
}

/// What the calls act on, all in commune MTR.
struct World {
    citizen: String,
    admin: String,
    service: requests::ServiceDefinition,
    spare_service: requests::ServiceDefinition,
    information: requests::ServiceDefinition,
    office: requests::Office,
    slots: Vec<requests::Slot>,
}

impl World {
    /// A fresh request of the citizen's, moved by the admin through `statuses`.
    async fn request(
        &self,
        stack: &TestStack,
        statuses: &[requests::RequestStatus],
    ) -> requests::SubmitRequestResponse {
        let filed = stack
            .requests()
            .submit_request(authorized(
                requests::SubmitRequestRequest {
                    request_id: uuid::Uuid::now_v7().to_string(),
                    service_id: self.service.id.clone(),
                    description: "The lamp is out.".into(),
                    ..Default::default()
                },
                &self.citizen,
            ))
            .await
            .expect("filed")
            .into_inner();
        let id = filed.request.clone().unwrap_or_default().id;
        for status in statuses {
            stack
                .requests()
                .change_request_status(authorized(
                    requests::ChangeRequestStatusRequest {
                        id: id.clone(),
                        status: *status as i32,
                        note: "ok".into(),
                        ..Default::default()
                    },
                    &self.admin,
                ))
                .await
                .expect("moved");
        }
        filed
    }

    /// A fresh request filed at the desk for a walk-in without an account.
    async fn walk_in_request(&self, stack: &TestStack) -> String {
        stack
            .requests()
            .submit_request(authorized(
                requests::SubmitRequestRequest {
                    request_id: uuid::Uuid::now_v7().to_string(),
                    service_id: self.service.id.clone(),
                    description: "A walk-in's lamp.".into(),
                    walk_in: Some(requests::WalkInCitizen {
                        full_name: "Hassan".into(),
                        phone: "0600000000".into(),
                        citizen_id: String::new(),
                    }),
                    ..Default::default()
                },
                &self.admin,
            ))
            .await
            .expect("filed at the desk")
            .into_inner()
            .request
            .unwrap_or_default()
            .id
    }

    /// A fresh access-to-information request of the citizen's, refused with its legal ground.
    async fn refused_information_request(&self, stack: &TestStack) -> String {
        let id = stack
            .requests()
            .submit_request(authorized(
                requests::SubmitRequestRequest {
                    request_id: uuid::Uuid::now_v7().to_string(),
                    service_id: self.information.id.clone(),
                    description: "The 2025 contracts.".into(),
                    ..Default::default()
                },
                &self.citizen,
            ))
            .await
            .expect("filed")
            .into_inner()
            .request
            .unwrap_or_default()
            .id;
        stack
            .requests()
            .change_request_status(authorized(
                requests::ChangeRequestStatusRequest {
                    id: id.clone(),
                    status: requests::RequestStatus::Rejected as i32,
                    note: "Refused.".into(),
                    legal_ground: "Law 31-13, article 7".into(),
                    ..Default::default()
                },
                &self.admin,
            ))
            .await
            .expect("refused");
        id
    }

    /// A fresh booking of the citizen's, in slot `index`.
    async fn appointment(&self, stack: &TestStack, index: usize) -> String {
        let id = uuid::Uuid::now_v7().to_string();
        stack
            .appointments()
            .book_appointment(authorized(
                requests::BookAppointmentRequest {
                    appointment_id: id.clone(),
                    slot_id: self.slots[index % self.slots.len()].id.clone(),
                    request_id: String::new(),
                },
                &self.citizen,
            ))
            .await
            .expect("booked");
        id
    }
}

/// Makes call `rpc` as the holder of `token` (caller number `n`); `Ok` when let through.
async fn call(
    stack: &TestStack,
    rpc: &str,
    token: &str,
    n: usize,
    w: &World,
) -> Result<(), tonic::Status> {
    use requests::RequestStatus::{InProgress, Received, Resolved};
    let mut srv = stack.requests();
    let mut appointments = stack.appointments();
    let today = CommuneClock::new(60).today(Utc::now());
    let request_id =
        |filed: &requests::SubmitRequestResponse| filed.request.clone().unwrap_or_default().id;
    match rpc {
        "CreateService" => srv
            .create_service(request(
                requests::CreateServiceRequest {
                    service: Some(requests::ServiceDefinition {
                        code: format!("matrix-{n}"),
                        name: text("x"),
                        kind: requests::ServiceKind::IncidentReport as i32,
                        channel: requests::ServiceChannel::Online as i32,
                        ..Default::default()
                    }),
                },
                token,
            ))
            .await
            .map(|_| ()),
        "UpdateService" => srv
            .update_service(request(
                requests::UpdateServiceRequest {
                    service: Some(requests::ServiceDefinition {
                        id: w.spare_service.id.clone(),
                        name: text("y"),
                        kind: requests::ServiceKind::IncidentReport as i32,
                        channel: requests::ServiceChannel::Online as i32,
                        ..Default::default()
                    }),
                },
                token,
            ))
            .await
            .map(|_| ()),
        "GetService" => srv
            .get_service(request(
                requests::GetServiceRequest {
                    id: w.service.id.clone(),
                    version: 0,
                },
                token,
            ))
            .await
            .map(|_| ()),
        "ListServices" => srv
            .list_services(request(
                requests::ListServicesRequest {
                    commune_code: "MTR".into(),
                    ..Default::default()
                },
                token,
            ))
            .await
            .map(|_| ()),
        "ActivateService" => srv
            .activate_service(request(
                requests::ActivateServiceRequest {
                    id: w.spare_service.id.clone(),
                },
                token,
            ))
            .await
            .map(|_| ()),
        "DeactivateService" => srv
            .deactivate_service(request(
                requests::DeactivateServiceRequest {
                    id: w.spare_service.id.clone(),
                },
                token,
            ))
            .await
            .map(|_| ()),
        "ImportStarterCatalogue" => srv
            .import_starter_catalogue(request(requests::ImportStarterCatalogueRequest {}, token))
            .await
            .map(|_| ()),
        "SubmitRequest" => srv
            .submit_request(request(
                requests::SubmitRequestRequest {
                    request_id: uuid::Uuid::now_v7().to_string(),
                    service_id: w.service.id.clone(),
                    description: "Another lamp.".into(),
                    ..Default::default()
                },
                token,
            ))
            .await
            .map(|_| ()),
        "SubmitRequest at the desk" => srv
            .submit_request(request(
                requests::SubmitRequestRequest {
                    request_id: uuid::Uuid::now_v7().to_string(),
                    service_id: w.service.id.clone(),
                    description: "A walk-in's lamp.".into(),
                    walk_in: Some(requests::WalkInCitizen {
                        full_name: "Hassan".into(),
                        phone: "0600000000".into(),
                        citizen_id: String::new(),
                    }),
                    ..Default::default()
                },
                token,
            ))
            .await
            .map(|_| ()),
        "GetRequest" => {
            let filed = w.request(stack, &[]).await;
            srv.get_request(request(
                requests::GetRequestRequest {
                    id: request_id(&filed),
                },
                token,
            ))
            .await
            .map(|_| ())
        }
        "ListRequests" => srv
            .list_requests(request(requests::ListRequestsRequest::default(), token))
            .await
            .map(|_| ()),
        "GetPublicRequestStatus" => {
            let filed = w.request(stack, &[]).await;
            let receipt = filed.receipt.unwrap_or_default();
            srv.get_public_request_status(request(
                requests::GetPublicRequestStatusRequest {
                    tracking_code: receipt.tracking_code,
                    secret: receipt.secret,
                },
                token,
            ))
            .await
            .map(|_| ())
        }
        "ChangeRequestStatus" => {
            let filed = w.request(stack, &[]).await;
            srv.change_request_status(request(
                requests::ChangeRequestStatusRequest {
                    id: request_id(&filed),
                    status: Received as i32,
                    ..Default::default()
                },
                token,
            ))
            .await
            .map(|_| ())
        }
        "CancelRequest" => {
            let filed = w.request(stack, &[]).await;
            srv.cancel_request(request(
                requests::CancelRequestRequest {
                    id: request_id(&filed),
                    reason: String::new(),
                },
                token,
            ))
            .await
            .map(|_| ())
        }
        "ReopenRequest" => {
            let filed = w.request(stack, &[Received, InProgress, Resolved]).await;
            srv.reopen_request(request(
                requests::ReopenRequestRequest {
                    id: request_id(&filed),
                    reason: "again".into(),
                },
                token,
            ))
            .await
            .map(|_| ())
        }
        "AssignRequest" => {
            let filed = w.request(stack, &[]).await;
            srv.assign_request(request(
                requests::AssignRequestRequest {
                    id: request_id(&filed),
                    priority: requests::RequestPriority::High as i32,
                    ..Default::default()
                },
                token,
            ))
            .await
            .map(|_| ())
        }
        "ExtendRequestDeadline" => {
            let filed = w.request(stack, &[]).await;
            srv.extend_request_deadline(request(
                requests::ExtendRequestDeadlineRequest {
                    id: request_id(&filed),
                    reason: "more time".into(),
                },
                token,
            ))
            .await
            .map(|_| ())
        }
        "RateRequest" => {
            let filed = w.request(stack, &[Received, InProgress, Resolved]).await;
            srv.rate_request(request(
                requests::RateRequestRequest {
                    id: request_id(&filed),
                    rating: 4,
                    comment: String::new(),
                },
                token,
            ))
            .await
            .map(|_| ())
        }
        "AddAttachment" => {
            let filed = w.request(stack, &[]).await;
            srv.add_attachment(request(
                requests::AddAttachmentRequest {
                    request_id: request_id(&filed),
                    file_name: "scan.pdf".into(),
                    content_type: "application/pdf".into(),
                    data: b"%PDF-1.7".to_vec(),
                },
                token,
            ))
            .await
            .map(|_| ())
        }
        "ListAttachments" => {
            let filed = w.request(stack, &[]).await;
            srv.list_attachments(request(
                requests::ListAttachmentsRequest {
                    request_id: request_id(&filed),
                },
                token,
            ))
            .await
            .map(|_| ())
        }
        "GetAttachment" => {
            let filed = w.request(stack, &[]).await;
            let attachment = stack
                .requests()
                .add_attachment(authorized(
                    requests::AddAttachmentRequest {
                        request_id: request_id(&filed),
                        file_name: "scan.pdf".into(),
                        content_type: "application/pdf".into(),
                        data: b"%PDF-1.7".to_vec(),
                    },
                    &w.citizen,
                ))
                .await
                .expect("attached")
                .into_inner()
                .attachment
                .unwrap_or_default();
            srv.get_attachment(request(
                requests::GetAttachmentRequest {
                    request_id: request_id(&filed),
                    id: attachment.id,
                },
                token,
            ))
            .await
            .map(|_| ())
        }
        "CreateResponseTemplate" => srv
            .create_response_template(request(
                requests::CreateResponseTemplateRequest {
                    template: Some(requests::ResponseTemplate {
                        status: Received as i32,
                        name: "ack".into(),
                        text: text("Reçu."),
                        ..Default::default()
                    }),
                },
                token,
            ))
            .await
            .map(|_| ()),
        "ListResponseTemplates" => srv
            .list_response_templates(request(
                requests::ListResponseTemplatesRequest::default(),
                token,
            ))
            .await
            .map(|_| ()),
        "DeleteResponseTemplate" => {
            let template = stack
                .requests()
                .create_response_template(authorized(
                    requests::CreateResponseTemplateRequest {
                        template: Some(requests::ResponseTemplate {
                            status: Received as i32,
                            name: "ack".into(),
                            text: text("Reçu."),
                            ..Default::default()
                        }),
                    },
                    &w.admin,
                ))
                .await
                .expect("template")
                .into_inner()
                .template
                .unwrap_or_default();
            srv.delete_response_template(request(
                requests::DeleteResponseTemplateRequest { id: template.id },
                token,
            ))
            .await
            .map(|_| ())
        }
        "FileAppeal" => {
            let id = w.refused_information_request(stack).await;
            srv.file_appeal(request(
                requests::FileAppealRequest {
                    id,
                    level: requests::AppealLevel::HeadOfBody as i32,
                    reason: "unfounded".into(),
                },
                token,
            ))
            .await
            .map(|_| ())
        }
        "RecordAppealDecision" => {
            let id = w.refused_information_request(stack).await;
            let appeal = stack
                .requests()
                .file_appeal(authorized(
                    requests::FileAppealRequest {
                        id: id.clone(),
                        level: requests::AppealLevel::HeadOfBody as i32,
                        reason: "unfounded".into(),
                    },
                    &w.citizen,
                ))
                .await
                .expect("appealed")
                .into_inner()
                .request
                .unwrap_or_default()
                .appeals
                .first()
                .cloned()
                .unwrap_or_default();
            srv.record_appeal_decision(request(
                requests::RecordAppealDecisionRequest {
                    id,
                    appeal_id: appeal.id,
                    decision: "upheld".into(),
                    upheld: true,
                },
                token,
            ))
            .await
            .map(|_| ())
        }
        "ListNearbyRequests" => srv
            .list_nearby_requests(request(
                requests::ListNearbyRequestsRequest {
                    service_id: w.service.id.clone(),
                    location: Some(jamaa_proto::r#type::v1::GeoPoint {
                        latitude: 30.4,
                        longitude: -9.6,
                    }),
                    radius_meters: 500,
                },
                token,
            ))
            .await
            .map(|_| ()),
        "ListPublicRequests" => srv
            .list_public_requests(request(
                requests::ListPublicRequestsRequest {
                    commune_code: "MTR".into(),
                    ..Default::default()
                },
                token,
            ))
            .await
            .map(|_| ()),
        "FollowRequest" => {
            let id = w.walk_in_request(stack).await;
            srv.follow_request(request(requests::FollowRequestRequest { id }, token))
                .await
                .map(|_| ())
        }
        "UnfollowRequest" => {
            let id = w.walk_in_request(stack).await;
            srv.unfollow_request(request(requests::UnfollowRequestRequest { id }, token))
                .await
                .map(|_| ())
        }
        "GetRequestStatistics by gender" => srv
            .get_request_statistics(request(
                requests::GetRequestStatisticsRequest {
                    commune_code: "MTR".into(),
                    start_month: "2026-01".into(),
                    end_month: "2026-12".into(),
                    breakdown: requests::StatisticsBreakdown::Gender as i32,
                    ..Default::default()
                },
                token,
            ))
            .await
            .map(|_| ()),
        "GetRequestStatistics" => srv
            .get_request_statistics(request(
                requests::GetRequestStatisticsRequest {
                    commune_code: "MTR".into(),
                    start_month: "2026-01".into(),
                    end_month: "2026-12".into(),
                    ..Default::default()
                },
                token,
            ))
            .await
            .map(|_| ()),
        "ExportRequestStatistics by area" => srv
            .export_request_statistics(request(
                requests::ExportRequestStatisticsRequest {
                    commune_code: "MTR".into(),
                    start_month: "2026-01".into(),
                    end_month: "2026-12".into(),
                    breakdown: requests::StatisticsBreakdown::Area as i32,
                    format: requests::ExportFormat::Csv as i32,
                    ..Default::default()
                },
                token,
            ))
            .await
            .map(|_| ()),
        "CreateClosedDay" => srv
            .create_closed_day(request(
                requests::CreateClosedDayRequest {
                    closed_day: Some(requests::ClosedDay {
                        // March 2030 has no fixed holiday.
                        date: format!("2030-03-{:02}", n + 1),
                        name: text("fermé"),
                        ..Default::default()
                    }),
                },
                token,
            ))
            .await
            .map(|_| ()),
        "DeleteClosedDay" => {
            let day = stack
                .requests()
                .create_closed_day(authorized(
                    requests::CreateClosedDayRequest {
                        closed_day: Some(requests::ClosedDay {
                            date: format!("2030-04-{:02}", n + 1),
                            name: text("fermé"),
                            ..Default::default()
                        }),
                    },
                    &w.admin,
                ))
                .await
                .expect("a closure")
                .into_inner()
                .closed_day
                .unwrap_or_default();
            srv.delete_closed_day(request(
                requests::DeleteClosedDayRequest { id: day.id },
                token,
            ))
            .await
            .map(|_| ())
        }
        "ListClosedDays" => srv
            .list_closed_days(request(
                requests::ListClosedDaysRequest {
                    commune_code: "MTR".into(),
                    year: 2026,
                },
                token,
            ))
            .await
            .map(|_| ()),
        "CreateOffice" => appointments
            .create_office(request(
                requests::CreateOfficeRequest {
                    office: Some(requests::Office {
                        name: text("Annexe"),
                        opening_hours: vec![requests::OpeningHours {
                            weekday: 1,
                            opens: "08:00".into(),
                            closes: "12:00".into(),
                        }],
                        ..Default::default()
                    }),
                },
                token,
            ))
            .await
            .map(|_| ()),
        "ListOffices" => appointments
            .list_offices(request(
                requests::ListOfficesRequest {
                    commune_code: "MTR".into(),
                },
                token,
            ))
            .await
            .map(|_| ()),
        "CreateSlots" => appointments
            .create_slots(request(
                requests::CreateSlotsRequest {
                    office_id: w.office.id.clone(),
                    service_id: w.service.id.clone(),
                    start_date: (today + Duration::days(1)).to_string(),
                    end_date: (today + Duration::days(7)).to_string(),
                    slot_minutes: 60,
                    capacity: 50,
                },
                token,
            ))
            .await
            .map(|_| ()),
        "ListSlots" => appointments
            .list_slots(request(
                requests::ListSlotsRequest {
                    office_id: w.office.id.clone(),
                    service_id: w.service.id.clone(),
                    start_date: today.to_string(),
                    end_date: (today + Duration::days(14)).to_string(),
                    available_only: true,
                },
                token,
            ))
            .await
            .map(|_| ()),
        "BookAppointment" => appointments
            .book_appointment(request(
                requests::BookAppointmentRequest {
                    appointment_id: uuid::Uuid::now_v7().to_string(),
                    slot_id: w.slots[n % w.slots.len()].id.clone(),
                    request_id: String::new(),
                },
                token,
            ))
            .await
            .map(|_| ()),
        "MoveAppointment" => {
            let id = w.appointment(stack, n).await;
            appointments
                .move_appointment(request(
                    requests::MoveAppointmentRequest {
                        appointment_id: id,
                        slot_id: w.slots[(n + 1) % w.slots.len()].id.clone(),
                    },
                    token,
                ))
                .await
                .map(|_| ())
        }
        "CancelAppointment" => {
            let id = w.appointment(stack, n).await;
            appointments
                .cancel_appointment(request(
                    requests::CancelAppointmentRequest { appointment_id: id },
                    token,
                ))
                .await
                .map(|_| ())
        }
        "ListAppointments" => appointments
            .list_appointments(request(
                requests::ListAppointmentsRequest {
                    office_id: w.office.id.clone(),
                    date: (today + Duration::days(1)).to_string(),
                },
                token,
            ))
            .await
            .map(|_| ()),
        "RecordAppointmentOutcome" => {
            let id = w.appointment(stack, n).await;
            appointments
                .record_appointment_outcome(request(
                    requests::RecordAppointmentOutcomeRequest {
                        appointment_id: id,
                        status: requests::AppointmentStatus::Arrived as i32,
                    },
                    token,
                ))
                .await
                .map(|_| ())
        }
        other => panic!("no call for {other}"),
    }
}

async fn matrix(backend: Backend) {
    let Some(stack) = spawn_stack(backend).await else {
        return;
    };
    let (_, admin) = stack.create_commune("MTR", 3).await;
    let (_, other_admin) = stack.create_commune("MTQ", 3).await;
    let (_, citizen) = stack.register_citizen("MTR", "Amina", Language::Fr).await;
    let (_, other_citizen) = stack.register_citizen("MTR", "Badr", Language::Fr).await;
    let agent = stack
        .create_staff(&admin, "agent@mtr.test", &[identity::Role::ReceptionAgent])
        .await;
    let officer = stack
        .create_staff(&admin, "officer@mtr.test", &[identity::Role::CaseOfficer])
        .await;
    let secretary = stack
        .create_staff(
            &admin,
            "secretary@mtr.test",
            &[identity::Role::CouncilSecretary],
        )
        .await;
    // A case officer limited to the roads department (the requests belong to none).
    let roads = stack
        .identity()
        .create_department(authorized(
            identity::CreateDepartmentRequest {
                code: "ROADS".into(),
                name: text("Voirie"),
            },
            &admin,
        ))
        .await
        .expect("department")
        .into_inner()
        .department
        .expect("department");
    let scoped = stack
        .create_staff(&admin, "roads@mtr.test", &[identity::Role::ReceptionAgent])
        .await;
    let scoped_id = jamaa_tests::token_claims(&scoped)["sub"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    stack
        .identity()
        .revoke_role(authorized(
            identity::RevokeRoleRequest {
                user_id: scoped_id.clone(),
                role: identity::Role::ReceptionAgent as i32,
            },
            &admin,
        ))
        .await
        .expect("revoked");
    stack
        .identity()
        .grant_role(authorized(
            identity::GrantRoleRequest {
                user_id: scoped_id,
                grant: Some(identity::RoleGrant {
                    role: identity::Role::CaseOfficer as i32,
                    department_id: roads.id,
                }),
            },
            &admin,
        ))
        .await
        .expect("granted");
    let scoped = stack.login("roads@mtr.test", "staff-password-1").await;
    let platform = stack
        .login(PLATFORM_ADMIN_EMAIL, PLATFORM_ADMIN_PASSWORD)
        .await;
    let service = stack
        .identity()
        .issue_service_token(identity::IssueServiceTokenRequest {
            client_id: "notification".into(),
            client_secret: "dev-notification-secret-change-me".into(),
            audience: "service-request".into(),
        })
        .await
        .expect("a service token")
        .into_inner()
        .access_token;

    let definition = |code: &str| requests::ServiceDefinition {
        code: code.into(),
        name: text(code),
        kind: requests::ServiceKind::IncidentReport as i32,
        channel: requests::ServiceChannel::OnlineAndDesk as i32,
        deadline_policy: Some(requests::DeadlinePolicy {
            unit: requests::DeadlineUnit::WorkingDays as i32,
            days: 10,
            extension_days: 5,
            ..Default::default()
        }),
        ..Default::default()
    };
    let create = |code: &'static str| {
        let (stack, admin) = (&stack, admin.clone());
        async move {
            stack
                .requests()
                .create_service(authorized(
                    requests::CreateServiceRequest {
                        service: Some(definition(code)),
                    },
                    &admin,
                ))
                .await
                .expect("service")
                .into_inner()
                .service
                .expect("service")
        }
    };
    let main_service = create("lighting").await;
    let spare_service = create("spare").await;
    let information = stack
        .requests()
        .create_service(authorized(
            requests::CreateServiceRequest {
                service: Some(requests::ServiceDefinition {
                    kind: requests::ServiceKind::InformationRequest as i32,
                    ..definition("information")
                }),
            },
            &admin,
        ))
        .await
        .expect("service")
        .into_inner()
        .service
        .expect("service");
    let office = stack
        .appointments()
        .create_office(authorized(
            requests::CreateOfficeRequest {
                office: Some(requests::Office {
                    name: text("Bureau"),
                    opening_hours: (1..=7)
                        .map(|weekday| requests::OpeningHours {
                            weekday,
                            opens: "08:00".into(),
                            closes: "18:00".into(),
                        })
                        .collect(),
                    ..Default::default()
                }),
            },
            &admin,
        ))
        .await
        .expect("office")
        .into_inner()
        .office
        .expect("office");
    let today = CommuneClock::new(60).today(Utc::now());
    stack
        .appointments()
        .create_slots(authorized(
            requests::CreateSlotsRequest {
                office_id: office.id.clone(),
                service_id: main_service.id.clone(),
                start_date: (today + Duration::days(1)).to_string(),
                end_date: (today + Duration::days(14)).to_string(),
                slot_minutes: 30,
                capacity: 50,
            },
            &admin,
        ))
        .await
        .expect("slots");
    let slots = stack
        .appointments()
        .list_slots(requests::ListSlotsRequest {
            office_id: office.id.clone(),
            service_id: main_service.id.clone(),
            start_date: today.to_string(),
            end_date: (today + Duration::days(14)).to_string(),
            available_only: false,
        })
        .await
        .expect("slots")
        .into_inner()
        .slots;
    assert!(slots.len() > 20);

    let tokens = [
        String::new(),
        citizen.clone(),
        other_citizen,
        agent,
        officer,
        scoped,
        secretary,
        admin.clone(),
        other_admin,
        platform,
        service,
    ];
    let world = World {
        citizen,
        admin,
        service: main_service,
        spare_service,
        information,
        office,
        slots,
    };
    let everyone = CALLERS.to_vec();
    let citizens = ["citizen", "other_citizen"];
    let mtr_staff = [
        "reception_agent",
        "case_officer",
        "other_department_officer",
        "council_secretary",
        "admin",
    ];
    let expected: Vec<(&str, Vec<&str>)> = vec![
        ("CreateService", vec!["admin", "other_admin"]),
        ("UpdateService", vec!["admin"]),
        ("GetService", everyone.clone()),
        ("ListServices", everyone.clone()),
        ("DeactivateService", vec!["admin"]),
        ("ActivateService", vec!["admin"]),
        ("ImportStarterCatalogue", vec!["admin", "other_admin"]),
        ("SubmitRequest", citizens.to_vec()),
        (
            "SubmitRequest at the desk",
            vec!["reception_agent", "admin"],
        ),
        (
            "GetRequest",
            vec![
                "citizen",
                "reception_agent",
                "case_officer",
                "council_secretary",
                "admin",
            ],
        ),
        (
            "ListRequests",
            [&citizens[..], &mtr_staff[..], &["other_admin"]].concat(),
        ),
        ("GetPublicRequestStatus", everyone.clone()),
        (
            "ChangeRequestStatus",
            vec!["reception_agent", "case_officer", "admin"],
        ),
        ("CancelRequest", vec!["citizen"]),
        ("ReopenRequest", vec!["citizen"]),
        ("AssignRequest", vec!["reception_agent", "admin"]),
        ("ExtendRequestDeadline", vec!["case_officer", "admin"]),
        ("RateRequest", vec!["citizen"]),
        ("ListNearbyRequests", everyone.clone()),
        ("ListPublicRequests", everyone.clone()),
        (
            "AddAttachment",
            vec![
                "citizen",
                "reception_agent",
                "case_officer",
                "council_secretary",
                "admin",
            ],
        ),
        (
            "ListAttachments",
            vec![
                "citizen",
                "reception_agent",
                "case_officer",
                "council_secretary",
                "admin",
            ],
        ),
        (
            "GetAttachment",
            vec![
                "citizen",
                "reception_agent",
                "case_officer",
                "council_secretary",
                "admin",
            ],
        ),
        ("CreateResponseTemplate", vec!["admin", "other_admin"]),
        (
            "ListResponseTemplates",
            [&mtr_staff[..], &["other_admin"]].concat(),
        ),
        ("DeleteResponseTemplate", vec!["admin"]),
        ("FileAppeal", vec!["citizen"]),
        ("RecordAppealDecision", vec!["admin"]),
        ("FollowRequest", citizens.to_vec()),
        ("UnfollowRequest", citizens.to_vec()),
        ("GetRequestStatistics", everyone.clone()),
        (
            "GetRequestStatistics by gender",
            vec!["council_secretary", "admin"],
        ),
        (
            "ExportRequestStatistics by area",
            vec!["council_secretary", "admin"],
        ),
        (
            "CreateClosedDay",
            vec!["admin", "other_admin", "platform_admin"],
        ),
        ("DeleteClosedDay", vec!["admin"]),
        ("ListClosedDays", everyone.clone()),
        ("CreateOffice", vec!["admin", "other_admin"]),
        ("ListOffices", everyone.clone()),
        ("CreateSlots", vec!["reception_agent", "admin"]),
        ("ListSlots", everyone.clone()),
        ("BookAppointment", citizens.to_vec()),
        ("MoveAppointment", vec!["citizen"]),
        (
            "CancelAppointment",
            vec!["citizen", "reception_agent", "admin"],
        ),
        (
            "ListAppointments",
            [&citizens[..], &["reception_agent", "admin"]].concat(),
        ),
        ("RecordAppointmentOutcome", vec!["reception_agent", "admin"]),
    ];
    let public: BTreeSet<&str> = [
        "GetService",
        "ListServices",
        "GetPublicRequestStatus",
        "GetRequestStatistics",
        "ListClosedDays",
        "ListOffices",
        "ListSlots",
        "ListNearbyRequests",
        "ListPublicRequests",
    ]
    .into_iter()
    .collect();
    // Every RPC of the service has its row (a new RPC without one fails here).
    let descriptors = <prost_types::FileDescriptorSet as prost::Message>::decode(
        jamaa_proto::FILE_DESCRIPTOR_SET,
    )
    .expect("the descriptor set");
    let methods: BTreeSet<String> = descriptors
        .file
        .iter()
        .flat_map(|file| &file.service)
        .filter(|service| {
            matches!(
                service.name(),
                "ServiceRequestService" | "AppointmentService"
            )
        })
        .flat_map(|service| &service.method)
        .map(|method| method.name().to_string())
        .collect();
    // A row may be a variant of its RPC ("SubmitRequest at the desk").
    let covered: BTreeSet<String> = expected
        .iter()
        .map(|(rpc, _)| rpc.split(' ').next().unwrap_or(rpc).to_string())
        .collect();
    assert_eq!(methods, covered, "every service-request RPC has a row");
    let mut wrong = Vec::new();
    for (rpc, allowed) in &expected {
        let allowed: BTreeSet<&str> = allowed.iter().copied().collect();
        for (n, (caller, token)) in CALLERS.iter().zip(tokens.iter()).enumerate() {
            let outcome = call(&stack, rpc, token, n, &world).await;
            if outcome.is_ok() != allowed.contains(caller) {
                wrong.push(format!("{rpc} by {caller}: {outcome:?}"));
            }
            if let Err(status) = &outcome {
                let refusal = matches!(
                    status.code(),
                    Code::Unauthenticated | Code::PermissionDenied | Code::NotFound
                );
                if !refusal {
                    wrong.push(format!("{rpc} by {caller} failed otherwise: {status:?}"));
                }
                if *caller == "nobody"
                    && !public.contains(rpc)
                    && status.code() != Code::Unauthenticated
                {
                    wrong.push(format!("{rpc} by nobody: {status:?}"));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    stack.stop().await;
}
