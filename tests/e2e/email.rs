//! E-mail through a real SMTP server on loopback: a staff invitation reaches the invitee, who
//! accepts it with the code from the mail; a password-reset code reaches a person who cannot sign
//! in; a server that says "try again later" gets the message on a later try, once; a server that
//! says "no such mailbox" (550) ends the delivery as failed at once, never retried.

use jamaa_proto::identity::v1 as identity;
use jamaa_proto::r#type::v1::Language;
use jamaa_testkit::SmtpSink;
use jamaa_tests::{Backend, TestStack, authorized, spawn_stack_with};

crate::on_both_backends!(invitations_and_reset_codes_by_email, email);

/// The word after `label` in `text`.
pub(crate) fn word_after(text: &str, label: &str) -> String {
    text.split(label)
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no {label:?} in {text}"))
        .trim_end_matches(['.', ','])
        .to_string()
}

async fn wait_for_mail(sink: &SmtpSink, address: &str, count: usize) -> Vec<String> {
    jamaa_tests::eventually(std::time::Duration::from_secs(30), "the e-mail", || async {
        let mails = sink.texts_to(address);
        (mails.len() >= count).then_some(mails)
    })
    .await
}

async fn email(backend: Backend) {
    let sink = SmtpSink::start().await.expect("an SMTP server on loopback");
    let options = jamaa_tests::Options {
        extra_env: vec![("JAMAA__NOTIFICATION__EMAIL__SMTP_URL".into(), sink.url())],
        ..Default::default()
    };
    let Some(stack) = spawn_stack_with(backend, options).await else {
        return;
    };
    let (_, admin) = stack.create_commune("EML", 3).await;

    // The first try meets "try again later"; the invitation arrives on a later one.
    sink.refuse_next(1);
    stack
        .identity()
        .invite_staff_member(authorized(
            identity::InviteStaffMemberRequest {
                email: "hind@eml.test".into(),
                display_name: "Hind".into(),
                preferred_language: Language::En as i32,
                roles: vec![identity::RoleGrant {
                    role: identity::Role::CaseOfficer as i32,
                    department_id: String::new(),
                }],
            },
            &admin,
        ))
        .await
        .expect("invited");
    let mails = wait_for_mail(&sink, "hind@eml.test", 1).await;
    let invitation = &mails[0];
    assert!(
        invitation.contains("Subject: Invitation to join your commune's staff"),
        "{invitation}"
    );
    let token = word_after(invitation, "Invitation code: ");
    let accepted = stack
        .identity()
        .accept_invitation(identity::AcceptInvitationRequest {
            token,
            password: "hind's own password".into(),
        })
        .await
        .expect("the code from the mail works")
        .into_inner();
    assert!(accepted.user.is_some());

    // A reset code reaches someone who cannot sign in.
    let (_, _) = stack.register_citizen("EML", "Omar", Language::En).await;
    stack
        .identity()
        .request_password_reset(identity::RequestPasswordResetRequest {
            email: "omar@eml.test".into(),
            ..Default::default()
        })
        .await
        .expect("requested");
    // Sign-up mailed the verification code first; the reset code comes second.
    let mails = wait_for_mail(&sink, "omar@eml.test", 2).await;
    let reset = mails
        .iter()
        .find(|mail| mail.contains("Password reset code"))
        .unwrap_or_else(|| panic!("no reset mail in {mails:?}"));
    let code = word_after(reset, "Your password reset code is ");
    assert_eq!(code.len(), 6, "{reset}");
    stack
        .identity()
        .reset_password(identity::ResetPasswordRequest {
            email: "omar@eml.test".into(),
            code,
            new_password: "omar resets it".into(),
            ..Default::default()
        })
        .await
        .expect("reset with the mailed code");
    stack.login("omar@eml.test", "omar resets it").await;

    // Each message once, retries included.
    let invitations = sink.texts_to("hind@eml.test").len();
    assert_eq!(invitations, 1);
    assert_deliveries_sent(&stack).await;
    assert_secrets_left_the_outbox(&stack).await;

    // A mailbox that does not exist: one try, the delivery failed for good, with the reason.
    sink.reject_recipient("nobody@eml.test");
    invite(&stack, &admin, "nobody@eml.test").await;
    let (status, attempts, error) = jamaa_tests::eventually(
        std::time::Duration::from_secs(30),
        "the failure",
        || async {
            delivery_to(&stack, "nobody@eml.test")
                .await
                .filter(|(status, _, _)| status == "failed")
        },
    )
    .await;
    assert_eq!((status.as_str(), attempts), ("failed", 1));
    assert!(error.contains("550"), "{error}");
    // A temporary failure would be retried 2–2.5 s later: 4 s on, still one try, nothing delivered.
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    let (_, attempts, _) = delivery_to(&stack, "nobody@eml.test")
        .await
        .expect("the delivery");
    assert_eq!(attempts, 1, "a permanent failure is not retried");
    assert_eq!(sink.rejections(), 1);
    assert!(sink.texts_to("nobody@eml.test").is_empty());
    stack.stop().await;
}

