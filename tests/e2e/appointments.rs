//! Desk appointments through gRPC on both backends: an office with opening hours, slots opened
//! on the commune's working days only, booking (idempotent), moving and cancelling, the desk's
//! record of who came, a reminder once per start time, and 50 citizens racing for the last
//! places of a slot: never more bookings than its capacity.

use chrono::{Duration, NaiveDate, Utc};
use jamaa_proto::identity::v1::Role;
use jamaa_proto::servicerequest::v1 as requests;
use jamaa_proto::r#type::v1::{Language, LocalizedText};
use jamaa_service_request::calendar::WorkingCalendar;
use jamaa_service_request::deadlines::CommuneClock;
use jamaa_tests::{
    Backend, Options, TestStack, authorized, error_reason, eventually, spawn_stack_with,
};
use tonic::Code;
use tonic_types::StatusExt;

crate::on_both_backends!(book_move_cancel_and_serve, book_move_cancel_and_serve);
crate::on_both_backends!(
    never_more_bookings_than_places,
    never_more_bookings_than_places
);

fn text(fr: &str) -> Option<LocalizedText> {
    Some(LocalizedText {
        fr: fr.into(),
        ..Default::default()
    })
}

fn hours(weekday: i32, opens: &str, closes: &str) -> requests::OpeningHours {
    requests::OpeningHours {
        weekday,
        opens: opens.into(),
        closes: closes.into(),
    }
}

/// An office open Monday to Friday, 08:30–12:00 and 14:00–16:30, and a desk service.
async fn office_and_service(
    stack: &TestStack,
    admin: &str,
) -> (requests::Office, requests::ServiceDefinition) {
    let mut opening = Vec::new();
    for weekday in 1..=5 {
        opening.push(hours(weekday, "08:30", "12:00"));
        opening.push(hours(weekday, "14:00", "16:30"));
    }
    let office = stack
        .appointments()
        .create_office(authorized(
            requests::CreateOfficeRequest {
                office: Some(requests::Office {
                    name: text("Bureau d'état civil"),
                    address: "Avenue Hassan II".into(),
                    opening_hours: opening,
                    ..Default::default()
                }),
            },
            admin,
        ))
        .await
        .expect("office")
        .into_inner()
        .office
        .expect("office");
    let service = stack
        .requests()
        .create_service(authorized(
            requests::CreateServiceRequest {
                service: Some(requests::ServiceDefinition {
                    code: "building-permit".into(),
                    name: text("Permis de construire"),
                    kind: requests::ServiceKind::Permit as i32,
                    channel: requests::ServiceChannel::Desk as i32,
                    appointment_required: true,
                    ..Default::default()
                }),
            },
            admin,
        ))
        .await
        .expect("service")
        .into_inner()
        .service
        .expect("service");
    (office, service)
}

async fn open_slots(
    stack: &TestStack,
    token: &str,
    office: &requests::Office,
    service: &requests::ServiceDefinition,
    from: NaiveDate,
    days: i64,
    capacity: i32,
) -> i32 {
    stack
        .appointments()
        .create_slots(authorized(
            requests::CreateSlotsRequest {
                office_id: office.id.clone(),
                service_id: service.id.clone(),
                start_date: from.to_string(),
                end_date: (from + Duration::days(days)).to_string(),
                slot_minutes: 30,
                capacity,
            },
            token,
        ))
        .await
        .expect("slots")
        .into_inner()
        .created_count
}

async fn slots(
    stack: &TestStack,
    office: &requests::Office,
    service: &requests::ServiceDefinition,
    from: NaiveDate,
    days: i64,
) -> Vec<requests::Slot> {
    stack
        .appointments()
        .list_slots(requests::ListSlotsRequest {
            office_id: office.id.clone(),
            service_id: service.id.clone(),
            start_date: from.to_string(),
            end_date: (from + Duration::days(days)).to_string(),
            available_only: false,
        })
        .await
        .expect("slots are public")
        .into_inner()
        .slots
}

async fn book(
    stack: &TestStack,
    token: &str,
    appointment_id: &str,
    slot_id: &str,
) -> Result<requests::Appointment, tonic::Status> {
    stack
        .appointments()
        .book_appointment(authorized(
            requests::BookAppointmentRequest {
                appointment_id: appointment_id.into(),
                slot_id: slot_id.into(),
                request_id: String::new(),
            },
            token,
        ))
        .await
        .map(|response| response.into_inner().appointment.unwrap_or_default())
}

fn local_date(slot: &requests::Slot) -> NaiveDate {
    let start = slot.start_time.expect("start");
    let at = chrono::DateTime::from_timestamp(start.seconds, 0).expect("a time");
    CommuneClock::new(60).today(at)
}

