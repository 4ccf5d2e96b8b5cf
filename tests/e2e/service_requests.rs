//! The service-request service in depth, through gRPC on both backends: a versioned catalogue
//! with Open311-style attributes and the starter catalogue; filing online and at the desk for a
//! walk-in; the receipt and the public status by tracking code and secret; the workflow with
//! internal notes, etags, cancelling, reopening and rating; deadlines on the working-day
//! calendar (law 31-13: 20 working days, 3 when urgent, one extension, refusals with their legal
//! ground; the clock stopped while awaiting the citizen); and the deadline scheduler's events,
//! once each even with several scheduler instances.

use std::sync::Arc;

use chrono::{Duration, NaiveDate, Utc};
use jamaa_events::Outbox;
use jamaa_proto::identity::v1::Role;
use jamaa_proto::servicerequest::v1 as requests;
use jamaa_proto::r#type::v1::{Language, LocalizedText};
use jamaa_service_request::calendar::{DayCount, WorkingCalendar};
use jamaa_service_request::closed_days::ClosedDays;
use jamaa_service_request::deadlines::{CommuneClock, DeadlineScheduler};
use jamaa_tests::{Backend, TestStack, authorized, error_reason, spawn_stack_with, token_claims};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};
use tonic::Code;

crate::on_both_backends!(catalogue_desk_and_workflow, catalogue_desk_and_workflow);
crate::on_both_backends!(information_request_deadlines, information_request_deadlines);
crate::on_both_backends!(
    deadline_events_are_emitted_once,
    deadline_events_are_emitted_once
);

fn text(fr: &str) -> Option<LocalizedText> {
    Some(LocalizedText {
        fr: fr.into(),
        ..Default::default()
    })
}

fn bad_fields(status: &tonic::Status) -> Vec<String> {
    let mut fields = jamaa_tests::bad_fields(status);
    fields.sort();
    fields
}

fn pothole() -> requests::ServiceDefinition {
    requests::ServiceDefinition {
        code: "pothole".into(),
        name: text("Nid-de-poule"),
        kind: requests::ServiceKind::IncidentReport as i32,
        channel: requests::ServiceChannel::OnlineAndDesk as i32,
        next_steps: text("Une équipe passe sous dix jours ouvrables."),
        deadline_policy: Some(requests::DeadlinePolicy {
            unit: requests::DeadlineUnit::WorkingDays as i32,
            days: 10,
            ..Default::default()
        }),
        attributes: vec![
            requests::ServiceAttribute {
                code: "size".into(),
                datatype: requests::AttributeDatatype::Singlevaluelist as i32,
                required: true,
                order: 1,
                description: text("Taille"),
                values: ["small", "large"]
                    .into_iter()
                    .map(|key| requests::AttributeValue {
                        key: key.into(),
                        name: text(key),
                    })
                    .collect(),
            },
            requests::ServiceAttribute {
                code: "depth_cm".into(),
                datatype: requests::AttributeDatatype::Number as i32,
                required: false,
                order: 2,
                description: text("Profondeur"),
                values: vec![],
            },
        ],
        ..Default::default()
    }
}

async fn create(
    stack: &TestStack,
    admin: &str,
    service: requests::ServiceDefinition,
) -> requests::ServiceDefinition {
    stack
        .requests()
        .create_service(authorized(
            requests::CreateServiceRequest {
                service: Some(service),
            },
            admin,
        ))
        .await
        .expect("the admin adds a service")
        .into_inner()
        .service
        .expect("service")
}

fn submission(service_id: &str, attributes: &[(&str, &str)]) -> requests::SubmitRequestRequest {
    requests::SubmitRequestRequest {
        request_id: uuid::Uuid::now_v7().to_string(),
        service_id: service_id.into(),
        description: "A deep hole in front of the school.".into(),
        attributes: attributes
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Default::default()
    }
}

async fn submit(
    stack: &TestStack,
    token: &str,
    request: requests::SubmitRequestRequest,
) -> Result<requests::SubmitRequestResponse, tonic::Status> {
    stack
        .requests()
        .submit_request(authorized(request, token))
        .await
        .map(|response| response.into_inner())
}

async fn change(
    stack: &TestStack,
    token: &str,
    id: &str,
    status: requests::RequestStatus,
    etag: &str,
) -> Result<requests::ServiceRequest, tonic::Status> {
    stack
        .requests()
        .change_request_status(authorized(
            requests::ChangeRequestStatusRequest {
                id: id.into(),
                status: status as i32,
                note: "noted".into(),
                internal_note: "call the roads team first".into(),
                etag: etag.into(),
                ..Default::default()
            },
            token,
        ))
        .await
        .map(|response| response.into_inner().request.unwrap_or_default())
}

async fn get(stack: &TestStack, token: &str, id: &str) -> requests::ServiceRequest {
    stack
        .requests()
        .get_request(authorized(
            requests::GetRequestRequest { id: id.into() },
            token,
        ))
        .await
        .expect("get")
        .into_inner()
        .request
        .expect("request")
}

