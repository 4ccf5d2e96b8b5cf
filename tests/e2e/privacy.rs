//! Law 09-08: a citizen exports everything identity holds about them, then erases their account:
//! sign-in stops, the e-mail is free again, the national ID is gone, the notification service
//! forgets them, and the audit log keeps the records, detached.

use jamaa_proto::identity::v1 as identity;
use jamaa_proto::r#type::v1::Language;
use jamaa_tests::{Backend, authorized, spawn_stack};
use tonic::Code;

crate::on_both_backends!(export_then_erase_an_account, privacy);

async fn privacy(backend: Backend) {
    let Some(stack) = spawn_stack(backend).await else {
        return;
    };
    let (_, admin) = stack.create_commune("PRV", 3).await;
    let (salma_id, salma) = stack.register_citizen("PRV", "Salma", Language::Fr).await;
    stack
        .identity()
        .verify_in_person(authorized(
            identity::VerifyInPersonRequest {
                user_id: salma_id.clone(),
                national_id: "CD765432".into(),
            },
            &admin,
        ))
        .await
        .expect("verified at the desk");
    stack
        .wait_for_notification(&salma, "Code de vérification")
        .await;

    // Export: the account, its roles, sessions and audit trail; the CIN only masked.
    let (status, _, body) = stack
        .http("GET", "/v1/me/personal-data", Some(&salma), None)
        .await;
    assert_eq!(status, 200, "{body}");
    let export: serde_json::Value =
        serde_json::from_str(body["json"].as_str().unwrap_or_default()).expect("JSON");
    assert_eq!(export["account"]["email"], "salma@prv.test");
    assert_eq!(export["account"]["assurance_level"], "verified_in_person");
    assert_eq!(export["national_id"]["masked"], "CD****32");
    assert!(!export.to_string().contains("765432"));
    assert_eq!(export["roles"][0]["role"], "citizen");
    assert!(!export["sessions"].as_array().is_some_and(Vec::is_empty));
    let actions: Vec<&str> = export["audit_entries"]
        .as_array()
        .map(|all| all.iter().filter_map(|e| e["action"].as_str()).collect())
        .unwrap_or_default();
    for action in ["user.create", "login", "identity.verify_in_person"] {
        assert!(actions.contains(&action), "{action} in {actions:?}");
    }

    // Gender, when given, is kept for equity statistics and shown to nobody but its owner.
    stack
        .identity()
        .register_citizen(identity::RegisterCitizenRequest {
            commune_code: "PRV".into(),
            email: "nora@prv.test".into(),
            password: "citizen-password-1".into(),
            display_name: "Nora".into(),
            preferred_language: Language::Ar as i32,
            gender: identity::Gender::Female as i32,
            ..Default::default()
        })
        .await
        .expect("registered with a gender");
    let nora = stack.login("nora@prv.test", "citizen-password-1").await;
    let (_, _, me) = stack.http("GET", "/v1/me", Some(&nora), None).await;
    assert!(!me.to_string().to_lowercase().contains("female"), "{me}");
    let (_, _, body) = stack
        .http("GET", "/v1/me/personal-data", Some(&nora), None)
        .await;
    let export: serde_json::Value =
        serde_json::from_str(body["json"].as_str().unwrap_or_default()).expect("JSON");
    assert_eq!(export["account"]["gender"], "female");

    // Erasure: the password confirms.
    let erase = |password: &'static str| {
        let stack = &stack;
        let salma = salma.clone();
        async move {
            stack
                .identity()
                .erase_account(authorized(
                    identity::EraseAccountRequest {
                        password: password.into(),
                    },
                    &salma,
                ))
                .await
        }
    };
    let wrong = erase("not-her-password").await.expect_err("wrong password");
    assert_eq!(wrong.code(), Code::InvalidArgument);
    erase("citizen-password-1").await.expect("erased");
    let refused = stack
        .identity()
        .login(identity::LoginRequest {
            email: "salma@prv.test".into(),
            password: "citizen-password-1".into(),
            ..Default::default()
        })
        .await
        .expect_err("an erased account cannot sign in");
    assert_eq!(refused.code(), Code::Unauthenticated);
    // The e-mail and the CIN are free for a new account.
    let (again_id, _) = stack.register_citizen("PRV", "Salma", Language::Fr).await;
    stack
        .identity()
        .verify_in_person(authorized(
            identity::VerifyInPersonRequest {
                user_id: again_id,
                national_id: "CD765432".into(),
            },
            &admin,
        ))
        .await
        .expect("the CIN left with the erased account");

    // The notification service forgets her inbox.
    jamaa_tests::eventually(
        std::time::Duration::from_secs(20),
        "the erased inbox emptied",
        || async {
            // Her access token still works until it expires: the inbox answers, empty.
            let inbox = stack
                .notifications()
                .list_notifications(authorized(
                    jamaa_proto::notification::v1::ListNotificationsRequest::default(),
                    &salma,
                ))
                .await
                .expect("the inbox answers")
                .into_inner();
            inbox.notifications.is_empty().then_some(())
        },
    )
    .await;

    // The audit log keeps the erasure, detached from the person.
    let entries = jamaa_tests::eventually(
        std::time::Duration::from_secs(20),
        "the erasure audited",
        || async {
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
                .ok()?
                .into_inner()
                .entries;
            entries
                .iter()
                .any(|e| e.action == "data.erase" && e.target == format!("users/{salma_id}"))
                .then_some(entries)
        },
    )
    .await;
    assert!(entries.iter().any(|e| e.action == "data.export"));
    assert!(
        entries
            .iter()
            .all(|e| !e.detail_json.contains("salma@prv.test")),
        "no e-mail of hers in the log"
    );
    stack.stop().await;
}
