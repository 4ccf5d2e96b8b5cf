//! A commune's participation rules through gRPC on both backends: the platform's defaults, set
//! by the commune's administrator (only), each applied — the level a signatory needs, the
//! collecting window, the proposal and comment thresholds, the minimum age of an association
//! filing a petition. With the level at REGISTERED, 50 residents sign at once and are counted
//! exactly; the same one twice counts once; every signatory hears of the submission and of the
//! council's decision.

use jamaa_proto::identity::v1 as identity;
use jamaa_proto::participation::v1 as participation;
use jamaa_proto::r#type::v1::Language;
use jamaa_tests::{Backend, TestStack, authorized, bad_fields, error_reason, spawn_stack};
use tonic::Code;

crate::on_both_backends!(a_commune_sets_its_participation_rules, rules);

async fn settings(stack: &TestStack, token: &str) -> participation::ParticipationSettings {
    stack
        .participation()
        .get_participation_settings(authorized(
            participation::GetParticipationSettingsRequest {},
            token,
        ))
        .await
        .expect("settings")
        .into_inner()
        .settings
        .expect("settings")
}

async fn set(
    stack: &TestStack,
    token: &str,
    settings: participation::ParticipationSettings,
) -> Result<participation::ParticipationSettings, tonic::Status> {
    stack
        .participation()
        .update_participation_settings(authorized(
            participation::UpdateParticipationSettingsRequest {
                settings: Some(settings),
            },
            token,
        ))
        .await
        .map(|response| response.into_inner().settings.unwrap_or_default())
}

async fn register_association(
    stack: &TestStack,
    token: &str,
    name: &str,
    number: &str,
    founded: &str,
    representative: &str,
) -> Result<participation::Association, tonic::Status> {
    stack
        .participation()
        .register_association(authorized(
            participation::RegisterAssociationRequest {
                association: Some(participation::Association {
                    name: name.into(),
                    registration_number: number.into(),
                    founding_date: founded.into(),
                    representative_id: representative.into(),
                    ..Default::default()
                }),
            },
            token,
        ))
        .await
        .map(|response| response.into_inner().association.unwrap_or_default())
}

async fn petition(
    stack: &TestStack,
    token: &str,
    title: &str,
    association_id: &str,
) -> Result<participation::Petition, tonic::Status> {
    stack
        .participation()
        .create_petition(authorized(
            participation::CreatePetitionRequest {
                request_id: uuid::Uuid::now_v7().to_string(),
                title: title.into(),
                body: format!("{title} : nous demandons au conseil de délibérer."),
                draft: false,
                association_id: association_id.into(),
            },
            token,
        ))
        .await
        .map(|response| response.into_inner().petition.unwrap_or_default())
}

async fn sign(
    stack: &TestStack,
    token: &str,
    id: &str,
) -> Result<participation::SignPetitionResponse, tonic::Status> {
    stack
        .participation()
        .sign_petition(authorized(
            participation::SignPetitionRequest {
                petition_id: id.into(),
            },
            token,
        ))
        .await
        .map(|response| response.into_inner())
}

