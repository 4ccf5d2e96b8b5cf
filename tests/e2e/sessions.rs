//! Logout ends one session: its refresh token is refused afterwards, the user's other sessions
//! stay open, and a repeated or unknown logout changes nothing.

use jamaa_proto::identity::v1 as identity;
use jamaa_proto::r#type::v1::Language;
use jamaa_tests::{Backend, spawn_stack};
use tonic::Code;

crate::on_both_backends!(logout_ends_one_session, logout);

async fn sign_in(stack: &jamaa_tests::TestStack, email: &str) -> identity::LoginResponse {
    stack
        .identity()
        .login(identity::LoginRequest {
            email: email.into(),
            password: "citizen-password-1".into(),
            ..Default::default()
        })
        .await
        .expect("login")
        .into_inner()
}

async fn refresh(
    stack: &jamaa_tests::TestStack,
    token: &str,
) -> Result<identity::RefreshSessionResponse, tonic::Status> {
    stack
        .identity()
        .refresh_session(identity::RefreshSessionRequest {
            refresh_token: token.into(),
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn logout(backend: Backend) {
    let Some(stack) = spawn_stack(backend).await else {
        return;
    };
    stack.create_commune("SES", 3).await;
    stack.register_citizen("SES", "Salma", Language::Fr).await;
    let phone = sign_in(&stack, "salma@ses.test").await;
    let laptop = sign_in(&stack, "salma@ses.test").await;

    // The phone's session rotates once, then logs out with its current token.
    let rotated = refresh(&stack, &phone.refresh_token)
        .await
        .expect("refresh");
    stack
        .identity()
        .logout(identity::LogoutRequest {
            refresh_token: rotated.refresh_token.clone(),
        })
        .await
        .expect("logout");
    let refused = refresh(&stack, &rotated.refresh_token)
        .await
        .expect_err("a logged-out session cannot be refreshed");
    assert_eq!(refused.code(), Code::Unauthenticated);
    assert_eq!(jamaa_tests::error_reason(&refused), "BAD_REFRESH_TOKEN");

    // The laptop's session is untouched: logging out one device is not reuse of a token.
    let laptop_next = refresh(&stack, &laptop.refresh_token)
        .await
        .expect("the other session still refreshes");

    // Logging out again, or with a token nobody issued, answers the same and changes nothing.
    for token in [rotated.refresh_token.as_str(), "never-issued-token"] {
        stack
            .identity()
            .logout(identity::LogoutRequest {
                refresh_token: token.into(),
            })
            .await
            .expect("logout is idempotent");
    }
    let empty = stack
        .identity()
        .logout(identity::LogoutRequest {
            refresh_token: String::new(),
        })
        .await
        .expect_err("a token is required");
    assert_eq!(empty.code(), Code::InvalidArgument);

    // Through the gateway.
    let (status, _, _) = stack
        .http(
            "POST",
            "/v1/sessions/logout",
            None,
            Some(serde_json::json!({"refreshToken": laptop_next.refresh_token})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        refresh(&stack, &laptop_next.refresh_token)
            .await
            .expect_err("logged out over HTTP")
            .code(),
        Code::Unauthenticated
    );
    stack.stop().await;
}

crate::on_both_backends!(a_disabled_account_loses_every_session, disabled_accounts);

async fn disabled_accounts(backend: Backend) {
    let Some(stack) = spawn_stack(backend).await else {
        return;
    };
    let (_, admin) = stack.create_commune("DIS", 3).await;
    let (_, other_admin) = stack.create_commune("OTH", 3).await;
    let (karim_id, karim_token) = stack.register_citizen("DIS", "Karim", Language::Ar).await;
    let session = sign_in(&stack, "karim@dis.test").await;
    let clerk = stack
        .create_staff(&admin, "clerk@dis.test", &[identity::Role::CaseOfficer])
        .await;
    let disable = |token: String, user_id: String| {
        let stack = &stack;
        async move {
            stack
                .identity()
                .disable_user(jamaa_tests::authorized(
                    identity::DisableUserRequest { user_id },
                    &token,
                ))
                .await
        }
    };

    // Who may not: the citizen, staff without the admin role, another commune's admin (to whom
    // the account does not exist), anyone without a token; and nobody disables themselves.
    let denied = disable(karim_token.clone(), karim_id.clone()).await;
    assert_eq!(denied.expect_err("citizen").code(), Code::PermissionDenied);
    let denied = disable(clerk.clone(), karim_id.clone()).await;
    assert_eq!(denied.expect_err("clerk").code(), Code::PermissionDenied);
    let hidden = disable(other_admin.clone(), karim_id.clone()).await;
    assert_eq!(hidden.expect_err("other commune").code(), Code::NotFound);
    let anonymous = stack
        .identity()
        .disable_user(identity::DisableUserRequest {
            user_id: karim_id.clone(),
        })
        .await;
    assert_eq!(
        anonymous.expect_err("anonymous").code(),
        Code::Unauthenticated
    );
    let bad_id = disable(admin.clone(), "not-a-uuid".into()).await;
    assert_eq!(bad_id.expect_err("bad id").code(), Code::InvalidArgument);
    assert!(
        refresh(&stack, &session.refresh_token).await.is_ok(),
        "nothing was disabled by the refused calls"
    );

    // The commune's admin disables Karim: every session ends, sign-in is refused.
    let session = sign_in(&stack, "karim@dis.test").await;
    let disabled = disable(admin.clone(), karim_id.clone())
        .await
        .expect("the commune admin disables a citizen of the commune")
        .into_inner()
        .user
        .expect("user");
    assert!(disabled.disabled);
    assert_eq!(
        refresh(&stack, &session.refresh_token)
            .await
            .expect_err("sessions end")
            .code(),
        Code::Unauthenticated
    );
    let login = stack
        .identity()
        .login(identity::LoginRequest {
            email: "karim@dis.test".into(),
            password: "citizen-password-1".into(),
            ..Default::default()
        })
        .await
        .expect_err("a disabled account cannot sign in");
    assert_eq!(login.code(), Code::Unauthenticated);
    assert_eq!(jamaa_tests::error_reason(&login), "ACCOUNT_DISABLED");
    // Disabling again changes nothing; over HTTP too.
    let (status, _, body) = stack
        .http(
            "POST",
            &format!("/v1/users/{karim_id}/disable"),
            Some(&admin),
            Some(serde_json::json!({})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user"]["disabled"], true);
    stack.stop().await;
}
