//! Assurance levels: a citizen signs up (registered), proves their e-mail address with the
//! one-time code the notification service delivered (contact verified), then has their national
//! ID card checked at the desk (verified in person). Each level reaches the access token. The CIN
//! is answered only masked and is stored nowhere in clear.

use jamaa_proto::identity::v1 as identity;
use jamaa_proto::r#type::v1::Language;
use jamaa_tests::{Backend, TestStack, authorized, error_reason, spawn_stack, token_claims};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};
use tonic::Code;

crate::on_both_backends!(a_citizen_rises_to_verified_in_person, lifecycle);
crate::on_both_backends!(verification_codes_wear_out_expire_and_resend, code_rules);

const CIN: &str = "BK123456";

/// The six-digit code in `text`.
pub(crate) fn code_in(text: &str) -> String {
    text.as_bytes()
        .windows(6)
        .find(|window| window.iter().all(u8::is_ascii_digit))
        .map(|window| String::from_utf8_lossy(window).into_owned())
        .unwrap_or_else(|| panic!("no code in {text:?}"))
}

/// The codes the caller received so far, oldest first.
pub(crate) async fn codes_received(stack: &TestStack, token: &str) -> Vec<String> {
    let mut notifications: Vec<_> = stack
        .inbox(token)
        .await
        .into_iter()
        .filter(|n| n.event_type.ends_with("VerificationCodeIssued"))
        .collect();
    notifications.sort_by_key(|n| n.create_time.map(|t| (t.seconds, t.nanos)));
    notifications.iter().map(|n| code_in(&n.title)).collect()
}

async fn verify_contact(
    stack: &TestStack,
    token: &str,
    code: &str,
) -> Result<identity::User, tonic::Status> {
    stack
        .identity()
        .verify_contact(authorized(
            identity::VerifyContactRequest { code: code.into() },
            token,
        ))
        .await
        .map(|response| response.into_inner().user.unwrap_or_default())
}

async fn verify_in_person(
    stack: &TestStack,
    token: &str,
    user_id: &str,
    national_id: &str,
) -> Result<identity::User, tonic::Status> {
    stack
        .identity()
        .verify_in_person(authorized(
            identity::VerifyInPersonRequest {
                user_id: user_id.into(),
                national_id: national_id.into(),
            },
            token,
        ))
        .await
        .map(|response| response.into_inner().user.unwrap_or_default())
}

pub(crate) fn a_wrong_code(right: &str) -> &'static str {
    if right == "000000" {
        "111111"
    } else {
        "000000"
    }
}

