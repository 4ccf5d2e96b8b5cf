//! Consultations through gRPC on both backends: staff open one with choice, rating and free-text
//! questions for verified residents; answers are checked per question; one response each; live
//! results (free text for staff only); a closed window takes no more; a CSV export for staff.

use jamaa_proto::identity::v1 as identity;
use jamaa_proto::participation::v1 as participation;
use jamaa_proto::r#type::v1::Language;
use jamaa_tests::{Backend, authorized, error_reason, spawn_stack};
use tonic::Code;

crate::on_both_backends!(a_consultation_from_questions_to_results, consultation);

fn timestamp(at: chrono::DateTime<chrono::Utc>) -> Option<jamaa_proto::Timestamp> {
    Some(jamaa_proto::timestamp_from_millis(at.timestamp_millis()))
}

async fn consultation(backend: Backend) {
    let Some(stack) = spawn_stack(backend).await else {
        return;
    };
    let (_, admin) = stack.create_commune("CSL", 3).await;
    let secretary = stack
        .create_staff(
            &admin,
            "secretary@csl.test",
            &[identity::Role::CouncilSecretary],
        )
        .await;
    let (unverified_id, unverified) = stack.register_citizen("CSL", "Nora", Language::Fr).await;
    let _ = unverified_id;
    let mut residents = Vec::new();
    for name in ["r1", "r2", "r3"] {
        let (id, _) = stack.register_citizen("CSL", name, Language::Fr).await;
        residents.push(
            stack
                .verify_in_person(&admin, &id, &format!("{name}@csl.test"))
                .await,
        );
    }
    let now = chrono::Utc::now();
    let questions = vec![
        participation::Question {
            text: "Quel jour pour le souk ?".into(),
            kind: participation::QuestionKind::SingleChoice as i32,
            options: vec!["Samedi".into(), "Dimanche".into()],
            required: true,
        },
        participation::Question {
            text: "Quels services en ligne ?".into(),
            kind: participation::QuestionKind::MultipleChoice as i32,
            options: vec!["État civil".into(), "Urbanisme".into(), "Taxes".into()],
            required: false,
        },
        participation::Question {
            text: "Votre satisfaction".into(),
            kind: participation::QuestionKind::Rating as i32,
            options: vec![],
            required: false,
        },
        participation::Question {
            text: "Autre remarque".into(),
            kind: participation::QuestionKind::FreeText as i32,
            options: vec![],
            required: false,
        },
    ];
    let open = |close: chrono::DateTime<chrono::Utc>| participation::Consultation {
        title: "Le souk hebdomadaire".into(),
        questions: questions.clone(),
        open_time: timestamp(now - chrono::Duration::minutes(1)),
        close_time: timestamp(close),
        min_assurance: identity::AssuranceLevel::VerifiedInPerson as i32,
        ..Default::default()
    };
    let citizen_refused = stack
        .participation()
        .create_consultation(authorized(
            participation::CreateConsultationRequest {
                consultation: Some(open(now + chrono::Duration::days(7))),
            },
            &residents[0],
        ))
        .await
        .expect_err("citizens do not open consultations");
    assert_eq!(citizen_refused.code(), Code::PermissionDenied);
    let created = stack
        .participation()
        .create_consultation(authorized(
            participation::CreateConsultationRequest {
                consultation: Some(open(now + chrono::Duration::days(7))),
            },
            &secretary,
        ))
        .await
        .expect("opened")
        .into_inner()
        .consultation
        .expect("consultation");

    let respond = |token: &str, answers: Vec<participation::Answer>| {
        let mut client = stack.participation();
        let (id, token) = (created.id.clone(), token.to_string());
        async move {
            client
                .respond_to_consultation(authorized(
                    participation::RespondToConsultationRequest { id, answers },
                    &token,
                ))
                .await
        }
    };
    let answer = |index: i32, choices: Vec<i32>, rating: i32, text: &str| participation::Answer {
        question_index: index,
        choices,
        rating,
        text: text.into(),
    };
    // The audience: verified residents only.
    let low = respond(&unverified, vec![answer(0, vec![0], 0, "")])
        .await
        .expect_err("not verified");
    assert_eq!(error_reason(&low), "ASSURANCE_TOO_LOW");
    // Each bad answer is named; the required one is missing.
    let bad = respond(
        &residents[0],
        vec![answer(1, vec![0, 0], 0, ""), answer(2, vec![], 7, "")],
    )
    .await
    .expect_err("bad answers");
    assert_eq!(bad.code(), Code::InvalidArgument);
    respond(
        &residents[0],
        vec![
            answer(0, vec![0], 0, ""),
            answer(1, vec![0, 2], 0, ""),
            answer(2, vec![], 4, ""),
            answer(3, vec![], 0, "Plus d'ombre au souk."),
        ],
    )
    .await
    .expect("answered");
    respond(
        &residents[1],
        vec![answer(0, vec![1], 0, ""), answer(2, vec![], 2, "")],
    )
    .await
    .expect("answered");
    respond(
        &residents[2],
        vec![answer(0, vec![0], 0, ""), answer(1, vec![2], 0, "")],
    )
    .await
    .expect("answered");
    let twice = respond(&residents[2], vec![answer(0, vec![1], 0, "")])
        .await
        .expect_err("once");
    assert_eq!(error_reason(&twice), "ALREADY_RESPONDED");

    // Live results: 2 Samedi, 1 Dimanche; État civil 1, Taxes 2; ratings 4 and 2 (mean 3).
    let results = |token: &str| {
        let mut client = stack.participation();
        let (id, token) = (created.id.clone(), token.to_string());
        async move {
            client
                .get_consultation_results(authorized(
                    participation::GetConsultationResultsRequest { id },
                    &token,
                ))
                .await
                .expect("results")
                .into_inner()
        }
    };
    let public = results(&unverified).await;
    assert_eq!(public.response_count, 3);
    assert_eq!(public.questions[0].option_counts, [2, 1]);
    assert_eq!(public.questions[1].option_counts, [1, 0, 2]);
    assert_eq!(public.questions[2].rating_counts, [0, 1, 0, 1, 0]);
    assert_eq!(public.questions[2].rating_mean, Some(3.0));
    assert!(
        public.questions[3].texts.is_empty(),
        "free text is for staff"
    );
    let staff = results(&secretary).await;
    assert_eq!(staff.questions[3].texts, ["Plus d'ombre au souk."]);

    // The export, for staff only.
    let csv = stack
        .participation()
        .export_consultation_responses(authorized(
            participation::ExportConsultationResponsesRequest {
                id: created.id.clone(),
            },
            &secretary,
        ))
        .await
        .expect("export")
        .into_inner();
    let text = String::from_utf8(csv.data).expect("utf-8");
    assert_eq!(text.lines().count(), 4, "{text}");
    assert!(
        text.contains("Samedi,État civil | Taxes,4,Plus d'ombre au souk."),
        "{text}"
    );
    let not_for_citizens = stack
        .participation()
        .export_consultation_responses(authorized(
            participation::ExportConsultationResponsesRequest {
                id: created.id.clone(),
            },
            &residents[0],
        ))
        .await
        .expect_err("staff only");
    assert_eq!(not_for_citizens.code(), Code::PermissionDenied);

    // A closed consultation takes no more answers.
    let closed = stack
        .participation()
        .create_consultation(authorized(
            participation::CreateConsultationRequest {
                consultation: Some(participation::Consultation {
                    open_time: timestamp(now - chrono::Duration::days(10)),
                    close_time: timestamp(now - chrono::Duration::days(1)),
                    ..open(now)
                }),
            },
            &admin,
        ))
        .await
        .expect("opened")
        .into_inner()
        .consultation
        .expect("consultation");
    let late = stack
        .participation()
        .respond_to_consultation(authorized(
            participation::RespondToConsultationRequest {
                id: closed.id.clone(),
                answers: vec![answer(0, vec![0], 0, "")],
            },
            &residents[0],
        ))
        .await
        .expect_err("closed");
    assert_eq!(error_reason(&late), "NOT_COLLECTING");
    stack.stop().await;
}

