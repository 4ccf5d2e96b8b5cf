//! Passwords: the policy (8 to 128 characters, no common password), change (the current one
//! checked, every session ended) and reset by a code the notification service delivered (the
//! same answer for unknown e-mails, every session ended, the code single-use).

use std::time::{Duration, Instant};

use jamaa_proto::identity::v1 as identity;
use jamaa_proto::r#type::v1::Language;
use jamaa_tests::{Backend, TestStack, authorized, error_reason, spawn_stack};
use tonic::Code;

crate::on_both_backends!(password_policy_change_and_reset, passwords);

async fn sign_in(
    stack: &TestStack,
    email: &str,
    password: &str,
) -> Result<identity::LoginResponse, tonic::Status> {
    stack
        .identity()
        .login(identity::LoginRequest {
            email: email.into(),
            password: password.into(),
            ..Default::default()
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn refresh(stack: &TestStack, token: &str) -> Result<(), tonic::Status> {
    stack
        .identity()
        .refresh_session(identity::RefreshSessionRequest {
            refresh_token: token.into(),
        })
        .await
        .map(|_| ())
}

async fn request_reset(stack: &TestStack, email: &str) -> Duration {
    let started = Instant::now();
    stack
        .identity()
        .request_password_reset(identity::RequestPasswordResetRequest {
            email: email.into(),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|status| panic!("reset request for {email}: {status:?}"));
    started.elapsed()
}

async fn reset(
    stack: &TestStack,
    email: &str,
    code: &str,
    new_password: &str,
) -> Result<(), tonic::Status> {
    stack
        .identity()
        .reset_password(identity::ResetPasswordRequest {
            email: email.into(),
            code: code.into(),
            new_password: new_password.into(),
            ..Default::default()
        })
        .await
        .map(|_| ())
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

async fn passwords(backend: Backend) {
    let Some(stack) = spawn_stack(backend).await else {
        return;
    };
    stack.create_commune("PWD", 3).await;

    // The policy, on sign-up.
    for (password, says) in [
        ("short77", "at least 8"),
        ("iloveyou", "common"),
        ("Password123", "common"),
    ] {
        let refused = stack
            .identity()
            .register_citizen(identity::RegisterCitizenRequest {
                commune_code: "PWD".into(),
                email: "weak@pwd.test".into(),
                password: password.into(),
                display_name: "Weak".into(),
                preferred_language: Language::Fr as i32,
                ..Default::default()
            })
            .await
            .expect_err(password);
        assert_eq!(refused.code(), Code::InvalidArgument);
        assert!(
            refused.message().contains("password") && refused.message().contains(says),
            "{password}: {refused:?}"
        );
    }

    // Change: the current password is checked; every session ends.
    let (_, token) = stack.register_citizen("PWD", "Nadia", Language::Fr).await;
    let email = "nadia@pwd.test";
    let laptop = sign_in(&stack, email, "citizen-password-1")
        .await
        .expect("login");
    let change = |current: &'static str, new: &'static str| {
        let stack = &stack;
        let token = token.clone();
        async move {
            stack
                .identity()
                .change_password(authorized(
                    identity::ChangePasswordRequest {
                        current_password: current.into(),
                        new_password: new.into(),
                    },
                    &token,
                ))
                .await
                .map(tonic::Response::into_inner)
        }
    };
    let wrong = change("not-my-password", "a brand new secret")
        .await
        .expect_err("wrong current password");
    assert_eq!(wrong.code(), Code::InvalidArgument);
    assert!(wrong.message().contains("current_password"), "{wrong:?}");
    let same = change("citizen-password-1", "citizen-password-1")
        .await
        .expect_err("the same password");
    assert!(same.message().contains("new_password"), "{same:?}");
    let changed = change("citizen-password-1", "a brand new secret")
        .await
        .expect("changed");
    let refused = refresh(&stack, &laptop.refresh_token)
        .await
        .expect_err("the laptop's session ended");
    assert_eq!(error_reason(&refused), "BAD_REFRESH_TOKEN");
    refresh(&stack, &changed.refresh_token)
        .await
        .expect("the new session works");
    let old = sign_in(&stack, email, "citizen-password-1")
        .await
        .expect_err("the old password");
    assert_eq!(old.code(), Code::Unauthenticated);
    let session = sign_in(&stack, email, "a brand new secret")
        .await
        .expect("the new password");

    // Reset: known and unknown e-mails get the same answer, as fast.
    let mut known = Vec::new();
    let mut unknown = Vec::new();
    for round in 0..5 {
        known.push(request_reset(&stack, email).await);
        unknown.push(request_reset(&stack, &format!("nobody{round}@pwd.test")).await);
    }
    let (known, unknown) = (median(known), median(unknown));
    assert!(
        known.abs_diff(unknown) < Duration::from_millis(50),
        "known {known:?} vs unknown {unknown:?}"
    );
    let notice = stack
        .wait_for_notification(&session.access_token, "Code de réinitialisation")
        .await;
    let code: String = notice.title.chars().filter(char::is_ascii_digit).collect();
    assert_eq!(code.len(), 6, "{}", notice.title);
    let resets = stack
        .inbox(&session.access_token)
        .await
        .into_iter()
        .filter(|n| n.title.contains("réinitialisation"))
        .count();
    assert_eq!(resets, 1, "at most one code a minute");

    let other = if code == "000000" { "111111" } else { "000000" };
    let wrong = reset(&stack, email, other, "reset to this one")
        .await
        .expect_err("a wrong code");
    assert_eq!(wrong.code(), Code::InvalidArgument);
    let stranger = reset(&stack, "nobody0@pwd.test", &code, "reset to this one")
        .await
        .expect_err("an unknown e-mail");
    assert_eq!(error_reason(&stranger), "CODE_EXPIRED");
    let weak = reset(&stack, email, &code, "12345678")
        .await
        .expect_err("a common password");
    assert!(weak.message().contains("new_password"), "{weak:?}");
    reset(&stack, email, &code, "reset to this one")
        .await
        .expect("reset");
    let again = reset(&stack, email, &code, "and once more please")
        .await
        .expect_err("the code is spent");
    assert_eq!(error_reason(&again), "CODE_EXPIRED");
    let ended = refresh(&stack, &session.refresh_token)
        .await
        .expect_err("sessions end on reset");
    assert_eq!(error_reason(&ended), "BAD_REFRESH_TOKEN");
    sign_in(&stack, email, "reset to this one")
        .await
        .expect("the reset password");

    // Through the gateway, an unknown e-mail answers 200 too.
    let (status, _, body) = stack
        .http(
            "POST",
            "/v1/password-resets",
            None,
            Some(serde_json::json!({ "email": "ghost@pwd.test" })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    stack.stop().await;
}