async fn catalogue_desk_and_workflow(backend: Backend) {
    let Some(stack) = spawn_stack_with(backend, Default::default()).await else {
        return;
    };
    let (_, admin) = stack.create_commune("SRQ", 3).await;
    let (_, other_admin) = stack.create_commune("SRX", 3).await;
    let agent = stack
        .create_staff(&admin, "desk@srq.test", &[Role::ReceptionAgent])
        .await;
    let (citizen_id, citizen) = stack.register_citizen("SRQ", "Salma", Language::Fr).await;

    // A definition with bad fields names each of them.
    let bad = stack
        .requests()
        .create_service(authorized(
            requests::CreateServiceRequest {
                service: Some(requests::ServiceDefinition {
                    code: "Bad Code".into(),
                    name: text("x"),
                    ..Default::default()
                }),
            },
            &admin,
        ))
        .await
        .expect_err("invalid definition");
    assert_eq!(
        bad_fields(&bad),
        ["service.channel", "service.code", "service.kind"]
    );

    // Version 1, then version 2 with a new required question.
    let service = create(&stack, &admin, pothole()).await;
    assert_eq!(service.version, 1);
    let first_submission = submission(&service.id, &[("size", "large")]);
    let first = submit(&stack, &citizen, first_submission.clone())
        .await
        .expect("filed under version 1");
    let first_id = first
        .request
        .as_ref()
        .map(|r| r.id.clone())
        .expect("request");
    let mut second_version = pothole();
    second_version.id = service.id.clone();
    second_version.attributes.push(requests::ServiceAttribute {
        code: "near_school".into(),
        datatype: requests::AttributeDatatype::Singlevaluelist as i32,
        required: true,
        order: 3,
        description: text("Près d'une école ?"),
        values: ["yes", "no"]
            .into_iter()
            .map(|key| requests::AttributeValue {
                key: key.into(),
                name: text(key),
            })
            .collect(),
    });
    let updated = stack
        .requests()
        .update_service(authorized(
            requests::UpdateServiceRequest {
                service: Some(second_version),
            },
            &admin,
        ))
        .await
        .expect("update")
        .into_inner()
        .service
        .expect("service");
    assert_eq!(updated.version, 2);
    let old = stack
        .requests()
        .get_service(requests::GetServiceRequest {
            id: service.id.clone(),
            version: 1,
        })
        .await
        .expect("version 1 stays readable")
        .into_inner()
        .service
        .expect("service");
    assert_eq!(old.attributes.len(), 2);
    let filed = first.request.expect("request");
    assert_eq!(get(&stack, &citizen, &filed.id).await.service_version, 1);
    // Another commune's admin cannot edit it.
    let foreign = stack
        .requests()
        .deactivate_service(authorized(
            requests::DeactivateServiceRequest {
                id: service.id.clone(),
            },
            &other_admin,
        ))
        .await
        .expect_err("another commune's service");
    assert_eq!(foreign.code(), Code::NotFound);

    // Answers are checked against the current version, each bad one named.
    let wrong = submit(
        &stack,
        &citizen,
        submission(
            &service.id,
            &[("size", "huge"), ("depth_cm", "deep"), ("colour", "red")],
        ),
    )
    .await
    .expect_err("bad answers");
    assert_eq!(wrong.code(), Code::InvalidArgument);
    assert_eq!(
        bad_fields(&wrong),
        [
            "attributes.colour",
            "attributes.depth_cm",
            "attributes.near_school",
            "attributes.size"
        ]
    );

    // The receipt: tracking code, secret, due date, next steps.
    let filed = submit(
        &stack,
        &citizen,
        submission(&service.id, &[("size", "small"), ("near_school", "yes")]),
    )
    .await
    .expect("filed");
    let receipt = filed.receipt.expect("receipt");
    let request = filed.request.expect("request");
    assert_eq!(receipt.tracking_code, request.tracking_code);
    assert_eq!(receipt.secret.len(), 10);
    assert!(!receipt.due_date.is_empty());
    assert_eq!(
        receipt.next_steps.expect("next steps").fr,
        "Une équipe passe sous dix jours ouvrables."
    );
    assert_eq!(request.service_version, 2);

    // Two agents change it from the same read: one wins, the other gets a clear conflict.
    let etag = request.etag.clone();
    let received = change(
        &stack,
        &agent,
        &request.id,
        requests::RequestStatus::Received,
        &etag,
    )
    .await
    .expect("the first change");
    let conflict = change(
        &stack,
        &agent,
        &request.id,
        requests::RequestStatus::Rejected,
        &etag,
    )
    .await
    .expect_err("the second, from a stale read");
    assert_eq!(conflict.code(), Code::Aborted);
    assert_eq!(received.status, requests::RequestStatus::Received as i32);

    // Staff see the internal note; the citizen and the public do not.
    let staff_view = get(&stack, &agent, &request.id).await;
    assert_eq!(
        staff_view.history[1].internal_note,
        "call the roads team first"
    );
    let citizen_view = get(&stack, &citizen, &request.id).await;
    assert!(
        citizen_view
            .history
            .iter()
            .all(|h| h.internal_note.is_empty())
    );
    let public = stack
        .requests()
        .get_public_request_status(requests::GetPublicRequestStatusRequest {
            tracking_code: receipt.tracking_code.to_lowercase(),
            secret: receipt.secret.to_lowercase(),
        })
        .await
        .expect("the receipt reads the status")
        .into_inner()
        .status
        .expect("status");
    assert_eq!(public.status, requests::RequestStatus::Received as i32);
    assert_eq!(public.due_date, receipt.due_date);
    assert!(
        public
            .history
            .iter()
            .all(|h| h.internal_note.is_empty() && h.actor_id.is_empty())
    );
    let wrong_secret = stack
        .requests()
        .get_public_request_status(requests::GetPublicRequestStatusRequest {
            tracking_code: receipt.tracking_code.clone(),
            secret: "AAAAAAAAAA".into(),
        })
        .await
        .expect_err("a wrong secret");
    assert_eq!(wrong_secret.code(), Code::NotFound);

    // Cancelling is the citizen's, before work starts; staff cannot cancel for them.
    let staff_cancel = change(
        &stack,
        &agent,
        &request.id,
        requests::RequestStatus::Cancelled,
        "",
    )
    .await
    .expect_err("staff do not cancel");
    assert_eq!(staff_cancel.code(), Code::FailedPrecondition);
    change(
        &stack,
        &agent,
        &request.id,
        requests::RequestStatus::InProgress,
        "",
    )
    .await
    .expect("in progress");
    let late_cancel = stack
        .requests()
        .cancel_request(authorized(
            requests::CancelRequestRequest {
                id: request.id.clone(),
                reason: "fixed by a neighbour".into(),
            },
            &citizen,
        ))
        .await
        .expect_err("work has started");
    assert_eq!(error_reason(&late_cancel), "INVALID_TRANSITION");

    // Resolved → rated once → reopened within the window.
    let early_rating = stack
        .requests()
        .rate_request(authorized(
            requests::RateRequestRequest {
                id: request.id.clone(),
                rating: 5,
                comment: String::new(),
            },
            &citizen,
        ))
        .await
        .expect_err("not resolved yet");
    assert_eq!(error_reason(&early_rating), "NOT_RESOLVED");
    change(
        &stack,
        &agent,
        &request.id,
        requests::RequestStatus::Resolved,
        "",
    )
    .await
    .expect("resolved");
    let rate = |rating: i32| {
        let mut client = stack.requests();
        let (id, citizen) = (request.id.clone(), citizen.clone());
        async move {
            client
                .rate_request(authorized(
                    requests::RateRequestRequest {
                        id,
                        rating,
                        comment: "quick".into(),
                    },
                    &citizen,
                ))
                .await
        }
    };
    let rated = rate(4)
        .await
        .expect("rated")
        .into_inner()
        .request
        .expect("request");
    assert_eq!(rated.satisfaction.expect("satisfaction").rating, 4);
    assert_eq!(
        error_reason(&rate(1).await.expect_err("once")),
        "ALREADY_RATED"
    );
    let reopened = stack
        .requests()
        .reopen_request(authorized(
            requests::ReopenRequestRequest {
                id: request.id.clone(),
                reason: "the hole is back".into(),
            },
            &citizen,
        ))
        .await
        .expect("reopened")
        .into_inner()
        .request
        .expect("request");
    assert_eq!(reopened.status, requests::RequestStatus::InProgress as i32);

    // At the desk, for a walk-in without an account.
    let desk = submit(
        &stack,
        &agent,
        requests::SubmitRequestRequest {
            walk_in: Some(requests::WalkInCitizen {
                full_name: "Mohamed Alaoui".into(),
                phone: "+212 6 61 23 45 67".into(),
                citizen_id: String::new(),
            }),
            ..submission(&service.id, &[("size", "large"), ("near_school", "no")])
        },
    )
    .await
    .expect("filed at the desk");
    let desk_request = desk.request.expect("request");
    assert!(desk_request.citizen_id.is_empty());
    let walk_in = desk_request.walk_in.expect("the desk sees the walk-in");
    assert_eq!(walk_in.phone, "+212661234567");
    assert!(!desk.receipt.expect("receipt").secret.is_empty());
    // A citizen cannot file for someone else, nor a citizen's request be read by another.
    let pretend = submit(
        &stack,
        &citizen,
        requests::SubmitRequestRequest {
            walk_in: Some(requests::WalkInCitizen {
                full_name: "X".into(),
                phone: "0600000000".into(),
                citizen_id: String::new(),
            }),
            ..submission(&service.id, &[("size", "large"), ("near_school", "no")])
        },
    )
    .await
    .expect_err("citizens do not file at the desk");
    assert_eq!(pretend.code(), Code::PermissionDenied);
    let (_, neighbour) = stack.register_citizen("SRQ", "Yassine", Language::Ar).await;
    let not_theirs = stack
        .requests()
        .get_request(authorized(
            requests::GetRequestRequest {
                id: request.id.clone(),
            },
            &neighbour,
        ))
        .await
        .expect_err("another citizen's request");
    assert_eq!(not_theirs.code(), Code::NotFound);
    // The citizen's own request lists as theirs; the walk-in's does not.
    let own = stack
        .requests()
        .list_requests(authorized(
            requests::ListRequestsRequest::default(),
            &citizen,
        ))
        .await
        .expect("list")
        .into_inner()
        .requests;
    assert!(own.iter().all(|r| r.citizen_id == citizen_id));
    assert!(own.iter().all(|r| r.id != desk_request.id));

    // A desk-only service is not filed online.
    let desk_only = create(
        &stack,
        &admin,
        requests::ServiceDefinition {
            code: "legalisation".into(),
            name: text("Légalisation"),
            kind: requests::ServiceKind::AdministrativeAct as i32,
            channel: requests::ServiceChannel::Desk as i32,
            ..Default::default()
        },
    )
    .await;
    let online = submit(&stack, &citizen, submission(&desk_only.id, &[]))
        .await
        .expect_err("desk only");
    assert_eq!(error_reason(&online), "DESK_ONLY_SERVICE");

    // Deactivated services take no requests and list only for staff.
    stack
        .requests()
        .deactivate_service(authorized(
            requests::DeactivateServiceRequest {
                id: service.id.clone(),
            },
            &admin,
        ))
        .await
        .expect("deactivate");
    let inactive = submit(
        &stack,
        &citizen,
        submission(&service.id, &[("size", "small"), ("near_school", "no")]),
    )
    .await
    .expect_err("inactive");
    assert_eq!(error_reason(&inactive), "SERVICE_INACTIVE");
    // A retry of a request filed before (under version 1, the service since changed and
    // deactivated) still answers with that request: idempotent whatever changed since.
    let retried = submit(&stack, &citizen, first_submission)
        .await
        .expect("a retry of a filed request")
        .request
        .expect("request");
    assert_eq!(retried.id, first_id);
    assert_eq!(retried.service_version, 1);
    let all = stack
        .requests()
        .list_services(authorized(
            requests::ListServicesRequest {
                commune_code: "SRQ".into(),
                include_inactive: true,
                ..Default::default()
            },
            &admin,
        ))
        .await
        .expect("staff list inactive ones")
        .into_inner()
        .services;
    assert!(all.iter().any(|s| s.id == service.id && !s.active));
    let citizen_list = stack
        .requests()
        .list_services(authorized(
            requests::ListServicesRequest {
                commune_code: "SRQ".into(),
                include_inactive: true,
                ..Default::default()
            },
            &citizen,
        ))
        .await
        .expect_err("citizens see active services only");
    assert_eq!(citizen_list.code(), Code::PermissionDenied);

    // The starter catalogue, imported once.
    let imported = stack
        .requests()
        .import_starter_catalogue(authorized(
            requests::ImportStarterCatalogueRequest {},
            &admin,
        ))
        .await
        .expect("import")
        .into_inner()
        .services;
    assert!(imported.iter().any(|s| s.code == "access-to-information"));
    let again = stack
        .requests()
        .import_starter_catalogue(authorized(
            requests::ImportStarterCatalogueRequest {},
            &admin,
        ))
        .await
        .expect("import again")
        .into_inner()
        .services;
    assert!(again.is_empty());
    stack.stop().await;
}

