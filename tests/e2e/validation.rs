//! Bad input gets INVALID_ARGUMENT with every bad field named in the rich error details.

use jamaa_proto::identity::v1 as identity;
use jamaa_proto::servicerequest::v1 as requests;
use jamaa_proto::r#type::v1::{GeoPoint, Language, LocalizedText};
use jamaa_tests::{Backend, authorized, bad_fields, spawn_stack};
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_names_every_field() {
    let Some(stack) = spawn_stack(Backend::Embedded).await else {
        return;
    };
    let (_, admin) = stack.create_commune("VAL", 3).await;

    let error = stack
        .identity()
        .register_citizen(identity::RegisterCitizenRequest {
            commune_code: "VAL".into(),
            email: "not an email".into(),
            password: "short".into(),
            display_name: " ".into(),
            preferred_language: 42,
            ..Default::default()
        })
        .await
        .expect_err("invalid registration");
    assert_eq!(error.code(), Code::InvalidArgument);
    let mut fields = bad_fields(&error);
    fields.sort();
    assert_eq!(
        fields,
        ["display_name", "email", "password", "preferred_language"]
    );

    let error = stack
        .identity()
        .register_citizen(identity::RegisterCitizenRequest {
            commune_code: "NOPE".into(),
            email: "amina@val.test".into(),
            password: "citizen-password-1".into(),
            display_name: "Amina".into(),
            preferred_language: Language::Ar as i32,
            ..Default::default()
        })
        .await
        .expect_err("unknown commune");
    assert_eq!(error.code(), Code::NotFound);

    let (amina_id, amina) = stack.register_citizen("VAL", "Amina", Language::Ar).await;
    // A taken e-mail is answered like a free one (nothing tells which addresses have accounts);
    // no account is made, and the owner hears of the attempt.
    let duplicate = stack
        .identity()
        .register_citizen(identity::RegisterCitizenRequest {
            commune_code: "VAL".into(),
            email: "AMINA@val.test".into(),
            password: "another-password-9".into(),
            display_name: "Amina again".into(),
            preferred_language: Language::Ar as i32,
            ..Default::default()
        })
        .await
        .expect("answered like a new sign-up")
        .into_inner()
        .user
        .unwrap_or_default();
    assert_ne!(duplicate.id, amina_id);
    assert_eq!(duplicate.email, "amina@val.test");
    let refused = stack
        .identity()
        .login(identity::LoginRequest {
            email: "amina@val.test".into(),
            password: "another-password-9".into(),
            ..Default::default()
        })
        .await
        .expect_err("no second account, no password change");
    assert_eq!(refused.code(), Code::Unauthenticated);
    let told = jamaa_tests::eventually(
        std::time::Duration::from_secs(20),
        "the owner told of the attempt",
        || async {
            stack
                .inbox(&amina)
                .await
                .into_iter()
                .find(|n| n.event_type.ends_with("SignUpAttempted"))
        },
    )
    .await;
    assert!(told.title.contains("محاولة"), "{told:?}");

    let service = stack
        .requests()
        .create_service(authorized(
            requests::CreateServiceRequest {
                service: Some(requests::ServiceDefinition {
                    code: "Bad Code!".into(),
                    name: Some(LocalizedText::default()),
                    description: None,
                    kind: requests::ServiceKind::IncidentReport as i32,
                    channel: requests::ServiceChannel::OnlineAndDesk as i32,
                    ..Default::default()
                }),
            },
            &admin,
        ))
        .await
        .expect_err("invalid service");
    let mut fields = bad_fields(&service);
    fields.sort();
    assert_eq!(fields, ["service.code", "service.name"]);

    let error = stack
        .requests()
        .submit_request(authorized(
            requests::SubmitRequestRequest {
                request_id: "not-a-uuid".into(),
                service_id: uuid::Uuid::now_v7().to_string(),
                description: String::new(),
                attributes: Default::default(),
                location: Some(GeoPoint {
                    latitude: 123.0,
                    longitude: -6.0,
                }),
                ..Default::default()
            },
            &amina,
        ))
        .await
        .expect_err("invalid submission");
    assert_eq!(error.code(), Code::InvalidArgument);
    let mut fields = bad_fields(&error);
    fields.sort();
    assert_eq!(fields, ["description", "location.latitude", "request_id"]);
    stack.stop().await;
}
