//! Phone numbers: a citizen sets a mobile number in any usual form (stored in E.164,
//! unverified), proves it with the one-time code the notification service delivered (here read
//! from the inbox, where it lands beside the SMS), and the notification service reads it with
//! the contact details. Codes wear out, expire and are spent once; a verified number belongs to
//! one account; numbers are in the person's export, gone on removal and erasure, and in no audit
//! entry.

use jamaa_proto::identity::v1 as identity;
use jamaa_proto::r#type::v1::Language;
use jamaa_tests::{Backend, TestStack, authorized, bad_fields, error_reason, spawn_stack};
use sea_orm::{ConnectionTrait, Database, Statement};
use tonic::Code;

use crate::assurance::{a_wrong_code, age_codes, codes_received};

crate::on_both_backends!(a_phone_number_is_set_verified_shared_and_erased, lifecycle);
crate::on_both_backends!(phone_codes_wear_out_expire_and_resend, code_rules);

const AMINA_PHONE: &str = "+212612345678";

async fn set_phone(
    stack: &TestStack,
    token: &str,
    number: &str,
) -> Result<identity::SetPhoneNumberResponse, tonic::Status> {
    stack
        .identity()
        .set_phone_number(authorized(
            identity::SetPhoneNumberRequest {
                phone_number: number.into(),
            },
            token,
        ))
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

async fn me(stack: &TestStack, token: &str) -> identity::User {
    stack
        .identity()
        .get_current_user(authorized(identity::GetCurrentUserRequest {}, token))
        .await
        .expect("me")
        .into_inner()
        .user
        .unwrap_or_default()
}

/// Waits until the caller has received `count` codes in all (sign-up's included) and returns
/// the newest.
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

async fn service_token(stack: &TestStack) -> String {
    stack
        .identity()
        .issue_service_token(identity::IssueServiceTokenRequest {
            client_id: "notification".into(),
            client_secret: "dev-notification-secret-change-me".into(),
            audience: "identity".into(),
        })
        .await
        .expect("a service token")
        .into_inner()
        .access_token
}

async fn contact(stack: &TestStack, service: &str, user_id: &str) -> identity::ContactDetails {
    stack
        .identity()
        .get_contact_details(authorized(
            identity::GetContactDetailsRequest {
                user_ids: vec![user_id.into()],
            },
            service,
        ))
        .await
        .expect("contact details")
        .into_inner()
        .contacts
        .into_iter()
        .next()
        .expect("the person's details")
}

/// The phone number in `user_id`'s row of identity's database.
async fn stored_phone(stack: &TestStack, user_id: &str) -> Option<String> {
    let db = Database::connect(stack.identity_database_url.as_str())
        .await
        .expect("identity database");
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            match db.get_database_backend() {
                sea_orm::DatabaseBackend::Postgres => {
                    "SELECT phone_number, phone_verified_at FROM users WHERE id = $1"
                }
                _ => "SELECT phone_number, phone_verified_at FROM users WHERE id = ?",
            },
            [uuid::Uuid::parse_str(user_id).expect("id").into()],
        ))
        .await
        .expect("the user's row")
        .expect("a row");
    let verified: Option<chrono::DateTime<chrono::Utc>> =
        row.try_get("", "phone_verified_at").expect("verified at");
    let number: Option<String> = row.try_get("", "phone_number").expect("number");
    assert!(
        number.is_some() || verified.is_none(),
        "no number is verified"
    );
    number
}

