//! A petition's life under law 113-14 through gRPC on both backends: draft, published,
//! signed to its threshold by verified residents, submitted, reviewed by the bureau, admissible
//! on a session's agenda, answered — each step only by who may take it, the agent told of each
//! decision; the signatories seen only by the agent and the council secretary (and each reading
//! recorded); a late decision reported once; an unsubmitted petition expiring with its window.

use chrono::{Duration, Utc};
use jamaa_proto::identity::v1::Role;
use jamaa_proto::participation::v1 as participation;
use jamaa_proto::r#type::v1::Language;
use jamaa_tests::{Backend, Options, TestStack, authorized, error_reason, spawn_stack_with};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};
use tonic::Code;

crate::on_both_backends!(a_petition_from_draft_to_answer, lifecycle);

async fn create(
    stack: &TestStack,
    token: &str,
    title: &str,
    draft: bool,
) -> participation::Petition {
    stack
        .participation()
        .create_petition(authorized(
            participation::CreatePetitionRequest {
                request_id: uuid::Uuid::now_v7().to_string(),
                title: title.into(),
                body: "Nous demandons au conseil d'inscrire ce point.".into(),
                draft,
                ..Default::default()
            },
            token,
        ))
        .await
        .expect("created")
        .into_inner()
        .petition
        .expect("petition")
}

async fn sign(
    stack: &TestStack,
    token: &str,
    id: &str,
) -> Result<participation::Petition, tonic::Status> {
    stack
        .participation()
        .sign_petition(authorized(
            participation::SignPetitionRequest {
                petition_id: id.into(),
            },
            token,
        ))
        .await
        .map(|response| response.into_inner().petition.unwrap_or_default())
}

async fn get(stack: &TestStack, token: &str, id: &str) -> participation::Petition {
    stack
        .participation()
        .get_petition(authorized(
            participation::GetPetitionRequest { id: id.into() },
            token,
        ))
        .await
        .expect("get")
        .into_inner()
        .petition
        .expect("petition")
}

async fn submit(
    stack: &TestStack,
    token: &str,
    id: &str,
) -> Result<participation::Petition, tonic::Status> {
    stack
        .participation()
        .submit_petition(authorized(
            participation::SubmitPetitionRequest { id: id.into() },
            token,
        ))
        .await
        .map(|response| response.into_inner().petition.unwrap_or_default())
}

async fn set_time(db: &DatabaseConnection, id: &str, column: &str, at: chrono::DateTime<Utc>) {
    let backend = db.get_database_backend();
    let sql = match backend {
        sea_orm::DatabaseBackend::Postgres => {
            format!("UPDATE petitions SET {column} = $1 WHERE id = $2")
        }
        _ => format!("UPDATE petitions SET {column} = ? WHERE id = ?"),
    };
    db.execute_raw(Statement::from_sql_and_values(
        backend,
        sql,
        [at.into(), uuid::Uuid::parse_str(id).expect("uuid").into()],
    ))
    .await
    .expect("time travel");
}

