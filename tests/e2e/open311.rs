//! The Open311 GeoReport v2 server over real HTTP, on both backends: discovery, the service list
//! and a service definition, the public requests (with every filter) and one request — each in
//! JSON and in XML — and the spec's error array for a missing or unknown jurisdiction, an
//! unknown service or request, a bad filter or format. Only incident reports are public: a
//! request for an administrative act never shows. `POST requests` with an API key of the
//! commune files a report (form-urlencoded, attributes checked); missing fields, a wrong,
//! revoked or other commune's key, or a service that is not an incident report are refused.

use jamaa_proto::servicerequest::v1 as requests;
use jamaa_proto::r#type::v1::{GeoPoint, Language, LocalizedText};
use jamaa_tests::{Backend, TestStack, authorized, send};
use serde_json::Value;

crate::on_both_backends!(open311_georeport_v2_reads_and_writes, georeport);

fn text(fr: &str) -> Option<LocalizedText> {
    Some(LocalizedText {
        fr: fr.into(),
        ar: format!("{fr} (ar)"),
        ..Default::default()
    })
}

/// GET `path` (under /open311/v2) in French: (status, content type, body).
async fn get(stack: &TestStack, path: &str) -> (u16, String, String) {
    let url = format!("{}/open311/v2/{path}", stack.http_url());
    let (status, content_type, body) = send(
        "GET",
        &url,
        &[("accept-language", "fr-MA,fr;q=0.9".to_string())],
        String::new(),
    )
    .await;
    (
        status,
        content_type,
        String::from_utf8_lossy(&body).to_string(),
    )
}

async fn get_json(stack: &TestStack, path: &str) -> (u16, Value) {
    let (status, content_type, body) = get(stack, path).await;
    assert!(
        content_type.starts_with("application/json"),
        "{path}: {content_type}"
    );
    (status, serde_json::from_str(&body).expect("JSON"))
}

/// Checks the spec's error array: one error whose code is the status.
fn assert_error(status: u16, body: &Value, expected: u16) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body[0]["code"], expected, "{body}");
    assert!(
        body[0]["description"]
            .as_str()
            .is_some_and(|d| !d.is_empty())
    );
}

