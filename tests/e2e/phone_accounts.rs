//! Accounts that sign up, sign in and reset their password with a mobile phone number instead
//! of an e-mail: the sign-up's code comes by SMS (read here from the inbox, where it lands
//! beside the SMS), proving the number makes the account contact-verified, the number signs in
//! in any national form, is throttled like an e-mail, resets the password (every session ends),
//! and a taken number is answered like a free one.

use jamaa_proto::identity::v1 as identity;
use jamaa_proto::r#type::v1::Language;
use jamaa_tests::{
    Backend, TestStack, authorized, bad_fields, error_reason, spawn_stack, token_claims,
};
use tonic::Code;

use crate::assurance::{a_wrong_code, codes_received};

crate::on_both_backends!(a_citizen_signs_up_and_in_with_a_phone_number, sign_up);
crate::on_both_backends!(a_taken_number_signs_up_like_a_free_one, taken);
crate::on_both_backends!(
    phone_sign_ins_are_throttled_and_reset_by_sms,
    sign_in_and_reset
);

async fn register(
    stack: &TestStack,
    commune: &str,
    email: &str,
    phone_number: &str,
    password: &str,
    name: &str,
) -> Result<identity::User, tonic::Status> {
    stack
        .identity()
        .register_citizen(identity::RegisterCitizenRequest {
            commune_code: commune.into(),
            email: email.into(),
            phone_number: phone_number.into(),
            password: password.into(),
            display_name: name.into(),
            preferred_language: Language::Fr as i32,
            ..Default::default()
        })
        .await
        .map(|response| response.into_inner().user.unwrap_or_default())
}