async fn lifecycle(backend: Backend) {
    let Some(stack) = spawn_stack(backend).await else {
        return;
    };
    let (_, admin) = stack.create_commune("ASR", 3).await;
    let (_, other_admin) = stack.create_commune("ASO", 3).await;
    let (amina_id, amina) = stack.register_citizen("ASR", "Amina", Language::Fr).await;
    assert_eq!(token_claims(&amina)["assurance"], "registered");

    // Sign-up sent a code, in French, through the notification service.
    let notice = stack
        .wait_for_notification(&amina, "Code de vérification")
        .await;
    let code = code_in(&notice.title);
    assert_eq!(notice.language, Language::Fr as i32);

    let wrong = verify_contact(&stack, &amina, a_wrong_code(&code))
        .await
        .expect_err("a wrong code");
    assert_eq!(wrong.code(), Code::InvalidArgument);
    assert!(wrong.message().contains("code"), "{wrong:?}");
    let user = verify_contact(&stack, &amina, &code)
        .await
        .expect("the right code");
    assert!(user.contact_verified);
    assert_eq!(
        user.assurance_level,
        identity::AssuranceLevel::ContactVerified as i32
    );
    let again = verify_contact(&stack, &amina, &code)
        .await
        .expect_err("verified already");
    assert_eq!(error_reason(&again), "ALREADY_VERIFIED");
    let amina = stack.login("amina@asr.test", "citizen-password-1").await;
    assert_eq!(token_claims(&amina)["assurance"], "contact_verified");

    // At the desk: only the commune's reception agents and administrators verify.
    let agent = stack
        .create_staff(&admin, "desk@asr.test", &[identity::Role::ReceptionAgent])
        .await;
    let officer = stack
        .create_staff(&admin, "officer@asr.test", &[identity::Role::CaseOfficer])
        .await;
    let other_agent = stack
        .create_staff(
            &other_admin,
            "desk@aso.test",
            &[identity::Role::ReceptionAgent],
        )
        .await;
    for (who, token, code) in [
        ("the citizen herself", &amina, Code::PermissionDenied),
        ("a case officer", &officer, Code::PermissionDenied),
        ("another commune's agent", &other_agent, Code::NotFound),
    ] {
        let refused = verify_in_person(&stack, token, &amina_id, CIN)
            .await
            .expect_err(who);
        assert_eq!(refused.code(), code, "{who}: {refused:?}");
    }
    let bad = verify_in_person(&stack, &agent, &amina_id, "12-34")
        .await
        .expect_err("not a CIN");
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert!(bad.message().contains("national_id"), "{bad:?}");

    let user = verify_in_person(&stack, &agent, &amina_id, "bk 123456")
        .await
        .expect("verified at the desk");
    assert_eq!(
        user.assurance_level,
        identity::AssuranceLevel::VerifiedInPerson as i32
    );
    assert_eq!(user.national_id_masked, "BK****56");
    let amina = stack.login("amina@asr.test", "citizen-password-1").await;
    assert_eq!(token_claims(&amina)["assurance"], "verified_in_person");
    let (status, _, me) = stack.http("GET", "/v1/me", Some(&amina), None).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["user"]["nationalIdMasked"], "BK****56");
    assert_eq!(
        me["user"]["assuranceLevel"],
        "ASSURANCE_LEVEL_VERIFIED_IN_PERSON"
    );
    assert!(!me.to_string().contains(CIN));

    // One CIN, one account; staff accounts are not verified at the desk.
    let (sara_id, _) = stack.register_citizen("ASR", "Sara", Language::Ar).await;
    let taken = verify_in_person(&stack, &agent, &sara_id, CIN)
        .await
        .expect_err("the CIN is Amina's");
    assert_eq!(taken.code(), Code::AlreadyExists);
    assert_eq!(error_reason(&taken), "NATIONAL_ID_TAKEN");
    assert!(!taken.message().contains(CIN));
    let officer_id = stack
        .identity()
        .get_current_user(authorized(identity::GetCurrentUserRequest {}, &officer))
        .await
        .expect("me")
        .into_inner()
        .user
        .unwrap_or_default()
        .id;
    let staff = verify_in_person(&stack, &agent, &officer_id, "CD765432")
        .await
        .expect_err("staff");
    assert_eq!(error_reason(&staff), "NOT_A_CITIZEN");

    // Nothing in identity's database holds the number in clear.
    assert_not_stored_in_clear(&stack, CIN).await;
    stack.stop().await;
}

/// Fails when `secret` appears in clear in any row of identity's tables (the SQLite files byte by
/// byte; every PostgreSQL row as text, bytea as hex).
async fn assert_not_stored_in_clear(stack: &TestStack, secret: &str) {
    let url = stack.identity_database_url.as_str();
    if let Some(path) = url.strip_prefix("sqlite://") {
        let path = path.split('?').next().unwrap_or(path);
        // In WAL mode the newest pages are in the `-wal` file: read both.
        let mut bytes = std::fs::read(path).unwrap_or_else(|error| panic!("read {path}: {error}"));
        bytes.extend(std::fs::read(format!("{path}-wal")).unwrap_or_default());
        assert!(
            bytes.windows(12).any(|w| w == b"national_ids"),
            "{path} holds identity's tables"
        );
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "{secret} is in {path} in clear"
        );
        return;
    }
    let db = Database::connect(url).await.expect("identity database");
    let hex: String = secret.bytes().map(|b| format!("{b:02x}")).collect();
    for table in tables(&db).await {
        let rows = db
            .query_all_raw(Statement::from_string(
                db.get_database_backend(),
                format!("SELECT t::text AS row FROM \"{table}\" t"),
            ))
            .await
            .expect("rows");
        for row in rows {
            let text: String = row.try_get("", "row").expect("row as text");
            assert!(
                !text.contains(secret) && !text.contains(&hex),
                "{secret} is in table {table} in clear"
            );
        }
    }
}

async fn tables(db: &DatabaseConnection) -> Vec<String> {
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()",
        ))
        .await
        .expect("tables");
    let names: Vec<String> = rows
        .iter()
        .map(|row| row.try_get("", "tablename").expect("name"))
        .collect();
    assert!(names.iter().any(|name| name == "national_ids"), "{names:?}");
    names
}

