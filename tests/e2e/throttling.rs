//! Sign-in throttling: ten failed sign-ins for an e-mail within five minutes lock it, even with
//! the right password; an unknown e-mail answers exactly like a known one.

use jamaa_proto::identity::v1 as identity;
use jamaa_proto::r#type::v1::Language;
use jamaa_tests::{Backend, spawn_stack};
use tonic::Code;
use tonic_types::StatusExt;

/// What a sign-in attempt answered, comparable across accounts.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    code: Code,
    message: String,
    reason: String,
}

async fn attempt(stack: &jamaa_tests::TestStack, email: &str, password: &str) -> Outcome {
    match stack
        .identity()
        .login(identity::LoginRequest {
            email: email.into(),
            password: password.into(),
            ..Default::default()
        })
        .await
    {
        Ok(_) => Outcome {
            code: Code::Ok,
            message: String::new(),
            reason: String::new(),
        },
        Err(status) => {
            let details = status.get_error_details();
            let reason = jamaa_tests::error_reason(&status);
            // The seconds to wait differ by a second or so between two e-mails; compare the rest.
            let message = status
                .message()
                .split(" in ")
                .next()
                .unwrap_or_default()
                .to_string();
            if status.code() == Code::ResourceExhausted {
                let retry = details.retry_info().and_then(|info| info.retry_delay);
                assert!(
                    retry.is_some_and(|delay| delay.as_secs() >= 1 && delay.as_secs() <= 300),
                    "a lock says when to retry: {retry:?}"
                );
            }
            Outcome {
                code: status.code(),
                message,
                reason,
            }
        }
    }
}

async fn eleven_failures_lock_an_account_and_unknown_accounts_answer_alike(backend: Backend) {
    let Some(stack) = spawn_stack(backend).await else {
        return;
    };
    stack.create_commune("THR", 3).await;
    stack.register_citizen("THR", "Amina", Language::Ar).await;
    stack.register_citizen("THR", "Youssef", Language::Fr).await;
    let known = "amina@thr.test";
    let unknown = "nobody@thr.test";

    for round in 1..=10 {
        let known_outcome = attempt(&stack, known, "wrong-password-1").await;
        let unknown_outcome = attempt(&stack, unknown, "wrong-password-1").await;
        assert_eq!(known_outcome.code, Code::Unauthenticated, "attempt {round}");
        assert_eq!(known_outcome.reason, "WRONG_CREDENTIALS");
        assert_eq!(known_outcome, unknown_outcome, "attempt {round}");
    }

    // The eleventh attempt is refused, even with the right password, for both e-mails alike.
    let locked = attempt(&stack, known, "citizen-password-1").await;
    assert_eq!(locked.code, Code::ResourceExhausted);
    assert_eq!(locked.reason, "TOO_MANY_ATTEMPTS");
    assert_eq!(locked, attempt(&stack, unknown, "citizen-password-1").await);
    // The lock holds whatever the case or spacing of the e-mail.
    assert_eq!(
        attempt(&stack, "  AMINA@thr.test ", "citizen-password-1")
            .await
            .code,
        Code::ResourceExhausted
    );

    // Another account is not affected, and a success clears its own earlier failures.
    let youssef = "youssef@thr.test";
    for _ in 0..9 {
        assert_eq!(
            attempt(&stack, youssef, "wrong-password-1").await.code,
            Code::Unauthenticated
        );
    }
    assert_eq!(
        attempt(&stack, youssef, "citizen-password-1").await.code,
        Code::Ok
    );
    for _ in 0..9 {
        assert_eq!(
            attempt(&stack, youssef, "wrong-password-1").await.code,
            Code::Unauthenticated
        );
    }
    assert_eq!(
        attempt(&stack, youssef, "citizen-password-1").await.code,
        Code::Ok,
        "nine failures after a success do not lock"
    );

    // Over HTTP the lock is a 429 with Retry-After.
    let body = serde_json::json!({"email": known, "password": "citizen-password-1"}).to_string();
    let url = format!("{}/v1/sessions", stack.stack.http_url());
    let (status, headers, _) = jamaa_tests::send_for_headers(
        "POST",
        &url,
        &[("content-type", "application/json".to_string())],
        body,
    )
    .await;
    assert_eq!(status, 429);
    let retry_after: u64 = headers
        .get("retry-after")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse().ok())
        .expect("a Retry-After header in seconds");
    assert!((1..=300).contains(&retry_after), "{retry_after}");
    stack.stop().await;
}

crate::on_both_backends!(
    throttling,
    eleven_failures_lock_an_account_and_unknown_accounts_answer_alike
);

crate::on_both_backends!(
    one_client_address_is_limited_across_accounts,
    address_limits
);

/// Per client address: failures across many e-mails lock the address (even for a right
/// password), and sign-ups are limited; the gateway passes the address, so HTTP clients count
/// the same.
async fn address_limits(backend: Backend) {
    let options = jamaa_tests::Options {
        extra_env: vec![
            (
                "JAMAA__IDENTITY__THROTTLE__FAILURES_PER_5_MINUTES".into(),
                "12".into(),
            ),
            (
                "JAMAA__IDENTITY__THROTTLE__SIGN_UPS_PER_HOUR".into(),
                "2".into(),
            ),
        ],
        ..Default::default()
    };
    let Some(stack) = jamaa_tests::spawn_stack_with(backend, options).await else {
        return;
    };
    stack.create_commune("IPL", 3).await;
    stack.register_citizen("IPL", "Amina", Language::Fr).await;
    stack.register_citizen("IPL", "Karim", Language::Ar).await;
    let third = stack
        .identity()
        .register_citizen(identity::RegisterCitizenRequest {
            commune_code: "IPL".into(),
            email: "third@ipl.test".into(),
            password: "citizen-password-1".into(),
            display_name: "Third".into(),
            preferred_language: Language::Ar as i32,
            ..Default::default()
        })
        .await
        .expect_err("a third sign-up from one address within the hour");
    assert_eq!(third.code(), Code::ResourceExhausted);

    // Twelve failures over twelve e-mails (none reaches the per-account limit of ten)...
    for n in 0..12 {
        let outcome = attempt(&stack, &format!("guess{n}@ipl.test"), "wrong-password").await;
        assert_eq!(outcome.code, Code::Unauthenticated, "attempt {n}");
    }
    // ...lock the address, for a right password too, over gRPC and HTTP alike.
    let locked = attempt(&stack, "amina@ipl.test", "citizen-password-1").await;
    assert_eq!(locked.code, Code::ResourceExhausted, "{locked:?}");
    assert_eq!(locked.reason, "TOO_MANY_ATTEMPTS");
    let (status, headers, _) = jamaa_tests::send_for_headers(
        "POST",
        &format!("{}/v1/sessions", stack.stack.http_url()),
        &[("content-type", "application/json".to_string())],
        serde_json::json!({ "email": "karim@ipl.test", "password": "citizen-password-1" })
            .to_string(),
    )
    .await;
    assert_eq!(status, 429, "{headers:?}");
    assert!(headers.get("retry-after").is_some(), "{headers:?}");
    stack.stop().await;
}