async fn georeport(backend: Backend) {
    let Some(stack) = jamaa_tests::spawn_stack(backend).await else {
        return;
    };
    let (_, admin) = stack.create_commune("OTL", 3).await;
    let (_, citizen) = stack.register_citizen("OTL", "Yassine", Language::Fr).await;
    let pothole = stack
        .requests()
        .create_service(authorized(
            requests::CreateServiceRequest {
                service: Some(requests::ServiceDefinition {
                    code: "pothole".into(),
                    name: text("Nid-de-poule"),
                    description: text("Un trou dans la chaussée"),
                    kind: requests::ServiceKind::IncidentReport as i32,
                    channel: requests::ServiceChannel::OnlineAndDesk as i32,
                    deadline_policy: Some(requests::DeadlinePolicy {
                        unit: requests::DeadlineUnit::WorkingDays as i32,
                        days: 10,
                        ..Default::default()
                    }),
                    attributes: vec![
                        requests::ServiceAttribute {
                            code: "depth_cm".into(),
                            datatype: requests::AttributeDatatype::Number as i32,
                            required: false,
                            order: 2,
                            description: text("Profondeur"),
                            values: vec![],
                        },
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
                                    name: text(&format!("{key} <&>")),
                                })
                                .collect(),
                        },
                    ],
                    ..Default::default()
                }),
            },
            &admin,
        ))
        .await
        .expect("pothole")
        .into_inner()
        .service
        .expect("service");
    let certificate = stack
        .requests()
        .create_service(authorized(
            requests::CreateServiceRequest {
                service: Some(requests::ServiceDefinition {
                    code: "birth-certificate".into(),
                    name: text("Acte de naissance"),
                    kind: requests::ServiceKind::AdministrativeAct as i32,
                    channel: requests::ServiceChannel::OnlineAndDesk as i32,
                    ..Default::default()
                }),
            },
            &admin,
        ))
        .await
        .expect("certificate")
        .into_inner()
        .service
        .expect("service");
    let submit = |service_id: String, description: &str, location: Option<GeoPoint>| {
        let attributes = if service_id == pothole.id {
            [("size".to_string(), "large".to_string())].into()
        } else {
            Default::default()
        };
        let request = requests::SubmitRequestRequest {
            request_id: uuid::Uuid::now_v7().to_string(),
            service_id,
            description: description.into(),
            attributes,
            location,
            address: "Avenue Hassan II".into(),
            ..Default::default()
        };
        let mut client = stack.requests();
        let token = citizen.clone();
        async move {
            client
                .submit_request(authorized(request, &token))
                .await
                .expect("submitted")
                .into_inner()
                .request
                .expect("request")
        }
    };
    let hole = submit(
        pothole.id.clone(),
        "Un trou profond devant l'école",
        Some(GeoPoint {
            latitude: 34.02,
            longitude: -6.83,
        }),
    )
    .await;
    let private = submit(certificate.id.clone(), "Pour mon fils né le 2 mai", None).await;
    // The pothole is repaired: closed, with a public note.
    let mut etag = hole.etag.clone();
    for (status, note) in [
        (requests::RequestStatus::Received, "Vu"),
        (requests::RequestStatus::InProgress, "L'équipe est en route"),
        (requests::RequestStatus::Resolved, "Réparé le 3 décembre"),
    ] {
        etag = stack
            .requests()
            .change_request_status(authorized(
                requests::ChangeRequestStatusRequest {
                    id: hole.id.clone(),
                    status: status as i32,
                    note: note.into(),
                    internal_note: "équipe B".into(),
                    etag: etag.clone(),
                    ..Default::default()
                },
                &admin,
            ))
            .await
            .expect("status changed")
            .into_inner()
            .request
            .expect("request")
            .etag;
    }

    // Discovery, in both formats.
    let (status, discovery) = get_json(&stack, "discovery.json").await;
    assert_eq!(status, 200);
    assert_eq!(
        discovery["endpoints"][0]["specification"],
        "http://wiki.open311.org/GeoReport_v2"
    );
    let (status, content_type, xml) = get(&stack, "discovery.xml").await;
    assert_eq!(status, 200);
    assert!(content_type.starts_with("text/xml"), "{content_type}");
    assert!(xml.starts_with("<?xml"), "{xml}");
    assert!(
        xml.contains(
            "<formats><format>text/xml</format><format>application/json</format></formats>"
        ),
        "{xml}"
    );

    // Services: the incident reports only, in the caller's language.
    let (status, services) = get_json(&stack, "services.json?jurisdiction_id=OTL").await;
    assert_eq!(status, 200);
    let services = services.as_array().expect("an array").clone();
    assert_eq!(services.len(), 1, "{services:?}");
    assert_eq!(services[0]["service_code"], "pothole");
    assert_eq!(services[0]["service_name"], "Nid-de-poule");
    assert_eq!(services[0]["metadata"], true);
    assert_eq!(services[0]["type"], "realtime");
    let (_, _, xml) = get(&stack, "services.xml?jurisdiction_id=otl").await;
    assert!(
        xml.contains("<services><service>") && xml.contains("<service_code>pothole</service_code>"),
        "{xml}"
    );

    // A service definition: attributes in their order, values escaped in XML.
    let (status, definition) = get_json(&stack, "services/pothole.json?jurisdiction_id=OTL").await;
    assert_eq!(status, 200);
    let attributes = definition["attributes"].as_array().expect("attributes");
    assert_eq!(attributes[0]["code"], "size");
    assert_eq!(attributes[0]["datatype"], "singlevaluelist");
    assert_eq!(attributes[0]["required"], true);
    assert_eq!(attributes[0]["variable"], true);
    assert_eq!(attributes[0]["values"][1]["key"], "large");
    assert_eq!(attributes[1]["datatype"], "number");
    let (_, _, xml) = get(&stack, "services/pothole.xml?jurisdiction_id=OTL").await;
    assert!(xml.contains("<service_definition>"), "{xml}");
    assert!(xml.contains("<name>large &lt;&amp;&gt;</name>"), "{xml}");
    let (status, error) = get_json(
        &stack,
        "services/birth-certificate.json?jurisdiction_id=OTL",
    )
    .await;
    assert_error(status, &error, 404);

    // Requests: the pothole, closed with its latest public note; never the certificate.
    let (status, list) = get_json(&stack, "requests.json?jurisdiction_id=OTL").await;
    assert_eq!(status, 200);
    let list = list.as_array().expect("an array").clone();
    assert_eq!(list.len(), 1, "{list:?}");
    let report = &list[0];
    assert_eq!(report["service_request_id"], hole.id.as_str());
    assert_eq!(report["status"], "closed");
    assert_eq!(report["status_notes"], "Réparé le 3 décembre");
    assert_eq!(report["service_code"], "pothole");
    assert_eq!(report["description"], "Un trou profond devant l'école");
    assert_eq!(report["lat"], 34.02);
    assert_eq!(report["long"], -6.83);
    assert_eq!(report["address"], "Avenue Hassan II");
    assert!(
        report["expected_datetime"]
            .as_str()
            .is_some_and(|at| at.ends_with("T23:59:59Z")),
        "{report}"
    );
    let requested = report["requested_datetime"].as_str().expect("requested");
    chrono::DateTime::parse_from_rfc3339(requested).expect("a W3C date-time");
    let body = report.to_string();
    assert!(
        !body.contains("Yassine") && !body.contains("équipe B"),
        "{body}"
    );
    // Filters.
    let (_, open) = get_json(&stack, "requests.json?jurisdiction_id=OTL&status=open").await;
    assert_eq!(open.as_array().map(Vec::len), Some(0));
    let (_, closed) = get_json(&stack, "requests.json?jurisdiction_id=OTL&status=closed").await;
    assert_eq!(closed.as_array().map(Vec::len), Some(1));
    let (_, by_code) = get_json(
        &stack,
        "requests.json?jurisdiction_id=OTL&service_code=birth-certificate",
    )
    .await;
    assert_eq!(by_code.as_array().map(Vec::len), Some(0));
    let (_, by_id) = get_json(
        &stack,
        &format!(
            "requests.json?jurisdiction_id=OTL&service_request_id={},{}",
            hole.id, private.id
        ),
    )
    .await;
    assert_eq!(by_id.as_array().map(Vec::len), Some(1));
    let (_, future) = get_json(
        &stack,
        "requests.json?jurisdiction_id=OTL&start_date=2999-01-01T00:00:00Z",
    )
    .await;
    assert_eq!(future.as_array().map(Vec::len), Some(0));
    let (_, past) = get_json(
        &stack,
        "requests.json?jurisdiction_id=OTL&start_date=2020-01-01T00:00:00Z&end_date=2999-01-01T00:00:00%2B01:00",
    )
    .await;
    assert_eq!(past.as_array().map(Vec::len), Some(1), "{past}");
    let (_, _, xml) = get(&stack, "requests.xml?jurisdiction_id=OTL").await;
    assert!(
        xml.contains("<service_requests><request>")
            && xml.contains(&format!(
                "<service_request_id>{}</service_request_id>",
                hole.id
            ))
            && xml.contains("<status>closed</status>"),
        "{xml}"
    );

    // One request, in both formats; the certificate is not public.
    let (status, one) = get_json(
        &stack,
        &format!("requests/{}.json?jurisdiction_id=OTL", hole.id),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(one[0]["service_request_id"], hole.id.as_str());
    let (status, _, xml) = get(
        &stack,
        &format!("requests/{}.xml?jurisdiction_id=OTL", hole.id),
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        xml.contains("<status_notes>Réparé le 3 décembre</status_notes>"),
        "{xml}"
    );
    let (status, error) = get_json(
        &stack,
        &format!("requests/{}.json?jurisdiction_id=OTL", private.id),
    )
    .await;
    assert_error(status, &error, 404);

    // Errors: the spec's array, in the asked format.
    let (status, error) = get_json(&stack, "services.json").await;
    assert_error(status, &error, 400);
    let (status, error) = get_json(&stack, "services.json?jurisdiction_id=NOPE").await;
    assert_error(status, &error, 404);
    let (status, error) = get_json(&stack, "requests.json?jurisdiction_id=OTL&status=lost").await;
    assert_error(status, &error, 400);
    let (status, error) = get_json(
        &stack,
        "requests.json?jurisdiction_id=OTL&start_date=yesterday",
    )
    .await;
    assert_error(status, &error, 400);
    let (status, error) = get_json(&stack, "requests/not-an-id.json?jurisdiction_id=OTL").await;
    assert_error(status, &error, 400);
    let (status, _, xml) = get(&stack, "services.xml").await;
    assert_eq!(status, 400);
    assert!(
        xml.contains("<errors><error><code>400</code><description>"),
        "{xml}"
    );
    let (status, error) = get_json(&stack, "services.csv?jurisdiction_id=OTL").await;
    assert_error(status, &error, 404);

    // POST: with an API key the commune issued for an application.
    let issued = stack
        .identity()
        .create_api_key(authorized(
            jamaa_proto::identity::v1::CreateApiKeyRequest {
                client_name: "Rabat311".into(),
            },
            &admin,
        ))
        .await
        .expect("an API key")
        .into_inner();
    let key = issued.secret.clone();
    assert!(key.starts_with("jk_"), "{key}");
    let form = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect::<Vec<_>>()
            .join("&")
    };
    let good = |api_key: &str| {
        vec![
            ("api_key", api_key.to_string()),
            ("jurisdiction_id", "OTL".to_string()),
            ("service_code", "pothole".to_string()),
            ("lat", "34.03".to_string()),
            ("long", "-6.84".to_string()),
            ("description", "Une plaque d'égout ouverte".to_string()),
            ("first_name", "Salma".to_string()),
            ("last_name", "Idrissi".to_string()),
            ("phone", "+212 600 000 001".to_string()),
            ("email", "salma@example.org".to_string()),
            ("attribute[size]", "small".to_string()),
            ("attribute[depth_cm]", "12".to_string()),
        ]
    };
    let post = |file: &'static str, body: String| {
        let url = format!("{}/open311/v2/{file}", stack.http_url());
        async move {
            let (status, content_type, bytes) = send(
                "POST",
                &url,
                &[(
                    "content-type",
                    "application/x-www-form-urlencoded".to_string(),
                )],
                body,
            )
            .await;
            (
                status,
                content_type,
                String::from_utf8_lossy(&bytes).to_string(),
            )
        }
    };
    let pairs = good(&key);
    let body = form(
        &pairs
            .iter()
            .map(|(k, v)| (*k, v.as_str()))
            .collect::<Vec<_>>(),
    );
    let (status, content_type, answer) = post("requests.json", body).await;
    assert_eq!(status, 200, "{answer}");
    assert!(content_type.starts_with("application/json"));
    let answer: Value = serde_json::from_str(&answer).expect("JSON");
    let filed_id = answer[0]["service_request_id"]
        .as_str()
        .expect("an id")
        .to_string();
    assert!(
        answer[0]["service_notice"]
            .as_str()
            .is_some_and(|code| code.starts_with("OTL-")),
        "{answer}"
    );
    // The id is its own token.
    let (status, token) = get_json(
        &stack,
        &format!("tokens/{filed_id}.json?jurisdiction_id=OTL"),
    )
    .await;
    assert_eq!(status, 200, "{token}");
    assert_eq!(token[0]["service_request_id"], filed_id.as_str());
    assert_eq!(token[0]["token"], filed_id.as_str());
    let (status, _, xml) = get(
        &stack,
        &format!("tokens/{filed_id}.xml?jurisdiction_id=OTL"),
    )
    .await;
    assert_eq!(status, 200);
    assert!(xml.contains(&format!("<token>{filed_id}</token>")), "{xml}");
    let (status, error) = get_json(
        &stack,
        &format!("tokens/{}.json?jurisdiction_id=OTL", uuid::Uuid::now_v7()),
    )
    .await;
    assert_error(status, &error, 404);
    // The report is public at once, with its attributes checked and kept off the public view.
    let (status, one) = get_json(
        &stack,
        &format!("requests/{filed_id}.json?jurisdiction_id=OTL"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(one[0]["status"], "open");
    assert_eq!(one[0]["description"], "Une plaque d'égout ouverte");
    assert!(!one.to_string().contains("Idrissi"), "{one}");
    // Staff see who reported it, and how to reach them.
    let seen = stack
        .requests()
        .get_request(authorized(
            requests::GetRequestRequest {
                id: filed_id.clone(),
            },
            &admin,
        ))
        .await
        .expect("staff read it")
        .into_inner()
        .request
        .expect("request");
    let walk_in = seen.walk_in.expect("the reporter");
    assert_eq!(walk_in.full_name, "Salma Idrissi");
    assert_eq!(
        seen.attributes.get("size").map(String::as_str),
        Some("small")
    );
    // In XML too.
    let body = form(
        &pairs
            .iter()
            .map(|(k, v)| (*k, v.as_str()))
            .collect::<Vec<_>>(),
    );
    let (status, _, xml) = post("requests.xml", body).await;
    assert_eq!(status, 200, "{xml}");
    assert!(
        xml.contains("<service_requests><request><account_id>"),
        "{xml}"
    );
    // Refusals, in the spec's array.
    let without = |drop: &str| {
        form(
            &pairs
                .iter()
                .filter(|(k, _)| *k != drop)
                .map(|(k, v)| (*k, v.as_str()))
                .collect::<Vec<_>>(),
        )
    };
    for (dropped, expected) in [("api_key", 400), ("phone", 400), ("service_code", 400)] {
        let (status, _, answer) = post("requests.json", without(dropped)).await;
        let answer: Value = serde_json::from_str(&answer).expect("JSON");
        assert_error(status, &answer, expected);
    }
    let no_place = form(
        &pairs
            .iter()
            .filter(|(k, _)| *k != "lat" && *k != "long")
            .map(|(k, v)| (*k, v.as_str()))
            .collect::<Vec<_>>(),
    );
    let (status, _, answer) = post("requests.json", no_place).await;
    assert_error(status, &serde_json::from_str(&answer).expect("JSON"), 400);
    let wrong_key = good("jk_not-a-key");
    let body = form(
        &wrong_key
            .iter()
            .map(|(k, v)| (*k, v.as_str()))
            .collect::<Vec<_>>(),
    );
    let (status, _, answer) = post("requests.json", body).await;
    assert_error(status, &serde_json::from_str(&answer).expect("JSON"), 403);
    let mut missing_answer = pairs.clone();
    missing_answer.retain(|(k, _)| *k != "attribute[size]");
    let body = form(
        &missing_answer
            .iter()
            .map(|(k, v)| (*k, v.as_str()))
            .collect::<Vec<_>>(),
    );
    let (status, _, answer) = post("requests.json", body).await;
    assert_error(status, &serde_json::from_str(&answer).expect("JSON"), 400);
    let mut certificate_report = pairs.clone();
    for pair in &mut certificate_report {
        if pair.0 == "service_code" {
            pair.1 = "birth-certificate".into();
        }
    }
    let body = form(
        &certificate_report
            .iter()
            .map(|(k, v)| (*k, v.as_str()))
            .collect::<Vec<_>>(),
    );
    let (status, _, answer) = post("requests.json", body).await;
    assert_error(status, &serde_json::from_str(&answer).expect("JSON"), 404);
    // Another commune's key is refused here.
    let (_, other_admin) = stack.create_commune("OTM", 3).await;
    let other_key = stack
        .identity()
        .create_api_key(authorized(
            jamaa_proto::identity::v1::CreateApiKeyRequest {
                client_name: "Elsewhere".into(),
            },
            &other_admin,
        ))
        .await
        .expect("a key of OTM")
        .into_inner()
        .secret;
    let body = form(
        &good(&other_key)
            .iter()
            .map(|(k, v)| (*k, v.as_str()))
            .collect::<Vec<_>>(),
    );
    let (status, _, answer) = post("requests.json", body).await;
    assert_error(status, &serde_json::from_str(&answer).expect("JSON"), 403);
    // A revoked key exchanges no more; the application token acts for nothing else.
    let exchanged = stack
        .identity()
        .exchange_api_key(jamaa_proto::identity::v1::ExchangeApiKeyRequest {
            api_key: key.clone(),
        })
        .await
        .expect("exchanged")
        .into_inner();
    assert_eq!(exchanged.commune_code, "OTL");
    let denied = stack
        .requests()
        .list_requests(authorized(
            requests::ListRequestsRequest::default(),
            &exchanged.access_token,
        ))
        .await
        .expect_err("an application lists no requests");
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);
    let key_id = issued.api_key.expect("the key").id;
    stack
        .identity()
        .revoke_api_key(authorized(
            jamaa_proto::identity::v1::RevokeApiKeyRequest { id: key_id },
            &admin,
        ))
        .await
        .expect("revoked");
    let body = form(
        &pairs
            .iter()
            .map(|(k, v)| (*k, v.as_str()))
            .collect::<Vec<_>>(),
    );
    let (status, _, answer) = post("requests.json", body).await;
    assert_error(status, &serde_json::from_str(&answer).expect("JSON"), 403);
    stack.stop().await;
}

/// Percent-encodes a form value (RFC 3986 unreserved characters stay).
fn encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (byte as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}