async fn login_by_phone(
    stack: &TestStack,
    number: &str,
    password: &str,
) -> Result<identity::LoginResponse, tonic::Status> {
    stack
        .identity()
        .login(identity::LoginRequest {
            phone_number: number.into(),
            password: password.into(),
            ..Default::default()
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn verify_phone(
    stack: &TestStack,
    token: &str,
    code: &str,
) -> Result<identity::User, tonic::Status> {
    stack
        .identity()
        .verify_phone_number(authorized(
            identity::VerifyPhoneNumberRequest { code: code.into() },
            token,
        ))
        .await
        .map(|response| response.into_inner().user.unwrap_or_default())
}

/// Waits until the caller has received `count` codes in all and returns the newest.
async fn nth_code(stack: &TestStack, token: &str, count: usize) -> String {
    jamaa_tests::eventually(
        std::time::Duration::from_secs(30),
        &format!("code number {count}"),
        || async {
            let codes = codes_received(stack, token).await;
            (codes.len() == count).then(|| codes[count - 1].clone())
        },
    )
    .await
}

/// Signs up `name` with `number` (and the citizens' test password), signs in with it and proves
/// it with the sign-up's code; returns (user id, a token made after the proof).
async fn phone_citizen(
    stack: &TestStack,
    commune: &str,
    number: &str,
    name: &str,
) -> (String, String) {
    let user = register(stack, commune, "", number, "citizen-password-1", name)
        .await
        .expect("a phone sign-up");
    let token = login_by_phone(stack, number, "citizen-password-1")
        .await
        .expect("signed in by phone")
        .access_token;
    let code = nth_code(stack, &token, 1).await;
    verify_phone(stack, &token, &code)
        .await
        .expect("the sign-up's code");
    let token = login_by_phone(stack, number, "citizen-password-1")
        .await
        .expect("signed in again")
        .access_token;
    (user.id, token)
}

async fn sign_up(backend: Backend) {
    let Some(stack) = spawn_stack(backend).await else {
        return;
    };
    stack.create_commune("PSU", 3).await;

    // Exactly one of email and phone_number, naming the field(s) otherwise.
    let neither = register(&stack, "PSU", "", "", "citizen-password-1", "Hind")
        .await
        .expect_err("neither");
    assert_eq!(neither.code(), Code::InvalidArgument);
    assert_eq!(bad_fields(&neither), ["email", "phone_number"]);
    let both = register(
        &stack,
        "PSU",
        "hind@psu.test",
        "0611223344",
        "citizen-password-1",
        "Hind",
    )
    .await
    .expect_err("both");
    assert_eq!(both.code(), Code::InvalidArgument);
    assert_eq!(bad_fields(&both), ["phone_number"]);
    let landline = register(
        &stack,
        "PSU",
        "",
        "0523456789",
        "citizen-password-1",
        "Hind",
    )
    .await
    .expect_err("not a mobile");
    assert_eq!(bad_fields(&landline), ["phone_number"]);

    // A national form is stored in E.164, unverified; the account has no e-mail.
    let hind = register(
        &stack,
        "PSU",
        "",
        "06 11 22 33 44",
        "citizen-password-1",
        "Hind",
    )
    .await
    .expect("a phone sign-up");
    assert_eq!(hind.phone_number, "+212611223344");
    assert!(hind.email.is_empty() && !hind.phone_verified && !hind.contact_verified);
    assert_eq!(
        hind.assurance_level,
        identity::AssuranceLevel::Registered as i32
    );

    // The number signs in, unverified, in another form; the level is `registered`.
    let session = login_by_phone(&stack, "+212 6 11 22 33 44", "citizen-password-1")
        .await
        .expect("signed in by phone");
    assert_eq!(session.user.clone().unwrap_or_default().id, hind.id);
    assert_eq!(
        token_claims(&session.access_token)["assurance"],
        "registered"
    );
    let token = session.access_token;

    // No e-mail to prove; the number cannot be removed (it is how the account signs in).
    let no_email = stack
        .identity()
        .send_verification_code(authorized(identity::SendVerificationCodeRequest {}, &token))
        .await
        .expect_err("no e-mail");
    assert_eq!(no_email.code(), Code::FailedPrecondition);
    assert_eq!(error_reason(&no_email), "NO_EMAIL");
    let kept = stack
        .identity()
        .remove_phone_number(authorized(identity::RemovePhoneNumberRequest {}, &token))
        .await
        .expect_err("the sign-in number");
    assert_eq!(kept.code(), Code::FailedPrecondition);
    assert_eq!(error_reason(&kept), "PHONE_IS_SIGN_IN");

    // The sign-up's code, sent by SMS, proves the number: the account is contact-verified.
    let code = nth_code(&stack, &token, 1).await;
    let wrong = verify_phone(&stack, &token, a_wrong_code(&code))
        .await
        .expect_err("a wrong code");
    assert!(wrong.message().contains("4 tries left"), "{wrong:?}");
    let user = verify_phone(&stack, &token, &code)
        .await
        .expect("the right code");
    assert!(user.phone_verified);
    assert_eq!(
        user.assurance_level,
        identity::AssuranceLevel::ContactVerified as i32
    );
    let token = login_by_phone(&stack, "0611223344", "citizen-password-1")
        .await
        .expect("signed in again")
        .access_token;
    assert_eq!(token_claims(&token)["assurance"], "contact_verified");

    // An e-mail account proving a phone number is contact-verified too (at least one way to
    // reach the person proven), and signs in with the verified number as well.
    let (_, sara) = stack.register_citizen("PSU", "Sara", Language::Ar).await;
    nth_code(&stack, &sara, 1).await;
    stack
        .identity()
        .set_phone_number(authorized(
            identity::SetPhoneNumberRequest {
                phone_number: "0622334455".into(),
            },
            &sara,
        ))
        .await
        .expect("a number");
    let sara_code = nth_code(&stack, &sara, 2).await;
    let user = verify_phone(&stack, &sara, &sara_code)
        .await
        .expect("verified");
    assert!(!user.contact_verified, "the e-mail is still unproven");
    assert_eq!(
        user.assurance_level,
        identity::AssuranceLevel::ContactVerified as i32
    );
    let by_phone = login_by_phone(&stack, "+212622334455", "citizen-password-1")
        .await
        .expect("the verified number signs in");
    assert_eq!(by_phone.user.unwrap_or_default().email, "sara@psu.test");
    assert_eq!(
        token_claims(&by_phone.access_token)["assurance"],
        "contact_verified"
    );

    // Over HTTP too.
    let (status, _, body) = stack
        .http(
            "POST",
            "/v1/sessions",
            None,
            Some(serde_json::json!({
                "phoneNumber": "06 11 22 33 44",
                "password": "citizen-password-1",
            })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user"]["phoneNumber"], "+212611223344");
    stack.stop().await;
}

async fn taken(backend: Backend) {
    let Some(stack) = spawn_stack(backend).await else {
        return;
    };
    let (_, admin) = stack.create_commune("PST", 3).await;
    let (amina_id, amina) = phone_citizen(&stack, "PST", "0633445566", "Amina").await;

    // Amina's verified number, typed by someone else, and a free number: answered alike.
    let intruder = register(
        &stack,
        "PST",
        "",
        "+212 6 33 44 55 66",
        "intruder-password-1",
        "Not Amina",
    )
    .await
    .expect("answered like a new sign-up");
    let fresh = register(
        &stack,
        "PST",
        "",
        "0644556677",
        "fresh-password-1",
        "Not Amina",
    )
    .await
    .expect("a new sign-up");
    assert_ne!(intruder.id, amina_id);
    assert!(!intruder.id.is_empty() && intruder.id != fresh.id);
    assert_eq!(intruder.phone_number, "+212633445566");
    let shape = |user: &identity::User| identity::User {
        id: String::new(),
        create_time: None,
        phone_number: String::new(),
        ..user.clone()
    };
    assert_eq!(shape(&intruder), shape(&fresh));

    // Nothing was made: the intruder's password signs nobody in, exactly like an unknown
    // number's; Amina still signs in with hers.
    let refused = login_by_phone(&stack, "0633445566", "intruder-password-1")
        .await
        .expect_err("no account with that password");
    let unknown = login_by_phone(&stack, "0699887766", "intruder-password-1")
        .await
        .expect_err("no account");
    assert_eq!(refused.code(), Code::Unauthenticated);
    assert_eq!(
        (refused.code(), refused.message(), error_reason(&refused)),
        (unknown.code(), unknown.message(), error_reason(&unknown))
    );
    login_by_phone(&stack, "0633445566", "citizen-password-1")
        .await
        .expect("Amina's own password");

    // Amina is told of the attempt.
    jamaa_tests::eventually(
        std::time::Duration::from_secs(30),
        "Amina told of the attempt",
        || async {
            stack
                .inbox(&amina)
                .await
                .into_iter()
                .find(|n| n.event_type.ends_with("SignUpAttempted"))
        },
    )
    .await;

    // A number an account signed up with and has not proven yet is taken the same way.
    let first = register(
        &stack,
        "PST",
        "",
        "0655667788",
        "first-password-1",
        "Yassine",
    )
    .await
    .expect("signed up");
    let second = register(
        &stack,
        "PST",
        "",
        "0655667788",
        "second-password-1",
        "Yassine",
    )
    .await
    .expect("answered like a new sign-up");
    assert_ne!(first.id, second.id);
    assert_eq!(shape(&first), shape(&second));
    let refused = login_by_phone(&stack, "0655667788", "second-password-1")
        .await
        .expect_err("no second account");
    assert_eq!(error_reason(&refused), "WRONG_CREDENTIALS");
    login_by_phone(&stack, "0655667788", "first-password-1")
        .await
        .expect("the first account");

    // The audit log names the accounts by id only, never a number.
    let entries = stack
        .identity()
        .list_audit_entries(authorized(
            identity::ListAuditEntriesRequest {
                page_size: 500,
                ..Default::default()
            },
            &admin,
        ))
        .await
        .expect("audit entries")
        .into_inner()
        .entries;
    assert!(
        entries
            .iter()
            .any(|e| e.action == "user.create" && e.outcome == "denied"),
        "the taken sign-ups are audited"
    );
    let log = format!("{entries:?}");
    for digits in ["633445566", "644556677", "655667788", "Amina", "Yassine"] {
        assert!(!log.contains(digits), "{digits} in the audit log");
    }
    stack.stop().await;
}

async fn sign_in_and_reset(backend: Backend) {
    let Some(stack) = spawn_stack(backend).await else {
        return;
    };
    stack.create_commune("PRS", 3).await;
    let (_, hind) = phone_citizen(&stack, "PRS", "0677889900", "Hind").await;
    let session = login_by_phone(&stack, "0677889900", "citizen-password-1")
        .await
        .expect("a session");

    // Ten wrong passwords, in any form of the number, lock it; an unknown number answers alike.
    let outcome = |result: Result<identity::LoginResponse, tonic::Status>| match result {
        Ok(_) => (Code::Ok, String::new()),
        Err(status) => (status.code(), error_reason(&status)),
    };
    for (round, form) in [
        "0677889900",
        "+212677889900",
        "06 77 88 99 00",
        "00212677889900",
    ]
    .iter()
    .cycle()
    .take(10)
    .enumerate()
    {
        let known = outcome(login_by_phone(&stack, form, "wrong-password-1").await);
        let unknown = outcome(login_by_phone(&stack, "0600000001", "wrong-password-1").await);
        assert_eq!(
            known,
            (Code::Unauthenticated, "WRONG_CREDENTIALS".into()),
            "attempt {round}"
        );
        assert_eq!(known, unknown, "attempt {round}");
    }
    let locked = outcome(login_by_phone(&stack, "0677889900", "citizen-password-1").await);
    assert_eq!(
        locked,
        (Code::ResourceExhausted, "TOO_MANY_ATTEMPTS".into())
    );
    let unknown = outcome(login_by_phone(&stack, "0600000001", "citizen-password-1").await);
    assert_eq!(locked, unknown);

    // A reset asked by number, known or not, answers the same; the code goes by SMS.
    for number in ["+212 6 77 88 99 00", "0600000001"] {
        stack
            .identity()
            .request_password_reset(identity::RequestPasswordResetRequest {
                phone_number: number.into(),
                ..Default::default()
            })
            .await
            .expect("answered");
    }
    let bad = stack
        .identity()
        .request_password_reset(identity::RequestPasswordResetRequest {
            email: "hind@prs.test".into(),
            phone_number: "0677889900".into(),
        })
        .await
        .expect_err("both");
    assert_eq!(bad_fields(&bad), ["phone_number"]);
    let notice = stack
        .wait_for_notification(&hind, "Code de réinitialisation")
        .await;
    let code: String = notice.title.chars().filter(char::is_ascii_digit).collect();
    assert_eq!(code.len(), 6, "{}", notice.title);

    let reset = |number: &'static str, code: String, password: &'static str| {
        let stack = &stack;
        async move {
            stack
                .identity()
                .reset_password(identity::ResetPasswordRequest {
                    phone_number: number.into(),
                    code,
                    new_password: password.into(),
                    ..Default::default()
                })
                .await
        }
    };
    let stranger = reset("0600000001", code.clone(), "reset by sms please")
        .await
        .expect_err("an unknown number");
    assert_eq!(error_reason(&stranger), "CODE_EXPIRED");
    reset("0677889900", code.clone(), "reset by sms please")
        .await
        .expect("reset");
    let again = reset("0677889900", code, "and once more please")
        .await
        .expect_err("the code is spent");
    assert_eq!(error_reason(&again), "CODE_EXPIRED");

    // Every session ended; the reset lifted the lock; the new password signs in by phone.
    let ended = stack
        .identity()
        .refresh_session(identity::RefreshSessionRequest {
            refresh_token: session.refresh_token,
        })
        .await
        .expect_err("sessions end on reset");
    assert_eq!(error_reason(&ended), "BAD_REFRESH_TOKEN");
    let old = login_by_phone(&stack, "0677889900", "citizen-password-1")
        .await
        .expect_err("the old password");
    assert_eq!(error_reason(&old), "WRONG_CREDENTIALS");
    login_by_phone(&stack, "+212677889900", "reset by sms please")
        .await
        .expect("the new password");
    stack.stop().await;
}
