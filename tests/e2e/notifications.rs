//! The notification service's channels, preferences and limits, against real local servers: an
//! SMS provider on loopback (`jamaa_testkit::SmsProvider`) takes the messages, the gateway takes
//! its delivery receipts.
//!
//! - SMS: a phone code goes to the number it proves; a citizen who chose SMS for requests gets
//!   their request's messages by SMS in their language, once; a provider that answers 503 gets
//!   the message on a later try; a 400 is a permanent failure; a receipt through the gateway
//!   marks a message delivered; the history shows it all, masked, to the person and their
//!   commune's staff only.
//! - Limits: past the per-person hourly limit, SMS wait (queued, not dropped).
//! - Quiet hours: a non-critical SMS waits until they end; a critical one (a code) goes at once.

use jamaa_proto::identity::v1 as identity;
use jamaa_proto::notification::v1 as pb;
use jamaa_proto::servicerequest::v1 as requests;
use jamaa_proto::r#type::v1::Language;
use jamaa_testkit::{SMS_PROVIDER_KEY, SmsProvider};
use jamaa_tests::{Backend, Options, TestStack, authorized, bad_fields, spawn_stack_with};
use tonic::Code;

crate::on_both_backends!(sms_from_code_to_receipt, sms);
crate::on_both_backends!(
    limits_and_quiet_hours_delay_sms_and_critical_ones_go,
    limits
);

const RECEIPT_TOKEN: &str = "receipt-secret-for-tests";