crate::on_both_backends!(a_consultation_s_window_is_announced, announced);

/// The scheduler tells the commune's residents when a consultation opens, and its creator when
/// it closes (with the number of responses), once each.
async fn announced(backend: Backend) {
    let options = jamaa_tests::Options {
        extra_env: vec![(
            "JAMAA__PARTICIPATION__SCAN_INTERVAL_SECONDS".into(),
            "1".into(),
        )],
        ..Default::default()
    };
    let Some(stack) = jamaa_tests::spawn_stack_with(backend, options).await else {
        return;
    };
    let (_, admin) = stack.create_commune("CSW", 3).await;
    let secretary = stack
        .create_staff(
            &admin,
            "secretary@csw.test",
            &[identity::Role::CouncilSecretary],
        )
        .await;
    let (_, resident) = stack.register_citizen("CSW", "Salma", Language::En).await;
    let (_, voisin) = stack.register_citizen("CSW", "Karim", Language::Fr).await;
    stack.create_commune("CSX", 3).await;
    let (_, elsewhere) = stack.register_citizen("CSX", "Other", Language::En).await;
    let now = chrono::Utc::now();
    let close = now + chrono::Duration::seconds(8);
    let created = stack
        .participation()
        .create_consultation(authorized(
            participation::CreateConsultationRequest {
                consultation: Some(participation::Consultation {
                    title: "Le souk du samedi".into(),
                    questions: vec![participation::Question {
                        text: "Pour ou contre ?".into(),
                        kind: participation::QuestionKind::SingleChoice as i32,
                        options: vec!["Pour".into(), "Contre".into()],
                        required: true,
                    }],
                    open_time: timestamp(now - chrono::Duration::minutes(1)),
                    close_time: timestamp(close),
                    ..Default::default()
                }),
            },
            &secretary,
        ))
        .await
        .expect("a consultation")
        .into_inner()
        .consultation
        .expect("consultation");
    let opened = stack
        .wait_for_notification(&resident, "New consultation")
        .await;
    assert!(opened.title.contains("Le souk du samedi"), "{opened:?}");
    stack
        .wait_for_notification(&voisin, "Nouvelle consultation")
        .await;
    stack
        .participation()
        .respond_to_consultation(authorized(
            participation::RespondToConsultationRequest {
                id: created.id.clone(),
                answers: vec![participation::Answer {
                    question_index: 0,
                    choices: vec![1],
                    ..Default::default()
                }],
            },
            &resident,
        ))
        .await
        .expect("a response");
    let closed = stack
        .wait_for_notification(&secretary, "Le souk du samedi")
        .await;
    assert!(closed.body.contains('1'), "{closed:?}");
    // Told once, however many scans ran; residents of other communes were not told.
    let about: Vec<_> = stack
        .inbox(&resident)
        .await
        .into_iter()
        .filter(|n| n.title.contains("Le souk du samedi"))
        .collect();
    assert_eq!(about.len(), 1, "{about:?}");
    assert!(
        !stack
            .inbox(&elsewhere)
            .await
            .iter()
            .any(|n| n.title.contains("Le souk du samedi"))
    );
    stack.stop().await;
}
