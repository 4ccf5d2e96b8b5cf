//! The commune's voice: announcements and template overrides, through gRPC and the gateway.
//!
//! - An announcement to all residents reaches each resident's inbox in their language (and no
//!   one of another commune); one to an area reaches only the residents who follow it; a
//!   scheduled one is not public and can be cancelled, once, by its commune only.
//! - A commune's override of a template is what its residents get (and only its residents); a
//!   template that does not render is refused with the field named; the preview shows the
//!   e-mail right to left for Arabic and the SMS length.
//! - Fan-out to many residents: time and memory measured and printed (the benchmark), every
//!   inbox row counted in the database.

use jamaa_proto::notification::v1 as pb;
use jamaa_proto::r#type::v1::{Language, LocalizedText};
use jamaa_tests::{Backend, TestStack, authorized, bad_fields, spawn_stack};
use tonic::Code;

crate::on_both_backends!(announcements_reach_their_audience, audience);
crate::on_both_backends!(communes_word_their_own_messages, templates);
crate::on_both_backends!(an_announcement_fans_out_to_many_residents, fan_out, alone);

fn text(ar: &str, fr: &str, en: &str) -> LocalizedText {
    LocalizedText {
        ar: ar.into(),
        fr: fr.into(),
        en: en.into(),
        ..Default::default()
    }
}

fn to_all(title: LocalizedText, body: LocalizedText) -> pb::Announcement {
    pb::Announcement {
        title: Some(title),
        body: Some(body),
        audience_kind: pb::AudienceKind::AllResidents as i32,
        ..Default::default()
    }
}

async fn announce(
    stack: &TestStack,
    token: &str,
    announcement: pb::Announcement,
) -> Result<pb::Announcement, tonic::Status> {
    stack
        .notifications()
        .create_announcement(authorized(
            pb::CreateAnnouncementRequest {
                announcement: Some(announcement),
                request_id: String::new(),
            },
            token,
        ))
        .await
        .map(|response| response.into_inner().announcement.unwrap_or_default())
}

/// Waits until notification knows the person of `token` (their registration event arrived).
async fn known(stack: &TestStack, token: &str) {
    jamaa_tests::eventually(
        std::time::Duration::from_secs(30),
        "the registration",
        || async {
            let preferences = stack
                .notifications()
                .get_notification_preferences(authorized(
                    pb::GetNotificationPreferencesRequest {},
                    token,
                ))
                .await
                .ok()?
                .into_inner()
                .preferences?;
            (preferences.language != Language::Unspecified as i32).then_some(())
        },
    )
    .await
}

async fn wait_published(stack: &TestStack, id: &str) -> pb::Announcement {
    jamaa_tests::eventually(
        std::time::Duration::from_secs(120),
        "the publication",
        || async {
            let announcement = stack
                .notifications()
                .get_announcement(pb::GetAnnouncementRequest { id: id.into() })
                .await
                .ok()?
                .into_inner()
                .announcement?;
            (announcement.state == pb::AnnouncementState::Published as i32).then_some(announcement)
        },
    )
    .await
}

