//! Every RPC checks who calls and for which commune; bad tokens are refused.

use jamaa_auth::Claims;
use jamaa_proto::identity::v1::Role;
use jamaa_proto::notification::v1 as notification;
use jamaa_proto::servicerequest::v1 as requests;
use jamaa_proto::r#type::v1::Language;
use jamaa_tests::{Backend, TestStack, authorized, spawn_stack};
use sea_orm::{ConnectionTrait, Database, Statement};
use tonic::Code;

crate::on_both_backends!(tenants_and_citizens_are_isolated, isolation);
crate::on_both_backends!(bad_tokens_are_unauthenticated, bad_tokens);

async fn submit(stack: &TestStack, citizen: &str, service_id: &str) -> requests::ServiceRequest {
    stack
        .requests()
        .submit_request(authorized(
            requests::SubmitRequestRequest {
                request_id: uuid::Uuid::now_v7().to_string(),
                service_id: service_id.into(),
                description: "Overflowing bins".into(),
                ..Default::default()
            },
            citizen,
        ))
        .await
        .expect("submit")
        .into_inner()
        .request
        .expect("request")
}

async fn isolation(backend: Backend) {
    let Some(stack) = spawn_stack(backend).await else {
        return;
    };
    let (_, admin_a) = stack.create_commune("AAA", 3).await;
    let (_, admin_b) = stack.create_commune("BBB", 3).await;
    let service_a = stack.create_service(&admin_a, "waste").await.id;
    let service_b = stack.create_service(&admin_b, "waste").await.id;
    let (_, amina) = stack.register_citizen("AAA", "Amina", Language::Fr).await;
    let (_, karim) = stack.register_citizen("AAA", "Karim", Language::Ar).await;
    let (_, badr) = stack.register_citizen("BBB", "Badr", Language::Ar).await;
    let officer_a = stack
        .create_staff(&admin_a, "officer@aaa.test", &[Role::CaseOfficer])
        .await;

    let amina_request = submit(&stack, &amina, &service_a).await;
    let badr_request = submit(&stack, &badr, &service_b).await;

    // No token: UNAUTHENTICATED.
    let anonymous = stack
        .requests()
        .get_request(requests::GetRequestRequest {
            id: amina_request.id.clone(),
        })
        .await
        .expect_err("anonymous read");
    assert_eq!(anonymous.code(), Code::Unauthenticated);

    // A citizen cannot read another citizen's request, even in the same commune.
    let error = stack
        .requests()
        .get_request(authorized(
            requests::GetRequestRequest {
                id: amina_request.id.clone(),
            },
            &karim,
        ))
        .await
        .expect_err("Karim reads Amina's request");
    assert_eq!(error.code(), Code::NotFound);
    let karims = stack
        .requests()
        .list_requests(authorized(requests::ListRequestsRequest::default(), &karim))
        .await
        .expect("list")
        .into_inner();
    assert!(
        karims.requests.is_empty(),
        "Karim sees only his own requests"
    );

    // A citizen cannot file for another commune's service.
    let error = stack
        .requests()
        .submit_request(authorized(
            requests::SubmitRequestRequest {
                request_id: uuid::Uuid::now_v7().to_string(),
                service_id: service_b.clone(),
                description: "x".into(),
                ..Default::default()
            },
            &amina,
        ))
        .await
        .expect_err("filing in another commune");
    assert_eq!(error.code(), Code::NotFound);

    // Staff of commune A cannot read or touch commune B's requests, nor see them listed.
    let error = stack
        .requests()
        .get_request(authorized(
            requests::GetRequestRequest {
                id: badr_request.id.clone(),
            },
            &officer_a,
        ))
        .await
        .expect_err("cross-commune read");
    assert_eq!(error.code(), Code::NotFound);
    let error = stack
        .requests()
        .change_request_status(authorized(
            requests::ChangeRequestStatusRequest {
                id: badr_request.id.clone(),
                status: requests::RequestStatus::Received as i32,
                note: String::new(),
                ..Default::default()
            },
            &officer_a,
        ))
        .await
        .expect_err("cross-commune change");
    assert_eq!(error.code(), Code::NotFound);
    let listed = stack
        .requests()
        .list_requests(authorized(
            requests::ListRequestsRequest::default(),
            &officer_a,
        ))
        .await
        .expect("staff list")
        .into_inner();
    let ids: Vec<&str> = listed.requests.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, [amina_request.id.as_str()]);

    // Citizens do not run the workflow.
    let error = stack
        .requests()
        .change_request_status(authorized(
            requests::ChangeRequestStatusRequest {
                id: amina_request.id.clone(),
                status: requests::RequestStatus::Received as i32,
                note: String::new(),
                ..Default::default()
            },
            &amina,
        ))
        .await
        .expect_err("a citizen changes a status");
    assert_eq!(error.code(), Code::PermissionDenied);

    // Notifications are private: Amina's receipt notification is not Karim's to see or mark.
    let amina_inbox = jamaa_tests::eventually(
        std::time::Duration::from_secs(20),
        "Amina's receipt notification",
        || {
            let stack = &stack;
            let amina = amina.clone();
            async move {
                let inbox = stack
                    .notifications()
                    .list_notifications(authorized(
                        notification::ListNotificationsRequest::default(),
                        &amina,
                    ))
                    .await
                    .ok()?
                    .into_inner();
                inbox
                    .notifications
                    .iter()
                    .any(|n| n.subject.starts_with("requests/"))
                    .then_some(inbox)
            }
        },
    )
    .await;
    let karim_inbox = stack
        .notifications()
        .list_notifications(authorized(
            notification::ListNotificationsRequest::default(),
            &karim,
        ))
        .await
        .expect("Karim's inbox")
        .into_inner();
    // Karim has only his own sign-up code, nothing about Amina's request.
    assert!(
        karim_inbox
            .notifications
            .iter()
            .all(|n| !n.subject.starts_with("requests/")),
        "{karim_inbox:?}"
    );
    let error = stack
        .notifications()
        .mark_notification_read(authorized(
            notification::MarkNotificationReadRequest {
                id: amina_inbox
                    .notifications
                    .iter()
                    .find(|n| n.subject.starts_with("requests/"))
                    .map(|n| n.id.clone())
                    .unwrap_or_default(),
            },
            &karim,
        ))
        .await
        .expect_err("Karim marks Amina's notification");
    assert_eq!(error.code(), Code::NotFound);

    stack.stop().await;
}

