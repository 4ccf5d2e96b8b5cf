//! The second factor: TOTP enrolment and confirmation, sign-in that then needs a code (each code
//! once), recovery codes (each once), and a commune that requires it of its staff.

use jamaa_proto::identity::v1 as identity;
use jamaa_tests::{Backend, TestStack, authorized, error_reason, spawn_stack, token_claims};
use tonic::Code;

crate::on_both_backends!(staff_sign_in_with_a_second_factor, second_factor);

/// The code an authenticator app with `secret` shows `offset_seconds` from now.
fn code_at(secret: &str, email: &str, offset_seconds: i64) -> String {
    let seed = totp_rs::Secret::try_from_base32(secret).expect("a base32 seed");
    let totp = totp_rs::Builder::new()
        .with_secret(seed.as_ref().to_vec())
        .with_account_name(email)
        .with_issuer(Some("Jamaa"))
        .build()
        .expect("totp");
    let now = chrono::Utc::now().timestamp() + offset_seconds;
    totp.generate(now as u64).to_string()
}

async fn sign_in(
    stack: &TestStack,
    email: &str,
    code: &str,
) -> Result<identity::LoginResponse, tonic::Status> {
    stack
        .identity()
        .login(identity::LoginRequest {
            email: email.into(),
            password: "staff-password-1".into(),
            second_factor_code: code.into(),
            ..Default::default()
        })
        .await
        .map(tonic::Response::into_inner)
}

/// Enrols and confirms an authenticator for the caller; returns the seed and recovery codes.
async fn enrol(stack: &TestStack, token: &str, email: &str) -> (String, Vec<String>) {
    let enrolment = stack
        .identity()
        .enroll_totp(authorized(identity::EnrollTotpRequest {}, token))
        .await
        .expect("enrol")
        .into_inner();
    assert!(
        enrolment.otpauth_uri.starts_with("otpauth://totp/"),
        "{}",
        enrolment.otpauth_uri
    );
    assert!(enrolment.otpauth_uri.contains("issuer=Jamaa"));
    let confirmed = stack
        .identity()
        .confirm_totp(authorized(
            identity::ConfirmTotpRequest {
                code: code_at(&enrolment.secret, email, 0),
            },
            token,
        ))
        .await
        .expect("confirm")
        .into_inner();
    (enrolment.secret, confirmed.recovery_codes)
}