/// Moves every code of the user back in time by `minutes` (as if that long had passed).
pub(crate) async fn age_codes(stack: &TestStack, user_id: &str, minutes: i64) {
    let db = Database::connect(stack.identity_database_url.as_str())
        .await
        .expect("identity database");
    let codes = db
        .query_all_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            match db.get_database_backend() {
                sea_orm::DatabaseBackend::Postgres => {
                    "SELECT id, created_at, expires_at FROM verification_codes WHERE user_id = $1"
                }
                _ => "SELECT id, created_at, expires_at FROM verification_codes WHERE user_id = ?",
            },
            [uuid::Uuid::parse_str(user_id).expect("id").into()],
        ))
        .await
        .expect("codes");
    let shift = chrono::Duration::minutes(minutes);
    for row in codes {
        let id: uuid::Uuid = row.try_get("", "id").expect("id");
        let created: chrono::DateTime<chrono::Utc> = row.try_get("", "created_at").expect("at");
        let expires: chrono::DateTime<chrono::Utc> = row.try_get("", "expires_at").expect("at");
        db.execute_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            match db.get_database_backend() {
                sea_orm::DatabaseBackend::Postgres => {
                    "UPDATE verification_codes SET created_at = $1, expires_at = $2 WHERE id = $3"
                }
                _ => "UPDATE verification_codes SET created_at = ?, expires_at = ? WHERE id = ?",
            },
            [
                (created - shift).into(),
                (expires - shift).into(),
                id.into(),
            ],
        ))
        .await
        .expect("age a code");
    }
}

async fn send_code(stack: &TestStack, token: &str) -> Result<(), tonic::Status> {
    stack
        .identity()
        .send_verification_code(authorized(identity::SendVerificationCodeRequest {}, token))
        .await
        .map(|_| ())
}

async fn code_rules(backend: Backend) {
    let Some(stack) = spawn_stack(backend).await else {
        return;
    };
    stack.create_commune("ASC", 3).await;
    let (yassine_id, yassine) = stack.register_citizen("ASC", "Yassine", Language::En).await;
    let first = code_in(
        &stack
            .wait_for_notification(&yassine, "Verification code")
            .await
            .title,
    );

    // Five tries in all: four wrong ones say how many are left, the fifth wears the code out,
    // and then even the right code is refused.
    for left in (1..=4).rev() {
        let wrong = verify_contact(&stack, &yassine, a_wrong_code(&first))
            .await
            .expect_err("wrong");
        assert_eq!(wrong.code(), Code::InvalidArgument);
        assert!(
            wrong.message().contains(&format!("{left} tries left")),
            "{wrong:?}"
        );
    }
    let worn = verify_contact(&stack, &yassine, a_wrong_code(&first))
        .await
        .expect_err("fifth");
    assert_eq!(error_reason(&worn), "CODE_EXHAUSTED");
    let worn = verify_contact(&stack, &yassine, &first)
        .await
        .expect_err("worn out");
    assert_eq!(error_reason(&worn), "CODE_EXHAUSTED");

    // A new code at most once a minute.
    let soon = send_code(&stack, &yassine).await.expect_err("too soon");
    assert_eq!(soon.code(), Code::ResourceExhausted);
    assert_eq!(error_reason(&soon), "CODE_SENT_RECENTLY");
    age_codes(&stack, &yassine_id, 2).await;
    send_code(&stack, &yassine).await.expect("a new code");
    let second = jamaa_tests::eventually(
        std::time::Duration::from_secs(30),
        "the second code",
        || async {
            let codes = codes_received(&stack, &yassine).await;
            (codes.len() == 2).then(|| codes[1].clone())
        },
    )
    .await;

    // Ten minutes later the code no longer works.
    age_codes(&stack, &yassine_id, 11).await;
    let expired = verify_contact(&stack, &yassine, &second)
        .await
        .expect_err("expired");
    assert_eq!(error_reason(&expired), "CODE_EXPIRED");

    // A fresh code works; the one before it stopped counting.
    send_code(&stack, &yassine).await.expect("a third code");
    let third = jamaa_tests::eventually(
        std::time::Duration::from_secs(30),
        "the third code",
        || async {
            let codes = codes_received(&stack, &yassine).await;
            (codes.len() == 3).then(|| codes[2].clone())
        },
    )
    .await;
    let user = verify_contact(&stack, &yassine, &third)
        .await
        .expect("the newest code");
    assert!(user.contact_verified);
    stack.stop().await;
}