async fn stack_with_sms(
    backend: Backend,
    provider: &SmsProvider,
    more: &[(&str, &str)],
) -> Option<TestStack> {
    let mut extra_env = vec![
        (
            "JAMAA__NOTIFICATION__SMS__ENDPOINT".to_string(),
            provider.url(),
        ),
        (
            "JAMAA__NOTIFICATION__SMS__API_KEY".to_string(),
            SMS_PROVIDER_KEY.to_string(),
        ),
        (
            "JAMAA__NOTIFICATION__SMS__RECEIPT_TOKEN".to_string(),
            RECEIPT_TOKEN.to_string(),
        ),
    ];
    extra_env.extend(more.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    spawn_stack_with(
        backend,
        Options {
            extra_env,
            ..Default::default()
        },
    )
    .await
}

/// The 6-digit code in `text`.
fn code_in(text: &str) -> String {
    text.as_bytes()
        .windows(6)
        .find(|window| window.iter().all(u8::is_ascii_digit))
        .map(|window| String::from_utf8_lossy(window).into_owned())
        .unwrap_or_else(|| panic!("no code in {text:?}"))
}

async fn wait_for_sms(
    provider: &SmsProvider,
    to: &str,
    count: usize,
) -> Vec<jamaa_testkit::ReceivedSms> {
    jamaa_tests::eventually(std::time::Duration::from_secs(40), "the SMS", || async {
        let messages = provider.messages_to(to);
        (messages.len() >= count).then_some(messages)
    })
    .await
}

/// Sets `number` on the account of `token` and proves it with the code the provider got.
async fn prove_phone(
    stack: &TestStack,
    provider: &SmsProvider,
    token: &str,
    number: &str,
    e164: &str,
) {
    let before = provider.messages_to(e164).len();
    stack
        .identity()
        .set_phone_number(authorized(
            identity::SetPhoneNumberRequest {
                phone_number: number.into(),
            },
            token,
        ))
        .await
        .expect("the number is set");
    let messages = wait_for_sms(provider, e164, before + 1).await;
    let code = code_in(&messages[before].text);
    let user = stack
        .identity()
        .verify_phone_number(authorized(
            identity::VerifyPhoneNumberRequest { code },
            token,
        ))
        .await
        .expect("the code from the SMS proves the number")
        .into_inner()
        .user
        .expect("user");
    assert!(user.phone_verified);
}

async fn choose(
    stack: &TestStack,
    token: &str,
    preferences: pb::NotificationPreferences,
    mask: &str,
) -> pb::NotificationPreferences {
    stack
        .notifications()
        .update_notification_preferences(authorized(
            pb::UpdateNotificationPreferencesRequest {
                preferences: Some(preferences),
                update_mask: Some(jamaa_proto::FieldMask {
                    paths: mask.split(',').map(str::to_string).collect(),
                }),
            },
            token,
        ))
        .await
        .expect("preferences saved")
        .into_inner()
        .preferences
        .expect("preferences")
}

fn requests_by_sms() -> pb::NotificationPreferences {
    pb::NotificationPreferences {
        topics: vec![pb::TopicPreference {
            topic: pb::Topic::Requests as i32,
            channels: vec![pb::Channel::Sms as i32],
            daily_digest: false,
        }],
        ..Default::default()
    }
}

async fn deliveries(
    stack: &TestStack,
    token: &str,
    user_id: &str,
) -> Result<Vec<pb::Delivery>, tonic::Status> {
    stack
        .notifications()
        .list_deliveries(authorized(
            pb::ListDeliveriesRequest {
                user_id: user_id.into(),
                page_size: 200,
                ..Default::default()
            },
            token,
        ))
        .await
        .map(|response| response.into_inner().deliveries)
}

async fn submit(stack: &TestStack, token: &str, service_id: &str) -> requests::ServiceRequest {
    stack
        .requests()
        .submit_request(authorized(
            requests::SubmitRequestRequest {
                request_id: uuid::Uuid::now_v7().to_string(),
                service_id: service_id.into(),
                description: "A pothole in front of the school.".into(),
                ..Default::default()
            },
            token,
        ))
        .await
        .expect("submitted")
        .into_inner()
        .request
        .expect("request")
}

async fn move_to(
    stack: &TestStack,
    officer: &str,
    request_id: &str,
    status: requests::RequestStatus,
) {
    stack
        .requests()
        .change_request_status(authorized(
            requests::ChangeRequestStatusRequest {
                id: request_id.into(),
                status: status as i32,
                ..Default::default()
            },
            officer,
        ))
        .await
        .unwrap_or_else(|error| panic!("the officer sets {status:?}: {error:?}"));
}

async fn sms(backend: Backend) {
    let provider = SmsProvider::start()
        .await
        .expect("an SMS provider on loopback");
    let Some(stack) = stack_with_sms(backend, &provider, &[]).await else {
        return;
    };
    let (_, admin) = stack.create_commune("SMS", 3).await;
    let (_, other_admin) = stack.create_commune("OTS", 3).await;
    let service = stack.create_service(&admin, "pothole").await;
    let (amina_id, amina) = stack.register_citizen("SMS", "Amina", Language::Fr).await;
    let (_, omar) = stack.register_citizen("SMS", "Omar", Language::Ar).await;

    // The code goes by SMS to the number it proves, whatever the preferences.
    const PHONE: &str = "+212612345678";
    prove_phone(&stack, &provider, &amina, "06 12 34 56 78", PHONE).await;
    let chosen = choose(&stack, &amina, requests_by_sms(), "topics").await;
    let requests_choice = chosen
        .topics
        .iter()
        .find(|t| t.topic == pb::Topic::Requests as i32)
        .expect("requests");
    assert_eq!(requests_choice.channels, vec![pb::Channel::Sms as i32]);

    // Her request's receipt reaches her by SMS, in French, once.
    let request = submit(&stack, &amina, &service.id).await;
    let messages = wait_for_sms(&provider, PHONE, 2).await;
    let receipt_sms = &messages[1];
    assert!(
        receipt_sms.text.contains(&request.tracking_code),
        "{receipt_sms:?}"
    );
    assert!(
        receipt_sms.text.contains("demande"),
        "French: {receipt_sms:?}"
    );
    assert_eq!(receipt_sms.from, "Jamaa");

    // The history shows it sent, to a masked number.
    let history = deliveries(&stack, &amina, "").await.expect("her history");
    let sent = history
        .iter()
        .find(|d| d.event_type.ends_with("RequestSubmitted"))
        .expect("the receipt's delivery");
    assert_eq!(sent.channel, pb::Channel::Sms as i32);
    assert_eq!(sent.status, pb::DeliveryStatus::Sent as i32);
    assert_eq!(sent.masked_address, "+2126******78");
    assert!(sent.send_time.is_some());
    let code_delivery = history
        .iter()
        .find(|d| d.event_type.ends_with("VerificationCodeIssued"))
        .expect("the code's delivery");
    assert!(code_delivery.critical);

    // The provider's receipt, through the gateway, marks it delivered.
    let receipt = |token: &str, id: &str, status: &str| {
        let path = format!("/v1/sms/receipts?receiptToken={token}");
        let body = serde_json::json!({"providerMessageId": id, "status": status});
        let stack = &stack;
        async move { stack.http("POST", &path, None, Some(body)).await }
    };
    let (status, _, body) = receipt(RECEIPT_TOKEN, &receipt_sms.id, "delivered").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "DELIVERY_STATUS_DELIVERED", "{body}");
    let (status, _, _) = receipt("not-the-token", &receipt_sms.id, "delivered").await;
    assert_eq!(status, 403);
    let (status, _, _) = receipt(RECEIPT_TOKEN, "sms-unknown", "delivered").await;
    assert_eq!(status, 404);
    let (status, _, body) = receipt(RECEIPT_TOKEN, &receipt_sms.id, "teleported").await;
    assert_eq!(status, 400, "{body}");
    let delivered = deliveries(&stack, &amina, "").await.expect("history");
    let delivered = delivered
        .iter()
        .find(|d| d.id == sent.id)
        .expect("same delivery");
    assert_eq!(delivered.status, pb::DeliveryStatus::Delivered as i32);
    assert!(delivered.deliver_time.is_some());

    // A provider that says "try later" gets it on a later try.
    let officer = stack
        .create_staff(&admin, "officer@sms.test", &[identity::Role::CaseOfficer])
        .await;
    provider.answer_next(503, 1);
    move_to(
        &stack,
        &officer,
        &request.id,
        requests::RequestStatus::Received,
    )
    .await;
    let messages = wait_for_sms(&provider, PHONE, 3).await;
    assert!(messages[2].text.contains(&request.tracking_code));
    let retried = deliveries(&stack, &amina, "").await.expect("history");
    let retried = retried
        .iter()
        .find(|d| d.event_type.ends_with("RequestStatusChanged"))
        .expect("the status change's delivery");
    assert_eq!(retried.status, pb::DeliveryStatus::Sent as i32);
    assert_eq!(retried.attempts, 2, "one refusal, then sent");

    // A refusal is permanent: no more tries.
    provider.answer_next(400, 1);
    move_to(
        &stack,
        &officer,
        &request.id,
        requests::RequestStatus::InProgress,
    )
    .await;
    let failed = jamaa_tests::eventually(
        std::time::Duration::from_secs(30),
        "a failed delivery",
        || async {
            deliveries(&stack, &amina, "")
                .await
                .ok()?
                .into_iter()
                .find(|d| d.status == pb::DeliveryStatus::PermanentFailure as i32)
        },
    )
    .await;
    assert_eq!(failed.attempts, 1);
    assert!(failed.last_error.contains("400"), "{}", failed.last_error);
    assert_eq!(provider.messages_to(PHONE).len(), 3, "each message once");

    // Her commune's staff see her history; another commune's staff and other citizens do not.
    let seen = deliveries(&stack, &admin, &amina_id)
        .await
        .expect("her commune's staff");
    assert!(seen.len() >= 4, "{seen:?}");
    for stranger in [&other_admin, &omar] {
        let refused = deliveries(&stack, stranger, &amina_id)
            .await
            .expect_err("not theirs");
        assert_eq!(refused.code(), Code::NotFound);
    }
    let refused = deliveries(&stack, &amina, "not-a-uuid")
        .await
        .expect_err("bad id");
    assert_eq!(bad_fields(&refused), ["user_id"]);

    // A password reset asked with the phone number: the code comes by SMS, and works.
    let before = provider.messages_to(PHONE).len();
    stack
        .identity()
        .request_password_reset(identity::RequestPasswordResetRequest {
            phone_number: "0612345678".into(),
            ..Default::default()
        })
        .await
        .expect("a reset by phone");
    let messages = wait_for_sms(&provider, PHONE, before + 1).await;
    let code = code_in(&messages[before].text);
    stack
        .identity()
        .reset_password(identity::ResetPasswordRequest {
            phone_number: PHONE.into(),
            code,
            new_password: "amina resets by sms".into(),
            ..Default::default()
        })
        .await
        .expect("the SMS code resets the password");

    // Omar has no proven number: his SMS preference leads nowhere, honestly recorded.
    choose(&stack, &omar, requests_by_sms(), "topics").await;
    submit(&stack, &omar, &service.id).await;
    let unreachable = jamaa_tests::eventually(
        std::time::Duration::from_secs(30),
        "Omar's failed SMS",
        || async {
            deliveries(&stack, &omar, "")
                .await
                .ok()?
                .into_iter()
                .find(|d| d.status == pb::DeliveryStatus::PermanentFailure as i32)
        },
    )
    .await;
    assert!(
        unreachable.last_error.contains("no proven sms address"),
        "{}",
        unreachable.last_error
    );

    // Bad preferences are refused with the field named.
    let refused = stack
        .notifications()
        .update_notification_preferences(authorized(
            pb::UpdateNotificationPreferencesRequest {
                preferences: Some(pb::NotificationPreferences {
                    topics: vec![pb::TopicPreference {
                        topic: pb::Topic::Requests as i32,
                        channels: vec![],
                        daily_digest: true,
                    }],
                    quiet_hours_start: "25:00".into(),
                    quiet_hours_end: "07:00".into(),
                    ..Default::default()
                }),
                update_mask: Some(jamaa_proto::FieldMask {
                    paths: vec!["topics".into(), "quiet_hours".into()],
                }),
            },
            &amina,
        ))
        .await
        .expect_err("refused");
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert_eq!(
        bad_fields(&refused),
        [
            "preferences.topics[0].daily_digest",
            "preferences.quiet_hours_start"
        ]
    );
    stack.stop().await;
}

