//! Service accounts: a service exchanges its own credentials for a token for one target service;
//! only that service's token reaches an internal RPC (contact details) — never a person's token,
//! never a token meant for another service.

use jamaa_proto::identity::v1 as identity;
use jamaa_proto::r#type::v1::Language;
use jamaa_tests::{Backend, TestStack, authorized, error_reason, spawn_stack, token_claims};
use tonic::Code;

crate::on_both_backends!(
    services_call_internal_rpcs_with_their_own_tokens,
    service_accounts
);

const SECRET: &str = "dev-notification-secret-change-me";

async fn service_token(
    stack: &TestStack,
    client_id: &str,
    secret: &str,
    audience: &str,
) -> Result<String, tonic::Status> {
    stack
        .identity()
        .issue_service_token(identity::IssueServiceTokenRequest {
            client_id: client_id.into(),
            client_secret: secret.into(),
            audience: audience.into(),
        })
        .await
        .map(|response| response.into_inner().access_token)
}

async fn contacts(
    stack: &TestStack,
    token: &str,
    user_ids: &[&str],
) -> Result<Vec<identity::ContactDetails>, tonic::Status> {
    stack
        .identity()
        .get_contact_details(authorized(
            identity::GetContactDetailsRequest {
                user_ids: user_ids.iter().map(|id| id.to_string()).collect(),
            },
            token,
        ))
        .await
        .map(|response| response.into_inner().contacts)
}

async fn service_accounts(backend: Backend) {
    let Some(stack) = spawn_stack(backend).await else {
        return;
    };
    let (_, admin) = stack.create_commune("SVC", 3).await;
    let (amina_id, amina) = stack.register_citizen("SVC", "Amina", Language::Fr).await;
    let (karim_id, _) = stack.register_citizen("SVC", "Karim", Language::En).await;

    // Credentials.
    for (client, secret, audience, code) in [
        (
            "notification",
            "wrong-secret",
            "identity",
            Code::Unauthenticated,
        ),
        ("nobody", SECRET, "identity", Code::Unauthenticated),
        ("notification", SECRET, "elsewhere", Code::InvalidArgument),
    ] {
        let refused = service_token(&stack, client, secret, audience)
            .await
            .expect_err(client);
        assert_eq!(refused.code(), code, "{client} {audience}: {refused:?}");
    }
    let token = service_token(&stack, "notification", SECRET, "identity")
        .await
        .expect("a token for identity");
    let claims = token_claims(&token);
    assert_eq!(claims["sub"], "service:notification");
    assert_eq!(claims["aud"], "jamaa:identity");
    assert!(claims["roles"].as_array().is_some_and(Vec::is_empty));

    // The internal RPC: the notification service's token for identity only.
    let found = contacts(
        &stack,
        &token,
        &[&amina_id, &karim_id, &uuid::Uuid::now_v7().to_string()],
    )
    .await
    .expect("contacts");
    assert_eq!(found.len(), 2, "unknown ids are left out");
    let amina_contact = found.iter().find(|c| c.user_id == amina_id).expect("Amina");
    assert_eq!(amina_contact.email, "amina@svc.test");
    assert_eq!(amina_contact.preferred_language, Language::Fr as i32);
    assert!(!amina_contact.email_verified);
    let elsewhere = service_token(&stack, "notification", SECRET, "participation")
        .await
        .expect("a token for participation");
    for (who, token) in [
        ("a citizen", amina.as_str()),
        ("a commune administrator", admin.as_str()),
        ("a token meant for participation", elsewhere.as_str()),
    ] {
        let refused = contacts(&stack, token, &[&amina_id]).await.expect_err(who);
        assert_eq!(refused.code(), Code::PermissionDenied, "{who}: {refused:?}");
    }

    // A service token is no person: person-only calls refuse it.
    let refused = stack
        .identity()
        .create_staff_member(authorized(
            identity::CreateStaffMemberRequest {
                email: "x@svc.test".into(),
                password: "some staff password".into(),
                display_name: "X".into(),
                preferred_language: 0,
                roles: vec![identity::Role::CaseOfficer as i32],
            },
            &token,
        ))
        .await
        .expect_err("a service creating staff");
    assert_eq!(refused.code(), Code::PermissionDenied);

    // Ten wrong secrets lock the client out for a while, the right one included.
    for _ in 0..10 {
        let _ = service_token(&stack, "notification", "guess", "identity").await;
    }
    let locked = service_token(&stack, "notification", SECRET, "identity")
        .await
        .expect_err("locked");
    assert_eq!(error_reason(&locked), "TOO_MANY_ATTEMPTS");
    stack.stop().await;
}
