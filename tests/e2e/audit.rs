//! The audit log: sign-ins (both outcomes), sessions, account and role changes and key
//! rotations are recorded with who, what, when, from where and the outcome; staff read their
//! commune's entries only; the chain check finds an edited and a removed entry.

use jamaa_proto::identity::v1 as identity;
use jamaa_proto::r#type::v1::Language;
use jamaa_tests::{
    Backend, PLATFORM_ADMIN_EMAIL, PLATFORM_ADMIN_PASSWORD, TestStack, authorized, spawn_stack,
};
use sea_orm::{ConnectionTrait, Database, Statement};
use tonic::Code;

crate::on_both_backends!(
    audit_records_who_what_when_where_and_detects_tampering,
    audit
);

async fn entries(
    stack: &TestStack,
    token: &str,
    commune_id: &str,
) -> Result<Vec<identity::AuditEntry>, tonic::Status> {
    let mut all = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = stack
            .identity()
            .list_audit_entries(authorized(
                identity::ListAuditEntriesRequest {
                    commune_id: commune_id.into(),
                    page_size: 50,
                    page_token,
                },
                token,
            ))
            .await?
            .into_inner();
        all.extend(page.entries);
        if page.next_page_token.is_empty() {
            return Ok(all);
        }
        page_token = page.next_page_token;
    }
}

async fn check(
    stack: &TestStack,
    token: &str,
    commune_id: &str,
) -> Result<identity::CheckAuditChainResponse, tonic::Status> {
    stack
        .identity()
        .check_audit_chain(authorized(
            identity::CheckAuditChainRequest {
                commune_id: commune_id.into(),
            },
            token,
        ))
        .await
        .map(tonic::Response::into_inner)
}

/// Waits until every entry of the chain is sealed; returns the report.
async fn sealed(
    stack: &TestStack,
    token: &str,
    commune_id: &str,
) -> identity::CheckAuditChainResponse {
    jamaa_tests::eventually(
        std::time::Duration::from_secs(20),
        "the audit chain sealed",
        || async {
            check(stack, token, commune_id)
                .await
                .ok()
                .filter(|report| report.unsealed_entries == 0 && report.checked_entries > 0)
        },
    )
    .await
}

async fn commune_id_of(stack: &TestStack, code: &str) -> String {
    stack
        .identity()
        .get_commune(identity::GetCommuneRequest { code: code.into() })
        .await
        .expect("commune")
        .into_inner()
        .commune
        .unwrap_or_default()
        .id
}