fn date(raw: &str) -> NaiveDate {
    NaiveDate::parse_from_str(raw, "%Y-%m-%d").expect("a date")
}

async fn service_request_db(stack: &TestStack) -> DatabaseConnection {
    Database::connect(stack.database_url("service_request").as_str())
        .await
        .expect("the service-request database")
}

/// Sets a date column of request `id` (simulating the passing of time).
async fn set_date(db: &DatabaseConnection, id: &str, column: &str, value: NaiveDate) {
    let backend = db.get_database_backend();
    let sql = match backend {
        sea_orm::DatabaseBackend::Postgres => {
            format!("UPDATE requests SET {column} = $1 WHERE id = $2")
        }
        _ => format!("UPDATE requests SET {column} = ? WHERE id = ?"),
    };
    let id = uuid::Uuid::parse_str(id).expect("uuid");
    db.execute_raw(Statement::from_sql_and_values(
        backend,
        sql,
        [value.into(), id.into()],
    ))
    .await
    .expect("update");
}

async fn information_request_deadlines(backend: Backend) {
    let Some(stack) = spawn_stack_with(backend, Default::default()).await else {
        return;
    };
    let (commune_id, admin) = stack.create_commune("ATI", 3).await;
    let officer = stack
        .create_staff(&admin, "officer@ati.test", &[Role::CaseOfficer])
        .await;
    let (_, citizen) = stack.register_citizen("ATI", "Hajar", Language::Fr).await;
    let services = stack
        .requests()
        .import_starter_catalogue(authorized(
            requests::ImportStarterCatalogueRequest {},
            &admin,
        ))
        .await
        .expect("import")
        .into_inner()
        .services;
    let information = services
        .iter()
        .find(|s| s.code == "access-to-information")
        .expect("the 31-13 service");

    // The commune closes tomorrow for a local event: deadlines skip it.
    let today = CommuneClock::new(60).today(Utc::now());
    let mut closure = today + Duration::days(1);
    while !WorkingCalendar::default().is_working_day(closure) {
        closure += Duration::days(1);
    }
    stack
        .requests()
        .create_closed_day(authorized(
            requests::CreateClosedDayRequest {
                closed_day: Some(requests::ClosedDay {
                    date: closure.to_string(),
                    name: text("Moussem"),
                    ..Default::default()
                }),
            },
            &admin,
        ))
        .await
        .expect("a local closure");
    let year = closure.format("%Y").to_string().parse().expect("year");
    let listed = stack
        .requests()
        .list_closed_days(requests::ListClosedDaysRequest {
            commune_code: "ATI".into(),
            year,
        })
        .await
        .expect("public calendar")
        .into_inner()
        .closed_days;
    assert!(
        listed.iter().any(|d| d.date == closure.to_string()
            && d.kind == requests::ClosedDayKind::LocalClosure as i32)
    );
    assert!(listed.iter().any(|d| d.date == format!("{year}-11-18")
        && d.kind == requests::ClosedDayKind::FixedHoliday as i32));
    let calendar = WorkingCalendar::new([closure]);

    let answers = [
        ("information_sought", "The 2026 budget"),
        ("format", "electronic"),
    ];
    let normal = submit(&stack, &citizen, submission(&information.id, &answers))
        .await
        .expect("filed")
        .request
        .expect("request");
    let expected = calendar.due_date(today, DayCount::WorkingDays(20));
    assert_eq!(
        normal.deadline.clone().expect("deadline").due_date,
        expected.to_string()
    );
    // Without the closure the date would be a working day earlier.
    assert_eq!(
        WorkingCalendar::default().add_working_days(today, 20),
        calendar.add_working_days(today, 19)
    );
    let urgent = submit(
        &stack,
        &citizen,
        requests::SubmitRequestRequest {
            urgent: true,
            ..submission(&information.id, &answers)
        },
    )
    .await
    .expect("filed urgently")
    .request
    .expect("request");
    assert_eq!(
        urgent.deadline.expect("deadline").due_date,
        calendar
            .due_date(today, DayCount::WorkingDays(3))
            .to_string()
    );
    assert_eq!(urgent.priority, requests::RequestPriority::Urgent as i32);

    // One extension of 20 working days, with the reason told to the citizen.
    let extend = || {
        let mut client = stack.requests();
        let (id, officer) = (normal.id.clone(), officer.clone());
        async move {
            client
                .extend_request_deadline(authorized(
                    requests::ExtendRequestDeadlineRequest {
                        id,
                        reason: "the archives must be consulted".into(),
                    },
                    &officer,
                ))
                .await
        }
    };
    let extended = extend()
        .await
        .expect("extended")
        .into_inner()
        .request
        .expect("request");
    let deadline = extended.deadline.expect("deadline");
    assert!(deadline.extended);
    assert_eq!(
        deadline.due_date,
        calendar.add_working_days(expected, 20).to_string()
    );
    assert_eq!(
        error_reason(&extend().await.expect_err("only once")),
        "ALREADY_EXTENDED"
    );
    stack
        .wait_for_notification(&citizen, "the archives must be consulted")
        .await;

    // A refusal needs its legal ground.
    change(
        &stack,
        &officer,
        &normal.id,
        requests::RequestStatus::Received,
        "",
    )
    .await
    .expect("received");
    let unreasoned = change(
        &stack,
        &officer,
        &normal.id,
        requests::RequestStatus::Rejected,
        "",
    )
    .await
    .expect_err("no legal ground");
    assert_eq!(bad_fields(&unreasoned), ["legal_ground"]);
    let refused = stack
        .requests()
        .change_request_status(authorized(
            requests::ChangeRequestStatusRequest {
                id: normal.id.clone(),
                status: requests::RequestStatus::Rejected as i32,
                note: "This information concerns national defence.".into(),
                legal_ground: "Law 31-13, article 7".into(),
                ..Default::default()
            },
            &officer,
        ))
        .await
        .expect("a reasoned refusal")
        .into_inner()
        .request
        .expect("request");
    assert_eq!(
        refused.history.last().expect("history").legal_ground,
        "Law 31-13, article 7"
    );

    // The clock stops while awaiting the citizen (residence certificates say so).
    let residence = services
        .iter()
        .find(|s| s.code == "residence-certificate")
        .expect("residence certificate");
    let waiting = submit(
        &stack,
        &citizen,
        submission(&residence.id, &[("district", "Hay Salam")]),
    )
    .await
    .expect("filed")
    .request
    .expect("request");
    let due = date(&waiting.deadline.expect("deadline").due_date);
    // Law 55-19: an administrative act is answered within 60 days.
    assert_eq!(due, calendar.due_date(today, DayCount::CalendarDays(60)));
    change(
        &stack,
        &officer,
        &waiting.id,
        requests::RequestStatus::Received,
        "",
    )
    .await
    .expect("received");
    change(
        &stack,
        &officer,
        &waiting.id,
        requests::RequestStatus::InProgress,
        "",
    )
    .await
    .expect("in progress");
    let stopped = change(
        &stack,
        &officer,
        &waiting.id,
        requests::RequestStatus::AwaitingCitizen,
        "",
    )
    .await
    .expect("awaiting");
    assert!(stopped.deadline.expect("deadline").clock_stopped);
    // Ten days pass while the clock stands still.
    let db = service_request_db(&stack).await;
    set_date(
        &db,
        &waiting.id,
        "clock_stopped_on",
        today - Duration::days(10),
    )
    .await;
    let resumed = change(
        &stack,
        &officer,
        &waiting.id,
        requests::RequestStatus::InProgress,
        "",
    )
    .await
    .expect("resumed");
    let resumed_deadline = resumed.deadline.expect("deadline");
    assert!(!resumed_deadline.clock_stopped);
    assert_eq!(
        resumed_deadline.due_date,
        calendar.on_or_after(due + Duration::days(10)).to_string()
    );
    let _ = commune_id;
    stack.stop().await;
}