async fn audience(backend: Backend) {
    let Some(stack) = spawn_stack(backend).await else {
        return;
    };
    let (_, admin) = stack.create_commune("ANN", 3).await;
    let (_, other_admin) = stack.create_commune("ANO", 3).await;
    let (_, amina) = stack.register_citizen("ANN", "Amina", Language::Fr).await;
    let (_, omar) = stack.register_citizen("ANN", "Omar", Language::Ar).await;
    let (_, yassine) = stack.register_citizen("ANN", "Yassine", Language::En).await;
    let (_, sara) = stack.register_citizen("ANO", "Sara", Language::Fr).await;
    for token in [&amina, &omar, &yassine, &sara] {
        known(&stack, token).await;
    }
    // Yassine follows his neighbourhood.
    stack
        .notifications()
        .update_notification_preferences(authorized(
            pb::UpdateNotificationPreferencesRequest {
                preferences: Some(pb::NotificationPreferences {
                    areas: vec!["Hay-Riad".into()],
                    ..Default::default()
                }),
                update_mask: Some(jamaa_proto::FieldMask {
                    paths: vec!["areas".into()],
                }),
            },
            &yassine,
        ))
        .await
        .expect("areas saved");
    // Omar subscribes to the water topic.
    stack
        .notifications()
        .update_notification_preferences(authorized(
            pb::UpdateNotificationPreferencesRequest {
                preferences: Some(pb::NotificationPreferences {
                    announcement_topics: vec!["Water".into()],
                    ..Default::default()
                }),
                update_mask: Some(jamaa_proto::FieldMask {
                    paths: vec!["announcement_topics".into()],
                }),
            },
            &omar,
        ))
        .await
        .expect("topics saved");

    // The administrator chooses a language: that does not make them a resident.
    stack
        .notifications()
        .update_notification_preferences(authorized(
            pb::UpdateNotificationPreferencesRequest {
                preferences: Some(pb::NotificationPreferences {
                    language: Language::Fr as i32,
                    ..Default::default()
                }),
                update_mask: Some(jamaa_proto::FieldMask {
                    paths: vec!["language".into()],
                }),
            },
            &admin,
        ))
        .await
        .expect("language saved");

    // Citizens do not announce.
    let water = to_all(
        text(
            "انقطاع الماء غدا",
            "Coupure d'eau demain",
            "Water cut tomorrow",
        ),
        text("من 8 إلى 12.", "De 8 h à 12 h.", "From 8 to 12."),
    );
    let refused = announce(&stack, &amina, water.clone())
        .await
        .expect_err("a citizen");
    assert_eq!(refused.code(), Code::PermissionDenied);

    // To all residents, each in their language; no one of another commune.
    let published = announce(&stack, &admin, water).await.expect("announced");
    let published = wait_published(&stack, &published.id).await;
    assert_eq!(published.recipient_count, 3);
    assert_eq!(published.commune_code, "ANN");
    for (token, title) in [
        (&amina, "Coupure d'eau demain"),
        (&omar, "انقطاع الماء غدا"),
        (&yassine, "Water cut tomorrow"),
    ] {
        stack.wait_for_notification(token, title).await;
    }
    assert!(
        stack
            .inbox(&sara)
            .await
            .iter()
            .all(|n| !n.event_type.ends_with("Announcement")),
        "another commune's resident hears nothing"
    );
    assert!(
        stack
            .inbox(&admin)
            .await
            .iter()
            .all(|n| !n.event_type.ends_with("Announcement")),
        "staff are not residents"
    );

    // To an area: only its followers. A reader of a language it lacks gets the first given.
    let area = pb::Announcement {
        title: Some(text("", "Travaux rue 5", "")),
        body: Some(text("", "La rue 5 est fermée lundi.", "")),
        audience_kind: pb::AudienceKind::Area as i32,
        audience_value: "hay-riad".into(),
        ..Default::default()
    };
    let area = announce(&stack, &admin, area).await.expect("to an area");
    let area = wait_published(&stack, &area.id).await;
    assert_eq!(area.recipient_count, 1);
    stack.wait_for_notification(&yassine, "Travaux rue 5").await;
    assert!(
        stack
            .inbox(&amina)
            .await
            .iter()
            .all(|n| n.title != "Travaux rue 5")
    );

    // To a topic: only its subscribers (the topic matched without regard to case).
    let topic = pb::Announcement {
        title: Some(text("صيانة شبكة الماء", "", "")),
        body: Some(text("يوم الثلاثاء.", "", "")),
        audience_kind: pb::AudienceKind::Topic as i32,
        audience_value: "water".into(),
        ..Default::default()
    };
    let topic = announce(&stack, &admin, topic).await.expect("to a topic");
    let topic = wait_published(&stack, &topic.id).await;
    assert_eq!(topic.recipient_count, 1);
    stack.wait_for_notification(&omar, "صيانة شبكة الماء").await;
    for token in [&amina, &yassine] {
        assert!(
            stack
                .inbox(token)
                .await
                .iter()
                .all(|n| n.title != "صيانة شبكة الماء"),
            "not subscribed to the topic"
        );
    }

    // Scheduled: not public yet; its commune's staff see it; only they cancel it, once.
    let later = pb::Announcement {
        publish_time: Some(jamaa_proto::timestamp_from_millis(
            (chrono::Utc::now() + chrono::Duration::hours(2)).timestamp_millis(),
        )),
        ..to_all(
            text("سوق", "Marché", "Market"),
            text("الأحد", "Dimanche", "Sunday"),
        )
    };
    let later = announce(&stack, &admin, later).await.expect("scheduled");
    assert_eq!(later.state, pb::AnnouncementState::Scheduled as i32);
    let hidden = stack
        .notifications()
        .get_announcement(pb::GetAnnouncementRequest {
            id: later.id.clone(),
        })
        .await
        .expect_err("not public yet");
    assert_eq!(hidden.code(), Code::NotFound);
    let (status, _, public) = stack
        .http("GET", "/v1/communes/ANN/announcements", None, None)
        .await;
    assert_eq!(status, 200, "{public}");
    let public_ids: Vec<&str> = public["announcements"]
        .as_array()
        .map(|list| list.iter().filter_map(|a| a["id"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        public_ids,
        [topic.id.as_str(), area.id.as_str(), published.id.as_str()]
    );
    let staff_view = stack
        .notifications()
        .list_announcements(authorized(
            pb::ListAnnouncementsRequest {
                commune_code: "ANN".into(),
                ..Default::default()
            },
            &admin,
        ))
        .await
        .expect("staff list")
        .into_inner();
    assert_eq!(staff_view.announcements.len(), 4);
    let cancel = |token: &str| {
        let request = authorized(
            pb::CancelAnnouncementRequest {
                id: later.id.clone(),
            },
            token,
        );
        let mut client = stack.notifications();
        async move { client.cancel_announcement(request).await }
    };
    assert_eq!(
        cancel(&other_admin)
            .await
            .expect_err("other commune")
            .code(),
        Code::NotFound
    );
    assert_eq!(
        cancel(&amina).await.expect_err("a citizen").code(),
        Code::PermissionDenied
    );
    let cancelled = cancel(&admin)
        .await
        .expect("cancelled")
        .into_inner()
        .announcement
        .expect("a");
    assert_eq!(cancelled.state, pb::AnnouncementState::Cancelled as i32);
    assert_eq!(
        cancel(&admin).await.expect_err("twice").code(),
        Code::FailedPrecondition
    );

    // Bad input names its field.
    let refused = announce(
        &stack,
        &admin,
        pb::Announcement {
            title: Some(text("", "Titre", "")),
            body: Some(text("", "", "Text")),
            ..Default::default()
        },
    )
    .await
    .expect_err("refused");
    assert_eq!(
        bad_fields(&refused),
        [
            "announcement.body.fr",
            "announcement.body.en",
            "announcement.audience_kind"
        ]
    );
    stack.stop().await;
}

async fn templates(backend: Backend) {
    let Some(stack) = spawn_stack(backend).await else {
        return;
    };
    let (_, admin) = stack.create_commune("TPL", 3).await;
    let (_, other_admin) = stack.create_commune("TPO", 3).await;
    let service = stack.create_service(&admin, "pothole").await;
    let other_service = stack.create_service(&other_admin, "pothole").await;
    let (_, amina) = stack.register_citizen("TPL", "Amina", Language::Fr).await;
    let (_, sara) = stack.register_citizen("TPO", "Sara", Language::Fr).await;

    let update = |token: &str, kind: &str, title: &str, body: &str| {
        let request = authorized(
            pb::UpdateTemplateRequest {
                template: Some(pb::Template {
                    kind: kind.into(),
                    language: Language::Fr as i32,
                    title: title.into(),
                    body: body.into(),
                    ..Default::default()
                }),
            },
            token,
        );
        let mut client = stack.notifications();
        async move {
            client
                .update_template(request)
                .await
                .map(|r| r.into_inner())
        }
    };
    // Only commune administrators; templates must render with the kind's placeholders.
    assert_eq!(
        update(&amina, "request_submitted", "x", "y")
            .await
            .expect_err("citizen")
            .code(),
        Code::PermissionDenied
    );
    let broken = update(&admin, "request_submitted", "Reçu", "{{ nothing_here }}")
        .await
        .expect_err("an unknown placeholder");
    assert_eq!(bad_fields(&broken), ["template.body"]);
    let unknown = update(&admin, "no_such_kind", "a", "b")
        .await
        .expect_err("a kind");
    assert_eq!(bad_fields(&unknown), ["template.kind"]);
    let saved = update(
        &admin,
        "request_submitted",
        "Bien reçu : {{ tracking_code }}",
        "La commune de TPL a bien reçu votre demande {{ tracking_code }}.",
    )
    .await
    .expect("saved")
    .template
    .expect("template");
    assert!(saved.overridden);
    assert!(saved.placeholders.contains(&"tracking_code".to_string()));
    assert_eq!(
        saved.sms_length.map(|l| l.encoding),
        Some(pb::SmsEncoding::Ucs2 as i32),
        "ç is not in the GSM alphabet"
    );

    // The commune's residents get its wording; another commune's get the platform's.
    let mine = stack
        .requests()
        .submit_request(authorized(
            jamaa_proto::servicerequest::v1::SubmitRequestRequest {
                request_id: uuid::Uuid::now_v7().to_string(),
                service_id: service.id.clone(),
                description: "Un nid-de-poule.".into(),
                ..Default::default()
            },
            &amina,
        ))
        .await
        .expect("submitted")
        .into_inner()
        .request
        .expect("request");
    let got = stack
        .wait_for_notification(&amina, &format!("Bien reçu : {}", mine.tracking_code))
        .await;
    assert!(
        got.body.starts_with("La commune de TPL a bien reçu"),
        "{}",
        got.body
    );
    let theirs = stack
        .requests()
        .submit_request(authorized(
            jamaa_proto::servicerequest::v1::SubmitRequestRequest {
                request_id: uuid::Uuid::now_v7().to_string(),
                service_id: other_service.id.clone(),
                description: "Un nid-de-poule.".into(),
                ..Default::default()
            },
            &sara,
        ))
        .await
        .expect("submitted")
        .into_inner()
        .request
        .expect("request");
    let default_words = stack
        .wait_for_notification(&sara, &theirs.tracking_code)
        .await;
    assert!(
        !default_words.title.starts_with("Bien reçu"),
        "{}",
        default_words.title
    );

    // The list shows the override; the preview renders e-mail HTML right to left for Arabic.
    let listed = stack
        .notifications()
        .list_templates(authorized(
            pb::ListTemplatesRequest {
                language: Language::Fr as i32,
            },
            &admin,
        ))
        .await
        .expect("listed")
        .into_inner()
        .templates;
    let overridden: Vec<&str> = listed
        .iter()
        .filter(|t| t.overridden)
        .map(|t| t.kind.as_str())
        .collect();
    assert_eq!(overridden, ["request_submitted"]);
    assert!(listed.iter().all(|t| t.language == Language::Fr as i32));
    let code = listed
        .iter()
        .find(|t| t.kind == "contact_verification_code")
        .expect("codes");
    assert!(code.critical);
    assert_eq!(code.topic, pb::Topic::Security as i32);
    let preview = stack
        .notifications()
        .preview_template(authorized(
            pb::PreviewTemplateRequest {
                kind: "request_status_changed".into(),
                language: Language::Ar as i32,
                ..Default::default()
            },
            &admin,
        ))
        .await
        .expect("preview")
        .into_inner();
    assert!(
        preview.email_html.contains(r#"dir="rtl""#),
        "{}",
        preview.email_html
    );
    assert!(
        preview.body.contains("CAS-2025-000042"),
        "sample data: {}",
        preview.body
    );
    let length = preview.sms_length.expect("length");
    assert_eq!(length.encoding, pb::SmsEncoding::Ucs2 as i32);
    assert!(length.segments >= 1);
    let draft = stack
        .notifications()
        .preview_template(authorized(
            pb::PreviewTemplateRequest {
                kind: "request_submitted".into(),
                language: Language::En as i32,
                title: "Got it".into(),
                body: "We got <{{ tracking_code }}>".into(),
            },
            &admin,
        ))
        .await
        .expect("a draft")
        .into_inner();
    assert_eq!(draft.sms_text, "Got it\nWe got <CAS-2025-000042>");
    assert!(
        draft.email_html.contains("We got &lt;CAS-2025-000042&gt;"),
        "{}",
        draft.email_html
    );
    assert_eq!(
        draft.sms_length.map(|l| l.encoding),
        Some(pb::SmsEncoding::Gsm7 as i32)
    );

    // Removing the override restores the platform's words.
    let restored = stack
        .notifications()
        .delete_template_override(authorized(
            pb::DeleteTemplateOverrideRequest {
                kind: "request_submitted".into(),
                language: Language::Fr as i32,
            },
            &admin,
        ))
        .await
        .expect("deleted")
        .into_inner()
        .template
        .expect("default");
    assert!(!restored.overridden);
    let again = stack
        .notifications()
        .delete_template_override(authorized(
            pb::DeleteTemplateOverrideRequest {
                kind: "request_submitted".into(),
                language: Language::Fr as i32,
            },
            &admin,
        ))
        .await
        .expect_err("no override left");
    assert_eq!(again.code(), Code::NotFound);
    stack.stop().await;
}

/// The peak resident set of this process so far, in KiB (VmHWM).
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("VmRSS:"))
                .and_then(|line| line.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// How many residents the fan-out benchmark writes to (`JAMAA_FANOUT_RESIDENTS`, default
/// 100,000).
fn residents() -> usize {
    std::env::var("JAMAA_FANOUT_RESIDENTS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(100_000)
}

async fn fan_out(backend: Backend) {
    use sea_orm::Database;
    let Some(stack) = spawn_stack(backend).await else {
        return;
    };
    let (commune_id, admin) = stack.create_commune("FAN", 3).await;
    // Residents as notification knows them (from their registration events), seeded directly.
    let count = residents();
    let db = Database::connect(stack.database_url("notification").as_str())
        .await
        .expect("notification's database");
    let languages = ["ar", "fr", "en", "tzm"];
    let commune = uuid::Uuid::parse_str(&commune_id).expect("commune id");
    let ids: Vec<uuid::Uuid> = (0..count).map(|_| uuid::Uuid::new_v4()).collect();
    for chunk in ids.chunks(1000) {
        use jamaa_notification::storage::recipient;
        use sea_orm::{EntityTrait, Set};
        let rows = chunk
            .iter()
            .enumerate()
            .map(|(i, id)| recipient::ActiveModel {
                user_id: Set(*id),
                commune_id: Set(commune),
                language: Set(languages[i % 4].to_string()),
                resident: Set(true),
            });
        recipient::Entity::insert_many(rows)
            .exec_without_returning(&db)
            .await
            .expect("residents seeded");
    }

    let baseline = peak_rss_kib();
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(baseline));
    let sampling = {
        let peak = peak.clone();
        tokio::spawn(async move {
            loop {
                peak.fetch_max(peak_rss_kib(), std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        })
    };
    let started = std::time::Instant::now();
    let announcement = announce(
        &stack,
        &admin,
        to_all(
            text("اجتماع عام", "Réunion publique", "Public meeting"),
            text("الخميس في الساعة 18.", "Jeudi à 18 h.", "Thursday at 6 pm."),
        ),
    )
    .await
    .expect("announced");
    let published = wait_published(&stack, &announcement.id).await;
    let elapsed = started.elapsed();
    sampling.abort();
    let grown_mib = (peak
        .load(std::sync::atomic::Ordering::Relaxed)
        .saturating_sub(baseline)) as f64
        / 1024.0;
    println!(
        "fan-out ({backend:?}): {count} residents in {:.2} s ({:.0} inbox rows/s), resident memory +{grown_mib:.1} MiB at peak (the whole test process)",
        elapsed.as_secs_f64(),
        count as f64 / elapsed.as_secs_f64(),
    );
    assert_eq!(published.recipient_count, count as i64);
    let rows = {
        use jamaa_notification::storage::notification;
        use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
        let event_id = uuid::Uuid::parse_str(&announcement.id).expect("id");
        notification::Entity::find()
            .filter(notification::Column::EventId.eq(event_id))
            .count(&db)
            .await
            .expect("count")
    };
    assert_eq!(rows, count as u64, "one inbox row per resident, none twice");
    // Memory is bounded by a page of residents, not by the audience (alone, it grows by some
    // 16 MiB; a fan-out that held the audience in memory would take hundreds).
    assert!(
        grown_mib < 64.0,
        "fan-out grew the process by {grown_mib:.1} MiB"
    );
    stack.stop().await;
}