async fn rules(backend: Backend) {
    let Some(stack) = spawn_stack(backend).await else {
        return;
    };
    let (_, admin) = stack.create_commune("PRL", 40).await;
    let secretary = stack
        .create_staff(
            &admin,
            "secretary@prl.test",
            &[identity::Role::CouncilSecretary],
        )
        .await;
    let agent_desk = stack
        .create_staff(&admin, "desk@prl.test", &[identity::Role::ReceptionAgent])
        .await;
    let (agent_id, agent) = stack.register_citizen("PRL", "Agent", Language::Fr).await;
    let (_, neighbour) = stack
        .register_citizen("PRL", "Neighbour", Language::Fr)
        .await;

    // The platform's defaults until the commune sets its own.
    let defaults = settings(&stack, &agent).await;
    assert!(defaults.platform_defaults);
    assert_eq!(
        defaults.petition_signing_assurance,
        identity::AssuranceLevel::VerifiedInPerson as i32
    );
    assert_eq!(defaults.association_min_age_months, 36);
    assert_eq!(defaults.comment_report_threshold, 3);
    let unsigned = petition(&stack, &agent, "Un marché couvert", "")
        .await
        .expect("a petition");
    let refused = sign(&stack, &neighbour, &unsigned.id)
        .await
        .expect_err("only verified residents sign by default");
    assert_eq!(error_reason(&refused), "ASSURANCE_TOO_LOW");

    // Only the commune's administrator sets them; each value is checked.
    let wanted = participation::ParticipationSettings {
        petition_signing_assurance: identity::AssuranceLevel::Registered as i32,
        petition_collecting_days: 30,
        association_min_age_months: 24,
        proposal_support_threshold: 2,
        comment_report_threshold: 1,
        ..Default::default()
    };
    assert_eq!(
        set(&stack, &secretary, wanted.clone())
            .await
            .expect_err("a secretary")
            .code(),
        Code::PermissionDenied
    );
    let bad = set(
        &stack,
        &admin,
        participation::ParticipationSettings {
            petition_collecting_days: 0,
            comment_report_threshold: 5000,
            ..wanted.clone()
        },
    )
    .await
    .expect_err("out of range");
    assert_eq!(
        bad_fields(&bad),
        vec![
            "settings.petition_collecting_days",
            "settings.comment_report_threshold"
        ]
    );
    let saved = set(&stack, &admin, wanted.clone()).await.expect("saved");
    assert!(!saved.platform_defaults);
    assert_eq!(saved.petition_collecting_days, 30);
    assert_eq!(
        settings(&stack, &neighbour)
            .await
            .proposal_support_threshold,
        2
    );

    // The collecting window and the signing level apply to new petitions and signatures.
    let library = petition(&stack, &agent, "Une bibliothèque", "")
        .await
        .expect("a petition");
    let window = library.collect_until_time.expect("until").seconds
        - library.create_time.expect("created").seconds;
    assert!((window - 30 * 86_400).abs() <= 5, "{window}");

    // 50 registered residents sign at once: 50 signatures, the threshold (40) reached once.
    let mut signers = Vec::new();
    for index in 0..50 {
        let (_, token) = stack
            .register_citizen("PRL", &format!("signer{index}"), Language::En)
            .await;
        signers.push(token);
    }
    let outcomes = futures_util::future::join_all(
        signers.iter().map(|token| sign(&stack, token, &library.id)),
    )
    .await;
    assert!(
        outcomes
            .iter()
            .all(|outcome| outcome.as_ref().is_ok_and(|signed| signed.newly_signed)),
        "{outcomes:?}"
    );
    let again = sign(&stack, &signers[0], &library.id)
        .await
        .expect("the same signer again");
    assert!(!again.newly_signed);
    let counted = again.petition.expect("petition");
    assert_eq!(counted.signature_count, 50);
    assert_eq!(
        counted.status,
        participation::PetitionStatus::ThresholdReached as i32
    );

    // Every signatory hears of the council's decision, as does the agent.
    stack
        .participation()
        .submit_petition(authorized(
            participation::SubmitPetitionRequest {
                id: library.id.clone(),
            },
            &agent,
        ))
        .await
        .expect("submitted");
    let submitted = stack
        .wait_for_notification(&signers[1], "submitted to the council")
        .await;
    assert!(
        submitted.body.contains("A reasoned decision is due by"),
        "{submitted:?}"
    );
    stack
        .participation()
        .review_petition(authorized(
            participation::ReviewPetitionRequest {
                id: library.id.clone(),
            },
            &secretary,
        ))
        .await
        .expect("under review");
    stack
        .participation()
        .decide_petition_admissibility(authorized(
            participation::DecidePetitionAdmissibilityRequest {
                id: library.id.clone(),
                admissible: true,
                session: "the ordinary session of March".into(),
                ..Default::default()
            },
            &secretary,
        ))
        .await
        .expect("admissible");
    for signer in [&agent, &signers[0], &signers[49]] {
        let told = stack
            .wait_for_notification(signer, "the ordinary session of March")
            .await;
        assert!(told.body.contains("Une bibliothèque"), "{told:?}");
    }

    // The proposal and comment thresholds are the commune's.
    let proposal = stack
        .participation()
        .create_proposal(authorized(
            participation::CreateProposalRequest {
                request_id: uuid::Uuid::now_v7().to_string(),
                proposal: Some(participation::Proposal {
                    title: "Des fontaines".into(),
                    body: "Dans les jardins.".into(),
                    category: "public-space".into(),
                    ..Default::default()
                }),
            },
            &agent,
        ))
        .await
        .expect("a proposal")
        .into_inner()
        .proposal
        .expect("proposal");
    assert_eq!(proposal.support_threshold, 2);
    let comment = stack
        .participation()
        .add_comment(authorized(
            participation::AddCommentRequest {
                subject: participation::CommentSubject::Proposal as i32,
                subject_id: proposal.id.clone(),
                body: "Hors sujet, achetez mes tapis !".into(),
            },
            &agent,
        ))
        .await
        .expect("a comment")
        .into_inner()
        .comment
        .expect("comment");
    stack
        .participation()
        .report_comment(authorized(
            participation::ReportCommentRequest {
                id: comment.id.clone(),
            },
            &neighbour,
        ))
        .await
        .expect("reported");
    let visible = stack
        .participation()
        .list_comments(authorized(
            participation::ListCommentsRequest {
                subject: participation::CommentSubject::Proposal as i32,
                subject_id: proposal.id.clone(),
            },
            &neighbour,
        ))
        .await
        .expect("comments")
        .into_inner()
        .comments;
    assert!(visible.is_empty(), "one report hides it here: {visible:?}");

    // Associations: registered at the desk; young ones cannot petition yet; only their
    // representative files for them.
    let today = chrono::Utc::now().date_naive();
    let last_year = (today - chrono::Duration::days(365))
        .format("%Y-%m-%d")
        .to_string();
    let young = register_association(
        &stack,
        &agent_desk,
        "Jeunes du quartier",
        "REC-2025-17",
        &last_year,
        &agent_id,
    )
    .await
    .expect("registered");
    let old = register_association(
        &stack,
        &agent_desk,
        "Amis de la médina",
        "REC-2010-03",
        "2010-05-01",
        &agent_id,
    )
    .await
    .expect("registered");
    let duplicate = register_association(
        &stack,
        &admin,
        "Autre nom",
        "REC-2010-03",
        "2011-01-01",
        &agent_id,
    )
    .await
    .expect_err("the same receipt number");
    assert_eq!(duplicate.code(), Code::AlreadyExists);
    let future = register_association(&stack, &admin, "Futur", "REC-X", "2999-01-01", &agent_id)
        .await
        .expect_err("founded in the future");
    assert_eq!(bad_fields(&future), vec!["association.founding_date"]);
    assert_eq!(
        register_association(&stack, &agent, "Moi", "REC-Y", "2000-01-01", &agent_id)
            .await
            .expect_err("a citizen registers")
            .code(),
        Code::PermissionDenied
    );
    let too_young = petition(&stack, &agent, "Un terrain de sport", &young.id)
        .await
        .expect_err("younger than 24 months");
    assert_eq!(error_reason(&too_young), "ASSOCIATION_TOO_YOUNG");
    assert_eq!(
        petition(&stack, &neighbour, "Un terrain de sport", &old.id)
            .await
            .expect_err("not its representative")
            .code(),
        Code::PermissionDenied
    );
    let filed = petition(&stack, &agent, "Restaurer les remparts", &old.id)
        .await
        .expect("filed by the association");
    assert_eq!(filed.association_id, old.id);
    assert_eq!(filed.association_name, "Amis de la médina");
    let listed = stack
        .participation()
        .list_petitions(authorized(
            participation::ListPetitionsRequest {
                page_size: 50,
                ..Default::default()
            },
            &neighbour,
        ))
        .await
        .expect("petitions")
        .into_inner()
        .petitions;
    assert!(
        listed
            .iter()
            .any(|p| p.id == filed.id && p.association_name == "Amis de la médina")
    );
    let associations = stack
        .participation()
        .list_associations(authorized(
            participation::ListAssociationsRequest {},
            &neighbour,
        ))
        .await
        .expect("associations")
        .into_inner()
        .associations;
    assert_eq!(
        associations
            .iter()
            .map(|a| a.name.as_str())
            .collect::<Vec<_>>(),
        vec!["Amis de la médina", "Jeunes du quartier"]
    );
    stack.stop().await;
}