async fn lifecycle(backend: Backend) {
    let options = Options {
        extra_env: vec![(
            "JAMAA__PARTICIPATION__SCAN_INTERVAL_SECONDS".into(),
            "1".into(),
        )],
        ..Default::default()
    };
    let Some(stack) = spawn_stack_with(backend, options).await else {
        return;
    };
    let (_, admin) = stack.create_commune("PTN", 3).await;
    let secretary = stack
        .create_staff(&admin, "secretary@ptn.test", &[Role::CouncilSecretary])
        .await;
    let (_, agent) = stack.register_citizen("PTN", "Zineb", Language::Fr).await;
    let mut signers = Vec::new();
    for name in ["s1", "s2", "s3"] {
        let (id, _) = stack.register_citizen("PTN", name, Language::Ar).await;
        signers.push(
            stack
                .verify_in_person(&admin, &id, &format!("{name}@ptn.test"))
                .await,
        );
    }
    let (_, bystander) = stack.register_citizen("PTN", "Karima", Language::Ar).await;

    // A draft takes no signatures until published.
    let petition = create(&stack, &agent, "Un parc pour le quartier", true).await;
    assert_eq!(petition.status, participation::PetitionStatus::Draft as i32);
    assert!(petition.collect_until_time.is_none());
    let early = sign(&stack, &signers[0], &petition.id)
        .await
        .expect_err("a draft");
    assert_eq!(error_reason(&early), "NOT_COLLECTING");
    let published = stack
        .participation()
        .publish_petition(authorized(
            participation::PublishPetitionRequest {
                id: petition.id.clone(),
            },
            &agent,
        ))
        .await
        .expect("published")
        .into_inner()
        .petition
        .expect("petition");
    assert_eq!(
        published.status,
        participation::PetitionStatus::Collecting as i32
    );
    let until = published.collect_until_time.expect("a window").seconds;
    let ninety = (Utc::now() + Duration::days(90)).timestamp();
    assert!((until - ninety).abs() < 60, "{until} vs {ninety}");

    // Before its threshold it cannot be submitted; then three residents sign.
    assert_eq!(
        error_reason(
            &submit(&stack, &agent, &petition.id)
                .await
                .expect_err("not enough")
        ),
        "INVALID_TRANSITION"
    );
    for signer in &signers {
        sign(&stack, signer, &petition.id).await.expect("signed");
    }
    let reached = get(&stack, &agent, &petition.id).await;
    assert_eq!(
        reached.status,
        participation::PetitionStatus::ThresholdReached as i32
    );

    // Only its agent submits; the three months start.
    let not_theirs = submit(&stack, &bystander, &petition.id)
        .await
        .expect_err("not the agent");
    assert_eq!(not_theirs.code(), Code::NotFound);
    let submitted = submit(&stack, &agent, &petition.id)
        .await
        .expect("submitted");
    assert_eq!(
        submitted.status,
        participation::PetitionStatus::Submitted as i32
    );
    let due = submitted.decision_due_time.expect("due").seconds;
    let submit_time = submitted.submit_time.expect("submitted").seconds;
    let days = (due - submit_time) / 86_400;
    assert!((89..=92).contains(&days), "{days} days");
    let late_signature = sign(&stack, &signers[0], &petition.id)
        .await
        .expect_err("submitted");
    assert_eq!(error_reason(&late_signature), "NOT_COLLECTING");

    // The bureau: review, admissibility (a session is required), the council's answer.
    let review = |token: &str| {
        let mut client = stack.participation();
        let (id, token) = (petition.id.clone(), token.to_string());
        async move {
            client
                .review_petition(authorized(
                    participation::ReviewPetitionRequest { id },
                    &token,
                ))
                .await
        }
    };
    assert_eq!(
        review(&agent)
            .await
            .expect_err("citizens do not review")
            .code(),
        Code::PermissionDenied
    );
    review(&secretary).await.expect("under review");
    let no_session = stack
        .participation()
        .decide_petition_admissibility(authorized(
            participation::DecidePetitionAdmissibilityRequest {
                id: petition.id.clone(),
                admissible: true,
                ..Default::default()
            },
            &secretary,
        ))
        .await
        .expect_err("no session");
    assert_eq!(no_session.code(), Code::InvalidArgument);
    let admissible = stack
        .participation()
        .decide_petition_admissibility(authorized(
            participation::DecidePetitionAdmissibilityRequest {
                id: petition.id.clone(),
                admissible: true,
                session: "la session ordinaire de février".into(),
                ..Default::default()
            },
            &secretary,
        ))
        .await
        .expect("admissible")
        .into_inner()
        .petition
        .expect("petition");
    assert_eq!(admissible.session, "la session ordinaire de février");
    stack
        .wait_for_notification(&agent, "la session ordinaire de février")
        .await;
    let answered = stack
        .participation()
        .answer_petition(authorized(
            participation::AnswerPetitionRequest {
                id: petition.id.clone(),
                decision: "Le conseil approuve l'aménagement du parc en 2027.".into(),
            },
            &admin,
        ))
        .await
        .expect("answered")
        .into_inner()
        .petition
        .expect("petition");
    assert_eq!(
        answered.status,
        participation::PetitionStatus::Answered as i32
    );
    assert!(answered.decide_time.is_some());
    stack
        .wait_for_notification(&agent, "aménagement du parc")
        .await;

    // The signatories: the agent and the secretary, each reading recorded; nobody else.
    let signatories = |token: &str| {
        let mut client = stack.participation();
        let (id, token) = (petition.id.clone(), token.to_string());
        async move {
            client
                .list_petition_signatories(authorized(
                    participation::ListPetitionSignatoriesRequest { id },
                    &token,
                ))
                .await
        }
    };
    assert_eq!(
        signatories(&agent)
            .await
            .expect("the agent")
            .into_inner()
            .signatories
            .len(),
        3
    );
    assert_eq!(
        signatories(&secretary)
            .await
            .expect("the secretary")
            .into_inner()
            .signatories
            .len(),
        3
    );
    assert_eq!(
        signatories(&bystander)
            .await
            .expect_err("a bystander")
            .code(),
        Code::PermissionDenied
    );
    assert_eq!(
        signatories(&admin)
            .await
            .expect_err("an administrator")
            .code(),
        Code::PermissionDenied
    );
    let db = Database::connect(stack.database_url("participation").as_str())
        .await
        .expect("participation database");
    let reads = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT COUNT(*) AS n FROM signatory_list_reads".to_string(),
        ))
        .await
        .expect("count")
        .expect("a row")
        .try_get::<i64>("", "n")
        .expect("n");
    assert_eq!(reads, 2);

    // A decision three months late is reported once; this one is then found inadmissible.
    let slow = create(&stack, &agent, "Des bancs publics", false).await;
    for signer in &signers {
        sign(&stack, signer, &slow.id).await.expect("signed");
    }
    submit(&stack, &agent, &slow.id).await.expect("submitted");
    set_time(
        &db,
        &slow.id,
        "decision_due_at",
        Utc::now() - Duration::days(1),
    )
    .await;
    let overdue =
        jamaa_tests::eventually(std::time::Duration::from_secs(30), "overdue", || async {
            let petition = get(&stack, &agent, &slow.id).await;
            petition.decision_overdue.then_some(petition)
        })
        .await;
    assert_eq!(
        overdue.status,
        participation::PetitionStatus::Submitted as i32
    );
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let late_notices = stack
        .inbox(&agent)
        .await
        .into_iter()
        .filter(|n| n.event_type.ends_with("PetitionDecisionOverdue"))
        .count();
    assert_eq!(late_notices, 1, "reported once");
    stack
        .participation()
        .review_petition(authorized(
            participation::ReviewPetitionRequest {
                id: slow.id.clone(),
            },
            &secretary,
        ))
        .await
        .expect("under review");
    let refused = stack
        .participation()
        .decide_petition_admissibility(authorized(
            participation::DecidePetitionAdmissibilityRequest {
                id: slow.id.clone(),
                admissible: false,
                reasons: "Hors des compétences de la commune.".into(),
                ..Default::default()
            },
            &secretary,
        ))
        .await
        .expect("inadmissible")
        .into_inner()
        .petition
        .expect("petition");
    assert_eq!(
        refused.status,
        participation::PetitionStatus::Inadmissible as i32
    );
    stack
        .wait_for_notification(&agent, "Hors des compétences")
        .await;

    // A petition whose window ends unsubmitted expires.
    let forgotten = create(&stack, &agent, "Une fontaine", false).await;
    set_time(
        &db,
        &forgotten.id,
        "collect_until",
        Utc::now() - Duration::days(1),
    )
    .await;
    jamaa_tests::eventually(std::time::Duration::from_secs(30), "expired", || async {
        let petition = get(&stack, &agent, &forgotten.id).await;
        (petition.status == participation::PetitionStatus::Expired as i32).then_some(())
    })
    .await;
    stack.stop().await;
}