async fn invite(stack: &TestStack, admin: &str, email: &str) {
    stack
        .identity()
        .invite_staff_member(authorized(
            identity::InviteStaffMemberRequest {
                email: email.into(),
                display_name: "Nobody".into(),
                preferred_language: Language::Fr as i32,
                roles: vec![identity::RoleGrant {
                    role: identity::Role::CaseOfficer as i32,
                    department_id: String::new(),
                }],
            },
            admin,
        ))
        .await
        .expect("invited");
}

/// Status, attempts and last error of the delivery to `address`, if there is one.
async fn delivery_to(stack: &TestStack, address: &str) -> Option<(String, i32, String)> {
    use sea_orm::{ConnectionTrait, Database, Statement, Value};
    let url = stack.database_url("notification");
    let db = Database::connect(url.as_str())
        .await
        .expect("notification db");
    let backend = db.get_database_backend();
    let sql = match backend {
        sea_orm::DbBackend::Postgres => {
            "SELECT status, attempts, last_error FROM deliveries WHERE address = $1"
        }
        _ => "SELECT status, attempts, last_error FROM deliveries WHERE address = ?",
    };
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [Value::from(address)],
        ))
        .await
        .expect("deliveries")?;
    let status: String = row.try_get("", "status").expect("status");
    let attempts: i32 = row.try_get("", "attempts").expect("attempts");
    let error: Option<String> = row.try_get("", "last_error").expect("last_error");
    Some((status, attempts, error.unwrap_or_default()))
}

/// Once published, the events that carried codes and invitation tokens keep no payload in
/// identity's outbox table.
async fn assert_secrets_left_the_outbox(stack: &TestStack) {
    use sea_orm::{ConnectionTrait, Database, Statement};
    let db = Database::connect(stack.identity_database_url.as_str())
        .await
        .expect("identity db");
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT event_type, payload, sent_at_ms FROM outbox_events",
        ))
        .await
        .expect("outbox");
    let mut secret_rows = 0;
    for row in rows {
        let event_type: String = row.try_get("", "event_type").expect("type");
        let payload: Vec<u8> = row.try_get("", "payload").expect("payload");
        let sent: Option<i64> = row.try_get("", "sent_at_ms").expect("sent");
        if event_type.ends_with("VerificationCodeIssued") || event_type.ends_with("StaffInvited") {
            secret_rows += 1;
            assert!(sent.is_some(), "{event_type} was published");
            assert!(
                payload.is_empty(),
                "{event_type} keeps no payload once published"
            );
        } else {
            assert!(!payload.is_empty(), "{event_type} keeps its payload");
        }
    }
    assert!(secret_rows >= 3, "the invitation and two codes");
}

/// Every delivery in notification's database is `sent`, the invitation after two attempts.
async fn assert_deliveries_sent(stack: &TestStack) {
    use sea_orm::{ConnectionTrait, Database, Statement};
    let url = stack.database_url("notification");
    let db = Database::connect(url.as_str())
        .await
        .expect("notification db");
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT address, status, attempts FROM deliveries",
        ))
        .await
        .expect("deliveries");
    assert!(rows.len() >= 3, "invitation, verification code, reset code");
    for row in rows {
        let address: String = row.try_get("", "address").expect("address");
        let status: String = row.try_get("", "status").expect("status");
        let attempts: i32 = row.try_get("", "attempts").expect("attempts");
        assert_eq!(status, "sent", "{address}");
        if address == "hind@eml.test" {
            assert_eq!(attempts, 2, "refused once, then sent");
        }
    }
}