async fn second_factor(backend: Backend) {
    let Some(stack) = spawn_stack(backend).await else {
        return;
    };
    let (_, admin) = stack.create_commune("MFA", 3).await;
    let email = "officer@mfa.test";
    let officer = stack
        .create_staff(&admin, email, &[identity::Role::CaseOfficer])
        .await;
    assert_eq!(token_claims(&officer)["amr"], serde_json::json!(["pwd"]));

    // A wrong first code does not confirm.
    stack
        .identity()
        .enroll_totp(authorized(identity::EnrollTotpRequest {}, &officer))
        .await
        .expect("enrol");
    let wrong = stack
        .identity()
        .confirm_totp(authorized(
            identity::ConfirmTotpRequest {
                code: "000000".into(),
            },
            &officer,
        ))
        .await;
    // (000000 could be the real code once in a million runs.)
    if let Err(wrong) = wrong {
        assert_eq!(error_reason(&wrong), "WRONG_SECOND_FACTOR");
    }
    let (secret, recovery) = enrol(&stack, &officer, email).await;
    assert_eq!(recovery.len(), 10);

    // Sign-in now needs a code after the password.
    let missing = sign_in(&stack, email, "").await.expect_err("no code");
    assert_eq!(error_reason(&missing), "SECOND_FACTOR_REQUIRED");
    let wrong = sign_in(&stack, email, "123456x")
        .await
        .expect_err("garbage");
    assert_eq!(error_reason(&wrong), "WRONG_SECOND_FACTOR");
    // The next step's code (the confirmation spent this step's).
    let code = code_at(&secret, email, 30);
    let session = sign_in(&stack, email, &code).await.expect("with the code");
    assert_eq!(
        token_claims(&session.access_token)["amr"],
        serde_json::json!(["pwd", "otp"])
    );
    // A refreshed session keeps the second factor of its sign-in.
    let refreshed = stack
        .identity()
        .refresh_session(identity::RefreshSessionRequest {
            refresh_token: session.refresh_token.clone(),
        })
        .await
        .expect("refresh")
        .into_inner();
    assert_eq!(
        token_claims(&refreshed.access_token)["amr"],
        serde_json::json!(["pwd", "otp"])
    );
    let replay = sign_in(&stack, email, &code)
        .await
        .expect_err("the same code again");
    assert_eq!(error_reason(&replay), "WRONG_SECOND_FACTOR");
    sign_in(&stack, email, &recovery[0])
        .await
        .expect("a recovery code");
    let spent = sign_in(&stack, email, &recovery[0])
        .await
        .expect_err("a recovery code works once");
    assert_eq!(error_reason(&spent), "WRONG_SECOND_FACTOR");
    let again = stack
        .identity()
        .enroll_totp(authorized(identity::EnrollTotpRequest {}, &officer))
        .await
        .expect_err("enrolled already");
    assert_eq!(error_reason(&again), "ALREADY_ENROLLED");

    // The commune requires a second factor of its staff.
    let updated = stack
        .identity()
        .update_commune(authorized(
            identity::UpdateCommuneRequest {
                commune: Some(identity::Commune {
                    code: "MFA".into(),
                    require_staff_mfa: true,
                    region: "Béni Mellal-Khénifra".into(),
                    ..Default::default()
                }),
                update_mask: Some(jamaa_proto::FieldMask {
                    paths: vec!["require_staff_mfa".into(), "region".into()],
                }),
            },
            &admin,
        ))
        .await
        .expect("updated")
        .into_inner()
        .commune
        .unwrap_or_default();
    assert!(updated.require_staff_mfa);
    assert_eq!(updated.region, "Béni Mellal-Khénifra");
    let clerk_email = "clerk@mfa.test";
    let clerk = stack
        .create_staff(&admin, clerk_email, &[identity::Role::ReceptionAgent])
        .await;
    assert_eq!(token_claims(&clerk)["mfa_enrolment_required"], true);
    let held_back = stack
        .identity()
        .list_audit_entries(authorized(
            identity::ListAuditEntriesRequest::default(),
            &clerk,
        ))
        .await
        .expect_err("staff calls wait for enrolment");
    assert_eq!(held_back.code(), Code::PermissionDenied);
    let held_back = stack
        .identity()
        .verify_in_person(authorized(
            identity::VerifyInPersonRequest {
                user_id: uuid::Uuid::now_v7().to_string(),
                national_id: "AB123".into(),
            },
            &clerk,
        ))
        .await
        .expect_err("staff calls wait for enrolment");
    assert_eq!(error_reason(&held_back), "SECOND_FACTOR_ENROLMENT_REQUIRED");
    let (clerk_secret, _) = enrol(&stack, &clerk, clerk_email).await;
    let clerk = sign_in(
        &stack,
        clerk_email,
        &code_at(&clerk_secret, clerk_email, 30),
    )
    .await
    .expect("enrolled");
    assert!(token_claims(&clerk.access_token)["mfa_enrolment_required"].is_null());
    stack
        .identity()
        .list_audit_entries(authorized(
            identity::ListAuditEntriesRequest::default(),
            &clerk.access_token,
        ))
        .await
        .expect("now a staff call works");

    // A lost phone: the administrator removes the clerk's factor; the clerk's sessions end and
    // the commune's policy holds their staff calls again until they enrol anew.
    let clerk_id = token_claims(&clerk.access_token)["sub"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let reset = |token: String| {
        let stack = &stack;
        let clerk_id = clerk_id.clone();
        async move {
            stack
                .identity()
                .reset_second_factor(authorized(
                    identity::ResetSecondFactorRequest { user_id: clerk_id },
                    &token,
                ))
                .await
        }
    };
    let refused = reset(session.access_token.clone())
        .await
        .expect_err("an officer");
    assert_eq!(refused.code(), Code::PermissionDenied);
    reset(admin.clone())
        .await
        .expect("the administrator resets it");
    let ended = stack
        .identity()
        .refresh_session(identity::RefreshSessionRequest {
            refresh_token: clerk.refresh_token.clone(),
        })
        .await
        .expect_err("the clerk's sessions ended");
    assert_eq!(error_reason(&ended), "BAD_REFRESH_TOKEN");
    let again = sign_in(&stack, clerk_email, "")
        .await
        .expect("the password alone");
    assert_eq!(
        token_claims(&again.access_token)["mfa_enrolment_required"],
        true
    );

    // Only the commune's administrators (or the platform's) edit it.
    let refused = stack
        .identity()
        .update_commune(authorized(
            identity::UpdateCommuneRequest {
                commune: Some(identity::Commune {
                    code: "MFA".into(),
                    ..Default::default()
                }),
                update_mask: Some(jamaa_proto::FieldMask {
                    paths: vec!["region".into()],
                }),
            },
            &session.access_token,
        ))
        .await
        .expect_err("an officer");
    assert_eq!(refused.code(), Code::PermissionDenied);
    stack.stop().await;
}