async fn audit(backend: Backend) {
    let Some(stack) = spawn_stack(backend).await else {
        return;
    };
    let (_, admin) = stack.create_commune("AUD", 3).await;
    let (_, other_admin) = stack.create_commune("AUO", 3).await;
    let platform = stack
        .login(PLATFORM_ADMIN_EMAIL, PLATFORM_ADMIN_PASSWORD)
        .await;
    let aud = commune_id_of(&stack, "AUD").await;
    let auo = commune_id_of(&stack, "AUO").await;
    let (amina_id, _) = stack.register_citizen("AUD", "Amina", Language::Fr).await;
    let officer = stack
        .create_staff(&admin, "officer@aud.test", &[identity::Role::CaseOfficer])
        .await;

    // A wrong password through the gateway (the client's address travels with it), a wrong one
    // for an e-mail nobody has, then Amina's account is disabled.
    let (status, _, _) = stack
        .http(
            "POST",
            "/v1/sessions",
            None,
            Some(serde_json::json!({ "email": "amina@aud.test", "password": "not-her-password" })),
        )
        .await;
    assert_eq!(status, 401);
    let _ = stack
        .identity()
        .login(identity::LoginRequest {
            email: "nobody@aud.test".into(),
            password: "whatever-password".into(),
            ..Default::default()
        })
        .await
        .expect_err("unknown");
    stack
        .identity()
        .disable_user(authorized(
            identity::DisableUserRequest {
                user_id: amina_id.clone(),
            },
            &admin,
        ))
        .await
        .expect("disable");
    stack
        .identity()
        .rotate_signing_key(authorized(identity::RotateSigningKeyRequest {}, &platform))
        .await
        .expect("rotate");

    let report = sealed(&stack, &admin, "").await;
    assert!(report.intact, "{report:?}");
    let log = entries(&stack, &admin, "").await.expect("the admin reads");
    let find = |action: &str, outcome: &str| {
        log.iter()
            .find(|e| e.action == action && e.outcome == outcome)
            .cloned()
            .unwrap_or_else(|| panic!("no {action} {outcome} in {log:#?}"))
    };
    let failed = find("login", "failure");
    assert_eq!(failed.target, format!("users/{amina_id}"));
    // Only the network of the address is kept (personal data), not the host.
    assert_eq!(failed.client_address, "127.0.0.0/24");
    assert!(failed.actor_id.is_empty());
    assert!(!failed.detail_json.contains("not-her-password"));
    let disabled = find("user.disable", "success");
    assert_eq!(disabled.target, format!("users/{amina_id}"));
    assert!(!disabled.actor_id.is_empty());
    assert!(
        log.iter()
            .any(|e| e.action == "role.grant" && e.detail_json.contains("case_officer")),
        "the officer's role grant"
    );
    find("login", "success");
    assert!(
        log.iter().all(|e| e.commune_id == aud),
        "only AUD's entries"
    );
    assert!(log.iter().all(|e| e.sequence > 0 && e.hash.len() == 64));
    let sequences: Vec<i64> = log.iter().map(|e| e.sequence).collect();
    assert!(sequences.windows(2).all(|w| w[0] > w[1]), "newest first");

    // Staff read their commune's log; citizens and other communes do not.
    assert!(
        !entries(&stack, &officer, "")
            .await
            .expect("staff read")
            .is_empty()
    );
    let (_, karim) = stack.register_citizen("AUD", "Karim", Language::Ar).await;
    for (who, token, commune) in [
        ("a citizen", &karim, ""),
        ("another commune's admin", &other_admin, aud.as_str()),
    ] {
        let refused = entries(&stack, token, commune).await.expect_err(who);
        assert_eq!(refused.code(), Code::PermissionDenied, "{who}");
    }
    assert!(
        entries(&stack, &other_admin, "")
            .await
            .expect("own log")
            .iter()
            .all(|e| e.commune_id == auo)
    );
    let officer_check = check(&stack, &officer, "").await.expect_err("officer");
    assert_eq!(officer_check.code(), Code::PermissionDenied);

    // The platform's chain holds the rotation and the unknown e-mail's attempt.
    sealed(&stack, &platform, "platform").await;
    let platform_log = entries(&stack, &platform, "platform")
        .await
        .expect("platform");
    assert!(
        platform_log
            .iter()
            .any(|e| e.action == "signing_key.rotate")
    );
    assert!(
        platform_log
            .iter()
            .any(|e| e.action == "login" && e.outcome == "failure" && e.target.is_empty())
    );
    let (status, _, body) = stack
        .http(
            "GET",
            "/v1/audit-chain/check?communeId=platform",
            Some(&platform),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["intact"], true);

    // Tampering: an edited entry in AUD's chain, a removed one in AUO's.
    let db = Database::connect(stack.identity_database_url.as_str())
        .await
        .expect("identity database");
    let postgres = db.get_database_backend() == sea_orm::DatabaseBackend::Postgres;
    let sql = |text: &str| {
        if postgres {
            text.replacen('?', "$1", 1).replacen('?', "$2", 1)
        } else {
            text.to_string()
        }
    };
    db.execute_raw(Statement::from_sql_and_values(
        db.get_database_backend(),
        sql("UPDATE audit_entries SET outcome = 'success' WHERE id = ?"),
        [uuid::Uuid::parse_str(&failed.id).expect("id").into()],
    ))
    .await
    .expect("edit an entry");
    let report = check(&stack, &admin, "").await.expect("check");
    assert!(!report.intact);
    assert_eq!(report.first_broken_sequence, failed.sequence);
    assert!(report.problem.contains("changed"), "{report:?}");

    sealed(&stack, &other_admin, "").await;
    db.execute_raw(Statement::from_sql_and_values(
        db.get_database_backend(),
        sql("DELETE FROM audit_entries WHERE chain_id = ? AND chain_seq = ?"),
        [uuid::Uuid::parse_str(&auo).expect("id").into(), 2i64.into()],
    ))
    .await
    .expect("remove an entry");
    let report = check(&stack, &other_admin, "").await.expect("check");
    assert!(!report.intact);
    assert_eq!(report.first_broken_sequence, 2);
    assert!(report.problem.contains("missing"), "{report:?}");
    stack.stop().await;
}