async fn bad_tokens(backend: Backend) {
    let Some(stack) = spawn_stack(backend).await else {
        return;
    };
    stack.create_commune("TOK", 3).await;
    let (_, amina) = stack.register_citizen("TOK", "Amina", Language::Fr).await;
    let call = |token: String| {
        let stack = &stack;
        async move {
            stack
                .notifications()
                .list_notifications(authorized(
                    notification::ListNotificationsRequest::default(),
                    &token,
                ))
                .await
        }
    };
    call(amina.clone()).await.expect("the real token works");

    // Read the signing key as only identity has it, to forge validly signed tokens.
    let db = Database::connect(stack.identity_database_url.as_str())
        .await
        .expect("identity db");
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT kid, private_key FROM signing_keys",
        ))
        .await
        .expect("query")
        .expect("a signing key");
    let kid: String = row.try_get("", "kid").expect("kid");
    let private_key: Vec<u8> = row.try_get("", "private_key").expect("key");
    let _ = db.close().await;
    let (_, payload, _) = split(&amina);
    let claims: Claims = serde_json::from_slice(&b64_decode(payload)).expect("claims");

    let sign = |claims: &Claims, key: &[u8], kid: &str| {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
        header.kid = Some(kid.to_string());
        jsonwebtoken::encode(
            &header,
            claims,
            &jsonwebtoken::EncodingKey::from_ed_der(key),
        )
        .expect("sign")
    };
    let now = chrono::Utc::now().timestamp();

    // Control: a token forged with the real key and valid claims is accepted, so the refusals
    // below are about what each one changes.
    call(sign(&claims, &private_key, &kid))
        .await
        .expect("a validly signed token");

    let expired = Claims {
        exp: now - 3600,
        iat: now - 4000,
        ..claims.clone()
    };
    let wrong_audience = Claims {
        aud: "someone-else".into(),
        ..claims.clone()
    };
    let wrong_issuer = Claims {
        iss: "someone-else".into(),
        ..claims.clone()
    };
    let not_yet_valid = Claims {
        nbf: Some(now + 3600),
        iat: now + 3600,
        exp: now + 4000,
        ..claims.clone()
    };
    let without_nbf = Claims {
        nbf: None,
        ..claims.clone()
    };
    let other_key = {
        use ed25519_dalek::pkcs8::EncodePrivateKey;
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).expect("random");
        ed25519_dalek::SigningKey::from_bytes(&seed)
            .to_pkcs8_der()
            .expect("der")
            .as_bytes()
            .to_vec()
    };
    let (header, _, signature) = split(&amina);
    let mut tampered_claims = claims.clone();
    tampered_claims.roles = vec!["commune_admin".into()];
    let tampered = format!(
        "{header}.{}.{signature}",
        b64_encode(&serde_json::to_vec(&tampered_claims).expect("json"))
    );
    let alg_none = format!(
        "{}.{}.",
        b64_encode(format!(r#"{{"alg":"none","typ":"JWT","kid":"{kid}"}}"#).as_bytes()),
        b64_encode(&serde_json::to_vec(&claims).expect("json"))
    );
    let hs256 = {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        header.kid = Some(kid.clone());
        jsonwebtoken::encode(
            &header,
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(b"guess").expect("key"),
        )
        .expect("sign")
    };

    for (what, token) in [
        ("expired", sign(&expired, &private_key, &kid)),
        ("wrong audience", sign(&wrong_audience, &private_key, &kid)),
        ("wrong issuer", sign(&wrong_issuer, &private_key, &kid)),
        ("not yet valid", sign(&not_yet_valid, &private_key, &kid)),
        ("without nbf", sign(&without_nbf, &private_key, &kid)),
        (
            "unknown kid",
            sign(&claims, &private_key, "key-nobody-knows"),
        ),
        ("signed by another key", sign(&claims, &other_key, &kid)),
        ("tampered payload", tampered),
        ("alg none", alg_none),
        ("HS256", hs256),
        ("garbage", "not-a-token".to_string()),
    ] {
        let error = call(token).await.expect_err(what);
        assert_eq!(error.code(), Code::Unauthenticated, "{what}: {error:?}");
    }
    stack.stop().await;
}

fn split(token: &str) -> (&str, &str, &str) {
    let mut parts = token.split('.');
    (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    )
}

fn b64_decode(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .expect("base64")
}

fn b64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Refresh tokens rotate: each is spent once; presenting a spent one again ends every session
/// of its user (a stolen token is detected).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_tokens_rotate_and_reuse_is_detected() {
    use jamaa_proto::identity::v1 as identity;
    let Some(stack) = spawn_stack(Backend::Embedded).await else {
        return;
    };
    stack.create_commune("RFT", 3).await;
    stack.register_citizen("RFT", "Amina", Language::Fr).await;
    let session = stack
        .identity()
        .login(identity::LoginRequest {
            email: "amina@rft.test".into(),
            password: "citizen-password-1".into(),
            ..Default::default()
        })
        .await
        .expect("login")
        .into_inner();
    assert_eq!(session.token_type, "Bearer");
    assert!(session.expires_in_seconds > 0);

    let refresh = |token: String| {
        let stack = &stack;
        async move {
            stack
                .identity()
                .refresh_session(identity::RefreshSessionRequest {
                    refresh_token: token,
                })
                .await
        }
    };
    let renewed = refresh(session.refresh_token.clone())
        .await
        .expect("refresh")
        .into_inner();
    assert_ne!(renewed.refresh_token, session.refresh_token);
    let me = stack
        .identity()
        .get_current_user(authorized(
            identity::GetCurrentUserRequest {},
            &renewed.access_token,
        ))
        .await
        .expect("the new access token works")
        .into_inner()
        .user
        .expect("user");
    assert_eq!(me.email, "amina@rft.test");

    // The first refresh token is spent: using it again fails and revokes the renewed one too.
    let reuse = refresh(session.refresh_token)
        .await
        .expect_err("a spent token");
    assert_eq!(reuse.code(), Code::Unauthenticated);
    let revoked = refresh(renewed.refresh_token)
        .await
        .expect_err("revoked after reuse");
    assert_eq!(revoked.code(), Code::Unauthenticated);
    let unknown = refresh("made-up".into())
        .await
        .expect_err("an unknown token");
    assert_eq!(unknown.code(), Code::Unauthenticated);

    // Wrong passwords and unknown e-mails get the same answer.
    for (email, password) in [
        ("amina@rft.test", "wrong-password-1"),
        ("nobody@rft.test", "citizen-password-1"),
    ] {
        let error = stack
            .identity()
            .login(identity::LoginRequest {
                email: email.into(),
                password: password.into(),
                ..Default::default()
            })
            .await
            .expect_err("bad credentials");
        assert_eq!(error.code(), Code::Unauthenticated);
        assert_eq!(error.message(), "wrong e-mail or password");
    }
    stack.stop().await;
}