async fn deadline_events_are_emitted_once(backend: Backend) {
    // The stack's own scheduler scans rarely; the test's instances race on the same database.
    let options = jamaa_tests::Options {
        extra_env: vec![(
            "JAMAA__SERVICE_REQUEST__DEADLINE_SCAN_INTERVAL_SECONDS".into(),
            "3600".into(),
        )],
        ..Default::default()
    };
    let Some(stack) = spawn_stack_with(backend, options).await else {
        return;
    };
    let (_, admin) = stack.create_commune("DLN", 3).await;
    let officer = stack
        .create_staff(&admin, "officer@dln.test", &[Role::CaseOfficer])
        .await;
    let officer_id = token_claims(&officer)["sub"]
        .as_str()
        .expect("sub")
        .to_string();
    let (_, citizen) = stack.register_citizen("DLN", "Omar", Language::En).await;
    // The roads department and its head, who hears of breaches.
    let roads = stack
        .identity()
        .create_department(authorized(
            jamaa_proto::identity::v1::CreateDepartmentRequest {
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
    let head = stack
        .create_staff(&admin, "head@dln.test", &[Role::CaseOfficer])
        .await;
    let head_id = token_claims(&head)["sub"]
        .as_str()
        .expect("sub")
        .to_string();
    stack
        .identity()
        .grant_role(authorized(
            jamaa_proto::identity::v1::GrantRoleRequest {
                user_id: head_id,
                grant: Some(jamaa_proto::identity::v1::RoleGrant {
                    role: Role::DepartmentHead as i32,
                    department_id: roads.id.clone(),
                }),
            },
            &admin,
        ))
        .await
        .expect("head of roads");
    let service = create(
        &stack,
        &admin,
        requests::ServiceDefinition {
            department_id: roads.id.clone(),
            ..pothole()
        },
    )
    .await;
    let request = submit(
        &stack,
        &citizen,
        submission(&service.id, &[("size", "large")]),
    )
    .await
    .expect("filed")
    .request
    .expect("request");
    stack
        .requests()
        .assign_request(authorized(
            requests::AssignRequestRequest {
                id: request.id.clone(),
                assignee_id: officer_id.clone(),
                ..Default::default()
            },
            &admin,
        ))
        .await
        .expect("assigned");
    stack
        .wait_for_notification(&officer, &request.tracking_code)
        .await;

    let scheduler = |db: DatabaseConnection| {
        DeadlineScheduler::new(
            db.clone(),
            Outbox::new(jamaa_service_request::EVENT_SOURCE),
            Arc::new(ClosedDays::new(db)),
            CommuneClock::new(60),
            2,
        )
    };
    let (first, second) = (
        scheduler(service_request_db(&stack).await),
        scheduler(service_request_db(&stack).await),
    );
    let db = service_request_db(&stack).await;
    let today = CommuneClock::new(60).today(Utc::now());

    // Due tomorrow-ish (within the warning window): one DeadlineApproaching.
    let soon = WorkingCalendar::default().add_working_days(today, 1);
    set_date(&db, &request.id, "due_date", soon).await;
    let now = Utc::now();
    let (a, b) = tokio::join!(first.scan(now), second.scan(now));
    let (a, b) = (a.expect("scan"), b.expect("scan"));
    assert_eq!(a.approaching + b.approaching, 1, "{a:?} {b:?}");
    assert_eq!(a.breached + b.breached, 0);
    assert_eq!(first.scan(now).await.expect("scan").approaching, 0);

    // Past due: one DeadlineBreached, the request escalated.
    set_date(&db, &request.id, "due_date", today - Duration::days(1)).await;
    let mut total = 0;
    for _ in 0..3 {
        let (a, b) = tokio::join!(first.scan(now), second.scan(now));
        total += a.expect("scan").breached + b.expect("scan").breached;
    }
    assert_eq!(total, 1);
    let escalated = get(&stack, &officer, &request.id).await;
    assert_eq!(escalated.priority, requests::RequestPriority::Urgent as i32);
    assert!(escalated.deadline.expect("deadline").breached);

    // The agent hears of each once: the assignment, the warning, the breach (staff are
    // written to in Arabic until notification learns their language).
    let code = request.tracking_code.clone();
    jamaa_tests::eventually(
        std::time::Duration::from_secs(30),
        "three notices",
        || async {
            let count = stack
                .inbox(&officer)
                .await
                .iter()
                .filter(|n| n.body.contains(&code))
                .count();
            (count >= 3).then_some(())
        },
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let inbox = stack.inbox(&officer).await;
    let notices: Vec<&str> = inbox
        .iter()
        .filter(|n| n.body.contains(&code))
        .map(|n| n.title.as_str())
        .collect();
    assert_eq!(notices.len(), 3, "{notices:?}");
    assert!(
        notices.iter().any(|title| title.contains("تجاوز")),
        "{notices:?}"
    );
    // The department's head hears of the breach (and only of it).
    let heads_notices = jamaa_tests::eventually(
        std::time::Duration::from_secs(30),
        "the head hears",
        || async {
            let notices: Vec<String> = stack
                .inbox(&head)
                .await
                .into_iter()
                .filter(|n| n.body.contains(&code))
                .map(|n| n.title)
                .collect();
            (!notices.is_empty()).then_some(notices)
        },
    )
    .await;
    assert_eq!(heads_notices.len(), 1, "{heads_notices:?}");
    assert!(heads_notices[0].contains("تجاوز"), "{heads_notices:?}");
    stack.stop().await;
}

crate::on_both_backends!(
    no_call_sequence_breaks_the_workflow,
    no_call_sequence_breaks_the_workflow
);

/// The workflow as the tests know it, written independently of the service: the steps staff
/// may take, and the citizen's cancel and reopen.
fn staff_may(from: requests::RequestStatus, to: requests::RequestStatus) -> bool {
    use requests::RequestStatus::*;
    matches!(
        (from, to),
        (Submitted, Received)
            | (Submitted, Rejected)
            | (Received, InProgress)
            | (Received, Rejected)
            | (InProgress, AwaitingCitizen)
            | (InProgress, Resolved)
            | (InProgress, Rejected)
            | (AwaitingCitizen, InProgress)
            | (AwaitingCitizen, Resolved)
            | (AwaitingCitizen, Rejected)
            | (Resolved, Closed)
            | (Resolved, InProgress)
            | (Rejected, Closed)
    )
}

/// A random walk of 80 calls (staff moves to any status, citizen cancels and reopens) on
/// fresh requests: every accepted call is a step the workflow allows, every refused one leaves
/// the request as it was, and the history grows by one per accepted step.
async fn no_call_sequence_breaks_the_workflow(backend: Backend) {
    let Some(stack) = spawn_stack_with(backend, Default::default()).await else {
        return;
    };
    let (_, admin) = stack.create_commune("PRP", 3).await;
    let officer = stack
        .create_staff(&admin, "officer@prp.test", &[Role::CaseOfficer])
        .await;
    let (_, citizen) = stack.register_citizen("PRP", "Nadia", Language::Fr).await;
    let service = create(&stack, &admin, pothole()).await;
    let statuses = [
        requests::RequestStatus::Unspecified,
        requests::RequestStatus::Submitted,
        requests::RequestStatus::Received,
        requests::RequestStatus::InProgress,
        requests::RequestStatus::AwaitingCitizen,
        requests::RequestStatus::Resolved,
        requests::RequestStatus::Rejected,
        requests::RequestStatus::Closed,
        requests::RequestStatus::Cancelled,
    ];
    // xorshift: a fixed seed per backend, so a failure replays.
    let mut seed: u64 = match backend {
        Backend::Embedded => 0x9E37_79B9_7F4A_7C15,
        Backend::Real => 0xD1B5_4A32_D192_ED03,
    };
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut request = submit(
        &stack,
        &citizen,
        submission(&service.id, &[("size", "small")]),
    )
    .await
    .expect("filed")
    .request
    .expect("request");
    for step in 0..80 {
        let before = get(&stack, &officer, &request.id).await;
        let from = requests::RequestStatus::try_from(before.status).expect("a known status");
        let choice = next() % 11;
        let (expected, outcome) = if choice < 9 {
            let to = statuses[choice as usize];
            let outcome = change(&stack, &officer, &request.id, to, "").await;
            (
                to != requests::RequestStatus::Unspecified && staff_may(from, to),
                outcome.map(|_| to),
            )
        } else if choice == 9 {
            let outcome = stack
                .requests()
                .cancel_request(authorized(
                    requests::CancelRequestRequest {
                        id: request.id.clone(),
                        reason: String::new(),
                    },
                    &citizen,
                ))
                .await;
            let allowed = matches!(
                from,
                requests::RequestStatus::Submitted | requests::RequestStatus::Received
            );
            (allowed, outcome.map(|_| requests::RequestStatus::Cancelled))
        } else {
            let outcome = stack
                .requests()
                .reopen_request(authorized(
                    requests::ReopenRequestRequest {
                        id: request.id.clone(),
                        reason: "again".into(),
                    },
                    &citizen,
                ))
                .await;
            // Reopening needs a resolution within the window: the last resolution still counts
            // after closing, but not after a rejection.
            let resolved = before
                .history
                .iter()
                .rev()
                .find(|h| {
                    h.to_status == requests::RequestStatus::Resolved as i32
                        || h.to_status == requests::RequestStatus::InProgress as i32
                })
                .is_some_and(|h| h.to_status == requests::RequestStatus::Resolved as i32);
            let allowed = resolved
                && matches!(
                    from,
                    requests::RequestStatus::Resolved | requests::RequestStatus::Closed
                );
            (
                allowed,
                outcome.map(|_| requests::RequestStatus::InProgress),
            )
        };
        let after = get(&stack, &officer, &request.id).await;
        match outcome {
            Ok(to) => {
                assert!(expected, "step {step}: {from:?} -> {to:?} was accepted");
                assert_eq!(after.status, to as i32, "step {step}");
                assert_eq!(after.history.len(), before.history.len() + 1, "step {step}");
            }
            Err(status) => {
                assert!(
                    !expected,
                    "step {step}: {from:?}, choice {choice}: {status:?}"
                );
                assert!(
                    matches!(
                        status.code(),
                        Code::FailedPrecondition | Code::InvalidArgument
                    ),
                    "step {step}: {status:?}"
                );
                assert_eq!(after.status, before.status, "step {step}");
                assert_eq!(after.history.len(), before.history.len(), "step {step}");
            }
        }
        // A finished request is replaced by a fresh one, so the walk keeps exploring.
        if matches!(
            requests::RequestStatus::try_from(after.status),
            Ok(requests::RequestStatus::Cancelled)
        ) || (after.status == requests::RequestStatus::Closed as i32 && next() % 2 == 0)
        {
            request = submit(
                &stack,
                &citizen,
                submission(&service.id, &[("size", "small")]),
            )
            .await
            .expect("filed")
            .request
            .expect("request");
        }
    }
    stack.stop().await;
}

crate::on_both_backends!(
    department_staff_see_their_department,
    department_staff_see_their_department
);

/// A case officer limited to the urbanism department reads, lists and moves only that
/// department's requests; the others are not found for them.
async fn department_staff_see_their_department(backend: Backend) {
    use jamaa_proto::identity::v1 as identity;
    let Some(stack) = spawn_stack_with(backend, Default::default()).await else {
        return;
    };
    let (_, admin) = stack.create_commune("DPT", 3).await;
    let urbanism = stack
        .identity()
        .create_department(authorized(
            identity::CreateDepartmentRequest {
                code: "URBANISM".into(),
                name: text("Urbanisme"),
            },
            &admin,
        ))
        .await
        .expect("department")
        .into_inner()
        .department
        .expect("department");
    let unscoped = stack
        .create_staff(&admin, "urban@dpt.test", &[Role::CaseOfficer])
        .await;
    let officer_id = token_claims(&unscoped)["sub"]
        .as_str()
        .expect("sub")
        .to_string();
    stack
        .identity()
        .revoke_role(authorized(
            identity::RevokeRoleRequest {
                user_id: officer_id.clone(),
                role: identity::Role::CaseOfficer as i32,
            },
            &admin,
        ))
        .await
        .expect("unscoped grant revoked");
    stack
        .identity()
        .grant_role(authorized(
            identity::GrantRoleRequest {
                user_id: officer_id.clone(),
                grant: Some(identity::RoleGrant {
                    role: identity::Role::CaseOfficer as i32,
                    department_id: urbanism.id.clone(),
                }),
            },
            &admin,
        ))
        .await
        .expect("scoped grant");
    let officer = stack.login("urban@dpt.test", "staff-password-1").await;
    assert_eq!(
        token_claims(&officer)["departments"]["case_officer"],
        urbanism.id.as_str()
    );

    let permits = create(
        &stack,
        &admin,
        requests::ServiceDefinition {
            code: "fence-permit".into(),
            department_id: urbanism.id.clone(),
            ..pothole()
        },
    )
    .await;
    let roads = create(&stack, &admin, pothole()).await;
    let (_, citizen) = stack.register_citizen("DPT", "Karim", Language::Ar).await;
    let theirs = submit(
        &stack,
        &citizen,
        submission(&permits.id, &[("size", "small")]),
    )
    .await
    .expect("filed")
    .request
    .expect("request");
    assert_eq!(theirs.department_id, urbanism.id);
    let other = submit(
        &stack,
        &citizen,
        submission(&roads.id, &[("size", "small")]),
    )
    .await
    .expect("filed")
    .request
    .expect("request");

    let listed = stack
        .requests()
        .list_requests(authorized(
            requests::ListRequestsRequest::default(),
            &officer,
        ))
        .await
        .expect("list")
        .into_inner()
        .requests;
    assert_eq!(
        listed.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        [theirs.id.as_str()]
    );
    let hidden = stack
        .requests()
        .get_request(authorized(
            requests::GetRequestRequest {
                id: other.id.clone(),
            },
            &officer,
        ))
        .await
        .expect_err("another department's request");
    assert_eq!(hidden.code(), Code::NotFound);
    let refused = change(
        &stack,
        &officer,
        &other.id,
        requests::RequestStatus::Received,
        "",
    )
    .await
    .expect_err("another department's request");
    assert_eq!(refused.code(), Code::NotFound);
    change(
        &stack,
        &officer,
        &theirs.id,
        requests::RequestStatus::Received,
        "",
    )
    .await
    .expect("their own department's");
    // The commune administrator sees both.
    let all = stack
        .requests()
        .list_requests(authorized(requests::ListRequestsRequest::default(), &admin))
        .await
        .expect("list")
        .into_inner()
        .requests;
    assert_eq!(all.len(), 2);
    stack.stop().await;
}

crate::on_both_backends!(
    duplicates_are_suggested_and_followed,
    duplicates_are_suggested_and_followed
);

/// Before filing a located request a citizen sees the open ones of the same service nearby,
/// follows one instead, and hears of its changes until they stop following.
async fn duplicates_are_suggested_and_followed(backend: Backend) {
    let Some(stack) = spawn_stack_with(backend, Default::default()).await else {
        return;
    };
    let (_, admin) = stack.create_commune("DUP", 3).await;
    let (_, first) = stack.register_citizen("DUP", "Ilham", Language::Fr).await;
    let (_, second) = stack.register_citizen("DUP", "Tarik", Language::Fr).await;
    let service = create(&stack, &admin, pothole()).await;
    let here = jamaa_proto::r#type::v1::GeoPoint {
        latitude: 33.5731,
        longitude: -7.5898,
    };
    let filed = submit(
        &stack,
        &first,
        requests::SubmitRequestRequest {
            location: Some(here),
            ..submission(&service.id, &[("size", "large")])
        },
    )
    .await
    .expect("filed")
    .request
    .expect("request");

    // 30 metres north: suggested; 500 metres away with the default 100 m: not.
    let nearby = |latitude: f64, radius: i32| {
        let mut client = stack.requests();
        let service_id = service.id.clone();
        async move {
            client
                .list_nearby_requests(requests::ListNearbyRequestsRequest {
                    service_id,
                    location: Some(jamaa_proto::r#type::v1::GeoPoint {
                        latitude,
                        longitude: -7.5898,
                    }),
                    radius_meters: radius,
                })
                .await
                .expect("nearby is public")
                .into_inner()
                .requests
        }
    };
    let close = nearby(33.5731 + 30.0 / 111_320.0, 0).await;
    assert_eq!(close.len(), 1);
    assert_eq!(close[0].tracking_code, filed.tracking_code);
    assert!(
        (29.0..31.0).contains(&close[0].distance_meters),
        "{close:?}"
    );
    assert!(nearby(33.5731 + 500.0 / 111_320.0, 0).await.is_empty());
    assert_eq!(nearby(33.5731 + 500.0 / 111_320.0, 1000).await.len(), 1);

    // The second citizen follows (twice: once counts); the filer cannot follow their own.
    for _ in 0..2 {
        stack
            .requests()
            .follow_request(authorized(
                requests::FollowRequestRequest {
                    id: filed.id.clone(),
                },
                &second,
            ))
            .await
            .expect("followed");
    }
    let own = stack
        .requests()
        .follow_request(authorized(
            requests::FollowRequestRequest {
                id: filed.id.clone(),
            },
            &first,
        ))
        .await
        .expect_err("one's own request");
    assert_eq!(error_reason(&own), "OWN_REQUEST");
    assert_eq!(nearby(33.5731, 0).await[0].follower_count, 1);
    stack.create_commune("DUQ", 3).await;
    let (_, stranger) = stack.register_citizen("DUQ", "Said", Language::Ar).await;
    let foreign = stack
        .requests()
        .follow_request(authorized(
            requests::FollowRequestRequest {
                id: filed.id.clone(),
            },
            &stranger,
        ))
        .await
        .expect_err("another commune's request");
    assert_eq!(foreign.code(), Code::NotFound);

    // A change reaches the citizen and the follower.
    change(
        &stack,
        &admin,
        &filed.id,
        requests::RequestStatus::Received,
        "",
    )
    .await
    .expect("received");
    let about = |token: &str| {
        let (stack, token, code) = (&stack, token.to_string(), filed.tracking_code.clone());
        async move {
            stack
                .inbox(&token)
                .await
                .into_iter()
                .filter(|n| {
                    n.body.contains(&code) && n.event_type.ends_with("RequestStatusChanged")
                })
                .count()
        }
    };
    jamaa_tests::eventually(
        std::time::Duration::from_secs(30),
        "the follower hears",
        || async { (about(&second).await == 1 && about(&first).await == 1).then_some(()) },
    )
    .await;

    // After unfollowing, the next change reaches the citizen only.
    stack
        .requests()
        .unfollow_request(authorized(
            requests::UnfollowRequestRequest {
                id: filed.id.clone(),
            },
            &second,
        ))
        .await
        .expect("unfollowed");
    change(
        &stack,
        &admin,
        &filed.id,
        requests::RequestStatus::InProgress,
        "",
    )
    .await
    .expect("in progress");
    jamaa_tests::eventually(
        std::time::Duration::from_secs(30),
        "the citizen hears",
        || async { (about(&first).await == 2).then_some(()) },
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    assert_eq!(about(&second).await, 1, "an unfollower hears no more");
    stack.stop().await;
}

crate::on_both_backends!(
    attachments_templates_and_appeals,
    attachments_templates_and_appeals
);

/// Attachments (type checked against the bytes, size-limited, visible to who sees the request),
/// response templates in the citizen's language, and the law 31-13 appeal trail.
async fn attachments_templates_and_appeals(backend: Backend) {
    let Some(stack) = spawn_stack_with(backend, Default::default()).await else {
        return;
    };
    let (_, admin) = stack.create_commune("ATT", 3).await;
    let officer = stack
        .create_staff(&admin, "officer@att.test", &[Role::CaseOfficer])
        .await;
    let (_, citizen) = stack.register_citizen("ATT", "Loubna", Language::Fr).await;
    let (_, neighbour) = stack.register_citizen("ATT", "Omar", Language::Ar).await;
    let service = create(&stack, &admin, pothole()).await;
    let request = submit(
        &stack,
        &citizen,
        submission(&service.id, &[("size", "small")]),
    )
    .await
    .expect("filed")
    .request
    .expect("request");

    // Attachments.
    let attach = |token: &str, content_type: &str, data: Vec<u8>| {
        let mut client = stack.requests();
        let (id, token, content_type) = (
            request.id.clone(),
            token.to_string(),
            content_type.to_string(),
        );
        async move {
            client
                .add_attachment(authorized(
                    requests::AddAttachmentRequest {
                        request_id: id,
                        file_name: "hole.png".into(),
                        content_type,
                        data,
                    },
                    &token,
                ))
                .await
        }
    };
    let png = [b"\x89PNG\r\n\x1a\n".to_vec(), vec![7u8; 1000]].concat();
    let added = attach(&citizen, "image/png", png.clone())
        .await
        .expect("a PNG")
        .into_inner()
        .attachment
        .expect("attachment");
    assert_eq!(added.size_bytes, 1008);
    let disguised = attach(
        &citizen,
        "image/png",
        b"<html>not a picture</html>".to_vec(),
    )
    .await
    .expect_err("HTML named PNG");
    assert_eq!(bad_fields(&disguised), ["content_type"]);
    let huge = attach(
        &citizen,
        "application/pdf",
        [b"%PDF-".to_vec(), vec![0u8; 3 * 1024 * 1024]].concat(),
    )
    .await
    .expect_err("too big");
    assert_eq!(bad_fields(&huge), ["data"]);
    let foreign = attach(&neighbour, "image/png", png.clone())
        .await
        .expect_err("someone else's request");
    assert_eq!(foreign.code(), Code::NotFound);
    attach(&officer, "application/pdf", b"%PDF-1.7 report".to_vec())
        .await
        .expect("staff attach too");
    let fetched = stack
        .requests()
        .get_attachment(authorized(
            requests::GetAttachmentRequest {
                request_id: request.id.clone(),
                id: added.id.clone(),
            },
            &officer,
        ))
        .await
        .expect("staff read it")
        .into_inner();
    assert_eq!(fetched.data, png);
    let listed = stack
        .requests()
        .list_attachments(authorized(
            requests::ListAttachmentsRequest {
                request_id: request.id.clone(),
            },
            &citizen,
        ))
        .await
        .expect("list")
        .into_inner()
        .attachments;
    assert_eq!(listed.len(), 2);

    // A response template answers in the citizen's language.
    let template = stack
        .requests()
        .create_response_template(authorized(
            requests::CreateResponseTemplateRequest {
                template: Some(requests::ResponseTemplate {
                    status: requests::RequestStatus::Received as i32,
                    name: "Accusé de réception".into(),
                    text: Some(LocalizedText {
                        ar: "توصلنا بطلبكم".into(),
                        fr: "Nous avons bien reçu votre demande.".into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
            },
            &admin,
        ))
        .await
        .expect("template")
        .into_inner()
        .template
        .expect("template");
    let with_template = |status: requests::RequestStatus, note: &str| {
        let mut client = stack.requests();
        let (id, officer, template_id, note) = (
            request.id.clone(),
            officer.clone(),
            template.id.clone(),
            note.to_string(),
        );
        async move {
            client
                .change_request_status(authorized(
                    requests::ChangeRequestStatusRequest {
                        id,
                        status: status as i32,
                        note,
                        template_id,
                        ..Default::default()
                    },
                    &officer,
                ))
                .await
        }
    };
    assert_eq!(
        bad_fields(
            &with_template(requests::RequestStatus::Received, "both")
                .await
                .expect_err("note and template")
        ),
        ["note"]
    );
    assert_eq!(
        error_reason(
            &with_template(requests::RequestStatus::Rejected, "")
                .await
                .expect_err("another status")
        ),
        "TEMPLATE_MISMATCH"
    );
    let received = with_template(requests::RequestStatus::Received, "")
        .await
        .expect("templated")
        .into_inner()
        .request
        .expect("request");
    assert_eq!(
        received.history.last().expect("history").note,
        "Nous avons bien reçu votre demande."
    );
    let templates = stack
        .requests()
        .list_response_templates(authorized(
            requests::ListResponseTemplatesRequest::default(),
            &officer,
        ))
        .await
        .expect("staff list them")
        .into_inner()
        .templates;
    assert_eq!(templates.len(), 1);

    // Appeals: only access-to-information requests, in order, within the law's windows.
    let not_information = stack
        .requests()
        .file_appeal(authorized(
            requests::FileAppealRequest {
                id: request.id.clone(),
                level: requests::AppealLevel::HeadOfBody as i32,
                reason: "no".into(),
            },
            &citizen,
        ))
        .await
        .expect_err("a pothole");
    assert_eq!(error_reason(&not_information), "NOT_AN_INFORMATION_REQUEST");
    let information = stack
        .requests()
        .import_starter_catalogue(authorized(
            requests::ImportStarterCatalogueRequest {},
            &admin,
        ))
        .await
        .expect("starter")
        .into_inner()
        .services
        .into_iter()
        .find(|s| s.code == "access-to-information")
        .expect("31-13");
    let asked = submit(
        &stack,
        &citizen,
        submission(
            &information.id,
            &[
                ("information_sought", "Contracts of 2025"),
                ("format", "paper"),
            ],
        ),
    )
    .await
    .expect("filed")
    .request
    .expect("request");
    let appeal = |level: requests::AppealLevel| {
        let mut client = stack.requests();
        let (id, citizen) = (asked.id.clone(), citizen.clone());
        async move {
            client
                .file_appeal(authorized(
                    requests::FileAppealRequest {
                        id,
                        level: level as i32,
                        reason: "The refusal is not founded.".into(),
                    },
                    &citizen,
                ))
                .await
        }
    };
    assert_eq!(
        error_reason(
            &appeal(requests::AppealLevel::HeadOfBody)
                .await
                .expect_err("nothing to appeal yet")
        ),
        "APPEAL_NOT_OPEN"
    );
    change(
        &stack,
        &officer,
        &asked.id,
        requests::RequestStatus::Received,
        "",
    )
    .await
    .expect("received");
    stack
        .requests()
        .change_request_status(authorized(
            requests::ChangeRequestStatusRequest {
                id: asked.id.clone(),
                status: requests::RequestStatus::Rejected as i32,
                note: "Refused.".into(),
                legal_ground: "Law 31-13, article 7".into(),
                ..Default::default()
            },
            &officer,
        ))
        .await
        .expect("refused");
    assert_eq!(
        error_reason(
            &appeal(requests::AppealLevel::NationalCommission)
                .await
                .expect_err("head first")
        ),
        "HEAD_OF_BODY_FIRST"
    );
    let head = appeal(requests::AppealLevel::HeadOfBody)
        .await
        .expect("to the head of the body")
        .into_inner()
        .request
        .expect("request");
    assert_eq!(head.appeals.len(), 1);
    assert_eq!(
        error_reason(
            &appeal(requests::AppealLevel::HeadOfBody)
                .await
                .expect_err("once")
        ),
        "ALREADY_APPEALED"
    );
    // Before the head answers (15 days), the commission is not open yet.
    assert_eq!(
        error_reason(
            &appeal(requests::AppealLevel::NationalCommission)
                .await
                .expect_err("too early")
        ),
        "APPEAL_NOT_OPEN"
    );
    let decided = stack
        .requests()
        .record_appeal_decision(authorized(
            requests::RecordAppealDecisionRequest {
                id: asked.id.clone(),
                appeal_id: head.appeals[0].id.clone(),
                decision: "The refusal stands.".into(),
                upheld: false,
            },
            &admin,
        ))
        .await
        .expect("the head decides")
        .into_inner()
        .request
        .expect("request");
    assert_eq!(decided.appeals[0].decision, "The refusal stands.");
    let commission = appeal(requests::AppealLevel::NationalCommission)
        .await
        .expect("to the national commission")
        .into_inner()
        .request
        .expect("request");
    assert_eq!(commission.appeals.len(), 2);

    // A refusal answered long ago can no longer be appealed.
    let late = submit(
        &stack,
        &citizen,
        submission(
            &information.id,
            &[("information_sought", "Old minutes"), ("format", "paper")],
        ),
    )
    .await
    .expect("filed")
    .request
    .expect("request");
    change(
        &stack,
        &officer,
        &late.id,
        requests::RequestStatus::Received,
        "",
    )
    .await
    .expect("received");
    stack
        .requests()
        .change_request_status(authorized(
            requests::ChangeRequestStatusRequest {
                id: late.id.clone(),
                status: requests::RequestStatus::Rejected as i32,
                note: "Refused.".into(),
                legal_ground: "Law 31-13, article 7".into(),
                ..Default::default()
            },
            &officer,
        ))
        .await
        .expect("refused");
    let db = service_request_db(&stack).await;
    let backend_kind = db.get_database_backend();
    let sql = match backend_kind {
        sea_orm::DatabaseBackend::Postgres => "UPDATE requests SET answered_at = $1 WHERE id = $2",
        _ => "UPDATE requests SET answered_at = ? WHERE id = ?",
    };
    db.execute_raw(Statement::from_sql_and_values(
        backend_kind,
        sql,
        [
            (Utc::now() - Duration::days(60)).into(),
            uuid::Uuid::parse_str(&late.id).expect("uuid").into(),
        ],
    ))
    .await
    .expect("time travel");
    let too_late = stack
        .requests()
        .file_appeal(authorized(
            requests::FileAppealRequest {
                id: late.id.clone(),
                level: requests::AppealLevel::HeadOfBody as i32,
                reason: "Late.".into(),
            },
            &citizen,
        ))
        .await
        .expect_err("the window closed");
    assert_eq!(error_reason(&too_late), "APPEAL_WINDOW_PASSED");
    stack.stop().await;
}
