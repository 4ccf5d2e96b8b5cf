//! The slice through the HTTP/JSON gateway, as a web or mobile client would walk it.

use std::time::Duration;

use jamaa_proto::identity::v1::Role;
use jamaa_proto::servicerequest::v1 as requests;
use jamaa_proto::r#type::v1::LocalizedText;
use jamaa_tests::{Backend, authorized, eventually, spawn_stack};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_slice_over_http_json() {
    let Some(stack) = spawn_stack(Backend::Embedded).await else {
        return;
    };
    let (_, admin) = stack.create_commune("GTW", 2).await;
    let officer = stack
        .create_staff(&admin, "officer@gtw.test", &[Role::CaseOfficer])
        .await;
    let service = stack
        .requests()
        .create_service(authorized(
            requests::CreateServiceRequest {
                service: Some(requests::ServiceDefinition {
                    code: "parking".into(),
                    name: Some(LocalizedText {
                        ar: "المرور".into(),
                        ..LocalizedText::default()
                    }),
                    description: None,
                    kind: requests::ServiceKind::IncidentReport as i32,
                    channel: requests::ServiceChannel::OnlineAndDesk as i32,
                    ..Default::default()
                }),
            },
            &admin,
        ))
        .await
        .expect("service")
        .into_inner()
        .service
        .expect("service");

    // Bad input comes back as a problem naming each field.
    let (status, content_type, problem) = stack
        .http(
            "POST",
            "/v1/citizens",
            None,
            Some(json!({"communeCode": "GTW", "email": "not-an-email", "password": "short", "displayName": "Amina"})),
        )
        .await;
    assert_eq!(status, 400, "{problem}");
    assert!(
        content_type.starts_with("application/problem+json"),
        "{content_type}"
    );
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .map(|errors| errors.iter().filter_map(|e| e["field"].as_str()).collect())
        .unwrap_or_default();
    assert!(
        fields.contains(&"email") && fields.contains(&"password"),
        "{problem}"
    );

    // Register, log in.
    let (status, _, registered) = stack
        .http(
            "POST",
            "/v1/citizens",
            None,
            Some(json!({
                "communeCode": "GTW",
                "email": "amina@gtw.test",
                "password": "citizen-password-1",
                "displayName": "Amina",
                "preferredLanguage": "LANGUAGE_AR"
            })),
        )
        .await;
    assert_eq!(status, 200, "{registered}");
    let (status, _, session) = stack
        .http(
            "POST",
            "/v1/sessions",
            None,
            Some(json!({"email": "amina@gtw.test", "password": "citizen-password-1"})),
        )
        .await;
    assert_eq!(status, 200, "{session}");
    let token = session["accessToken"]
        .as_str()
        .expect("accessToken")
        .to_string();
    let (status, _, wrong) = stack
        .http(
            "POST",
            "/v1/sessions",
            None,
            Some(json!({"email": "amina@gtw.test", "password": "wrong-password-1"})),
        )
        .await;
    assert_eq!(status, 401, "{wrong}");

    // Submit and read back.
    let (status, _, submitted) = stack
        .http(
            "POST",
            "/v1/requests",
            Some(&token),
            Some(json!({
                "requestId": uuid::Uuid::now_v7().to_string(),
                "serviceId": service.id,
                "description": "A car blocks the pavement every night."
            })),
        )
        .await;
    assert_eq!(status, 200, "{submitted}");
    let request_id = submitted["request"]["id"].as_str().expect("id").to_string();
    let tracking_code = submitted["request"]["trackingCode"]
        .as_str()
        .expect("trackingCode")
        .to_string();
    assert_eq!(submitted["request"]["status"], "REQUEST_STATUS_SUBMITTED");
    let (status, _, read) = stack
        .http(
            "GET",
            &format!("/v1/requests/{request_id}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, 200, "{read}");
    assert_eq!(
        read["request"]["trackingCode"],
        Value::String(tracking_code.clone())
    );
    let (status, _, anonymous) = stack
        .http("GET", &format!("/v1/requests/{request_id}"), None, None)
        .await;
    assert_eq!(status, 401, "{anonymous}");

    // Staff change its status; the citizen's inbox fills, in Arabic.
    let (status, _, changed) = stack
        .http(
            "POST",
            &format!("/v1/requests/{request_id}/status"),
            Some(&officer),
            Some(json!({"status": "REQUEST_STATUS_RECEIVED", "note": ""})),
        )
        .await;
    assert_eq!(status, 200, "{changed}");
    let (status, _, invalid) = stack
        .http(
            "POST",
            &format!("/v1/requests/{request_id}/status"),
            Some(&officer),
            Some(json!({"status": "REQUEST_STATUS_CLOSED"})),
        )
        .await;
    assert_eq!(
        status, 422,
        "RECEIVED → CLOSED is not a valid step: {invalid}"
    );
    let inbox = eventually(
        Duration::from_secs(20),
        "the status notification over HTTP",
        || {
            let stack = &stack;
            let token = token.clone();
            async move {
                let (_, _, inbox) = stack
                    .http("GET", "/v1/notifications", Some(&token), None)
                    .await;
                inbox["notifications"]
                    .as_array()
                    .is_some_and(|list| {
                        list.iter()
                            .any(|n| n["eventType"] == "jamaa.events.v1.RequestStatusChanged")
                    })
                    .then_some(inbox)
            }
        },
    )
    .await;
    let status_notification = inbox["notifications"]
        .as_array()
        .and_then(|list| {
            list.iter()
                .find(|n| n["eventType"] == "jamaa.events.v1.RequestStatusChanged")
        })
        .expect("found above");
    assert_eq!(status_notification["language"], "LANGUAGE_AR");
    let notification_id = status_notification["id"].as_str().expect("id");
    let (status, _, marked) = stack
        .http(
            "POST",
            &format!("/v1/notifications/{notification_id}/read"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, 200, "{marked}");
    assert!(marked["notification"]["readTime"].is_string(), "{marked}");

    // A petition over HTTP.
    let (status, _, petition) = stack
        .http(
            "POST",
            "/v1/petitions",
            Some(&token),
            Some(json!({
                "requestId": uuid::Uuid::now_v7().to_string(),
                "title": "حديقة للحي",
                "body": "نطلب من المجلس تهيئة حديقة."
            })),
        )
        .await;
    assert_eq!(status, 200, "{petition}");
    let petition_id = petition["petition"]["id"].as_str().expect("id").to_string();
    // Only a resident verified in person signs: first refused, then checked at the desk.
    let (status, _, refused) = stack
        .http(
            "POST",
            &format!("/v1/petitions/{petition_id}/signatures"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, 403, "{refused}");
    assert_eq!(refused["code"], "PERMISSION_DENIED");
    let amina_id = registered["user"]["id"].as_str().expect("id").to_string();
    let token = stack
        .verify_in_person(&admin, &amina_id, "amina@gtw.test")
        .await;
    let (status, _, signed) = stack
        .http(
            "POST",
            &format!("/v1/petitions/{petition_id}/signatures"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, 200, "{signed}");
    assert_eq!(signed["newlySigned"], true);
    assert_eq!(signed["petition"]["signatureCount"], "1");

    // The public documents.
    let (status, _, openapi) = stack.http("GET", "/openapi.json", None, None).await;
    assert_eq!(status, 200);
    assert_eq!(openapi["openapi"], "3.1.0");
    assert!(
        openapi["paths"]["/v1/requests/{id}"]["get"].is_object(),
        "{openapi}"
    );
    let (status, _, jwks) = stack
        .http("GET", "/.well-known/jwks.json", None, None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(jwks["keys"][0]["kty"], "OKP");
    assert_eq!(jwks["keys"][0]["crv"], "Ed25519");

    stack.stop().await;
}