/// `HH:MM` of Casablanca's wall clock `offset_minutes` from now.
fn casablanca_clock(offset_minutes: i64) -> String {
    let zone: chrono_tz::Tz = "Africa/Casablanca".parse().expect("zone");
    (chrono::Utc::now() + chrono::Duration::minutes(offset_minutes))
        .with_timezone(&zone)
        .format("%H:%M")
        .to_string()
}

async fn limits(backend: Backend) {
    let provider = SmsProvider::start()
        .await
        .expect("an SMS provider on loopback");
    let Some(stack) = stack_with_sms(
        backend,
        &provider,
        &[(
            "JAMAA__NOTIFICATION__SMS__LIMITS__PER_RECIPIENT_PER_HOUR",
            "3",
        )],
    )
    .await
    else {
        return;
    };
    let (_, admin) = stack.create_commune("LIM", 3).await;
    let service = stack.create_service(&admin, "pothole").await;
    let officer = stack
        .create_staff(&admin, "officer@lim.test", &[identity::Role::CaseOfficer])
        .await;

    // Amina: at most 3 SMS an hour. The code is the first, the receipt the second, one status
    // change the third; the fourth waits for the hour to turn.
    const AMINA: &str = "+212612345670";
    let (_, amina) = stack.register_citizen("LIM", "Amina", Language::Fr).await;
    prove_phone(&stack, &provider, &amina, "0612345670", AMINA).await;
    choose(&stack, &amina, requests_by_sms(), "topics").await;
    let request = submit(&stack, &amina, &service.id).await;
    move_to(
        &stack,
        &officer,
        &request.id,
        requests::RequestStatus::Received,
    )
    .await;
    move_to(
        &stack,
        &officer,
        &request.id,
        requests::RequestStatus::InProgress,
    )
    .await;
    wait_for_sms(&provider, AMINA, 3).await;
    let held = jamaa_tests::eventually(
        std::time::Duration::from_secs(30),
        "the held SMS",
        || async {
            deliveries(&stack, &amina, "")
                .await
                .ok()?
                .into_iter()
                .find(|d| {
                    d.status == pb::DeliveryStatus::Queued as i32
                        && d.next_attempt_time
                            .is_some_and(|at| at.seconds > chrono::Utc::now().timestamp() + 50 * 60)
                })
        },
    )
    .await;
    assert_eq!(held.attempts, 0, "waiting, not failing");
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(provider.messages_to(AMINA).len(), 3, "the fourth waits");

    // Omar: quiet hours around now. His phone code (critical) goes at once; his request's
    // receipt waits until they end.
    const OMAR: &str = "+212712345671";
    let (_, omar) = stack.register_citizen("LIM", "Omar", Language::Ar).await;
    let mut quiet = requests_by_sms();
    quiet.quiet_hours_start = casablanca_clock(-60);
    quiet.quiet_hours_end = casablanca_clock(90);
    let saved = choose(&stack, &omar, quiet, "topics,quiet_hours").await;
    assert_eq!(saved.quiet_hours_end, casablanca_clock(90));
    prove_phone(&stack, &provider, &omar, "0712345671", OMAR).await;
    submit(&stack, &omar, &service.id).await;
    let waiting = jamaa_tests::eventually(
        std::time::Duration::from_secs(30),
        "the quiet SMS",
        || async {
            deliveries(&stack, &omar, "")
                .await
                .ok()?
                .into_iter()
                .find(|d| {
                    d.event_type.ends_with("RequestSubmitted")
                        && d.next_attempt_time
                            .is_some_and(|at| at.seconds > chrono::Utc::now().timestamp() + 60 * 60)
                })
        },
    )
    .await;
    assert_eq!(waiting.status, pb::DeliveryStatus::Queued as i32);
    assert_eq!(waiting.attempts, 0);
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(
        provider.messages_to(OMAR).len(),
        1,
        "only the code, nothing quiet"
    );
    stack.stop().await;
}