async fn lifecycle(backend: Backend) {
    let Some(stack) = spawn_stack(backend).await else {
        return;
    };
    let (_, admin) = stack.create_commune("PHN", 3).await;
    let (amina_id, amina) = stack.register_citizen("PHN", "Amina", Language::Fr).await;
    let (sara_id, sara) = stack.register_citizen("PHN", "Sara", Language::Ar).await;
    // Sign-up's e-mail code comes first; the phone codes after it.
    nth_code(&stack, &amina, 1).await;
    nth_code(&stack, &sara, 1).await;

    // Anything but a mobile number is refused, naming the field.
    for bad in [
        "",
        "12345",
        "0523456789",
        "+212 5 23 45 67 89",
        "06 12 34 56 7a",
        "+1234567",
        "612345678",
    ] {
        let refused = set_phone(&stack, &amina, bad).await.expect_err(bad);
        assert_eq!(refused.code(), Code::InvalidArgument, "{bad}: {refused:?}");
        assert_eq!(bad_fields(&refused), ["phone_number"], "{bad}");
    }
    assert!(me(&stack, &amina).await.phone_number.is_empty());

    // A national form is stored in E.164, unverified, and a code is sent to it.
    let set = set_phone(&stack, &amina, "06 12 34 56 78")
        .await
        .expect("a mobile number");
    let user = set.user.unwrap_or_default();
    assert_eq!(user.phone_number, AMINA_PHONE);
    assert!(!user.phone_verified);
    let expiry = set.code_expire_time.expect("a code was sent").seconds;
    let minutes = (expiry - chrono::Utc::now().timestamp()) as f64 / 60.0;
    assert!((9.0..=10.1).contains(&minutes), "{minutes} minutes");
    let service = service_token(&stack).await;
    let details = contact(&stack, &service, &amina_id).await;
    assert_eq!(details.phone_number, AMINA_PHONE);
    assert!(!details.phone_verified);

    let code = nth_code(&stack, &amina, 2).await;
    let wrong = verify_phone(&stack, &amina, a_wrong_code(&code))
        .await
        .expect_err("a wrong code");
    assert_eq!(wrong.code(), Code::InvalidArgument);
    assert!(wrong.message().contains("4 tries left"), "{wrong:?}");
    let user = verify_phone(&stack, &amina, &code)
        .await
        .expect("the right code");
    assert_eq!(user.phone_number, AMINA_PHONE);
    assert!(user.phone_verified);
    // Proving a phone number does not prove the e-mail address.
    assert!(!user.contact_verified);
    let again = verify_phone(&stack, &amina, &code)
        .await
        .expect_err("verified already");
    assert_eq!(again.code(), Code::FailedPrecondition);
    assert_eq!(error_reason(&again), "ALREADY_VERIFIED");
    // Setting the verified number again changes nothing and sends nothing.
    let same = set_phone(&stack, &amina, "+212 6 12 34 56 78")
        .await
        .expect("the same number");
    assert!(same.code_expire_time.is_none());
    assert!(same.user.unwrap_or_default().phone_verified);

    // Over HTTP, the owner sees the number in full; the notification service reads it.
    let (status, _, body) = stack.http("GET", "/v1/me", Some(&amina), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user"]["phoneNumber"], AMINA_PHONE);
    assert_eq!(body["user"]["phoneVerified"], true);
    let details = contact(&stack, &service, &amina_id).await;
    assert_eq!(details.phone_number, AMINA_PHONE);
    assert!(details.phone_verified);
    let without = contact(&stack, &service, &sara_id).await;
    assert!(without.phone_number.is_empty() && !without.phone_verified);

    // Anyone may type Amina's number, but nobody else can verify it, even with its code; the
    // refusal does not say whose it is, and the spent code does not work twice.
    let set = set_phone(&stack, &sara, "00212612345678")
        .await
        .expect("set, unverified");
    assert_eq!(set.user.unwrap_or_default().phone_number, AMINA_PHONE);
    let sara_code = nth_code(&stack, &sara, 2).await;
    let taken = verify_phone(&stack, &sara, &sara_code)
        .await
        .expect_err("Amina's number");
    assert_eq!(taken.code(), Code::AlreadyExists);
    assert_eq!(error_reason(&taken), "PHONE_NUMBER_TAKEN");
    assert!(
        !taken.message().contains(&amina_id) && !taken.message().contains("amina"),
        "{taken:?}"
    );
    let reused = verify_phone(&stack, &sara, &sara_code)
        .await
        .expect_err("a spent code");
    assert_eq!(error_reason(&reused), "CODE_EXPIRED");
    assert!(!me(&stack, &sara).await.phone_verified);
    assert!(contact(&stack, &service, &amina_id).await.phone_verified);

    // The export holds the number; the audit log records each step, never the number.
    let (status, _, body) = stack
        .http("GET", "/v1/me/personal-data", Some(&amina), None)
        .await;
    assert_eq!(status, 200, "{body}");
    let export: serde_json::Value =
        serde_json::from_str(body["json"].as_str().unwrap_or_default()).expect("JSON");
    assert_eq!(export["account"]["phone_number"], AMINA_PHONE);
    assert!(
        export["account"]["phone_verified_at"].is_string(),
        "{export}"
    );
    let purposes: Vec<&str> = export["one_time_codes"]
        .as_array()
        .map(|all| all.iter().filter_map(|c| c["purpose"].as_str()).collect())
        .unwrap_or_default();
    assert!(purposes.contains(&"phone"), "{purposes:?}");
    let entries = stack
        .identity()
        .list_audit_entries(authorized(
            identity::ListAuditEntriesRequest {
                page_size: 200,
                ..Default::default()
            },
            &admin,
        ))
        .await
        .expect("audit entries")
        .into_inner()
        .entries;
    let outcomes = |action: &str, user_id: &str| -> Vec<String> {
        entries
            .iter()
            .filter(|e| e.action == action && e.target == format!("users/{user_id}"))
            .map(|e| e.outcome.clone())
            .collect()
    };
    assert_eq!(outcomes("phone.set", &amina_id), ["success"]);
    assert_eq!(outcomes("phone.verify", &amina_id), ["success", "failure"]);
    assert_eq!(outcomes("phone.verify", &sara_id), ["failure", "denied"]);
    assert!(!format!("{entries:?}").contains("612345678"));

    // Removed over HTTP: gone for the owner and the notification service, and free again.
    let (status, _, body) = stack
        .http("POST", "/v1/me/phone-number:remove", Some(&amina), None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["user"]["phoneNumber"].is_null(), "{body}");
    let details = contact(&stack, &service, &amina_id).await;
    assert!(details.phone_number.is_empty() && !details.phone_verified);
    assert_eq!(stored_phone(&stack, &amina_id).await, None);
    assert_eq!(
        outcomes_after(&stack, &admin, "phone.remove", &amina_id).await,
        ["success"]
    );
    age_codes(&stack, &sara_id, 2).await;
    let (status, _, body) = stack
        .http(
            "POST",
            "/v1/me/phone-number",
            Some(&sara),
            Some(serde_json::json!({ "phoneNumber": "0612345678" })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let sara_code = nth_code(&stack, &sara, 3).await;
    let (status, _, body) = stack
        .http(
            "POST",
            "/v1/me/phone-number:verify",
            Some(&sara),
            Some(serde_json::json!({ "code": sara_code })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user"]["phoneVerified"], true);

    // Erasure drops the number.
    stack
        .identity()
        .erase_account(authorized(
            identity::EraseAccountRequest {
                password: "citizen-password-1".into(),
            },
            &sara,
        ))
        .await
        .expect("erased");
    assert_eq!(stored_phone(&stack, &sara_id).await, None);
    let details = contact(&stack, &service, &sara_id).await;
    assert!(details.phone_number.is_empty() && !details.phone_verified);
    stack.stop().await;
}

/// The outcomes of the audit entries `action` on `user_id`, newest first.
async fn outcomes_after(
    stack: &TestStack,
    admin: &str,
    action: &str,
    user_id: &str,
) -> Vec<String> {
    stack
        .identity()
        .list_audit_entries(authorized(
            identity::ListAuditEntriesRequest {
                page_size: 200,
                ..Default::default()
            },
            admin,
        ))
        .await
        .expect("audit entries")
        .into_inner()
        .entries
        .into_iter()
        .filter(|e| e.action == action && e.target == format!("users/{user_id}"))
        .map(|e| e.outcome)
        .collect()
}

async fn code_rules(backend: Backend) {
    let Some(stack) = spawn_stack(backend).await else {
        return;
    };
    stack.create_commune("PHC", 3).await;
    let (yassine_id, yassine) = stack.register_citizen("PHC", "Yassine", Language::En).await;
    nth_code(&stack, &yassine, 1).await;
    set_phone(&stack, &yassine, "0712345678")
        .await
        .expect("a number");
    let first = nth_code(&stack, &yassine, 2).await;

    // Five tries in all: four wrong ones say how many are left, the fifth wears the code out,
    // and then even the right code is refused.
    for left in (1..=4).rev() {
        let wrong = verify_phone(&stack, &yassine, a_wrong_code(&first))
            .await
            .expect_err("wrong");
        assert_eq!(wrong.code(), Code::InvalidArgument);
        assert!(
            wrong.message().contains(&format!("{left} tries left")),
            "{wrong:?}"
        );
    }
    let worn = verify_phone(&stack, &yassine, a_wrong_code(&first))
        .await
        .expect_err("fifth");
    assert_eq!(error_reason(&worn), "CODE_EXHAUSTED");
    let worn = verify_phone(&stack, &yassine, &first)
        .await
        .expect_err("worn out");
    assert_eq!(error_reason(&worn), "CODE_EXHAUSTED");

    // At most one code a minute: a new number that soon is refused and changes nothing.
    let soon = set_phone(&stack, &yassine, "+33 6 12 34 56 78")
        .await
        .expect_err("too soon");
    assert_eq!(soon.code(), Code::ResourceExhausted);
    assert_eq!(error_reason(&soon), "CODE_SENT_RECENTLY");
    assert_eq!(me(&stack, &yassine).await.phone_number, "+212712345678");

    // Setting the unverified number again sends a new code; ten minutes later it is dead.
    age_codes(&stack, &yassine_id, 2).await;
    set_phone(&stack, &yassine, "07 12 34 56 78")
        .await
        .expect("a new code");
    let second = nth_code(&stack, &yassine, 3).await;
    age_codes(&stack, &yassine_id, 11).await;
    let expired = verify_phone(&stack, &yassine, &second)
        .await
        .expect_err("expired");
    assert_eq!(error_reason(&expired), "CODE_EXPIRED");

    // A number of another country, in international form, is proved the same way.
    let user = set_phone(&stack, &yassine, "+33 6 12 34 56 78")
        .await
        .expect("a French mobile")
        .user
        .unwrap_or_default();
    assert_eq!(user.phone_number, "+33612345678");
    let third = nth_code(&stack, &yassine, 4).await;
    let user = verify_phone(&stack, &yassine, &third)
        .await
        .expect("the newest code");
    assert!(user.phone_verified);

    // Replacing a verified number: the new one is unverified until its own code comes back.
    age_codes(&stack, &yassine_id, 2).await;
    let user = set_phone(&stack, &yassine, "0698765432")
        .await
        .expect("a replacement")
        .user
        .unwrap_or_default();
    assert_eq!(user.phone_number, "+212698765432");
    assert!(!user.phone_verified);
    let fourth = nth_code(&stack, &yassine, 5).await;

    // Removed: no number to verify, and the code sent to it is dead even once a number is back.
    let removed = stack
        .identity()
        .remove_phone_number(authorized(identity::RemovePhoneNumberRequest {}, &yassine))
        .await
        .expect("removed")
        .into_inner()
        .user
        .unwrap_or_default();
    assert!(removed.phone_number.is_empty() && !removed.phone_verified);
    let none = verify_phone(&stack, &yassine, &fourth)
        .await
        .expect_err("no number");
    assert_eq!(error_reason(&none), "NO_PHONE_NUMBER");
    stack
        .identity()
        .remove_phone_number(authorized(identity::RemovePhoneNumberRequest {}, &yassine))
        .await
        .expect("removing nothing changes nothing");
    age_codes(&stack, &yassine_id, 2).await;
    set_phone(&stack, &yassine, "0698765432")
        .await
        .expect("the number again");
    let fifth = nth_code(&stack, &yassine, 6).await;
    if fifth != fourth {
        let dead = verify_phone(&stack, &yassine, &fourth)
            .await
            .expect_err("the code sent before the removal");
        assert_eq!(dead.code(), Code::InvalidArgument, "{dead:?}");
    }
    assert!(
        verify_phone(&stack, &yassine, &fifth)
            .await
            .expect("the newest code")
            .phone_verified
    );
    stack.stop().await;
}
