//! The walking skeleton's story: register → login → submit → staff changes status → the citizen's
//! inbox holds the notification in their language; a petition signed to its threshold → the
//! petitioner is notified.

use std::time::Duration;

use jamaa_proto::identity::v1::Role;
use jamaa_proto::notification::v1 as notification;
use jamaa_proto::participation::v1 as participation;
use jamaa_proto::servicerequest::v1 as requests;
use jamaa_proto::r#type::v1::{GeoPoint, Language, LocalizedText};
use jamaa_tests::{Backend, authorized, eventually, spawn_stack};

crate::on_both_backends!(citizen_request_and_petition, story);

async fn story(backend: Backend) {
    let Some(stack) = spawn_stack(backend).await else {
        return;
    };
    let (commune_id, admin) = stack.create_commune("BNM", 3).await;

    // The commune's catalogue.
    let service = stack
        .requests()
        .create_service(authorized(
            requests::CreateServiceRequest {
                service: Some(requests::ServiceDefinition {
                    code: "street-lighting".into(),
                    name: Some(LocalizedText {
                        ar: "الإنارة العمومية".into(),
                        fr: "Éclairage public".into(),
                        ..LocalizedText::default()
                    }),
                    description: None,
                    attributes: vec![requests::ServiceAttribute {
                        code: "lamp_number".into(),
                        datatype: requests::AttributeDatatype::String as i32,
                        required: false,
                        order: 1,
                        description: Some(LocalizedText {
                            fr: "Numéro du lampadaire".into(),
                            ..LocalizedText::default()
                        }),
                        values: vec![],
                    }],
                    kind: requests::ServiceKind::IncidentReport as i32,
                    channel: requests::ServiceChannel::OnlineAndDesk as i32,
                    ..Default::default()
                }),
            },
            &admin,
        ))
        .await
        .expect("the admin adds a service")
        .into_inner()
        .service
        .expect("service");
    let listed = stack
        .requests()
        .list_services(requests::ListServicesRequest {
            commune_code: "BNM".into(),
            ..Default::default()
        })
        .await
        .expect("the catalogue is public")
        .into_inner();
    assert_eq!(
        listed
            .services
            .iter()
            .map(|s| s.id.as_str())
            .collect::<Vec<_>>(),
        [service.id.as_str()]
    );

    // A French-speaking citizen files a request.
    let (amina_id, amina) = stack.register_citizen("BNM", "Amina", Language::Fr).await;
    let request_id = uuid::Uuid::now_v7().to_string();
    let submit = requests::SubmitRequestRequest {
        request_id: request_id.clone(),
        service_id: service.id.clone(),
        description: "The street lamp in front of number 12 is out.".into(),
        attributes: [("lamp_number".to_string(), "12".to_string())].into(),
        location: Some(GeoPoint {
            latitude: 32.3373,
            longitude: -6.3498,
        }),
        ..Default::default()
    };
    let receipt = stack
        .requests()
        .submit_request(authorized(submit.clone(), &amina))
        .await
        .expect("the citizen submits")
        .into_inner()
        .request
        .expect("request");
    let year = chrono::Utc::now().format("%Y").to_string();
    assert!(
        receipt.tracking_code.starts_with(&format!("BNM-{year}-")),
        "tracking code {}",
        receipt.tracking_code
    );
    assert_eq!(receipt.status, requests::RequestStatus::Submitted as i32);
    assert_eq!(receipt.citizen_id, amina_id);
    assert_eq!(receipt.commune_id, commune_id);

    // Submitting again with the same request_id returns the same request.
    let again = stack
        .requests()
        .submit_request(authorized(submit, &amina))
        .await
        .expect("an idempotent retry")
        .into_inner()
        .request
        .expect("request");
    assert_eq!(again.id, receipt.id);
    assert_eq!(again.tracking_code, receipt.tracking_code);

    // The citizen reads it back.
    let read = stack
        .requests()
        .get_request(authorized(
            requests::GetRequestRequest {
                id: receipt.id.clone(),
            },
            &amina,
        ))
        .await
        .expect("the citizen reads their request")
        .into_inner()
        .request
        .expect("request");
    assert_eq!(
        read.description,
        "The street lamp in front of number 12 is out."
    );
    assert_eq!(
        read.attributes.get("lamp_number").map(String::as_str),
        Some("12")
    );

    // A case officer moves it along, with a note.
    let officer = stack
        .create_staff(&admin, "officer@bnm.test", &[Role::CaseOfficer])
        .await;
    for (status, note) in [
        (requests::RequestStatus::Received, ""),
        (
            requests::RequestStatus::InProgress,
            "Un technicien passera jeudi.",
        ),
    ] {
        stack
            .requests()
            .change_request_status(authorized(
                requests::ChangeRequestStatusRequest {
                    id: receipt.id.clone(),
                    status: status as i32,
                    note: note.into(),
                    ..Default::default()
                },
                &officer,
            ))
            .await
            .unwrap_or_else(|error| panic!("the officer sets {status:?}: {error:?}"));
    }
    let history = stack
        .requests()
        .get_request(authorized(
            requests::GetRequestRequest {
                id: receipt.id.clone(),
            },
            &amina,
        ))
        .await
        .expect("read")
        .into_inner()
        .request
        .expect("request")
        .history;
    let steps: Vec<i32> = history.iter().map(|change| change.to_status).collect();
    assert_eq!(
        steps,
        [
            requests::RequestStatus::Submitted as i32,
            requests::RequestStatus::Received as i32,
            requests::RequestStatus::InProgress as i32
        ]
    );

    // The citizen's inbox: the notification of the last change, in French.
    let inbox = eventually(
        Duration::from_secs(20),
        "the in-progress notification",
        || {
            let stack = &stack;
            let amina = amina.clone();
            async move {
                let listed = stack
                    .notifications()
                    .list_notifications(authorized(
                        notification::ListNotificationsRequest::default(),
                        &amina,
                    ))
                    .await
                    .ok()?
                    .into_inner();
                listed
                    .notifications
                    .iter()
                    .any(|n| n.body.contains("Un technicien passera jeudi."))
                    .then_some(listed)
            }
        },
    )
    .await;
    let in_progress = inbox
        .notifications
        .iter()
        .find(|n| n.body.contains("Un technicien passera jeudi."))
        .expect("found above");
    assert_eq!(in_progress.language, Language::Fr as i32);
    assert_eq!(
        in_progress.event_type,
        "jamaa.events.v1.RequestStatusChanged"
    );
    assert!(
        format!("{} {}", in_progress.title, in_progress.body).contains(&receipt.tracking_code),
        "the notification names the tracking code: {in_progress:?}"
    );
    assert!(inbox.unread_count >= 1);
    let marked = stack
        .notifications()
        .mark_notification_read(authorized(
            notification::MarkNotificationReadRequest {
                id: in_progress.id.clone(),
            },
            &amina,
        ))
        .await
        .expect("mark read")
        .into_inner()
        .notification
        .expect("notification");
    assert!(marked.read_time.is_some());

    // A petition signed by three residents reaches the threshold; its author hears of it.
    let petition = stack
        .participation()
        .create_petition(authorized(
            participation::CreatePetitionRequest {
                request_id: uuid::Uuid::now_v7().to_string(),
                title: "Un parc pour le quartier".into(),
                body: "Nous demandons au conseil d'aménager le terrain vague en parc.".into(),
                draft: false,
                ..Default::default()
            },
            &amina,
        ))
        .await
        .expect("a citizen opens a petition")
        .into_inner()
        .petition
        .expect("petition");
    assert_eq!(petition.signature_threshold, 3);
    let (youssef_id, youssef) = stack.register_citizen("BNM", "Youssef", Language::Ar).await;
    let (salma_id, _) = stack.register_citizen("BNM", "Salma", Language::Ar).await;
    // Signatures count only from residents whose ID card the desk checked.
    let unverified = stack
        .participation()
        .sign_petition(authorized(
            participation::SignPetitionRequest {
                petition_id: petition.id.clone(),
            },
            &youssef,
        ))
        .await
        .expect_err("an unverified resident");
    assert_eq!(unverified.code(), tonic::Code::PermissionDenied);
    assert_eq!(jamaa_tests::error_reason(&unverified), "ASSURANCE_TOO_LOW");
    let amina = stack
        .verify_in_person(&admin, &amina_id, "amina@bnm.test")
        .await;
    let youssef = stack
        .verify_in_person(&admin, &youssef_id, "youssef@bnm.test")
        .await;
    let salma = stack
        .verify_in_person(&admin, &salma_id, "salma@bnm.test")
        .await;
    let mut last = None;
    for token in [&amina, &youssef, &youssef, &salma] {
        last = Some(
            stack
                .participation()
                .sign_petition(authorized(
                    participation::SignPetitionRequest {
                        petition_id: petition.id.clone(),
                    },
                    token,
                ))
                .await
                .expect("sign")
                .into_inner(),
        );
    }
    let last = last.expect("signed").petition.expect("petition");
    assert_eq!(
        last.signature_count, 3,
        "Youssef's second signature does not count"
    );
    assert_eq!(
        last.status,
        participation::PetitionStatus::ThresholdReached as i32
    );
    eventually(Duration::from_secs(20), "the petition notification", || {
        let stack = &stack;
        let amina = amina.clone();
        async move {
            let listed = stack
                .notifications()
                .list_notifications(authorized(
                    notification::ListNotificationsRequest::default(),
                    &amina,
                ))
                .await
                .ok()?
                .into_inner();
            listed
                .notifications
                .iter()
                .find(|n| n.event_type == "jamaa.events.v1.PetitionThresholdReached")
                .filter(|n| {
                    n.body.contains("Un parc pour le quartier")
                        || n.title.contains("Un parc pour le quartier")
                })
                .map(|n| assert_eq!(n.language, Language::Fr as i32))
        }
    })
    .await;

    stack.stop().await;
}