async fn book_move_cancel_and_serve(backend: Backend) {
    // Reminders for anything in the next fortnight, scanned every second.
    let options = Options {
        extra_env: vec![
            (
                "JAMAA__SERVICE_REQUEST__APPOINTMENT_REMINDER_HOURS".into(),
                "400".into(),
            ),
            (
                "JAMAA__SERVICE_REQUEST__DEADLINE_SCAN_INTERVAL_SECONDS".into(),
                "1".into(),
            ),
        ],
        ..Default::default()
    };
    let Some(stack) = spawn_stack_with(backend, options).await else {
        return;
    };
    let (_, admin) = stack.create_commune("APT", 3).await;
    let desk = stack
        .create_staff(&admin, "desk@apt.test", &[Role::ReceptionAgent])
        .await;
    let (_, citizen) = stack.register_citizen("APT", "Rachida", Language::Fr).await;

    // Bad opening hours are named.
    let bad = stack
        .appointments()
        .create_office(authorized(
            requests::CreateOfficeRequest {
                office: Some(requests::Office {
                    name: text("Annexe"),
                    opening_hours: vec![hours(1, "08:00", "12:00"), hours(9, "14:00", "12:00")],
                    ..Default::default()
                }),
            },
            &admin,
        ))
        .await
        .expect_err("bad hours");
    let fields: Vec<String> = bad
        .get_error_details()
        .bad_request()
        .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
        .unwrap_or_default();
    assert_eq!(fields, ["office.opening_hours[1]"]);

    let (office, service) = office_and_service(&stack, &admin).await;
    let today = CommuneClock::new(60).today(Utc::now());
    // The commune closes on the first working day after tomorrow: no slots then.
    let mut closure = today + Duration::days(2);
    while !WorkingCalendar::default().is_working_day(closure) {
        closure += Duration::days(1);
    }
    stack
        .requests()
        .create_closed_day(authorized(
            requests::CreateClosedDayRequest {
                closed_day: Some(requests::ClosedDay {
                    date: closure.to_string(),
                    name: text("Fête locale"),
                    ..Default::default()
                }),
            },
            &admin,
        ))
        .await
        .expect("closure");
    let created = open_slots(&stack, &desk, &office, &service, today, 13, 2).await;
    assert!(created > 0);
    assert_eq!(
        open_slots(&stack, &desk, &office, &service, today, 13, 2).await,
        0,
        "existing slots are kept, not doubled"
    );
    let listed = slots(&stack, &office, &service, today, 13).await;
    assert_eq!(listed.len(), usize::try_from(created).expect("count"));
    let calendar = WorkingCalendar::new([closure]);
    assert!(
        listed
            .iter()
            .all(|slot| calendar.is_working_day(local_date(slot)))
    );
    assert!(listed.iter().all(|slot| local_date(slot) != closure));
    // Ten slots of 30 minutes per open day: 7 in the morning, 5 in the afternoon.
    let full_day = listed
        .iter()
        .filter(|slot| local_date(slot) > today)
        .map(local_date)
        .next()
        .expect("a later day");
    assert_eq!(
        listed
            .iter()
            .filter(|slot| local_date(slot) == full_day)
            .count(),
        12
    );

    // Book (idempotent), then the reminder.
    let appointment_id = uuid::Uuid::now_v7().to_string();
    let first = &listed[0];
    let booked = book(&stack, &citizen, &appointment_id, &first.id)
        .await
        .expect("booked");
    assert_eq!(booked.status, requests::AppointmentStatus::Booked as i32);
    let again = book(&stack, &citizen, &appointment_id, &first.id)
        .await
        .expect("again");
    assert_eq!(again.id, booked.id);
    assert_eq!(
        slots(&stack, &office, &service, today, 13).await[0].booked,
        1
    );
    stack
        .wait_for_notification(&citizen, "Rendez-vous réservé")
        .await;
    stack.wait_for_notification(&citizen, "Rappel").await;

    // Move: the places follow; a new start time gets its own reminder.
    let second = &listed[1];
    let moved = stack
        .appointments()
        .move_appointment(authorized(
            requests::MoveAppointmentRequest {
                appointment_id: appointment_id.clone(),
                slot_id: second.id.clone(),
            },
            &citizen,
        ))
        .await
        .expect("moved")
        .into_inner()
        .appointment
        .expect("appointment");
    assert_eq!(moved.slot_id, second.id);
    let after = slots(&stack, &office, &service, today, 13).await;
    assert_eq!((after[0].booked, after[1].booked), (0, 1));
    eventually(
        std::time::Duration::from_secs(30),
        "a second reminder",
        || async {
            let reminders = stack
                .inbox(&citizen)
                .await
                .iter()
                .filter(|n| n.title.contains("Rappel"))
                .count();
            (reminders == 2).then_some(())
        },
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let reminders = stack
        .inbox(&citizen)
        .await
        .iter()
        .filter(|n| n.title.contains("Rappel"))
        .count();
    assert_eq!(reminders, 2, "one reminder per start time");

    // The desk: the day's list, then arrived → served; no going back.
    let day = local_date(second);
    let day_list = stack
        .appointments()
        .list_appointments(authorized(
            requests::ListAppointmentsRequest {
                office_id: office.id.clone(),
                date: day.to_string(),
            },
            &desk,
        ))
        .await
        .expect("the desk's list")
        .into_inner()
        .appointments;
    assert!(day_list.iter().any(|a| a.id == appointment_id));
    let outcome = |status: requests::AppointmentStatus| {
        let mut client = stack.appointments();
        let (id, desk) = (appointment_id.clone(), desk.clone());
        async move {
            client
                .record_appointment_outcome(authorized(
                    requests::RecordAppointmentOutcomeRequest {
                        appointment_id: id,
                        status: status as i32,
                    },
                    &desk,
                ))
                .await
        }
    };
    outcome(requests::AppointmentStatus::Arrived)
        .await
        .expect("arrived");
    let served = outcome(requests::AppointmentStatus::Served)
        .await
        .expect("served")
        .into_inner()
        .appointment
        .expect("appointment");
    assert_eq!(served.status, requests::AppointmentStatus::Served as i32);
    let back = outcome(requests::AppointmentStatus::NoShow)
        .await
        .expect_err("served is final");
    assert_eq!(error_reason(&back), "INVALID_APPOINTMENT_TRANSITION");
    // A citizen cannot record outcomes.
    let citizen_outcome = stack
        .appointments()
        .record_appointment_outcome(authorized(
            requests::RecordAppointmentOutcomeRequest {
                appointment_id: appointment_id.clone(),
                status: requests::AppointmentStatus::Arrived as i32,
            },
            &citizen,
        ))
        .await
        .expect_err("desk only");
    assert_eq!(citizen_outcome.code(), Code::PermissionDenied);

    // Cancel frees the place; a cancelled appointment cannot move.
    let other_id = uuid::Uuid::now_v7().to_string();
    book(&stack, &citizen, &other_id, &listed[2].id)
        .await
        .expect("booked");
    stack
        .appointments()
        .cancel_appointment(authorized(
            requests::CancelAppointmentRequest {
                appointment_id: other_id.clone(),
            },
            &citizen,
        ))
        .await
        .expect("cancelled");
    assert_eq!(
        slots(&stack, &office, &service, today, 13).await[2].booked,
        0
    );
    let late = stack
        .appointments()
        .move_appointment(authorized(
            requests::MoveAppointmentRequest {
                appointment_id: other_id,
                slot_id: listed[3].id.clone(),
            },
            &citizen,
        ))
        .await
        .expect_err("cancelled");
    assert_eq!(error_reason(&late), "APPOINTMENT_NOT_BOOKED");

    // Another commune's citizen cannot book here.
    stack.create_commune("APX", 3).await;
    let (_, stranger) = stack.register_citizen("APX", "Adil", Language::Ar).await;
    let foreign = book(
        &stack,
        &stranger,
        &uuid::Uuid::now_v7().to_string(),
        &listed[4].id,
    )
    .await
    .expect_err("another commune's slot");
    assert_eq!(foreign.code(), Code::NotFound);
    stack.stop().await;
}

async fn never_more_bookings_than_places(backend: Backend) {
    let Some(stack) = spawn_stack_with(backend, Options::default()).await else {
        return;
    };
    let (_, admin) = stack.create_commune("RCE", 3).await;
    let (office, service) = office_and_service(&stack, &admin).await;
    let today = CommuneClock::new(60).today(Utc::now());
    open_slots(
        &stack,
        &admin,
        &office,
        &service,
        today + Duration::days(1),
        7,
        3,
    )
    .await;
    let slot = slots(&stack, &office, &service, today + Duration::days(1), 7).await[0].clone();

    let mut citizens = Vec::new();
    for index in 0..50 {
        let (_, token) = stack
            .register_citizen("RCE", &format!("citizen{index}"), Language::Ar)
            .await;
        citizens.push(token);
    }
    let attempts = citizens.iter().map(|token| {
        let slot_id = slot.id.clone();
        let mut client = stack.appointments();
        async move {
            client
                .book_appointment(authorized(
                    requests::BookAppointmentRequest {
                        appointment_id: uuid::Uuid::now_v7().to_string(),
                        slot_id,
                        request_id: String::new(),
                    },
                    token,
                ))
                .await
        }
    });
    let outcomes = futures_util::future::join_all(attempts).await;
    let booked = outcomes.iter().filter(|outcome| outcome.is_ok()).count();
    let full = outcomes
        .iter()
        .filter(|outcome| matches!(outcome, Err(status) if error_reason(status) == "SLOT_FULL"))
        .count();
    assert_eq!((booked, full), (3, 47), "{outcomes:?}");
    let after = slots(&stack, &office, &service, today + Duration::days(1), 7).await;
    assert_eq!(after[0].booked, 3);
    stack.stop().await;
}
