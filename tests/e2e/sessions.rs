//! Logout ends one session: its refresh token is refused afterwards, the user's other sessions
//! stay open, and a repeated or unknown logout changes nothing.

use jamaa_proto::identity::v1 as identity;
use jamaa_proto::r#type::v1::Language;
use jamaa_tests::{Backend, spawn_stack};
use tonic::Code;
use tonic_types::StatusExt;

crate::on_both_backends!(logout_ends_one_session, logout);

async fn sign_in(stack: &jamaa_tests::TestStack, email: &str) -> identity::LoginResponse {
    stack
        .identity()
        .login(identity::LoginRequest {
            email: email.into(),
            password: "citizen-password-1".into(),
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
    assert_eq!(
        refused
            .get_error_details()
            .error_info()
            .map(|info| info.reason.clone()),
        Some("BAD_REFRESH_TOKEN".to_string())
    );

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
